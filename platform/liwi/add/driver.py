"""The ADD job: an image lake → layer tables (``layers``, ``rejects``, ``errors``) on Ray Data.

``run(config)`` streams the input lake's listing (one Ray task, pages of
:data:`~liwi.add.inputs.PAGE` entries, each a block; inputs already done are left out by an
anti-join on their ``input_key``, see :mod:`liwi.add.inputs`) through the stages of
:mod:`liwi.add.stages` (:data:`~liwi.add.stages.STAGES`: ReadDecode → Segment → Decompose →
Curate → ToRows → WriteParts; Segment only with the salient segmenter). The driver holds
no listing and no per-image record: the writer returns one tally row per batch, summed here.
Each stage becomes a Ray Data actor pool through :mod:`liwi.add.ray_adapter`, with its
declared resources unless ``config.stages`` overrides them; ``fuse: true`` runs the CPU
stages but the writer in one pool (less data movement on one machine), a GPU model stage
in a pool of its own (:func:`plan`). ``runner: loop`` runs the same
stages in this process, without Ray. Nothing probes the driver's GPUs.

Outputs under ``output``: the three tables (Parquet parts ``part-<run id>-<hash>``, see
:mod:`liwi.add.inputs`), ``summary.json`` (counts of the rows this run wrote, images/s, time
per stage, seconds to the first row) and ``report/`` (JSON + PNG). After the stream, error
rows that a newer outcome of the same input replaced are removed
(:func:`~liwi.add.inputs.supersede_errors`), so an input is in exactly one table.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from liwi.add.base import SKIPPED, TABLE_NAMES, TABLES, Batch, Pipeline, RunContext, run_loop
from liwi.add.config import DecomposeConfig, RayConfig
from liwi.add.inputs import new_run_id, written_rows
from liwi.add.ray_adapter import StageCall, run_ray
from liwi.add.stages import STAGE_ORDER, STAGES, WriteParts
from liwi.stop_signals import catch_sigterm, signal_of

__all__ = [
    "DecomposeConfig",
    "JobInterrupted",
    "RayConfig",
    "format_summary",
    "plan",
    "run",
    "stage_calls",
]


# -- building the stages -----------------------------------------------------------------


def stage_calls(config: DecomposeConfig, run: RunContext | None = None) -> list[StageCall]:
    """One call per enabled stage, in pipeline order: class, constructor kwargs, resources."""
    resources = config.stage_resources()
    run = run or RunContext()
    return [
        StageCall(stage, stage.options(config, run), resources[stage.name])
        for stage in STAGES
        if stage.enabled(config)
    ]


def plan(config: DecomposeConfig, calls: list[StageCall]) -> list[StageCall]:
    """The actor pools to run: one per stage, or (``fuse``) consecutive fusable ones in one.

    A fused pool runs a :class:`~liwi.add.base.Pipeline` with the resources of the stage
    that declares ``sizes_fused_pool`` (else of its first stage). A stage keeps a pool of its
    own when it has ``fused = False`` (the writer) or asks for GPUs that the sizing stage
    does not (a model stage on a GPU fraction: it batches across images and holds its GPU
    for nothing else); the stages on either side of it fuse among themselves.
    """
    if not config.fuse:
        return list(calls)
    lead = next(c for c in calls if c.cls.sizes_fused_pool)

    def alone(c: StageCall) -> bool:
        gpu_apart = c.resources.num_gpus > 0 and c.resources.num_gpus != lead.resources.num_gpus
        return not c.cls.fused or gpu_apart

    pools: list[StageCall] = []
    run: list[StageCall] = []
    for call in [*calls, None]:
        if call is not None and not alone(call):
            run.append(call)
            continue
        if len(run) == 1:
            pools.append(run[0])
        elif run:
            size = lead.resources if lead in run else run[0].resources
            pools.append(StageCall(Pipeline, {"stages": [(c.cls, c.kwargs) for c in run]}, size))
        run = []
        if call is not None:
            pools.append(call)
    return pools


def worker_env(config: DecomposeConfig) -> dict[str, str]:
    """Variables put in the actors' ``runtime_env``: S3 endpoint and region, never credentials.

    Ray stores a runtime env and its agent logs it, so secrets stay out: local workers
    inherit the driver's credentials through the raylet, cluster workers use the cluster's.
    """
    from liwi.lake import endpoint_env

    return endpoint_env() if config.forward_aws_env else {}


def _pages(config: DecomposeConfig) -> Callable[[], Iterator[list[dict[str, Any]]]]:
    """The listing as a picklable callable (it runs in a Ray task, or here for the loop)."""
    from liwi.add.inputs import job_pages

    return partial(job_pages, config.input, config.output, config.s3_endpoint, config.limit)


def _run_ray(config: DecomposeConfig, calls: list[StageCall]) -> Iterator[Batch]:
    env = worker_env(config)
    runtime_env = {"env_vars": env} if env else None
    yield from run_ray(config.ray, plan(config, calls), _pages(config), runtime_env)


def _run_loop(config: DecomposeConfig, calls: list[StageCall]) -> Iterator[Batch]:
    stages = [c.cls(**c.kwargs) for c in calls]
    items = (item for page in _pages(config)() for item in page)
    yield from run_loop(stages, items, config.stage_resources()[WriteParts.name].batch_size)


# -- the job -----------------------------------------------------------------------------


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the job; ``summary`` counts what it wrote until then."""

    def __init__(self, summary: dict[str, Any], signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.summary = summary
        self.signum = signum  # the CLI exits 128 + signum (130 SIGINT, 143 SIGTERM)


def run(config: DecomposeConfig) -> dict[str, Any]:
    """Run the job; returns the end summary (also written to ``<output>/summary.json``)."""
    from liwi.add.inputs import count_inputs, supersede_errors
    from liwi.lake import Lake, S3Options

    if not config.input or not config.output:
        raise ValueError("both input and output must be set (--input LAKE --output TABLE)")
    t0 = time.perf_counter()
    s3 = S3Options(endpoint_url=config.s3_endpoint)
    src = Lake.from_uri(config.input, s3=s3)
    out = Lake.from_uri(config.output, s3=s3)
    check_lake(src)
    run_ctx = RunContext(run_id=new_run_id())
    calls = stage_calls(config, run_ctx)
    t_start = time.perf_counter() - t0

    tally: Counter[str] = Counter()  # inputs per status, then seconds per stage
    stage_seconds: Counter[str] = Counter()
    runner = _run_ray if config.runner == "ray" else _run_loop
    bar = _progress(config.progress)
    t_run = time.perf_counter()
    t_first: float | None = None
    previous = catch_sigterm()  # SIGTERM stops the job like Ctrl-C: summary, then raise
    interrupted: KeyboardInterrupt | None = None
    try:
        todo, done_before = first_work(config)
        tally[SKIPPED] += 0 if todo else done_before
        for batch in runner(config, calls) if todo else ():
            for key, col in batch.items():
                if key.startswith("t_"):
                    stage_seconds[key[2:]] += float(col.sum())
                elif key.startswith("n_"):
                    tally[key[2:]] += int(col.sum())
            if t_first is None and any(tally[s] for s in TABLES):
                t_first = time.perf_counter() - t_run
            bar.update(int(sum(int(batch[f"n_{s}"].sum()) for s in (*TABLES, SKIPPED))))
            bar.set_postfix({s: tally[s] for s in (*TABLES, SKIPPED)})
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: account for what was written
        interrupted = exc
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    bar.close()
    wall = time.perf_counter() - t_run
    ensure_tables(out)
    superseded = supersede_errors(out)  # transient error rows a later outcome replaced
    recombined = 0
    processed = sum(tally[s] for s in TABLES)
    if config.recombine and processed and not interrupted:
        recombined = write_recombined(out, config.recombine, config.recombine_seed)
    written = written_rows(out, run_ctx.run_id)
    n_inputs = sum(tally[s] for s in (*TABLES, SKIPPED))
    if interrupted is not None:  # the listing may not have finished: count it (no reads)
        n_inputs = count_inputs(src, out, config.limit)
    summary = make_summary(config, n_inputs, tally[SKIPPED], written, stage_seconds, wall)
    summary.update(
        run_id=run_ctx.run_id,
        recombined=recombined,
        start_seconds=round(t_start, 3),
        first_row_seconds=None if t_first is None else round(t_first, 3),
        errors_superseded=superseded,
    )
    if interrupted is not None:
        signum = signal_of(interrupted)
        summary["interrupted"] = signal.Signals(signum).name
        out.write_bytes(out.path("summary.json"), json.dumps(summary, indent=1).encode())
        raise JobInterrupted(summary, int(signum)) from interrupted
    out.write_bytes(out.path("summary.json"), json.dumps(summary, indent=1).encode())
    if config.report:
        from liwi.add.report import write_report

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


def first_work(config: DecomposeConfig) -> tuple[bool, int]:
    """Whether any listed input is not done yet, and how many done ones were listed first.

    Lists (here, no Ray) only until the first page with work, so a finished lake costs
    one listing and no cluster start; otherwise the stream lists again from the start.
    """
    skipped = 0
    for page in _pages(config)():
        if any(item["status"] != SKIPPED for item in page):
            return True, skipped
        skipped += sum(int(item["n"]) for item in page)
    return False, skipped


def check_lake(src: Any) -> None:
    """Fail early, with a plain :class:`~liwi.lake.LakeError`, when the input lake is missing
    (one folder check, or one S3 listing request; not a walk of the lake)."""
    import os

    from liwi.lake import LakeError

    if src.scheme == "file":
        if not os.path.isdir(src.root):
            raise LakeError(f"lake not found: {src.uri}")
        return
    next(src.iter_pages(page=1), None)


def write_recombined(out: Any, n: int, seed: int) -> int:
    """``n`` recombined samples from the accepted rows into ``<output>/recombined``.

    Objects (with their shadows) from one accepted sample go onto the clean background of
    another; the flat image is the composite, so the layers are exact by construction.
    The part is named after the samples it holds (deterministic for the same inputs).
    """
    from liwi.add.recombine import recombine_rows
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

    for name in TABLE_NAMES:
        table = out.child(name)
        if not list_parts(table):
            write_table(LAYER_TABLE_SCHEMA.empty_table(), table, name="empty")


def make_summary(
    config: DecomposeConfig,
    n_inputs: int,
    skipped: int,
    written: dict[str, Any],
    stage_seconds: Counter,
    wall: float,
) -> dict[str, Any]:
    """The end summary. Row counts are what this run's parts hold (``written``), not what
    the stages reported; ``unaccounted`` = inputs − skipped − rows written (must be 0)."""
    rows = written["counts"]
    counts = {status: rows[table] for status, table in TABLES.items()} | {SKIPPED: skipped}
    processed = sum(rows.values())  # = inputs − skipped unless interrupted or rows were lost
    return {
        "input": config.input,
        "output": config.output,
        "runner": config.runner,
        "fuse": config.fuse,
        "decomposer": config.decomposer,
        "inputs": n_inputs,
        "counts": counts,
        "unaccounted": n_inputs - skipped - processed,
        "ids_written_twice": written["ids_written_twice"],  # input keys; must be empty
        "processed": processed,
        "wall_seconds": round(wall, 3),
        "images_per_second": round(processed / wall, 3) if wall > 0 and processed else 0.0,
        "stage_seconds": {k: round(stage_seconds.get(k, 0.0), 3) for k in STAGE_ORDER},
        "stage_seconds_per_image": {
            k: round(stage_seconds.get(k, 0.0) / processed, 4) if processed else 0.0
            for k in STAGE_ORDER
        },
        "tables": {t: f"{config.output.rstrip('/')}/{t}" for t in TABLE_NAMES},
        "recombined": 0,
    }


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, *a, **k) -> None: ...
    def close(self) -> None: ...


