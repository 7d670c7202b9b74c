"""The ADD job: an image lake → layer tables (``layers``, ``rejects``, ``errors``) on Ray Data.

``run(config)`` lists the input lake, reads which sample ids the output already holds
(resumption), then streams every file through the stages of :mod:`liwi.stages`:
ReadDecode → Decompose → Curate → ToRows → WriteParts. Each stage becomes a Ray Data
actor pool (``map_batches(Stage, compute=ActorPoolStrategy(size=n), num_cpus=…,
num_gpus=…, batch_size=…)``) with resources from config; ``fuse: true`` runs all but the
writer in one pool (less data movement on one machine). ``runner: loop`` runs the same
stages in this process, without Ray. Locally Ray starts in-process with the CPUs/GPUs the
config declares; on a cluster (``ray.address``) it joins. Nothing probes the driver's GPUs.

Outputs under ``output``: the three tables (Parquet parts with deterministic names),
``summary.json`` (counts, images/s, time per stage) and ``report/`` (JSON + PNG).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from liwi.agents.base import AgentConfig
from liwi.config import JobConfig
from liwi.curator import CuratorConfig

STAGE_ORDER = ("read_decode", "decompose", "curate", "to_rows", "write")


class StageResources(BaseModel):
    """How one stage runs on Ray Data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(4, ge=1)  # rows per call
    actors: int = Field(1, ge=1)  # fixed actor pool size
    num_cpus: float = Field(0.5, ge=0)  # logical CPUs reserved per actor
    num_gpus: float = Field(0.0, ge=0)  # GPUs per actor (model-backed stages on GPU clusters)


def _default_stages() -> dict[str, StageResources]:
    return {
        "read_decode": StageResources(batch_size=8, num_cpus=0.25),
        "decompose": StageResources(batch_size=2, num_cpus=1.0),
        "curate": StageResources(batch_size=8, num_cpus=0.25),
        "to_rows": StageResources(batch_size=8, num_cpus=0.25),
        "write": StageResources(batch_size=16, num_cpus=0.25),
    }


