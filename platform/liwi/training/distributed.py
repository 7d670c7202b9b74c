"""The training job on Ray Train: DDP over ``num_workers``, data through Ray Data.

``run(TrainConfig)`` builds a ``ray.train.torch.TorchTrainer``:

* data — the layer tables' train/val splits as Ray Datasets (``datasets=``); decoding and
  augmentation run in Ray Data tasks (:mod:`liwi.training.ray_data`); every worker reads
  its shard with ``ray.train.get_dataset_shard``;
* optimisation — AdamW, gradient accumulation (DDP gradient sync only on the last micro
  batch), global-norm clipping, warm-up + cosine learning rate (a ``LambdaLR``), bf16
  autocast on CUDA (:func:`liwi.training.step.forward_losses`);
* validation every ``val_every`` steps on the fixed val samples, averaged over workers;
* checkpoints every ``checkpoint_every`` steps and at the end: a folder with ``model.pt``
  (the :mod:`liwi.model.checkpoint` format, loadable by the Predictor) and ``state.pt``
  (optimizer, scheduler, step, data position, MLflow run id), attached by rank 0 only.
  Every worker calls ``ray.train.report`` at the same steps (Train V2 requires it);
* resume — re-running with the same ``name`` and ``storage_path`` makes Ray Train hand the
  latest checkpoint to ``ray.train.get_checkpoint()``; training continues from its step,
  epoch and batch (and logs into the same MLflow run); ``FailureConfig(max_failures)``
  restarts the worker group from the latest checkpoint after a crash;
* tracking — rank 0 logs params, metrics, system metrics and sample grids to MLflow via
  :mod:`liwi.tracking`; the driver logs the final model and registers it (alias
  ``candidate``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from liwi.training.config import (
    MODEL_FILE,
    STATE_FILE,
    STATE_JSON,
    S3Section,
    ScalingSection,
    TrainConfig,
    TrainResult,
)

__all__ = [
    "MODEL_FILE",
    "STATE_FILE",
    "STATE_JSON",
    "S3Section",
    "ScalingSection",
    "TrainConfig",
    "TrainResult",
    "build_trainer",
    "run",
    "summary",
    "train_loop_per_worker",
]


# -- inside every worker -----------------------------------------------------------------
def _mean_over_workers(values: dict[str, float], device) -> dict[str, float]:
    """Average a dict of floats over the process group (same keys on every rank)."""
    import torch
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return dict(zip(keys, t.tolist(), strict=True))


def _validate(model, val_batches, keys, loss_cfg, device) -> dict[str, float]:
    """Mean loss terms over every worker's fixed val samples (weighted by sample count).

    ``keys`` (the loss terms) are passed in so that a worker with an empty val shard still
    joins the all-reduce with the same tensor shape.
    """
    import torch
    import torch.distributed as dist

    from liwi.training.step import batch_to_device, forward_losses

    sums = torch.zeros(len(keys) + 1, dtype=torch.float64, device=device)
    model.eval()
    with torch.no_grad():
        for batch in val_batches:
            losses = forward_losses(model, batch_to_device(batch, device), loss_cfg)
            n = len(batch["image"])
            for i, k in enumerate(keys):
                sums[i] += float(losses[k]) * n
            sums[-1] += n
    model.train()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(sums)
    count = max(float(sums[-1]), 1.0)
    return {f"val/{k}": float(sums[i]) / count for i, k in enumerate(keys)}


def _grid(model, batch, device):
    import torch

    from liwi.training.sample_grid import decomposition_grid

    model.eval()
    with torch.no_grad():
        pred = model(batch["image"].to(device), batch["prompt"].to(device))
    model.train()
    as_np = lambda d: {k: v.detach().float().cpu().numpy() for k, v in d.items()}  # noqa: E731
    return decomposition_grid(as_np(batch), as_np(pred))


def train_loop_per_worker(job: dict[str, Any]) -> None:
    """The per-worker loop (``train_loop_per_worker`` of the TorchTrainer)."""
    import numpy as np
    import ray.train
    import torch
    from ray.train import Checkpoint
    from ray.train.torch import get_device, prepare_model

    from liwi import tracking
    from liwi.model import save_checkpoint
    from liwi.training.init import initial_model
    from liwi.training.step import batch_to_device, forward_losses, lr_factor

    cfg = TrainConfig.from_dict(job["config"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if cfg.scaling.torch_threads:
        torch.set_num_threads(cfg.scaling.torch_threads)
    torch.manual_seed(cfg.seed)  # the same init on every rank (DDP broadcasts rank 0's anyway)
    np.random.seed(cfg.seed + rank)

    device = get_device()
    net = initial_model(cfg.preset, cfg.model, cfg.init_from).train()
    if cfg.data.crop % net.config.multiple:
        raise ValueError(f"data.crop {cfg.data.crop} must be a multiple of {net.config.multiple}")
    model = prepare_model(net)  # DDP (and the device move)
    raw = model.module if hasattr(model, "module") else model
    opt = torch.optim.AdamW(raw.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s / cfg.steps, warmup=cfg.warmup, floor=cfg.lr_floor)
    )

    step, epoch, batch_in_epoch, run_id = 0, 0, 0, None
    ckpt = ray.train.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            state = torch.load(Path(d) / STATE_FILE, map_location="cpu", weights_only=False)
            weights = torch.load(Path(d) / MODEL_FILE, map_location="cpu", weights_only=True)
        raw.load_state_dict(weights["state_dict"], strict=True)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, epoch = state["step"], state["epoch"]
        batch_in_epoch, run_id = state["batch_in_epoch"], state.get("mlflow_run_id")

    run = None
    if rank == 0 and cfg.tracking.enabled:
        tags = {"liwi.job": "train", "liwi.ray_run": cfg.name}
        run = tracking.start_run(cfg.tracking, params=job["config"], run_id=run_id, tags=tags)
        run_id = run.run_id
        if ckpt is not None:
            run.log_metrics({"train/resumed_from_step": step}, step=step)

    # fixed validation batches (deterministic draws), and a fixed grid batch
    val_batches = list(
        ray.train.get_dataset_shard("val").iter_torch_batches(
            batch_size=cfg.batch_size, drop_last=False
        )
    )
    grid_batch = None
    if rank == 0 and val_batches:
        grid_batch = {k: v[: cfg.grid_samples] for k, v in val_batches[0].items()}

    def save_and_report(metrics: dict[str, Any], final: bool = False) -> None:
        """Every rank reports at the same steps; only rank 0 attaches a checkpoint."""
        metrics = {**metrics, "step": step, "epoch": epoch, "final": final}
        if rank != 0:
            ray.train.report(metrics, checkpoint=None)
            return
        with tempfile.TemporaryDirectory() as tmp:
            meta = {
                "trained_by": "liwi.training.distributed",
                "step": step,
                "train_config": job["config"],
                "mlflow_run_id": run_id,
            }
            save_checkpoint(raw, Path(tmp) / MODEL_FILE, meta=meta)
            state = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "mlflow_run_id": run_id,
                "world_size": world,
            }
            torch.save(state, Path(tmp) / STATE_FILE)
            scalars = {k: v for k, v in state.items() if k not in ("optimizer", "scheduler")}
            (Path(tmp) / STATE_JSON).write_text(json.dumps({**scalars, **metrics}, default=str))
            ray.train.report(
                {**metrics, "mlflow_run_id": run_id},
                checkpoint=Checkpoint.from_directory(tmp),
                checkpoint_dir_name=f"checkpoint_{step:08d}",
            )

    accum = cfg.grad_accum
    micro = 0
    window: dict[str, float] = {}
    wait_s = compute_s = 0.0
    samples = 0
    shard = ray.train.get_dataset_shard("train")
    reported = False
    while step < cfg.steps:
        skip = batch_in_epoch  # resume inside an epoch: skip what was already consumed
        seen = 0
        it = iter(
            shard.iter_torch_batches(
                batch_size=cfg.batch_size,
                drop_last=True,
                local_shuffle_buffer_size=cfg.shuffle_buffer or None,
                local_shuffle_seed=cfg.seed + 1000 * epoch + rank if cfg.shuffle_buffer else None,
            )
        )
        t_wait = time.perf_counter()
        for batch in it:
            seen += 1
            if seen <= skip:
                t_wait = time.perf_counter()
                continue
            t_got = time.perf_counter()
            wait_s += t_got - t_wait
            batch = batch_to_device(batch, device)
            micro += 1
            sync = micro % accum == 0
            ctx_sync = (
                model.no_sync()
                if (not sync and hasattr(model, "no_sync"))
                else contextlib.nullcontext()
            )
            with ctx_sync:
                losses = forward_losses(model, batch, cfg.loss)
                (losses["total"] / accum).backward()
            for k, v in losses.items():
                window[k] = window.get(k, 0.0) + float(v.detach()) / accum
            samples += len(batch["image"])
            batch_in_epoch = seen
            if sync:
                norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                if device.type == "cuda":
                    torch.cuda.synchronize()
                compute_s += time.perf_counter() - t_got
                if step % cfg.log_every == 0 or step == cfg.steps:
                    logs = {f"train/{k}": v / cfg.log_every for k, v in window.items()}
                    logs |= {"train/grad_norm": float(norm), "train/lr": sched.get_last_lr()[0]}
                    logs = _mean_over_workers(logs, device)
                    busy = wait_s + compute_s
                    logs["perf/data_wait_fraction"] = wait_s / busy if busy else 0.0
                    logs["perf/samples_per_s"] = world * samples / busy if busy else 0.0
                    if run is not None:
                        run.log_metrics(logs, step=step)
                    window.clear()
                    wait_s = compute_s = 0.0
                    samples = 0
                do_val = step % cfg.val_every == 0 or step == cfg.steps
                if do_val:
                    val = _validate(model, val_batches, sorted(losses), cfg.loss, device)
                    if run is not None:
                        run.log_metrics(val, step=step)
                if (
                    run is not None
                    and grid_batch is not None
                    and (
                        (cfg.tracking.image_every and step % cfg.tracking.image_every == 0)
                        or step == cfg.steps
                    )
                ):
                    run.log_image(_grid(raw, grid_batch, device), "samples", step)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                    save_and_report(val if do_val else {}, final=step == cfg.steps)
                    reported = True
                if step == cfg.inject_failure_at_step and rank == world - 1:
                    _maybe_die(cfg, step - step % cfg.checkpoint_every)
                if step >= cfg.steps:
                    break
            else:
                compute_s += time.perf_counter() - t_got
            t_wait = time.perf_counter()
        if step >= cfg.steps:
            break
        if seen == 0:
            raise RuntimeError(
                "the training shard yielded no batch: fewer samples than "
                f"num_workers × batch_size = {world} × {cfg.batch_size}"
            )
        epoch += 1
        batch_in_epoch = 0
    if not reported:  # resumed at the very end: the latest checkpoint already is the result
        ray.train.report({"step": step, "epoch": epoch, "final": True}, checkpoint=None)
    if run is not None:
        run.end()


def _maybe_die(cfg: TrainConfig, last_checkpoint_step: int) -> None:
    """Kill this worker process the first time (a marker file in storage remembers it).

    It first waits (up to 2 min) until the controller has registered the latest checkpoint
    in its snapshot: Ray Train V2 consumes reports asynchronously, and a crash right after
    a report can lose that report, which is a different failure from the one tested.
    """
    run_dir = Path(cfg.storage_path).expanduser().resolve() / cfg.name
    marker = run_dir / ".liwi-injected-failure"
    if cfg.storage_path.startswith("s3://") or marker.exists():
        return
    snapshot = run_dir / "checkpoint_manager_snapshot.json"
    wanted = f"checkpoint_{last_checkpoint_step:08d}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if snapshot.is_file() and wanted in snapshot.read_text(errors="replace"):
            break
        time.sleep(0.5)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("killed once\n")
    os._exit(1)


# -- on the driver -----------------------------------------------------------------------
def _storage(cfg: TrainConfig):
    """``(storage_path, storage_filesystem)`` for RunConfig; S3 through our lake resolver."""
    from liwi.lake import Lake, S3Options

    if cfg.storage_path.startswith("s3://"):
        lake = Lake.from_uri(
            cfg.storage_path, s3=S3Options(endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region)
        )
        return lake.root, lake.fs
    path = Path(cfg.storage_path).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return str(path), None


def _init_ray(cfg: TrainConfig) -> None:
    import ray

    if ray.is_initialized():
        return
    address = cfg.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, ignore_reinit_error=True)
        return
    for attempt in range(3):  # a local raylet can miss Ray's fixed 30 s start window on a busy box
        try:
            ray.init(num_cpus=cfg.ray_num_cpus, include_dashboard=False, ignore_reinit_error=True)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for this
            if "timed out during startup" not in str(exc) or attempt == 2:
                raise
            ray.shutdown()


def build_trainer(cfg: TrainConfig):
    """The ``TorchTrainer`` for ``cfg`` (Ray must be initialised)."""
    import ray.data
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from liwi.lake import S3Options
    from liwi.training.ray_data import count_rows, training_samples

    s3 = S3Options(endpoint_url=cfg.s3.endpoint_url, region=cfg.s3.region)
    n_val = count_rows(cfg.tables, cfg.val_split, s3=s3)
    val_split = cfg.val_split if n_val else cfg.train_split
    dcpu = cfg.scaling.data_cpus
    ctx = ray.data.DataContext.get_current()  # each dataset keeps a copy of it from here on
    ctx.enable_progress_bars = cfg.progress_bars
    ctx.print_on_execution_start = cfg.progress_bars
    train_ds = training_samples(
        cfg.tables, cfg.train_split, cfg.data, cfg.seed, s3=s3, num_cpus=dcpu
    )
    val_ds = training_samples(
        cfg.tables, val_split, cfg.data, cfg.seed + 1, deterministic=True, s3=s3, num_cpus=dcpu
    ).limit(cfg.val_samples)
    storage_path, fs = _storage(cfg)
    tracking_cfg = cfg.tracking
    if tracking_cfg.enabled:
        # resolve the store on the driver: workers must log where the driver reads
        from liwi.tracking import resolve_tracking_uri

        tracking_cfg = tracking_cfg.model_copy(
            update={"tracking_uri": resolve_tracking_uri(tracking_cfg.tracking_uri)}
        )
    update: dict[str, Any] = {"tracking": tracking_cfg}
    if fs is None:
        update["storage_path"] = storage_path  # absolute: workers may run in another cwd
    job_cfg = cfg.model_copy(update=update).to_dict()
    resources = dict(cfg.scaling.resources_per_worker)
    if cfg.scaling.use_gpu:
        resources.setdefault("GPU", 1.0)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": job_cfg},
        scaling_config=ScalingConfig(
            num_workers=cfg.scaling.num_workers,
            use_gpu=cfg.scaling.use_gpu,
            resources_per_worker=resources,
        ),
        run_config=RunConfig(
            name=cfg.name,
            storage_path=storage_path,
            storage_filesystem=fs,
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
        ),
        datasets={"train": train_ds, "val": val_ds},
    )


def final_model_dir(cfg: TrainConfig) -> Path:
    """Where the driver leaves the final model file: the run's own folder beside Ray Train's
    checkpoints (``<storage_path>/<name>``) on local storage, ``runs/models/<name>`` for
    storage on S3. Re-running the same name replaces the file; nothing lands in ``/tmp``
    (each run used to leave a temp folder behind)."""
    if cfg.storage_path.startswith("s3://"):
        return Path("runs") / "models" / cfg.name
    return Path(cfg.storage_path).expanduser().resolve() / cfg.name


def run(cfg: TrainConfig, register: bool = True) -> TrainResult:
    """Train (or resume) with Ray Train; log and register the final model from the driver."""
    from liwi import tracking

    _init_ray(cfg)
    result = build_trainer(cfg).fit()
    if result.error is not None:
        raise result.error
    if result.checkpoint is None:
        raise RuntimeError(f"training run {cfg.name} finished without a checkpoint")
    metrics = dict(result.metrics or {})
    out_dir = final_model_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    with result.checkpoint.as_directory() as d:
        model_path = out_dir / MODEL_FILE
        model_path.write_bytes((Path(d) / MODEL_FILE).read_bytes())
        state = json.loads((Path(d) / STATE_JSON).read_text())
    run_id = state.get("mlflow_run_id")
    model_uri = alias_uri = None
    if register and cfg.tracking.enabled and run_id:
        tracked = tracking.TrackedRun(
            run_id, tracking.resolve_tracking_uri(cfg.tracking.tracking_uri), ""
        )
        version = tracked.log_model(
            model_path,
            registered_model=cfg.tracking.registered_model,
            alias=cfg.tracking.alias,
            metadata={"step": state["step"], "ray_run": cfg.name},
        )
        tracked.set_tags({"liwi.checkpoint": result.checkpoint.path})
        tracked.end()  # logging the model re-opened the run; training is over, close it
        model_uri, alias_uri = version.model_uri, version.alias_uri
    return TrainResult(
        checkpoint_dir=result.checkpoint.path,
        model_path=model_path,
        step=int(state["step"]),
        metrics=metrics,
        mlflow_run_id=run_id,
        model_uri=model_uri,
        alias_uri=alias_uri,
    )


def summary(result: TrainResult) -> str:
    lines = [f"trained to step {result.step}", f"checkpoint: {result.checkpoint_dir}"]
    lines.append(f"model file: {result.model_path}")
    if result.mlflow_run_id:
        lines.append(f"mlflow run: {result.mlflow_run_id}")
    if result.alias_uri:
        lines.append(f"registered: {result.model_uri} ({result.alias_uri})")
    val = {k: v for k, v in result.metrics.items() if k.startswith("val/")}
    if val:
        lines.append("val: " + ", ".join(f"{k[4:]}={v:.4f}" for k, v in sorted(val.items())))
    return "\n".join(lines)
