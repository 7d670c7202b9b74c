"""The one Ray adapter of the ADD job: any stage (or fused pipeline) → a Ray Data actor pool.

``map_batches(cls, fn_constructor_kwargs=…, compute=ActorPoolStrategy(size=actors),
num_cpus=…, num_gpus=…, batch_size=…)`` (the Ray ≥ 2.51 form; ``concurrency=`` is
deprecated). Resources come from the stage's declaration or the job config, never from
probing the driver. Locally Ray starts in-process with the declared CPUs/GPUs; given an
address it joins a cluster; a Ray already initialised is used and left running.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liwi.add.base import Batch, StageResources

if TYPE_CHECKING:
    from liwi.add.config import RayConfig


@dataclass(frozen=True)
class StageCall:
    """One actor pool: a callable class, its constructor kwargs and its resources."""

    cls: type
    kwargs: dict[str, Any]
    resources: StageResources


def start_local_ray(num_cpus: int, num_gpus: int, object_store_mb: int, tries: int = 3) -> None:
    """``ray.init`` in-process with declared resources and no dashboard.

    Retried: on an overloaded machine the raylet can miss Ray's fixed 30 s start-up window.
    """
    import ray

    for attempt in range(1, tries + 1):
        try:
            ray.init(
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                object_store_memory=object_store_mb * 1024 * 1024,
                include_dashboard=False,
                log_to_driver=False,
            )
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception here
            ray.shutdown()
            if attempt == tries:
                raise
            print(f"local Ray did not start ({exc}); retrying", file=sys.stderr)


def map_stage(ds: Any, call: StageCall, runtime_env: dict[str, Any] | None = None) -> Any:
    """``ds.map_batches`` with ``call``'s class as a fixed-size actor pool."""
    from ray.data import ActorPoolStrategy

    r = call.resources
    return ds.map_batches(
        call.cls,
        fn_constructor_kwargs=call.kwargs,
        batch_size=r.batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=r.actors),
        num_cpus=r.num_cpus,
        num_gpus=r.num_gpus or None,
        runtime_env=runtime_env,
    )


def run_ray(
    ray_config: RayConfig,
    calls: list[StageCall],
    items: list[dict[str, Any]],
    runtime_env: dict[str, Any] | None = None,
) -> Iterator[Batch]:
    """Yield output batches of ``items`` streamed through ``calls`` on Ray Data."""
    import ray

    started = False
    if not ray.is_initialized():
        if ray_config.address:
            ray.init(address=ray_config.address, include_dashboard=False, log_to_driver=False)
        else:
            start_local_ray(ray_config.num_cpus, ray_config.num_gpus, ray_config.object_store_mb)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = ray_config.progress_bars
        ctx.print_on_execution_start = False
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 200)))
        for call in calls:
            ds = map_stage(ds, call, runtime_env)
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")
    finally:
        if started:
            ray.shutdown()
