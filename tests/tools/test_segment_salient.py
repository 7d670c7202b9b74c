"""The salient segment backend: pretrained prior first, classical candidates after, traced."""

from pathlib import Path

import numpy as np
import pytest

from liwi.imageio import decode_rgb
from liwi.tools.base import ToolError
from liwi.tools.registry import DEFAULT_BACKENDS, get_tool
from liwi.tools.segment import SegmentInput

LAKE = Path(__file__).resolve().parents[2] / "data" / "sample_lake"


@pytest.fixture(scope="module")
def segment():
    return get_tool("segment", "salient")


def test_salient_is_the_default_backend():
    assert DEFAULT_BACKENDS["segment"] == "salient"


def test_prior_candidate_first_then_classical(segment):
    img = decode_rgb((LAKE / "coffee_cup.jpg").read_bytes())
    out = segment(SegmentInput(image=img))
    first = out.candidates[0].mask
    h, w = first.shape
    assert first[h // 2 - 10 : h // 2 + 10, w // 2 - 10 : w // 2 + 10].mean() == 1.0  # no hole
    assert out.saliency is not None and out.saliency.shape == (h, w)
    # classical masks of the same cup are dropped as duplicates; allowed to overlap, they
    # follow the prior's candidate as lower-scored fallbacks
    both = segment(SegmentInput(image=img), {"max_overlap": 1.0})
    assert len(both.candidates) >= 2
    np.testing.assert_array_equal(both.candidates[0].mask, first)
    assert all(c.score <= 0.6 < both.candidates[0].score for c in both.candidates[1:])
    assert segment.licence.startswith("u2netp-liwi: Apache-2.0")


def test_box_keeps_the_prior_inside(segment):
    img = decode_rgb((LAKE / "rocket_launch.jpg").read_bytes())
    out = segment(SegmentInput(image=img, box=(245, 110, 305, 330)), {"classical_fallback": False})
    m = out.candidates[0].mask
    assert m[:, :245].max() == 0 and m[:, 305:].max() == 0 and m.mean() > 0.005
    with pytest.raises(ToolError, match="outside"):
        segment(SegmentInput(image=img, box=(0, 0, 9999, 10)))


def test_agent_trace_records_the_weights_licence():
    from liwi.agents import build_agent

    img = decode_rgb((LAKE / "flower_wide.jpg").read_bytes())
    result = build_agent({}).run(img, sample_id="flower")
    seg = result.trace[0]
    assert seg["tool"] == "segment" and seg["result"]["weights"].startswith("u2netp-liwi: ")
    assert result.stack.objects, result.reasons
    assert np.isfinite(result.stack.objects[0].alpha).all()
