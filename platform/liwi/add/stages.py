"""The five stages of the ADD job, in order (:data:`STAGES`), and how a row travels.

Every stage is a :class:`liwi.add.base.Stage`: it declares its name, default resources,
and the columns it reads, writes and drops once, in its class. Data flow::

    path ─ ReadDecode ─▶ source_uri sample_id status reasons width height image image_bytes
         ─ Decompose  ─▶ layers (packed uint8 stack) trace verdict
         ─ Curate     ─▶ status=ok|rejected, reasons, scores
         ─ ToRows     ─▶ row (a schema-v1 row; drops image, layers, image_bytes)
         ─ WriteParts ─▶ summary (JSON; drops row …): one Parquet part per table per batch
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Iterable
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
    batch_len,
    batch_to_rows,
    reasons_of,
    rows_to_batch,
)

if TYPE_CHECKING:
    from liwi.add.config import DecomposeConfig


# -- ReadDecode --------------------------------------------------------------------------

INPUT_COLUMNS = ("path", "problem")  # the driver's items: a lake path, why it cannot be read


class ReadDecode(Stage):
    """Read the file's bytes from the lake and decode them (one bad file = one error row).

    Rows whose ``sample_id`` is in ``skip_ids`` (already in an output table) become
    ``status="skipped"`` without decoding. A row whose ``problem`` the driver already knows
    (a broken link, a duplicate, …) is not read: it becomes an error row with that reason,
    under an id made from its path (skipped too when a former run wrote it).
    """

    name = "read_decode"
    resources = StageResources(batch_size=8, num_cpus=0.25)
    reads = INPUT_COLUMNS
    drops = ("problem",)
    writes = (
        "source_uri",
        "sample_id",
        "status",
        "reasons",
        "width",
        "height",
        "image",
        "image_bytes",
    )

    def __init__(
        self,
        lake_uri: str,
        s3_endpoint: str | None = None,
        max_side: int = 1024,
        max_pixels: int = 64_000_000,
        skip_ids: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.lake_uri = lake_uri
        self.s3_endpoint = s3_endpoint
        self.max_side = max_side  # longer side after downscaling (layers are made at this size)
        self.max_pixels = max_pixels  # declared size above this is a decompression bomb
        self.skip_ids = frozenset(skip_ids)
        self.lake = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {
            "lake_uri": config.input,
            "s3_endpoint": config.s3_endpoint,
            "max_side": config.max_side,
            "max_pixels": config.max_pixels,
            "skip_ids": sorted(run.skip_ids),
        }

    def _setup(self) -> None:
        from liwi.lake import Lake, S3Options

        self.lake = Lake.from_uri(self.lake_uri, s3=S3Options(endpoint_url=self.s3_endpoint))

    def __call__(self, batch: Batch) -> Batch:
        n = batch_len(batch)
        batch = dict(batch)
        batch.setdefault("status", np.asarray([PENDING] * n, dtype=object))
        return super().__call__(batch)

    def process_row(self, row: Row) -> Row:
        from liwi.schema import sample_id_for

        path = str(row["path"])
        row["source_uri"] = self.lake.uri_of(path)
        row["sample_id"] = _path_id(path)  # until the bytes are read
        if row.get("problem"):
            return self._unread(row, str(row["problem"]))
        try:
            data = self.lake.read_bytes(path)
        except Exception as exc:  # noqa: BLE001
            return self._unread(row, f"cannot read: {exc}")
        row["sample_id"] = sample_id_for(data)
        if row["sample_id"] in self.skip_ids:
            row["status"] = SKIPPED
            return row
        image, stored = decode_for_layers(data, self.max_side, self.max_pixels)
        row["image"] = image
        row["image_bytes"] = stored
        row["height"], row["width"] = image.shape[:2]
        return row

    def _unread(self, row: Row, reason: str) -> Row:
        """A file that cannot be read: an error row once, skipped on later runs."""
        if row["sample_id"] in self.skip_ids:
            row["status"] = SKIPPED
            return row
        raise RuntimeError(reason)

    def finish_row(self, row: Row) -> Row:
        row.pop("problem", None)
        row.setdefault("source_uri", str(row["path"]))
        row.setdefault("sample_id", _path_id(str(row["path"])))
        row.setdefault("reasons", "[]")
        row.setdefault("width", 0)
        row.setdefault("height", 0)
        row.setdefault("image", np.zeros((0, 0, 3), np.uint8))
        row.setdefault("image_bytes", b"")
        return row


def _path_id(path: str) -> str:
    """Id for rows whose bytes could not be read: hash of the path, marked as such."""
    import hashlib

    return "path-" + hashlib.sha256(path.encode()).hexdigest()[:27]


def decode_for_layers(data: bytes, max_side: int, max_pixels: int) -> tuple[np.ndarray, bytes]:
    """Decode to uint8 H×W×3 (downscaled to ``max_side``) plus the bytes to store as ``image``.

    The source bytes are kept when they decode to exactly these pixels everywhere (plain
    RGB JPEG/PNG, no EXIF rotation, no downscaling); otherwise the pixels are re-encoded
    as PNG, so the stored image always matches the layers.
    """
    import io

    from PIL import Image

    from liwi.imageio import encode_png, open_image, pil_to_rgb, to_uint8

    # decode big photos already reduced (JPEG DCT scaling / 8-bit resize) to twice the
    # layers' side, so no full-size copy of a huge image is ever made
    img = open_image(data, max_pixels=max_pixels, work_pixels=4 * max_side * max_side)
    rgb = to_uint8(pil_to_rgb(img))
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        import cv2

        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    with Image.open(io.BytesIO(data)) as raw:
        plain = (
            raw.format in ("JPEG", "PNG")
            and raw.mode == "RGB"
            and raw.getexif().get(0x0112, 1) == 1
            and scale == 1.0
        )
    return rgb, (data if plain else encode_png(rgb))


# -- Decompose ---------------------------------------------------------------------------


def limit_threads(n: int | None) -> None:
    """Cap the thread pools of OpenCV, numba (pymatting) and torch (if loaded) at ``n``.

    Several actors on one machine must not each start one thread per core: on 2 cores,
    2 actors × 2 threads per library only thrash. ``None`` leaves the defaults.
    """
    if not n:
        return
    import sys

    import cv2

    cv2.setNumThreads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


class Decompose(Stage):
    """Run the agent (policy + tools + curator in the loop) on each decoded image."""

    name = "decompose"
    resources = StageResources(batch_size=2, num_cpus=1.0)
    reads = ("sample_id", "image", "reasons")
    writes = ("status", "reasons", "trace", "verdict", "layers")
    sizes_fused_pool = True  # the model-backed stage: a fused pool gets its resources

    def __init__(
        self,
        agent: dict[str, Any] | None = None,
        curator: dict[str, Any] | None = None,
        threads: int | None = None,
    ):
        super().__init__()
        self.agent_config = dict(agent or {})
        self.curator_config = dict(curator or {})
        self.threads = threads  # per worker; None = library defaults (one process per machine)
        self.agent = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {
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

        self.agent = build_agent(self.agent_config, CuratorConfig(**self.curator_config))
        self.agent.setup()

    def process_row(self, row: Row) -> Row:
        from liwi.imageio import to_float

        result = self.agent.run(to_float(row["image"]), sample_id=str(row["sample_id"]))
        row["trace"] = json.dumps(result.trace, default=str)
        row["verdict"] = json.dumps(result.verdict.to_json() if result.verdict else None)
        if result.stack is None:
            row["status"] = REJECTED
            row["reasons"] = json.dumps(reasons_of(row) + result.reasons)
            return row
        row["layers"] = pickle.dumps(PackedStack.pack(result.stack), protocol=5)
        return row

    def finish_row(self, row: Row) -> Row:
        row.setdefault("trace", "[]")
        row.setdefault("verdict", "null")
        row.setdefault("layers", b"")
        return row


# -- Curate ------------------------------------------------------------------------------


class Curate(Stage):
    """Final verdict on the quantised stack as it will be written (plus the VLM, if on)."""

    name = "curate"
    resources = StageResources(batch_size=8, num_cpus=0.25)
    reads = ("image", "layers", "reasons")
    writes = ("status", "reasons", "scores")

    def __init__(self, curator: dict[str, Any] | None = None, verify: dict[str, Any] | None = None):
        super().__init__()
        self.curator_config = dict(curator or {})
        self.verify_config = verify  # {"backend": ..., **tool config} or None
        self.curator = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {"curator": config.curator.model_dump(), "verify": config.verify}

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
    """Encode each row as a schema-v1 layer table row (PNG layers); drop the arrays."""

    name = "to_rows"
    resources = StageResources(batch_size=8, num_cpus=0.25)
    reads = (
        "sample_id",
        "source_uri",
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
        common = {"sample_id": str(row["sample_id"]), "source_uri": str(row["source_uri"])}
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
    """Write the batch's rows as one Parquet part per output table; keep small summaries."""

    name = "write"
    resources = StageResources(batch_size=16, num_cpus=0.25)  # batch = rows per Parquet part
    reads = ("row", "sample_id", "source_uri", "status", "reasons", "width", "height")
    writes = ("summary",)
    drops = ("row", "image", "layers", "image_bytes", "trace", "verdict")
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
        rows = batch_to_rows(batch)
        groups: dict[str, list[Row]] = {}
        for row in rows:
            if row.get("row"):
                out = pickle.loads(row["row"])
                groups.setdefault(out["status"], []).append(out)
        from liwi.table import write_table

        for status, table_rows in sorted(groups.items()):
            write_table(table_rows, self.lake.child(TABLES[status]), name=self.part(table_rows))
        for row in rows:
            row["summary"] = json.dumps(summarize(row))
            for heavy in self.drops:
                row.pop(heavy, None)
        per_row = (time.perf_counter() - t0) / max(1, len(rows))
        for row in rows:
            row[f"t_{self.name}"] = per_row
        return rows_to_batch(rows)

    def part(self, rows: list[Row]) -> str:
        """This batch's part name: unique per batch and run, the same when Ray retries it."""
        from liwi.table import part_name

        keys = [f"{r['sample_id']}|{r['source_uri']}" for r in rows]
        return f"{self.run_id}-{part_name(keys)}"


def summarize(row: Row) -> dict[str, Any]:
    """The small per-sample record the driver keeps for the summary and the report."""
    s: dict[str, Any] = {
        "sample_id": str(row.get("sample_id")),
        "source_uri": str(row.get("source_uri")),
        "status": str(row.get("status")),
        "reasons": reasons_of(row),
        "width": int(row.get("width") or 0),
        "height": int(row.get("height") or 0),
    }
    if row.get("row"):
        out = pickle.loads(row["row"])
        s["n_layers"] = int(out["n_layers"])
        s["object_area"] = [float(o["area"]) for o in out["objects"]]
        s["shadow_area"] = [float(o["shadow_area"]) for o in out["objects"]]
    return s


STAGES: tuple[type[Stage], ...] = (ReadDecode, Decompose, Curate, ToRows, WriteParts)
STAGE_ORDER: tuple[str, ...] = tuple(stage.name for stage in STAGES)
