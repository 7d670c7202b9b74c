"""Classical segmenter: finds known objects, follows prompts, rejects bad input."""

import numpy as np
import pytest
from pydantic import ValidationError

from liwi.tools.base import ToolError
from liwi.tools.segment import ClassicalSegmenter, SegmentInput

from .synthetic import iou, objects_scene, shadow_scene


@pytest.fixture(scope="module")
def seg():
    return ClassicalSegmenter()


def test_finds_the_object_without_a_prompt(seg):
    sc = shadow_scene(with_shadow=False)
    out = seg(SegmentInput(sc.image))
    assert out.candidates, "no candidates"
    best = out.candidates[0]
    assert best.mask.dtype == np.float32 and best.mask.shape == sc.alpha.shape
    assert set(np.unique(best.mask)) <= {0.0, 1.0}
    assert iou(best.mask, sc.alpha) > 0.85
    assert 0.0 <= best.score <= 1.0
    assert best.area == pytest.approx(float(best.mask.mean()))
    x0, y0, x1, y1 = best.bbox
    ys, xs = np.nonzero(sc.alpha > 0.5)
    assert abs(x0 - xs.min()) <= 4 and abs(x1 - xs.max() - 1) <= 4
    assert abs(y0 - ys.min()) <= 4 and abs(y1 - ys.max() - 1) <= 4
    assert out.saliency is not None and out.saliency.shape == sc.alpha.shape


def test_both_objects_are_among_the_candidates(seg):
    image, alphas = objects_scene()
    out = seg(SegmentInput(image), {"max_candidates": 4})
    for a in alphas:
        assert max(iou(c.mask, a) for c in out.candidates) > 0.8
    # largest-salient first: the big red object comes before the small blue one
    order = [int(np.argmax([iou(c.mask, a) for a in alphas])) for c in out.candidates]
    assert order.index(0) <= order.index(1) or iou(out.candidates[0].mask, alphas[0]) > 0.5


def test_box_prompt_selects_that_object(seg):
    image, (a1, a2) = objects_scene()
    ys, xs = np.nonzero(a2 > 0.5)
    box = (int(xs.min()) - 6, int(ys.min()) - 6, int(xs.max()) + 7, int(ys.max()) + 7)
    out = seg(SegmentInput(image, box=box))
    assert len(out.candidates) == 1
    assert iou(out.candidates[0].mask, a2) > 0.85
    assert iou(out.candidates[0].mask, a1) < 0.05


def test_point_prompt_selects_that_object(seg):
    image, (a1, a2) = objects_scene()
    ys, xs = np.nonzero(a1 > 0.5)
    out = seg(SegmentInput(image, points=[(float(xs.mean()), float(ys.mean()))], point_labels=[1]))
    assert iou(out.candidates[0].mask, a1) > 0.8
    assert iou(out.candidates[0].mask, a2) < 0.05


@pytest.mark.parametrize(
    "inputs, reason",
    [
        (dict(box=(50, 50, 40, 60)), "box"),
        (dict(box=(0, 0, 500, 10)), "box"),
        (dict(points=[(5.0, 5.0)], point_labels=[]), "point labels"),
        (dict(points=[(900.0, 5.0)], point_labels=[1]), "outside"),
        (dict(points=[(5.0, 5.0)], point_labels=[0]), "object"),
    ],
)
def test_bad_prompts_are_refused_with_a_reason(seg, inputs, reason):
    image, _ = objects_scene()
    with pytest.raises(ToolError, match=reason):
        seg(SegmentInput(image, **inputs))


def test_bad_images_are_refused(seg):
    with pytest.raises(ToolError, match="H×W×3"):
        seg(SegmentInput(np.zeros((32, 32), np.float32)))
    with pytest.raises(ToolError, match="NaN"):
        seg(SegmentInput(np.full((32, 32, 3), np.nan, np.float32)))
    with pytest.raises(ToolError, match="no salient object"):
        seg(SegmentInput(np.full((64, 64, 3), 0.5, np.float32)))


def test_params_are_checked_and_described():
    with pytest.raises(ValidationError):
        ClassicalSegmenter.Params(max_candidates=0)
    with pytest.raises(ValidationError):
        ClassicalSegmenter.Params(no_such_knob=1)
    schema = ClassicalSegmenter.json_schema()
    assert schema["function"]["name"] == "segment"
    props = schema["function"]["parameters"]["properties"]
    assert all(p.get("description") for p in props.values())
