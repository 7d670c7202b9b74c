"""The one Ray adapter of the ADD job: any stage (or fused pipeline) → a Ray Data actor pool.

``map_batches(cls, fn_constructor_kwargs=…, compute=ActorPoolStrategy(min_size=…,
max_size=…), num_cpus=…, num_gpus=…, batch_size=…)``: an autoscaling actor pool (the
Ray ≥ 2.51 form; ``concurrency=(min, max)`` is deprecated and warns). A fractional
``num_gpus`` puts several actors of a small model on one GPU; each actor derives its torch
device from the GPUs Ray gave it (:func:`liwi.devices.actor_device`). Resources come from
the stage's declaration or the job config, never from probing the driver. How Ray is
reached (:func:`ray_init_kwargs`):

* ``ray.address`` set (``auto``, ``host:port``, ``ray://…``): join that cluster;
* else ``RAY_ADDRESS`` set (a Ray job supervisor sets it for its entrypoint): join it;
* else start a private local Ray in-process (``address="local"``) with the declared
  CPUs/GPUs, whatever a crashed head left in ``/tmp/ray/ray_current_cluster``.

A Ray already initialised is used and left running. Credentials never travel in a
``runtime_env`` (Ray stores it and its runtime-env agent logs it): local workers inherit the
driver's environment through the raylet, cluster workers have the cluster's own secrets.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from liwi.add.base import Batch, StageResources
from liwi.stop_signals import catch_sigterm

if TYPE_CHECKING:
    from liwi.add.config import RayConfig


# CPUs reserved by the one task that lists the lake: none. It mostly waits on I/O, and
# the shipped pools may hold all but 0.15 of a 2-CPU Ray (0.25 never got scheduled: hang).
LISTING_CPUS = 0.0
# Memory reserved by the listing task: it holds the DoneIndex (8 bytes per done input:
# 80 MB at 10 M) and one page. A resource of its own also keeps Ray from fusing the
# listing into the first actor pool (which would list and process everything in one actor).
LISTING_MEMORY = 256 * 1024 * 1024
# Ray Data merges each task's output into blocks up to DataContext.target_max_block_size
# (default 128 MiB), and an actor takes a whole block. With 64 KiB a listing block is ~600
# items (the first images start after ~600 listed files, and several actors share a lake of
# a few thousand); a decoded or encoded photo is a block of its own.
BLOCK_BYTES = 64 * 1024


@dataclass(frozen=True)
class StageCall:
    """One actor pool: a callable class, its constructor kwargs and its resources."""

    cls: type
    kwargs: dict[str, Any]
    resources: StageResources


def ray_init_kwargs(
    ray_config: RayConfig, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The ``ray.init`` arguments for ``ray_config`` in ``environ`` (default: this process).

    Joining a cluster passes no resources (Ray refuses them there); a local start passes
    ``address="local"`` so Ray never tries a stale address file of a dead head.
    """
    env = os.environ if environ is None else environ
    common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if ray_config.address:
        return {"address": ray_config.address, **common}
    if env.get("RAY_ADDRESS"):
        return {"address": env["RAY_ADDRESS"], **common}
    return {
        "address": "local",
        "num_cpus": ray_config.num_cpus,
        "num_gpus": ray_config.num_gpus,
        "object_store_memory": ray_config.object_store_mb * 1024 * 1024,
        **common,
    }


def start_local_ray(num_cpus: int, num_gpus: int, object_store_mb: int, tries: int = 3) -> None:
    """A private local Ray in-process (``address="local"``), declared resources, no dashboard.

    Retried: on an overloaded machine the raylet can miss Ray's fixed 30 s start-up window.
    """
    from liwi.add.config import RayConfig

    config = RayConfig(num_cpus=num_cpus, num_gpus=num_gpus, object_store_mb=object_store_mb)
    _init(ray_init_kwargs(config, {}), tries)


def _init(kwargs: dict[str, Any], tries: int) -> None:
    import ray

    for attempt in range(1, tries + 1):
        try:
            ray.init(**kwargs)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception here
            ray.shutdown()
            if attempt == tries:
                raise
            print(f"local Ray did not start ({exc}); retrying", file=sys.stderr)


