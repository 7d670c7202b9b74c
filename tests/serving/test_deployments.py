"""The model deployment's batch logic with a real (tiny) Predictor, outside Serve."""

from __future__ import annotations

import numpy as np
import pytest

from liwi.layers import LayerStack
from liwi.model.prompts import Prompt
from liwi.serving.deployments import LiwiModel, describe_model, to_predictor_prompt
from liwi.serving.requests import ApiError
from serving.serving_support import photo


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    from liwi.predictor import Predictor

    cls = LiwiModel.func_or_class  # the plain class behind the Serve deployment
    obj = cls.__new__(cls)
    obj.predictor = Predictor.from_uri(str(tiny_checkpoint), device="cpu")
    return obj


def test_batch_groups_by_depth_and_isolates_a_bad_item(model):
    img = (photo(48, 40) * 255).astype(np.uint8)
    bad_mask = Prompt(mask=np.zeros((3, 3), np.float32))  # wrong size for the image
    jobs = [
        (img, None, 2),
        (img, Prompt(box=(2.0, 2.0, 30.0, 30.0)), 3),
        (img, bad_mask, 2),
        (img, Prompt(points=[(10.0, 12.0)]), 2),
    ]
    results = model._run_batch(jobs)
    assert isinstance(results[2], ApiError) and results[2].status == 422
    for i in (0, 1, 3):
        assert isinstance(results[i], LayerStack), results[i]
        assert results[i].size == (40, 48)
        assert results[i].n_layers <= jobs[i][2]
    assert results[1].meta["prompted"] and not results[0].meta["prompted"]


def test_prompt_conversion():
    assert to_predictor_prompt(None) is None
    assert to_predictor_prompt(Prompt()) is None
    p = to_predictor_prompt(Prompt(box=(1, 2, 3, 4), points=[(1.0, 1.0)]))
    assert p.box == (1, 2, 3, 4) and p.points == [(1.0, 1.0)] and p.mask is None


def test_describe_model_versions_files_by_content(tiny_checkpoint, tmp_path):
    import shutil

    a = describe_model(str(tiny_checkpoint))
    copy = tmp_path / "copy.pt"
    shutil.copy(tiny_checkpoint, copy)
    b = describe_model(str(copy))
    assert a["version"] == b["version"] and a["version"].startswith("sha256:")
    assert a["uri"] == str(tiny_checkpoint) and b["source"] == str(copy)


def test_wire_format_is_8bit_and_lossless_for_png_output(model):
    import pickle

    from liwi.imageio import to_uint8
    from liwi.serving.wire import pack_stack, unpack_stack

    stack = model.predictor.decompose(photo(64, 48), max_layers=3)
    packed = pack_stack(stack)
    assert len(pickle.dumps(packed)) < len(pickle.dumps(stack)) / 3
    back = unpack_stack(packed)
    assert back.n_layers == stack.n_layers and back.meta == stack.meta
    for a, b in zip(back.layers(), stack.layers(), strict=True):
        assert a.name == b.name and np.array_equal(to_uint8(a.rgba), to_uint8(b.rgba))
