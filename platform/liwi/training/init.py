"""The model a training run starts from: a fresh preset or a warm start from a checkpoint."""

from __future__ import annotations

from typing import Any


def initial_model(preset_name: str, overrides: dict[str, Any], init_from: str | None = None):
    """A LayerNet to train: preset + overrides, or the weights of ``init_from``.

    ``init_from`` is any model URI :func:`liwi.predictor.resolve_checkpoint` accepts (a
    path, a lake URI, ``models:/…``). The architecture then comes from that checkpoint
    and ``preset_name`` is not used; ``overrides`` still apply on top, so a fine-tune can
    change fields that hold no weights (``resolution``). A larger ``top_channels`` or
    ``blocks_per_level`` grows the checkpoint first (:func:`liwi.model.grow.grow`: same
    outputs at step 0); any other override that changes a weight shape fails the strict
    load with a :class:`~liwi.model.CheckpointError`.
    """
    from liwi.model import build_model, load_checkpoint, preset

    if init_from is None:
        return build_model(preset(preset_name, **overrides))
    from liwi.predictor import resolve_checkpoint

    ckpt = load_checkpoint(resolve_checkpoint(init_from))
    from liwi.model.grow import grow

    ckpt = grow(ckpt, overrides)
    config = {**ckpt["config"], **overrides}
    return build_model(config, {**ckpt, "config": config})
