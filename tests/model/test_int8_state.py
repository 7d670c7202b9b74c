"""int8-packed state dicts: how the U²-Net trunk travels to and from a lent GPU."""

from __future__ import annotations

import pytest
import torch

from liwi.model import int8_state


def _state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "conv.weight": torch.randn(8, 4, 3, 3, generator=g),
        "conv.bias": torch.randn(8, generator=g),
        "steps": torch.tensor(7),
    }


def test_round_trip_error_is_at_most_half_a_step_per_channel():
    state = _state()
    back = int8_state.unpack(int8_state.pack(state))
    w = state["conv.weight"]
    step = w.reshape(8, -1).abs().amax(1) / int8_state.LEVELS
    err = (back["conv.weight"] - w).abs().reshape(8, -1).amax(1)
    assert torch.all(err <= step / 2 + 1e-7)
    assert torch.equal(back["conv.bias"], state["conv.bias"])  # vectors travel as they are
    assert torch.equal(back["steps"], state["steps"])


def test_a_delta_from_a_shared_base_comes_back_far_closer_than_the_weights_would():
    base = _state(0)
    tuned = {k: v + 1e-3 * torch.randn_like(v.float()).to(v.dtype) for k, v in base.items()}
    tuned["steps"] = base["steps"]
    back = int8_state.unpack(int8_state.pack(tuned, base=base), base=base)
    direct = int8_state.unpack(int8_state.pack(tuned))
    delta_err = (back["conv.weight"] - tuned["conv.weight"]).abs().max()
    direct_err = (direct["conv.weight"] - tuned["conv.weight"]).abs().max()
    assert delta_err < direct_err / 100


def test_a_delta_needs_its_base_and_a_base_must_fit():
    base = _state(0)
    packed = int8_state.pack(_state(1), base=base)
    with pytest.raises(ValueError, match="base state"):
        int8_state.unpack(packed)
    with pytest.raises(ValueError, match="another shape"):
        int8_state.pack({"conv.weight": torch.zeros(2, 2)}, base=base)


@pytest.mark.parametrize("xz", [False, True])
def test_parts_split_at_the_size_limit_and_join_back(tmp_path, xz):
    state = {"w": torch.randn(64, 256)}
    packed = int8_state.pack(state)
    paths = int8_state.save_parts(packed, tmp_path / "s", part_bytes=4096, xz=xz)
    assert len(paths) > 1 and all(p.stat().st_size <= 4096 for p in paths)
    back = int8_state.unpack(int8_state.load_parts(tmp_path / "s"))
    assert torch.equal(back["w"], int8_state.unpack(packed)["w"])
    # a smaller state saved over it leaves no stale part behind to be read back
    small = int8_state.pack({"w": torch.randn(2, 2)})
    assert len(int8_state.save_parts(small, tmp_path / "s", part_bytes=4096, xz=xz)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.part00"]
    assert torch.equal(
        int8_state.unpack(int8_state.load_parts(tmp_path / "s"))["w"], int8_state.unpack(small)["w"]
    )


def test_missing_parts_and_foreign_files_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no parts"):
        int8_state.load_parts(tmp_path / "absent")
    with pytest.raises(ValueError, match="liwi-int8-v1"):
        int8_state.unpack({"format": "other"})
