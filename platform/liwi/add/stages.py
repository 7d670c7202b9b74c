"""The six stages of the ADD job, in order (:data:`STAGES`), and how a row travels.

Every stage is a :class:`liwi.add.base.Stage`: it declares its name, default resources,
and the columns it reads, writes and drops once, in its class. Data flow::

    path input_key n ─ ReadDecode ─▶ source_uri sample_id status reasons width height
                                       image image_bytes     (liwi.add.reading)
         ─ Segment    ─▶ saliency (the salient prior's 320² map, batched; liwi.add.segmenting)
         ─ Decompose  ─▶ layers (packed uint8 stack) trace verdict; drops saliency
         ─ Curate     ─▶ status=ok|rejected, reasons, scores
         ─ ToRows     ─▶ row (a schema-v2 row; drops image, layers, image_bytes)
         ─ WriteParts ─▶ one Parquet part per table per batch; returns ONE row per batch:
                         n_<status> (inputs per status) and t_<stage> (seconds, summed)
"""

from __future__ import annotations

import json
import pickle
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from liwi.add.base import (
    ERROR,
    OK,
    PENDING,
    REJECTED,
    SKIPPED,
    TABLES,
    Batch,
    PackedStack,
    Row,
    RunContext,
    Stage,
    StageResources,
    limit_threads,
    reasons_of,
)
from liwi.add.reading import INPUT_COLUMNS, ReadDecode, decode_for_layers
from liwi.add.segmenting import Segment

STATUSES = (OK, REJECTED, ERROR, SKIPPED)  # what the writer's tally counts

__all__ = ["INPUT_COLUMNS", "STAGES", "STAGE_ORDER", "ReadDecode", "Segment", "decode_for_layers"]

if TYPE_CHECKING:
    from liwi.add.config import DecomposeConfig


# -- ReadDecode: liwi.add.reading -----------------------------------------------------------


# -- Decompose ---------------------------------------------------------------------------


class Decompose(Stage):
    """Run the agent (policy + tools + curator in the loop) on each decoded image."""

    name = "decompose"
    # CPU work (matting, classical inpainting): up to 16 one-CPU actors as inputs queue
    resources = StageResources(batch_size=2, min_actors=1, max_actors=16, num_cpus=1.0)
    reads = ("sample_id", "image", "reasons", "saliency")
    writes = ("status", "reasons", "trace", "verdict", "layers")
    drops = ("saliency",)  # the segment stage's map: the agent's, nobody else's
    sizes_fused_pool = True  # the model-backed stage: a fused pool gets its resources

    def __init__(
        self,
        agent: dict[str, Any] | None = None,
        curator: dict[str, Any] | None = None,
        threads: int | None = None,
        decomposer: str = "agent",
    ):
        super().__init__()
        self.agent_config = dict(agent or {})
        self.curator_config = dict(curator or {})
        self.threads = threads  # per worker; None = library defaults (one process per machine)
        self.decomposer = decomposer  # "agent", or "identity" (photo = background; benchmarks)
        self.agent = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {
            "decomposer": config.decomposer,
            "agent": config.agent.model_dump(),
            "curator": config.curator.model_dump(),
            # Ray actors get as many threads as CPUs they reserve; the loop keeps defaults
            "threads": max(1, round(config.stage_resources()[cls.name].num_cpus))
            if config.runner == "ray"
            else None,
        }

    def _setup(self) -> None:
        from liwi.add.curator import CuratorConfig
        from liwi.agents import build_agent

        limit_threads(self.threads)
        if self.decomposer == "identity":
            return

        self.agent = build_agent(self.agent_config, CuratorConfig(**self.curator_config))
        self.agent.setup()

    def process_row(self, row: Row) -> Row:
        from liwi.imageio import to_float

        if self.decomposer == "identity":  # one layer: the photo is the background
            row["layers"] = pickle.dumps(PackedStack(row["image"], []), protocol=5)
            return row
        saliency = row.get("saliency")
        if saliency is None or not np.asarray(saliency).size:  # no segment stage (or a bad map)
            saliency = None
        result = self.agent.run(
            to_float(row["image"]), sample_id=str(row["sample_id"]), saliency=saliency
        )
        row["trace"] = json.dumps(result.trace, default=str)
        row["verdict"] = json.dumps(result.verdict.to_json() if result.verdict else None)
        if result.stack is None:
            row["status"] = REJECTED
            row["reasons"] = json.dumps(reasons_of(row) + result.reasons)
            return row
        row["layers"] = pickle.dumps(PackedStack.pack(result.stack), protocol=5)
        return row

    def finish_row(self, row: Row) -> Row:
        row.pop("saliency", None)
        row.setdefault("trace", "[]")
        row.setdefault("verdict", "null")
        row.setdefault("layers", b"")
        return row


