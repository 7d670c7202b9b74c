"""The model deployment's batch logic with a real (tiny) Predictor, outside Serve."""

from __future__ import annotations

import numpy as np
import pytest

from liwi.layers import LayerStack
from liwi.model.prompts import Prompt
from liwi.serving.deployments import LiwiModel, describe_model, to_predictor_prompt
from liwi.serving.requests import ApiError
from serving.serving_support import photo


def bare_model(checkpoint, prior: str | None = "u2netp"):
    """The plain class behind the Serve deployment, set up as ``__init__`` does (no Serve)."""
    import asyncio

    from liwi.serving.settings import ServeAppArgs

    cls = LiwiModel.func_or_class
    obj = cls.__new__(cls)
    obj.settings = ServeAppArgs(model_uri=str(checkpoint), device="cpu", prior=prior)
    obj.prior_ref = obj.settings.resolved_prior()
    obj.loaded, obj._swap, obj.batch_sizes = None, asyncio.Lock(), []
    asyncio.run(obj.reconfigure({"model_uri": str(checkpoint)}))  # what Serve calls first
    return obj


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return bare_model(tiny_checkpoint, prior=None)


@pytest.fixture(scope="module")
def model_with_prior(tiny_checkpoint):
    return bare_model(tiny_checkpoint)


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
    assert isinstance(results[2], ApiError) and results[2].status == 422, results[2]
    for i in (0, 1, 3):
        assert isinstance(results[i], LayerStack), results[i]
        assert results[i].size == (40, 48)
        assert results[i].n_layers <= jobs[i][2]
    assert results[1].meta["prompted"] and not results[0].meta["prompted"]


def test_batch_groups_by_method_and_builds_the_prior_once(model_with_prior):
    from liwi.decomposers import PriorDecomposer

    m = model_with_prior
    img = (photo(64, 48) * 255).astype(np.uint8)
    jobs = [(img, None, 3, "prior"), (img, None, 3, "model"), (img, None, 2, "prior")]
    results = m._run_batch(jobs)
    assert all(isinstance(r, LayerStack) for r in results), results
    assert results[0].meta["model"] == "prior:u2netp" and results[2].meta["model"] == "prior:u2netp"
    assert results[1].meta["prior"] == "u2netp" and results[1].meta["model"] != "prior:u2netp"
    assert all(not o.shadow[..., 3].any() for o in results[0].objects)  # the prior casts none
    prior = m.decomposers["prior"]
    assert isinstance(prior, PriorDecomposer) and prior.prior is m.predictor.prior  # shared
    m._run_batch(jobs[:1])
    assert m.decomposers["prior"] is prior  # built once
    ref = m.model_ref("prior")
    assert ref["method"] == "prior" and ref["prior"] == "u2netp" and ref["uri"] == "prior:u2netp"
    assert m.model_ref()["method"] == "model"


def test_prior_method_without_a_prior_is_422(model):
    img = (photo(48, 40) * 255).astype(np.uint8)
    out = model._run_batch([(img, None, 2, "prior"), (img, None, 2, "model")])
    assert isinstance(out[0], ApiError) and out[0].code == "bad_method", out[0]
    assert "prior: none" in out[0].message and isinstance(out[1], LayerStack)


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


def test_wire_format_is_cropped_8bit_and_lossless_for_png_output(model_with_prior):
    import pickle

    from liwi.imageio import to_uint8
    from liwi.serving.wire import pack_stack, unpack_stack

    stack = model_with_prior.predictor.decompose(photo(64, 48), max_layers=3)
    assert stack.objects, "the prior finds the disc"
    packed = pack_stack(stack)
    assert len(pickle.dumps(packed)) < len(pickle.dumps(stack)) / 4
    back = unpack_stack(packed)
    assert back.n_layers == stack.n_layers and back.meta == stack.meta
    for a, b in zip(back.layers(), stack.layers(), strict=True):
        a8, b8 = to_uint8(a.rgba).astype(int), to_uint8(b.rgba).astype(int)
        visible = b8[..., 3] > 0
        assert a.name == b.name and np.abs(a8 - b8)[visible].max() <= 1
    assert np.abs(back.composite() - stack.composite()).max() <= 1 / 255 + 1e-6


def test_reconfigure_swaps_the_model_and_each_answer_names_the_one_that_ran(
    tiny_checkpoint, tmp_path
):
    import asyncio

    import torch

    from liwi.model import build_model, preset, save_checkpoint

    torch.manual_seed(1)
    other = tmp_path / "other.pt"
    save_checkpoint(build_model(preset("tiny")), other, meta={"purpose": "rollout test"})
    m = bare_model(tiny_checkpoint, prior=None)
    first = m.loaded
    v1 = m.model_ref()["version"]
    img = (photo(48, 40) * 255).astype(np.uint8)

    # a batch holds on to the model it started with, whatever is swapped in meanwhile
    asyncio.run(m.reconfigure({"model_uri": str(other)}))
    assert m.loaded is not first and m.model_ref()["uri"] == str(other)
    v2 = m.model_ref()["version"]
    assert v2 != v1 and v2 == describe_model(str(other))["version"]
    assert first.model_ref()["version"] == v1 and isinstance(
        first.run_batch([(img, None, 2)])[0], LayerStack
    )
    assert m.info()["version"] == v2

    same = m.loaded
    asyncio.run(m.reconfigure({"model_uri": str(other)}))  # unchanged: nothing reloads
    assert m.loaded is same
    asyncio.run(m.reconfigure(None))  # no user_config: the app's model_uri
    assert m.model_ref()["version"] == v1
    with pytest.raises(ValueError, match="unknown keys"):
        asyncio.run(m.reconfigure({"model": "x"}))


def test_health_check_fails_until_a_model_is_loaded(tiny_checkpoint):
    m = bare_model(tiny_checkpoint, prior=None)
    m.check_health()  # loaded: healthy
    m.loaded = None
    with pytest.raises(RuntimeError, match="no model loaded"):
        m.check_health()
    assert m.ready() is False
    with pytest.raises(ApiError) as err:
        m.model_ref()
    assert err.value.status == 503


def test_build_app_hands_the_model_uri_to_reconfigure():
    from liwi.serving.deployments import build_app

    app = build_app({"model_uri": "models:/liwi@champion", "prior": "none"})
    model = app._bound_deployment.init_args[0]
    assert model._bound_deployment.user_config == {"model_uri": "models:/liwi@champion"}
