"""Grow a trained LayerNet without changing what it computes: wider top level, more blocks.

Both growths are function-preserving, so a bigger network warm-starts from a trained
smaller one instead of from scratch (``init_from`` plus ``model: {top_channels,
blocks_per_level}`` in a training config; :func:`grow`).

``widen_top(checkpoint, channels)`` returns a checkpoint whose top level (the stem, the
first encoder and last decoder level, the last up-projection and the heads) has
``channels`` feature maps instead of ``top_width``. The old channels keep their weights;
the new ones start from a fresh initialisation, and every weight from a new channel into
an old one is zero, so at step 0 the wider network's outputs equal the old network's
(a function-preserving widening in the spirit of Net2Net, Chen et al. 2016). Training then
gives the new channels gradients through those zero weights.

GroupNorm must not mix old and new channels: the widening is refused unless the old and
new widths split into groups of the same size (the new channels then fill groups of
their own). With the shipped ``groups: 8`` and a top width of 8, 12 and 16 qualify.

``deepen(checkpoint, blocks)`` appends residual blocks to every encoder, bottleneck and
decoder level, each with its second convolution zeroed, so a new block is the identity
at step 0 (the zero-initialised residual of Goyal et al. 2017) and learns from there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liwi.model.blocks import group_norm
from liwi.model.checkpoint import CheckpointError
from liwi.model.config import ModelConfig


def _group_size(channels: int, groups: int) -> int:
    return channels // group_norm(channels, groups).num_groups


def _old_positions(old: int, new: int, old_w: int, new_w: int) -> np.ndarray | None:
    """Where the ``old`` channels of one tensor dimension sit among its ``new`` ones.

    The dimension is the top level itself (``old_w``), the last decoder's input (up-path
    then skip, ``2·old_w``) or the mixing conv's input (features then the RGB image,
    ``old_w + 3``); a dimension whose size did not change maps to itself (None).
    """
    if old == new:
        return None
    if old == old_w and new == new_w:
        return np.arange(old_w)
    if old == 2 * old_w and new == 2 * new_w:
        return np.concatenate([np.arange(old_w), new_w + np.arange(old_w)])
    if old == old_w + 3 and new == new_w + 3:
        return np.concatenate([np.arange(old_w), new_w + np.arange(3)])
    raise CheckpointError(f"cannot widen a dimension of size {old} to {new}")


def widen_top(checkpoint: dict[str, Any], channels: int, seed: int = 0) -> dict[str, Any]:
    """A copy of a LayerNet ``checkpoint`` with ``channels`` top-level feature maps."""
    import torch

    from liwi.model.network import LayerNet

    old_cfg = ModelConfig(**checkpoint["config"])
    old_w = old_cfg.top_width
    if channels == old_w:
        return checkpoint
    if channels < old_w:
        raise CheckpointError(f"top width can only grow: {old_w} → {channels}")
    for a, b in ((old_w, channels), (2 * old_w, 2 * channels)):
        if _group_size(a, old_cfg.groups) != _group_size(b, old_cfg.groups):
            raise CheckpointError(
                f"top width {old_w} → {channels} would mix old and new channels in one "
                f"GroupNorm group ({a} and {b} channels split into groups of different "
                f"sizes with groups={old_cfg.groups}); choose another width"
            )
    new_cfg = old_cfg.model_copy(update={"top_channels": channels})
    torch.manual_seed(seed)
    fresh = LayerNet(new_cfg).state_dict()
    state = {}
    for key, new in fresh.items():
        old = checkpoint["state_dict"][key]
        if old.shape == new.shape:
            state[key] = old.clone()
            continue
        out_pos = _old_positions(old.shape[0], new.shape[0], old_w, channels)
        out_idx = torch.as_tensor(out_pos if out_pos is not None else np.arange(old.shape[0]))
        grown = new.clone()
        if old.ndim == 1:  # bias, GroupNorm scale/shift: new channels keep their fresh init
            grown[out_idx] = old
        else:
            in_pos = _old_positions(old.shape[1], new.shape[1], old_w, channels)
            in_idx = torch.as_tensor(in_pos if in_pos is not None else np.arange(old.shape[1]))
            rows = grown[out_idx]
            rows[:, :] = 0.0  # nothing new flows into an old channel ...
            rows[:, in_idx] = old  # ... and the old weights are the old weights
            grown[out_idx] = rows
        state[key] = grown
    return {**checkpoint, "config": new_cfg.model_dump(), "state_dict": state}


def deepen(checkpoint: dict[str, Any], blocks: int, seed: int = 0) -> dict[str, Any]:
    """A copy of a LayerNet ``checkpoint`` with ``blocks`` residual blocks per level."""
    import torch

    from liwi.model.network import LayerNet

    old_cfg = ModelConfig(**checkpoint["config"])
    if blocks == old_cfg.blocks_per_level:
        return checkpoint
    if blocks < old_cfg.blocks_per_level:
        raise CheckpointError(
            f"blocks per level can only grow: {old_cfg.blocks_per_level} → {blocks}"
        )
    new_cfg = old_cfg.model_copy(update={"blocks_per_level": blocks})
    torch.manual_seed(seed)
    state = LayerNet(new_cfg).state_dict()
    old = checkpoint["state_dict"]
    for key, value in state.items():
        if key in old:
            state[key] = old[key].clone()
        elif ".conv2." in key:  # a new block: its residual branch adds nothing yet
            state[key] = torch.zeros_like(value)
    missing = set(old) - set(state)
    if missing:  # the block indices of the old levels must survive the growth
        raise CheckpointError(f"deepening lost weights: {sorted(missing)[:4]}")
    return {**checkpoint, "config": new_cfg.model_dump(), "state_dict": state}


def grow(checkpoint: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint`` widened and deepened to the ``top_channels`` and ``blocks_per_level``
    of ``overrides`` where those ask for more than it has (other overrides untouched)."""
    if checkpoint["config"].get("arch") is not None:  # model v2 grows by other means
        return checkpoint
    if overrides.get("top_channels") is not None:
        checkpoint = widen_top(checkpoint, int(overrides["top_channels"]))
    if overrides.get("blocks_per_level") is not None:
        checkpoint = deepen(checkpoint, int(overrides["blocks_per_level"]))
    return checkpoint