# -- Curate ------------------------------------------------------------------------------


class Curate(Stage):
    """Final verdict on the quantised stack as it will be written (plus the VLM, if on)."""

    name = "curate"
    resources = StageResources(batch_size=8, min_actors=1, max_actors=8, num_cpus=0.25)
    reads = ("image", "layers", "reasons")
    writes = ("status", "reasons", "scores")

    def __init__(
        self,
        curator: dict[str, Any] | None = None,
        verify: dict[str, Any] | None = None,
        decomposer: str = "agent",
    ):
        super().__init__()
        self.curator_config = dict(curator or {})
        self.verify_config = verify  # {"backend": ..., **tool config} or None
        self.decomposer = decomposer  # "identity": every stack passes (nothing to judge)
        self.curator = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {
            "curator": config.curator.model_dump(),
            "verify": config.verify,
            "decomposer": config.decomposer,
        }

    def _setup(self) -> None:
        from liwi.add.curator import Curator, CuratorConfig

        config = CuratorConfig(**self.curator_config)
        judge = None
        if config.use_vlm and self.verify_config:
            from liwi.agents.toolbox import vlm_judge

            judge = vlm_judge(self.verify_config)
        self.curator = Curator(config, vlm=judge)

    def process_row(self, row: Row) -> Row:
        from liwi.imageio import to_float

        if self.decomposer == "identity":
            row["status"] = OK
            return row
        stack = pickle.loads(row["layers"]).unpack()
        verdict = self.curator(to_float(row["image"]), stack)
        row["status"] = OK if verdict.passed else REJECTED
        row["reasons"] = json.dumps(reasons_of(row) + verdict.reasons)
        row["scores"] = json.dumps(verdict.scores)
        return row

    def finish_row(self, row: Row) -> Row:
        row.setdefault("scores", "{}")
        if row.get("status") == PENDING:  # nothing to curate (no layers): cannot happen
            row["status"] = ERROR
        return row


# -- ToRows ------------------------------------------------------------------------------


class ToRows(Stage):
    """Encode each row as a schema-v2 layer table row (PNG layers); drop the arrays."""

    name = "to_rows"  # PNG encoding: light, scales out with the backlog
    resources = StageResources(batch_size=8, min_actors=1, max_actors=8, num_cpus=0.25)
    reads = (
        "sample_id",
        "source_uri",
        "input_key",
        "status",
        "reasons",
        "width",
        "height",
        "image_bytes",
        "layers",
        "trace",
        "scores",
    )
    writes = ("row",)
    drops = ("image", "layers", "image_bytes")
    handles = (OK, REJECTED, ERROR)

    def process_row(self, row: Row) -> Row:
        from liwi.imageio import encode_png
        from liwi.schema import error_row, stack_to_row

        trace = json.loads(row.get("trace") or "[]")
        scores = json.loads(row.get("scores") or "{}")
        reasons = reasons_of(row)
        common = {
            "sample_id": str(row["sample_id"]),
            "source_uri": str(row["source_uri"]),
            "input_key": str(row["input_key"]),
        }
        image = bytes(row["image_bytes"]) or None
        if row.get("layers"):
            stack = pickle.loads(row["layers"]).unpack()
            out = stack_to_row(
                stack,
                **common,
                image=image or encode_png(stack.composite()),
                status=row["status"],
                reasons=reasons,
                scores=scores,
                agent_trace=trace,
            )
        else:
            out = error_row(
                **common,
                reason=reasons[0] if reasons else row["status"],
                status=row["status"] if row["status"] != OK else ERROR,
                width=int(row.get("width") or 0),
                height=int(row.get("height") or 0),
                image=image,
                scores=scores,
                agent_trace=trace,
            )
            out["reasons"] = reasons or out["reasons"]
        row["row"] = pickle.dumps(out, protocol=5)
        return row

    def finish_row(self, row: Row) -> Row:
        row.setdefault("row", b"")
        for heavy in self.drops:
            row.pop(heavy, None)
        return row


