"""Checkpoint format and the strict ``build_model`` factory.

A checkpoint is a ``torch.save`` dict::

    {"format": "liwi-layernet", "format_version": 1,
     "config": ModelConfig as a dict, "state_dict": {...}, "meta": {...}}

The config travels with the weights, so a checkpoint alone rebuilds its model. Loading
is strict: a missing or unexpected key is an error that names the keys.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from liwi.model.config import ModelConfig

FORMAT = "liwi-layernet"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is unreadable, of another format, or does not fit the model."""


def load_checkpoint(source: str | Path | bytes) -> dict[str, Any]:
    """Read a checkpoint (path or bytes) and check its envelope."""
    import torch

    try:
        if isinstance(source, bytes):
            ckpt = torch.load(io.BytesIO(source), map_location="cpu", weights_only=True)
        else:
            path = Path(source)
            if not path.is_file():
                raise CheckpointError(f"checkpoint not found: {path}")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch raises many types for junk files
        raise CheckpointError(f"cannot read checkpoint: {type(exc).__name__}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} checkpoint (missing 'format': {FORMAT!r})")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint format_version {ckpt.get('format_version')} != {FORMAT_VERSION}"
        )
    for key in ("config", "state_dict"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint has no {key!r}")
    return ckpt


def save_checkpoint(model, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (a LayerNet) with its config and ``meta`` to ``path`` atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.model_dump(),
        "state_dict": {k: v.detach().cpu().float() for k, v in model.state_dict().items()},
        "meta": json.loads(json.dumps(meta or {}, default=str)),  # plain types only
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def _parse_config(config: Any) -> Any:
    """A :class:`ModelConfig` (LayerNet) or a ``U2LayerNetConfig`` (``arch: u2layernet``)."""
    if isinstance(config, BaseModel):
        return config
    if config.get("arch") == "u2layernet":
        from liwi.model.u2layernet import U2LayerNetConfig

        return U2LayerNetConfig(**config)
    return ModelConfig(**config)


def _network(cfg: Any):
    if isinstance(cfg, ModelConfig):
        from liwi.model.network import LayerNet

        return LayerNet(cfg)
    from liwi.model.u2layernet import U2LayerNet

    return U2LayerNet(cfg)


def build_model(
    config: BaseModel | dict[str, Any] | None = None,
    checkpoint: str | Path | bytes | dict[str, Any] | None = None,
):
    """Build the network a config names (:class:`~liwi.model.network.LayerNet`, or
    :class:`~liwi.model.u2layernet.U2LayerNet` for ``arch: u2layernet``); load
    ``checkpoint`` strictly if given.

    ``config`` may be omitted when the checkpoint carries one; when both are given they
    must agree. Returns the model in eval mode on the CPU.
    """
    ckpt = None
    if checkpoint is not None:
        ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    if config is None:
        if ckpt is None:
            raise CheckpointError("build_model needs a config, a checkpoint, or both")
        config = ckpt["config"]
    cfg = _parse_config(config)
    if ckpt is not None and _parse_config(ckpt["config"]) != cfg:
        raise CheckpointError(
            f"config does not match the checkpoint's: given {cfg.model_dump()}, "
            f"checkpoint {ckpt['config']}"
        )
    model = _network(cfg)
    if ckpt is not None:
        try:
            result = model.load_state_dict(ckpt["state_dict"], strict=False)
        except RuntimeError as exc:  # tensors of the wrong shape
            raise CheckpointError(f"checkpoint does not fit the model: {exc}") from exc
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"checkpoint does not fit the model: missing keys {result.missing_keys}, "
                f"unexpected keys {result.unexpected_keys}"
            )
    return model.eval()
