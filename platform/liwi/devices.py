"""The torch device a worker uses, derived from the resources Ray gave it.

Never probed on the driver: a Ray actor that was granted GPUs (``num_gpus > 0``, a fraction
included) sees their ids in ``ray.get_gpu_ids()`` and Ray has already narrowed
``CUDA_VISIBLE_DEVICES`` to them, so its device is ``"cuda"``; an actor without GPUs, the
driver and a plain process (the ``loop`` runner, tests) use ``"cpu"``. Tools take
``device="auto"`` (the default) to follow this rule, or an explicit device to override it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

AUTO = "auto"  # a tool's device setting that means "what this worker was given"


def device_for(gpu_ids: Sequence[object]) -> str:
    """``"cuda"`` when the worker holds any GPU id (Ray set ``CUDA_VISIBLE_DEVICES`` to
    them, so the first visible one is the worker's), else ``"cpu"``."""
    return "cuda" if len(gpu_ids) else "cpu"


def assigned_gpu_ids() -> list[object]:
    """GPU ids Ray assigned to this worker; empty outside a Ray worker.

    Ray is not imported here: a process that never imported it is no Ray worker.
    """
    if "ray" not in sys.modules:
        return []
    ray = sys.modules["ray"]
    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return []  # the driver holds no resources of its own (and is never probed)
    return list(ray.get_gpu_ids())


def actor_device() -> str:
    """This worker's device, from the GPUs Ray gave it (see the module docstring)."""
    return device_for(assigned_gpu_ids())


def resolve_device(device: str | None) -> str:
    """``None`` or ``"auto"`` → :func:`actor_device`; anything else is kept as given."""
    return actor_device() if device in (None, AUTO) else str(device)