# -- WriteParts --------------------------------------------------------------------------


class WriteParts(Stage):
    """Write the batch's rows as one Parquet part per output table; return one tally row.

    The tally (``n_<status>``: inputs per status, tally rows of skipped inputs included;
    ``t_<stage>``: seconds summed over the batch) is all the driver receives, so what it
    keeps does not grow with the lake.
    """

    name = "write"
    # batch = rows per Parquet part: 128 rows of 1024-px layers ≈ 250 MB in one writer
    resources = StageResources(batch_size=128, min_actors=1, max_actors=2, num_cpus=0.25)
    reads = ("row", "sample_id", "source_uri", "status", "n")
    writes = tuple(f"n_{s}" for s in STATUSES)
    drops = ("row", "image", "layers", "image_bytes", "trace", "verdict", "sample_id", "path")
    handles = (OK, REJECTED, ERROR)
    fused = False  # its own pool: it batches more rows per part than the fused stages

    def __init__(self, output_uri: str, s3_endpoint: str | None = None, run_id: str = "run"):
        super().__init__()
        self.output_uri = output_uri
        self.s3_endpoint = s3_endpoint
        self.run_id = run_id  # part names: part-<run_id>-<hash of the rows' ids and sources>
        self.lake = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {
            "output_uri": config.output,
            "s3_endpoint": config.s3_endpoint,
            "run_id": run.run_id,
        }

    def _setup(self) -> None:
        from liwi.lake import Lake, S3Options

        self.lake = Lake.from_uri(self.output_uri, s3=S3Options(endpoint_url=self.s3_endpoint))

    def __call__(self, batch: Batch) -> Batch:
        self.setup()
        t0 = time.perf_counter()
        groups: dict[str, list[Row]] = {}
        for blob in batch.get("row", []):
            if blob:
                out = pickle.loads(blob)
                groups.setdefault(out["status"], []).append(out)
        from liwi.table import write_table

        for status, table_rows in sorted(groups.items()):
            write_table(table_rows, self.lake.child(TABLES[status]), name=self.part(table_rows))
        return self.tally(batch, time.perf_counter() - t0)

    def tally(self, batch: Batch, seconds: float) -> Batch:
        """One row: inputs per status and each stage's seconds, summed over the batch."""
        status = np.asarray(batch["status"], dtype=object)
        n = np.asarray(batch["n"], dtype=np.int64)
        out: Batch = {f"n_{s}": np.asarray([int(n[status == s].sum())]) for s in STATUSES}
        for key, col in batch.items():
            if key.startswith("t_"):
                out[key] = np.asarray([float(np.sum(col))])
        out[f"t_{self.name}"] = np.asarray([seconds])
        return out

    def part(self, rows: list[Row]) -> str:
        """This batch's part name: unique per batch and run, the same when Ray retries it."""
        from liwi.table import part_name

        keys = [f"{r['sample_id']}|{r['source_uri']}" for r in rows]
        return f"{self.run_id}-{part_name(keys)}"


STAGES: tuple[type[Stage], ...] = (ReadDecode, Segment, Decompose, Curate, ToRows, WriteParts)
STAGE_ORDER: tuple[str, ...] = tuple(stage.name for stage in STAGES)
