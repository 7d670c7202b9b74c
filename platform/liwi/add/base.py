"""The stage base of the ADD job: batches, row statuses, and :class:`Stage`.

A batch is ``dict[str, np.ndarray]`` (Ray Data's "numpy" format), one entry per row. A
stage declares, once, in its class: its ``name``, the default ``resources`` it runs with
(batch size, pool size range, CPUs, GPUs), the columns it ``reads``, ``writes`` and
``drops``, and the row statuses it ``handles``. The same class runs in a plain loop (:func:`run_loop`) and
as a Ray Data actor (:mod:`liwi.add.ray_adapter`). Each stage

* loads heavy things once in ``setup()`` (lazily, on first call if nobody called it);
* is pure and retry-safe: the output depends only on the input batch and the config;
* never raises for one bad row: the row gets ``status="error"`` and a reason, and later
  stages pass it through untouched (rows already ``"skipped"`` by resumption too);
* adds ``t_<name>``: its wall time per row in seconds, for the end summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from liwi.add.config import DecomposeConfig

Batch = dict[str, np.ndarray]
Row = dict[str, Any]

PENDING, OK, REJECTED, ERROR, SKIPPED = "pending", "ok", "rejected", "error", "skipped"
TABLES = {OK: "layers", REJECTED: "rejects", ERROR: "errors"}  # status → output table
TABLE_NAMES: tuple[str, ...] = tuple(TABLES.values())  # the job's three output tables
TRANSIENT = "transient"  # word after the stage in a reason: the failure may pass on a retry
TRANSIENT_MARK = f": {TRANSIENT}: "  # how readers find it ("read_decode: transient: …")


@dataclass(frozen=True)
class RunContext:
    """What one run of the job tells its stages besides the config."""

    run_id: str = "run"  # names this run's Parquet parts: part-<run_id>-<hash>.parquet


class StageResources(BaseModel):
    """How one stage runs on Ray Data: an actor pool that autoscales between
    ``min_actors`` and ``max_actors`` (equal: a fixed pool), each actor reserving
    ``num_cpus`` / ``num_gpus`` (a fraction shares one GPU among several actors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(4, ge=1)  # rows per call (model stages: images per forward pass)
    min_actors: int = Field(1, ge=1)  # actors started first and kept while the job runs
    max_actors: int = Field(1, ge=1)  # most actors Ray Data may scale the pool up to
    num_cpus: float = Field(0.5, ge=0)  # logical CPUs reserved per actor
    num_gpus: float = Field(0.0, ge=0)  # GPUs per actor; < 1 shares a GPU (small models)

    @model_validator(mode="after")
    def _check(self) -> StageResources:
        if self.min_actors > self.max_actors:
            raise ValueError(f"min_actors {self.min_actors} > max_actors {self.max_actors}")
        if self.num_gpus > 1 and self.num_gpus != int(self.num_gpus):
            raise ValueError(f"num_gpus above 1 must be whole, not {self.num_gpus}")
        return self


@dataclass
class PackedStack:
    """A layer stack quantised to uint8 (what the tables store), compact between stages."""

    background: np.ndarray  # H×W×3 uint8
    objects: list[tuple[np.ndarray, np.ndarray, str]]  # (rgba uint8, shadow uint8, label)

    @classmethod
    def pack(cls, stack: Any) -> PackedStack:
        from liwi.imageio import to_uint8

        return cls(
            to_uint8(stack.background),
            [(to_uint8(o.rgba), to_uint8(o.shadow), o.label) for o in stack.objects],
        )

    def unpack(self) -> Any:
        from liwi.imageio import to_float
        from liwi.layers import LayerStack, ObjectLayer

        return LayerStack(
            background=to_float(self.background),
            objects=[
                ObjectLayer(rgba=to_float(r), shadow=to_float(s), label=lab)
                for r, s, lab in self.objects
            ],
        )


# -- batch ⇄ rows ------------------------------------------------------------------------


def batch_len(batch: Batch) -> int:
    return len(next(iter(batch.values()))) if batch else 0


def batch_to_rows(batch: Batch) -> list[Row]:
    """Columns → row dicts (numpy scalars become Python scalars)."""
    n = batch_len(batch)
    rows: list[Row] = [{} for _ in range(n)]
    for key, col in batch.items():
        for i in range(n):
            v = col[i]
            rows[i][key] = v.item() if isinstance(v, np.generic) else v
    return rows


def rows_to_batch(rows: list[Row]) -> Batch:
    """Row dicts → columns; non-scalar values go into 1-D object arrays (never stacked)."""
    if not rows:
        return {}
    out: Batch = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        if (
            all(isinstance(v, bool | int | float | str) for v in values)
            and len({type(v) for v in values}) == 1
        ):
            out[key] = np.asarray(values, dtype=object if isinstance(values[0], str) else None)
        else:
            col = np.empty(len(values), dtype=object)
            for i, v in enumerate(values):
                col[i] = v
            out[key] = col
    return out


def reasons_of(row: Row) -> list[str]:
    """The row's reasons (stored as a JSON list between stages)."""
    return list(json.loads(row.get("reasons") or "[]"))


def mark_error(row: Row, stage: str, exc: BaseException) -> Row:
    """Mark ``row`` as an error with a one-line reason naming the stage; an I/O failure that
    may pass (:func:`liwi.lake.is_transient`) is marked ``"<stage>: transient: …"``, and
    a later run tries that input again."""
    from liwi.lake import is_transient

    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    row["status"] = ERROR
    kind = TRANSIENT_MARK if is_transient(exc) else ": "
    row["reasons"] = json.dumps(reasons_of(row) + [f"{stage}{kind}{msg}"])
    return row


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


# -- the stage base ----------------------------------------------------------------------


class Stage:
    """Base class: lazy ``setup()``, per-row error capture, per-row timing."""

    name: ClassVar[str] = "stage"
    resources: ClassVar[StageResources] = StageResources()  # default; config may override
    reads: ClassVar[tuple[str, ...]] = ()  # columns this stage needs
    writes: ClassVar[tuple[str, ...]] = ()  # columns it adds or sets (besides t_<name>)
    drops: ClassVar[tuple[str, ...]] = ()  # columns it removes
    handles: ClassVar[tuple[str, ...]] = (PENDING,)  # statuses this stage works on
    fused: ClassVar[bool] = True  # runs in the fused pool when the job fuses stages
    sizes_fused_pool: ClassVar[bool] = False  # its resources size the fused pool

    def __init__(self) -> None:
        self._ready = False

    @classmethod
    def enabled(cls, config: DecomposeConfig) -> bool:
        """Whether the job runs this stage at all (an optional stage may be left out)."""
        return True

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        """Constructor kwargs of this stage for one run of the job."""
        return {}

    def setup(self) -> None:
        """Load heavy resources once per worker; idempotent."""
        if not self._ready:
            self._setup()
            self._ready = True

    def _setup(self) -> None:  # noqa: B027 - optional hook
        """Override to load models/tools."""

    def __call__(self, batch: Batch) -> Batch:
        t0 = time.perf_counter()
        rows = batch_to_rows(batch)
        if any(self.handled(row) for row in rows):
            self.setup()  # lazily: a batch of skipped/error rows needs no models
        out = [self.finish_row(row) for row in self.process_rows(rows)]
        per_row = (time.perf_counter() - t0) / max(1, len(out))
        for row in out:
            row[f"t_{self.name}"] = per_row
        return rows_to_batch(out)

    def handled(self, row: Row) -> bool:
        """Whether this stage works on ``row`` (by its status)."""
        return row.get("status", PENDING) in self.handles

    def process_rows(self, rows: list[Row]) -> list[Row]:
        """The batch's rows, each handled one through :meth:`process_row` (its exception
        makes it an error row). Model stages override this to run the batch at once."""
        out = []
        for row in rows:
            if self.handled(row):
                try:
                    row = self.process_row(row)
                except Exception as exc:  # noqa: BLE001 - one bad row must not stop the job
                    row = mark_error(row, self.name, exc)
            out.append(row)
        return out

    def process_row(self, row: Row) -> Row:
        """Transform one row; raise to turn it into an error row."""
        return row

    def finish_row(self, row: Row) -> Row:
        """Runs for every row (also error/skipped ones): keep the column set uniform."""
        return row


# -- fusing and running stages without Ray ------------------------------------------------


class Pipeline:
    """Several stages in one callable (one actor runs them all, no hand-over between them)."""

    def __init__(self, stages: list[tuple[type[Stage], dict[str, Any]]]) -> None:
        self.stages = [cls(**kwargs) for cls, kwargs in stages]  # each sets up on first use

    def __call__(self, batch: Batch) -> Batch:
        for stage in self.stages:
            batch = stage(batch)
        return batch


def chunks(items: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """``items`` (any iterable, consumed lazily) in lists of ``size``."""
    buf: list[Row] = []
    for item in items:
        buf.append(item)
        if len(buf) >= max(1, size):
            yield buf
            buf = []
    if buf:
        yield buf


def run_loop(stages: list[Stage], items: Iterable[Row], batch_size: int) -> Iterator[Batch]:
    """Run ``stages`` one after the other on batches of ``items`` in this process."""
    for chunk in chunks(items, batch_size):
        batch = rows_to_batch(chunk)
        for stage in stages:
            batch = stage(batch)
        yield batch