def _progress(enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(desc="decompose", unit="img", file=sys.stderr, dynamic_ncols=True)


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable end summary."""
    c = summary["counts"]
    lines = (
        []
        if "interrupted" not in summary
        else [
            f"INTERRUPTED by {summary['interrupted']}: {summary['unaccounted']} inputs not done yet "
            "(run the same command again to resume)"
        ]
    )
    lines += [
        f"inputs {summary['inputs']}: ok {c['ok']}, rejected {c['rejected']}, "
        f"error {c['error']}, skipped (already done) {c['skipped']}",
        f"{summary['processed']} processed in {summary['wall_seconds']:.1f} s "
        f"= {summary['images_per_second']:.2f} images/s ({summary['runner']})",
        "time per stage (s/image): "
        + ", ".join(f"{k} {v:.3f}" for k, v in summary["stage_seconds_per_image"].items()),
    ]
    if (summary["unaccounted"] and "interrupted" not in summary) or summary["ids_written_twice"]:
        lines.append(
            f"NOT ACCOUNTED: {summary['unaccounted']} inputs without a row; "
            f"{len(summary['ids_written_twice'])} sample ids written twice"
        )
    for t, uri in summary["tables"].items():
        lines.append(f"  {t:8s} {uri}")
    if "report" in summary:
        lines.append(f"  report   {summary['report']['png']}")
    return "\n".join(lines)
