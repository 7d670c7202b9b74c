"""The rule-based agent: a full decomposition with a complete trace, retries that differ."""

import json

import numpy as np
import pytest

from liwi.add.curator import CuratorConfig
from liwi.agents import build_agent
from liwi.sample_photos import procedural_scene

TRACE_KEYS = {"step", "attempt", "tool", "args", "params", "seconds", "outcome", "result"}


@pytest.fixture(scope="module")
def photo():
    return procedural_scene(2, 128, 1).composite()


def tools_of(trace):
    return [e["tool"] for e in trace]


def test_default_agent_decomposes_a_photo_and_traces_every_call(photo):
    agent = build_agent({})
    result = agent.run(photo, sample_id="p2")
    assert result.verdict.passed, result.reasons
    assert result.attempts == 1 and result.stack.n_layers == 2
    assert tools_of(result.trace) == [
        "segment",
        "select_objects",
        "refine_alpha",
        "inpaint",
        "extract_shadow",
        "curate",
        "finish",
    ]
    for entry in result.trace:
        assert set(entry) >= TRACE_KEYS and entry["outcome"] == "ok"
        assert isinstance(entry["seconds"], float)
    json.dumps(result.trace)  # the trace is plain JSON (goes to agent_trace)
    curate = result.trace[5]["result"]
    assert curate["passed"] is True and curate["scores"]["psnr"] > 30
    # the layers explain the photo and the object was taken out of the background
    assert np.abs(result.stack.composite() - photo).mean() < 0.01
    alpha = result.stack.objects[0].alpha
    assert 0.01 < alpha.mean() < 0.2


def test_agent_is_deterministic(photo):
    a = build_agent({}).run(photo)
    b = build_agent({}).run(photo)
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in a.trace]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"} for e in b.trace]
    np.testing.assert_array_equal(a.stack.background, b.stack.background)


def test_failed_verdicts_lead_to_different_retries(photo):
    # PSNR 200 dB is unreachable, a zero shadow budget rejects every shadow: the agent must
    # widen the masks, drop the shadow, and stop after max_attempts with the best attempt.
    curator = CuratorConfig(min_psnr=200.0, max_shadow_to_object=0.0)
    agent = build_agent({"max_attempts": 3}, curator)
    result = agent.run(photo)
    assert result.attempts == 3 and not result.verdict.passed
    assert result.stack is not None  # the best attempt is still handed over (→ rejects)
    attempts = [[e for e in result.trace if e["attempt"] == k] for k in range(3)]
    first_shadow = [e for e in attempts[0] if e["tool"] == "extract_shadow"][0]
    retry_shadow = [e for e in attempts[1] if e["tool"] == "extract_shadow"][0]
    assert "skip" not in first_shadow["args"] and retry_shadow["args"]["skip"] is True
    grows = [
        [e["args"].get("grow_px", 0) for e in a if e["tool"] == "refine_alpha"][0] for a in attempts
    ]
    assert grows == [0, 0, 4]  # attempt 2 dropped the shadow; attempt 3 widened the mask
    assert any("PSNR" in r for r in result.reasons)


def test_background_failures_switch_the_inpainter(photo):
    curator = CuratorConfig(max_seam_ratio=0.0)  # every background "has a seam"
    result = build_agent({"max_attempts": 2}, curator).run(photo)
    inpaints = [e for e in result.trace if e["tool"] == "inpaint"]
    assert len(inpaints) == 2
    assert inpaints[0]["params"] == {} and inpaints[1]["params"]["method"] == "ns"
    grows = [e["args"].get("grow_px", 0) for e in result.trace if e["tool"] == "refine_alpha"]
    assert grows == [0, 4]


def test_flat_image_gives_no_layers_and_a_reason():
    flat = np.full((96, 96, 3), 0.5, np.float32)
    result = build_agent({}).run(flat)
    assert result.stack is None and result.verdict is None
    assert result.reasons and result.reasons[0].startswith("agent: segment:")
    assert result.trace[0]["tool"] == "segment" and result.trace[0]["outcome"] == "error"


def test_a_tool_error_is_recovered_with_another_strategy():
    # dilating the hole by 64 px (the most allowed) leaves no context in a 96 px photo
    # wherever the object stands: the inpainter refuses, the agent switches to its first
    # inpainting fallback (which sets its own dilation)
    photo = procedural_scene(2, 96, 1).composite()
    tools = {"inpaint": {"backend": "classical", "params": {"dilate_px": 64}}}
    result = build_agent({"tools": tools}).run(photo)
    inpaints = [e for e in result.trace if e["tool"] == "inpaint"]
    assert [e["outcome"] for e in inpaints] == ["error", "ok"]
    assert "too little context" in inpaints[0]["result"]["error"]
    assert inpaints[1]["params"]["method"] == "ns"
    assert result.verdict is not None and result.verdict.passed, result.reasons