def map_stage(ds: Any, call: StageCall, runtime_env: dict[str, Any] | None = None) -> Any:
    """``ds.map_batches`` with ``call``'s class as an actor pool of ``min_actors`` to
    ``max_actors`` actors (Ray Data adds actors while inputs queue up and resources allow)."""
    return ds.map_batches(
        call.cls,
        fn_constructor_kwargs=call.kwargs,
        batch_format="numpy",
        runtime_env=runtime_env,
        **pool_args(call.resources),
    )


def pool_args(r: StageResources) -> dict[str, Any]:
    """The ``map_batches`` arguments of an actor pool with resources ``r``."""
    from ray.data import ActorPoolStrategy

    return {
        "batch_size": r.batch_size,
        "compute": ActorPoolStrategy(min_size=r.min_actors, max_size=r.max_actors),
        "num_cpus": r.num_cpus,
        "num_gpus": r.num_gpus or None,  # fractional: several actors share one GPU
    }


def local_fit_problems(ray_config: RayConfig, calls: list[StageCall]) -> list[str]:
    """Why the pools at their smallest (``min_actors``) do not fit the local Ray's declared
    CPUs/GPUs (empty: they fit). Ray Data would wait for them forever; larger pools only
    grow into what is free."""
    need = {
        "CPU": sum(c.resources.min_actors * c.resources.num_cpus for c in calls) + LISTING_CPUS,
        "GPU": sum(c.resources.min_actors * c.resources.num_gpus for c in calls),
    }
    have = {"CPU": ray_config.num_cpus, "GPU": ray_config.num_gpus}
    return [
        f"the pools need {need[k]:g} {k}s at min_actors; the local Ray declares {have[k]} "
        f"(ray.num_{k.lower()}s): lower min_actors or num_{k.lower()}s, or fuse the stages"
        for k in need
        if need[k] > have[k] + 1e-9
    ]


def listing_dataset(pages: Callable[[], Iterable[list[dict[str, Any]]]], **ray_args: Any) -> Any:
    """A dataset of the items ``pages()`` yields, produced by one Ray task as a stream of
    blocks (of :data:`BLOCK_BYTES`): the first items flow on while the listing goes on, and
    nothing of the listing passes through the driver. Repartitioning into smaller blocks
    would add a task that asks for a whole CPU (Ray's default), which a small local Ray
    whose CPUs the actor pools hold never grants."""
    import ray

    from liwi.add.base import rows_to_batch

    def list_pages(_: Batch) -> Iterator[Batch]:
        for page in pages():
            yield rows_to_batch(page)

    seed = ray.data.from_items([{"listing": 0}], override_num_blocks=1)
    return seed.map_batches(list_pages, batch_size=1, batch_format="numpy", **ray_args)


def run_ray(
    ray_config: RayConfig,
    calls: list[StageCall],
    pages: Callable[[], Iterable[list[dict[str, Any]]]],
    runtime_env: dict[str, Any] | None = None,
) -> Iterator[Batch]:
    """Yield output batches of the listed items streamed through ``calls`` on Ray Data."""
    import ray

    started = False
    if not ray.is_initialized():
        kwargs = ray_init_kwargs(ray_config)
        problems = local_fit_problems(ray_config, calls) if kwargs["address"] == "local" else []
        if problems:
            raise ValueError("; ".join(problems))
        _init(kwargs, tries=3 if kwargs["address"] == "local" else 1)
        started = True
        catch_sigterm()  # stop as cleanly as on Ctrl-C: Ray's handler dumps a native stack
    block_bytes = None
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = ray_config.progress_bars
        ctx.print_on_execution_start = False
        block_bytes, ctx.target_max_block_size = ctx.target_max_block_size, BLOCK_BYTES
        ds = listing_dataset(
            pages, num_cpus=LISTING_CPUS, memory=LISTING_MEMORY, runtime_env=runtime_env
        )
        for call in calls:
            ds = map_stage(ds, call, runtime_env)
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")
    finally:
        if started:
            ray.shutdown()
        elif block_bytes is not None:  # a Ray we did not start: leave its context as it was
            ray.data.DataContext.get_current().target_max_block_size = block_bytes