class RayConfig(BaseModel):
    """Where Ray runs; resources are declared here, never detected on the driver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = None  # None: start Ray in-process; "auto" or ray://… to join
    num_cpus: int = Field(2, ge=1)  # logical CPUs of the local in-process Ray
    num_gpus: int = Field(0, ge=0)  # GPUs of the local in-process Ray (declared, not probed)
    object_store_mb: int = Field(512, ge=64)  # local object store size
    progress_bars: bool = False  # Ray Data's own bars (the job shows one of its own)


class DecomposeConfig(JobConfig):
    """Config of ``liwi decompose`` / ``jobs/decompose.py``."""

    input: str = ""  # image lake URI (folder, file://, s3://bucket/prefix)
    output: str = ""  # output URI; tables go to <output>/layers|rejects|errors
    runner: Literal["ray", "loop"] = "ray"  # loop: same stages in this process, no Ray
    limit: int | None = Field(None, ge=1)  # process at most this many inputs (sorted order)
    max_side: int = Field(1024, ge=32)  # longer side of the layers; bigger photos are downscaled
    max_pixels: int = Field(64_000_000, ge=1)  # declared size above this = decompression bomb
    s3_endpoint: str | None = None  # S3 endpoint (default: AWS_ENDPOINT_URL)
    forward_aws_env: bool = True  # pass the driver's AWS_* variables to local Ray workers
    agent: AgentConfig = Field(default_factory=AgentConfig)
    curator: CuratorConfig = Field(default_factory=CuratorConfig)
    verify: dict[str, Any] | None = None  # VLM verify tool ({backend, …}); used if curator.use_vlm
    fuse: bool = True  # one actor pool (sized by stages.decompose) runs all stages but the writer
    stages: dict[str, StageResources] = Field(default_factory=_default_stages)
    ray: RayConfig = Field(default_factory=RayConfig)
    recombine: int = Field(0, ge=0)  # new samples made across accepted ones after a run (0 = off)
    recombine_seed: int = 0  # seed of the recombination pairs and placements
    report: bool = True  # write report/report.json and report/report.png
    progress: bool = True  # a tqdm bar on stderr


# -- building the stages -----------------------------------------------------------------


def stage_specs(config: DecomposeConfig, skip_ids: set[str]) -> list[tuple[str, type, dict]]:
    """(name, Stage class, constructor kwargs) in pipeline order."""
    from liwi import stages as st

    resources = _default_stages() | dict(config.stages)
    unknown = set(resources) - set(STAGE_ORDER)
    if unknown:
        raise ValueError(f"unknown stages in config: {sorted(unknown)} (known: {STAGE_ORDER})")
    return [
        (
            "read_decode",
            st.ReadDecode,
            {
                "lake_uri": config.input,
                "s3_endpoint": config.s3_endpoint,
                "max_side": config.max_side,
                "max_pixels": config.max_pixels,
                "skip_ids": sorted(skip_ids),
            },
        ),
        (
            "decompose",
            st.Decompose,
            {
                "agent": config.agent.model_dump(),
                "curator": config.curator.model_dump(),
                # Ray actors get as many threads as CPUs they reserve; the loop keeps defaults
                "threads": max(1, round(resources["decompose"].num_cpus))
                if config.runner == "ray"
                else None,
            },
        ),
        ("curate", st.Curate, {"curator": config.curator.model_dump(), "verify": config.verify}),
        ("to_rows", st.ToRows, {}),
        ("write", st.WriteParts, {"output_uri": config.output, "s3_endpoint": config.s3_endpoint}),
    ]


def _aws_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


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


def _run_ray(config: DecomposeConfig, specs, items: list[dict]) -> Any:
    """Yield output batches from a Ray Data pipeline of the stages."""
    import ray
    from ray.data import ActorPoolStrategy

    from liwi.stages import Pipeline

    started = False
    if not ray.is_initialized():
        if config.ray.address:
            ray.init(address=config.ray.address, include_dashboard=False, log_to_driver=False)
        else:
            start_local_ray(config.ray.num_cpus, config.ray.num_gpus, config.ray.object_store_mb)
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = config.ray.progress_bars
        ctx.print_on_execution_start = False
        res = _default_stages() | dict(config.stages)
        runtime_env = {"env_vars": _aws_env()} if config.forward_aws_env and _aws_env() else None
        ds = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), 200)))
        if config.fuse:  # all but the writer in one pool; the writer batches more rows per part
            fused = {"stages": [(cls, kw) for name, cls, kw in specs if name != "write"]}
            name, cls, kw = specs[-1]
            steps = [(Pipeline, fused, res["decompose"]), (cls, kw, res[name])]
        else:
            steps = [(cls, kw, res[name]) for name, cls, kw in specs]
        for cls, kwargs, r in steps:
            ds = ds.map_batches(
                cls,
                fn_constructor_kwargs=kwargs,
                batch_size=r.batch_size,
                batch_format="numpy",
                compute=ActorPoolStrategy(size=r.actors),
                num_cpus=r.num_cpus,
                num_gpus=r.num_gpus or None,
                runtime_env=runtime_env,
            )
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")
    finally:
        if started:
            ray.shutdown()


def _run_loop(config: DecomposeConfig, specs, items: list[dict]) -> Any:
    from liwi.stages import run_loop

    stages = [cls(**kwargs) for _, cls, kwargs in specs]
    yield from run_loop(
        stages, items, (_default_stages() | dict(config.stages))["write"].batch_size
    )


# -- the job -----------------------------------------------------------------------------


def run(config: DecomposeConfig) -> dict[str, Any]:
    """Run the job; returns the end summary (also written to ``<output>/summary.json``)."""
    from liwi.lake import Lake, S3Options
    from liwi.table import read_sample_ids

    if not config.input or not config.output:
        raise ValueError("both input and output must be set (--input LAKE --output TABLE)")
    t0 = time.perf_counter()
    s3 = S3Options(endpoint_url=config.s3_endpoint)
    src = Lake.from_uri(config.input, s3=s3)
    out = Lake.from_uri(config.output, s3=s3)
    paths = src.list_images()
    if config.limit:
        paths = paths[: config.limit]
    done: set[str] = set()
    for name in ("layers", "rejects", "errors"):
        done |= read_sample_ids(out.child(name))
    specs = stage_specs(config, done)
    items = [{"path": p} for p in paths]
    t_list = time.perf_counter() - t0

    summaries: list[dict[str, Any]] = []
    stage_seconds: Counter[str] = Counter()
    runner = _run_ray if config.runner == "ray" else _run_loop
    bar = _progress(len(items), config.progress)
    t_run = time.perf_counter()
    if items:
        for batch in runner(config, specs, items):
            for key, col in batch.items():
                if key.startswith("t_"):
                    stage_seconds[key[2:]] += float(col.sum())
            for s in batch["summary"]:
                summaries.append(json.loads(s))
            bar.update(len(batch["summary"]))
            bar.set_postfix(Counter(s["status"] for s in summaries))
    bar.close()
    wall = time.perf_counter() - t_run
    ensure_tables(out)
    recombined = 0
    if config.recombine and processed_any(summaries):
        recombined = write_recombined(out, config.recombine, config.recombine_seed)
    summary = make_summary(config, len(items), summaries, stage_seconds, wall, t_list)
    summary["recombined"] = recombined
    out.write_bytes(out.path("summary.json"), json.dumps(summary, indent=1).encode())
    if config.report:
        from liwi.dataset_report import write_report

        t_rep = time.perf_counter()
        report = write_report(out)
        summary["report"] = {
            "json": out.uri_of(out.path("report", "report.json")),
            "png": out.uri_of(out.path("report", "report.png")),
            "seconds": round(time.perf_counter() - t_rep, 3),
            "dataset_counts": report["counts"],
        }
        out.write_bytes(out.path("summary.json"), json.dumps(summary, indent=1).encode())
    return summary


def processed_any(summaries: list[dict[str, Any]]) -> bool:
    return any(s["status"] != "skipped" for s in summaries)


def write_recombined(out: Any, n: int, seed: int) -> int:
    """``n`` recombined samples from the accepted rows into ``<output>/recombined``.

    Objects (with their shadows) from one accepted sample go onto the clean background of
    another; the flat image is the composite, so the layers are exact by construction.
    The part is named after the samples it holds (deterministic for the same inputs).
    """
    from liwi.recombine import recombine_rows
    from liwi.table import read_table, write_table

    rows = read_table(out.child("layers")).to_pylist()
    new = recombine_rows(rows, rows, n, seed=seed)
    if new:
        write_table(new, out.child("recombined"))
    return len(new)


def ensure_tables(out: Any) -> None:
    """Give every output table at least one (possibly empty) part, so readers find it."""
    from liwi.schema import LAYER_TABLE_SCHEMA
    from liwi.table import list_parts, write_table

    for name in ("layers", "rejects", "errors"):
        table = out.child(name)
        if not list_parts(table):
            write_table(LAYER_TABLE_SCHEMA.empty_table(), table, name="empty")


def make_summary(
    config: DecomposeConfig,
    n_inputs: int,
    summaries: list[dict[str, Any]],
    stage_seconds: Counter,
    wall: float,
    t_list: float,
) -> dict[str, Any]:
    counts = Counter(s["status"] for s in summaries)
    processed = n_inputs - counts.get("skipped", 0)
    missing = n_inputs - len(summaries)
    return {
        "input": config.input,
        "output": config.output,
        "runner": config.runner,
        "fuse": config.fuse,
        "inputs": n_inputs,
        "counts": {k: counts.get(k, 0) for k in ("ok", "rejected", "error", "skipped")},
        "unaccounted": missing,  # must be 0: every input becomes exactly one row or a skip
        "processed": processed,
        "wall_seconds": round(wall, 3),
        "list_seconds": round(t_list, 3),
        "images_per_second": round(processed / wall, 3) if wall > 0 and processed else 0.0,
        "stage_seconds": {k: round(stage_seconds.get(k, 0.0), 3) for k in STAGE_ORDER},
        "stage_seconds_per_image": {
            k: round(stage_seconds.get(k, 0.0) / processed, 4) if processed else 0.0
            for k in STAGE_ORDER
        },
        "tables": {t: f"{config.output.rstrip('/')}/{t}" for t in ("layers", "rejects", "errors")},
        "recombined": 0,
    }


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, *a, **k) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="decompose", unit="img", file=sys.stderr, dynamic_ncols=True)


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable end summary."""
    c = summary["counts"]
    lines = [
        f"inputs {summary['inputs']}: ok {c['ok']}, rejected {c['rejected']}, "
        f"error {c['error']}, skipped (already done) {c['skipped']}",
        f"{summary['processed']} processed in {summary['wall_seconds']:.1f} s "
        f"= {summary['images_per_second']:.2f} images/s ({summary['runner']})",
        "time per stage (s/image): "
        + ", ".join(f"{k} {v:.3f}" for k, v in summary["stage_seconds_per_image"].items()),
    ]
    for t, uri in summary["tables"].items():
        lines.append(f"  {t:8s} {uri}")
    if "report" in summary:
        lines.append(f"  report   {summary['report']['png']}")
    return "\n".join(lines)
