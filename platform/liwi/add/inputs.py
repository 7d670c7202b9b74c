"""What the ADD job takes in and what it wrote: streamed listing, resumption, this run's rows.

* :func:`iter_items`: the image files of the input lake as pages of items (``{"path",
  "input_key", "problem", "status", "n"}``), streamed from the lake's listing (never the
  whole listing in memory), minus the job's own output when that lies inside the input.
  Inputs already done (their ``input_key`` is in :class:`DoneIndex`) are not items: each
  page carries one *tally* row (``status="skipped"``, ``n`` = how many), so they are counted
  without being read. Files that cannot be read (broken or escaping links, see
  :meth:`liwi.lake.Lake.list_entries`) and byte-identical copies within a page carry a
  ``problem`` and become error rows, never silently dropped.
* :class:`DoneIndex`: the input keys of the output tables, read with column projection
  (only ``input_key``; ``reasons`` too for ``errors``), as a sorted ``uint64`` array.
  Transient error rows are not done: their inputs are tried again.
* :func:`written_rows`: what this run's Parquet parts hold, the truth the summary reports.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from liwi.add.base import ERROR, PENDING, SKIPPED, TABLE_NAMES, TABLES, TRANSIENT_MARK

if TYPE_CHECKING:
    import pyarrow as pa

    from liwi.lake import Entry, Lake

# Names the job writes directly under its output (tables, report, recombined samples).
OWN_OUTPUTS: tuple[str, ...] = (*TABLE_NAMES, "report", "recombined", "summary.json")
DUPLICATE = "duplicate of"  # reason prefix of a byte-identical copy of an earlier input
PAGE = 1000  # listed entries per page = rows per source block (S3 ListObjectsV2's maximum)
ITEM_COLUMNS = ("path", "input_key", "problem", "status", "n")  # what a listing page holds


def new_run_id() -> str:
    """A sortable, unique id for one run (UTC time + random), used in its part names."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def own_output_paths(src: Lake, out: Lake) -> list[str]:
    """The job's own output paths inside the input lake (never taken as inputs).

    Output inside the input: the whole output prefix. Output = input: what the job writes
    there (:data:`OWN_OUTPUTS`).
    """
    if src.scheme != out.scheme:
        return []
    if out.root == src.root:
        return [out.path(name) for name in OWN_OUTPUTS]
    if out.root.startswith(src.root.rstrip("/") + "/"):
        return [out.root]
    return []


def key_bits(keys: Iterable[str]) -> np.ndarray:
    """The first 64 bits of hex input keys as ``uint64`` (collision odds at 10 M ≈ 3e-6)."""
    keys = list(keys)
    if not keys:
        return np.zeros(0, np.uint64)
    return np.frombuffer(bytes.fromhex("".join(k[:16] for k in keys)), ">u8").astype(np.uint64)


class DoneIndex:
    """Input keys already in an output table (sorted ``uint64``), and how many errors are
    transient (those inputs are not done; they are listed as work again)."""

    def __init__(self, keys: np.ndarray, transient: int = 0) -> None:
        self.keys = np.unique(keys)
        self.transient = transient

    def __len__(self) -> int:
        return int(self.keys.size)

    def contains(self, keys: list[str]) -> np.ndarray:
        """Boolean mask: which of ``keys`` are done."""
        bits = key_bits(keys)
        if not self.keys.size or not bits.size:
            return np.zeros(bits.size, bool)
        at = np.searchsorted(self.keys, bits).clip(max=self.keys.size - 1)
        return self.keys[at] == bits

    @classmethod
    def load(cls, out: Lake) -> DoneIndex:
        """Read the index from ``out``'s three tables, one part and one column at a time."""
        from liwi.table import list_parts

        chunks: list[np.ndarray] = []
        transient = 0
        for name in TABLE_NAMES:
            for part in list_parts(out.child(name)):
                keys, n_transient = _part_keys(out, part, errors=name == TABLES[ERROR])
                chunks.append(keys)
                transient += n_transient
        return cls(np.concatenate(chunks) if chunks else np.zeros(0, np.uint64), transient)


def _part_keys(out: Lake, part: str, errors: bool) -> tuple[np.ndarray, int]:
    """The done keys of one part and its number of transient error rows.

    A schema-v1 part has no ``input_key``: its rows count as done under the key of their
    ``source_uri`` with an empty version (:func:`iter_items` looks that key up too).
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from liwi.schema import input_key_for

    with out.fs.open_input_file(part) as f:
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        columns = ["input_key"] if "input_key" in names else ["source_uri"]
        table = pf.read(columns=columns + (["reasons"] if errors else []))
    if "input_key" in names:
        keys = table.column("input_key")
    else:
        uris = table.column("source_uri").to_pylist()
        keys = [input_key_for(u, "") for u in uris]
    transient = np.zeros(table.num_rows, bool)
    if errors and table.num_rows:
        first = pc.list_element(table.column("reasons"), 0)
        transient = np.asarray(pc.fill_null(pc.match_substring(first, TRANSIENT_MARK), False))
    key_list = [k for k, t in zip(_pylist(keys), transient, strict=True) if k and not t]
    return key_bits(key_list), int(transient.sum())


def _pylist(col: pa.ChunkedArray | list[str]) -> list[str]:
    return col if isinstance(col, list) else col.to_pylist()


def tally(n: int) -> dict[str, Any]:
    """The one row standing for ``n`` skipped (already done) inputs of a page."""
    return {"path": "", "input_key": "", "problem": "", "status": SKIPPED, "n": n}


def iter_items(
    src: Lake,
    out: Lake,
    limit: int | None = None,
    done: DoneIndex | None = None,
    page: int = PAGE,
) -> Iterator[list[dict[str, Any]]]:
    """Pages of items in listing order: the pending inputs, plus one :func:`tally` row for
    the page's done ones. At most ``limit`` listed inputs (done ones count)."""
    from liwi.lake import IMAGE_EXTENSIONS
    from liwi.schema import input_key_for

    seen = 0
    for entries in src.iter_pages(IMAGE_EXTENSIONS, own_output_paths(src, out), page):
        if limit:
            entries = entries[: limit - seen]
        seen += len(entries)
        uris = [src.uri_of(e.path) for e in entries]
        keys = [input_key_for(u, e.version) for u, e in zip(uris, entries, strict=True)]
        is_done = np.zeros(len(entries), bool)
        if done is not None and len(done):
            is_done = done.contains(keys) | done.contains([input_key_for(u, "") for u in uris])
        pending = [(e, k) for e, k, d in zip(entries, keys, is_done, strict=True) if not d]
        dup = duplicates(src, [e for e, _ in pending])
        items = [
            {
                "path": e.path,
                "input_key": k,
                "problem": e.problem or dup.get(e.path, ""),
                "status": PENDING,
                "n": 1,
            }
            for e, k in pending
        ]
        if len(entries) > len(pending):
            items.append(tally(len(entries) - len(pending)))
        if items:
            yield items
        if limit and seen >= limit:
            return


def job_pages(
    input_uri: str,
    output_uri: str,
    s3_endpoint: str | None = None,
    limit: int | None = None,
    page: int = PAGE,
) -> Iterator[list[dict[str, Any]]]:
    """:func:`iter_items` of the job's lakes; the :class:`DoneIndex` is loaded here, in the
    one process that lists (a Ray task on a cluster), never shipped to the stages."""
    from liwi.lake import Lake, S3Options

    s3 = S3Options(endpoint_url=s3_endpoint)
    src, out = Lake.from_uri(input_uri, s3=s3), Lake.from_uri(output_uri, s3=s3)
    yield from iter_items(src, out, limit, DoneIndex.load(out), page)


def list_inputs(src: Lake, out: Lake, limit: int | None = None) -> list[dict[str, Any]]:
    """Every pending item of :func:`iter_items` in one list (small lakes, tests)."""
    return [i for items in iter_items(src, out, limit) for i in items if i["status"] == PENDING]


def duplicates(src: Lake, entries: list[Entry]) -> dict[str, str]:
    """``{path: "duplicate of <uri>"}`` for every later copy of an earlier entry's bytes.

    Only files of equal size can be identical, so only those are hashed; in a lake of
    photos that is almost none. Called per listing page: copies in different pages are
    not found (each becomes its own row, with the same ``sample_id``).
    """
    from liwi.lake import LakeError

    by_size: dict[int, list[Entry]] = defaultdict(list)
    for e in entries:
        if not e.problem:
            by_size[e.size].append(e)
    out: dict[str, str] = {}
    for group in by_size.values():
        if len(group) < 2:
            continue
        by_id: dict[str, list[str]] = defaultdict(list)
        for e in group:
            try:
                by_id[content_id(src, e.path)].append(e.path)
            except LakeError:
                continue  # unreadable: ReadDecode reports it
        for paths in by_id.values():
            for path in paths[1:]:
                out[path] = f"{DUPLICATE} {src.uri_of(paths[0])}"
    return out


def content_id(src: Lake, path: str) -> str:
    """The sample id of a file (as :func:`liwi.schema.sample_id_for`), read in chunks."""
    return src.sha256(path)[:32]


def written_rows(out: Lake, run_id: str) -> dict[str, Any]:
    """Rows in this run's parts (``part-<run_id>-*``) per table (from the Parquet footers),
    and the input keys written more than once (read with projection; must be none)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from liwi.table import PART_PREFIX, list_parts

    counts: dict[str, int] = {}
    keys: list[pa.Array] = []
    for name in TABLE_NAMES:
        counts[name] = 0
        for part in list_parts(out.child(name)):
            if not part.rsplit("/", 1)[-1].startswith(f"{PART_PREFIX}{run_id}-"):
                continue
            with out.fs.open_input_file(part) as f:
                table = pq.ParquetFile(f).read(columns=["input_key"])
            counts[name] += table.num_rows
            keys.extend(table.column("input_key").chunks)
    twice: list[str] = []
    if keys:
        vc = pc.value_counts(pa.chunked_array(keys, pa.string()).combine_chunks())
        many = pc.greater(vc.field("counts"), 1)
        twice = sorted(str(v) for v in pc.filter(vc.field("values"), many).to_pylist())
    return {"counts": counts, "ids_written_twice": twice}


def count_inputs(src: Lake, out: Lake, limit: int | None = None) -> int:
    """How many inputs the lake lists (pages streamed, nothing read): after an interruption."""
    from liwi.lake import IMAGE_EXTENSIONS

    n = sum(len(p) for p in src.iter_pages(IMAGE_EXTENSIONS, own_output_paths(src, out)))
    return min(n, limit) if limit else n


def supersede_errors(out: Lake) -> int:
    """Drop the error rows a newer outcome of the same input replaced; returns how many.

    An input's newest row is its outcome. Only transient error rows are ever retried, so
    only error parts holding one are looked at: a row there goes when its ``input_key``
    has a row in ``layers`` or ``rejects`` (scanned one part and one column at a time) or
    a newer row in ``errors``. A part is rewritten under its own name (one atomic replace:
    a reader sees the old part or the new one; if the job dies first, the next run does it).
    """
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from liwi.table import list_parts

    def read(part: str, columns: list[str] | None = None) -> pa.Table | None:
        with out.fs.open_input_file(part) as f:
            pf = pq.ParquetFile(f)
            if "input_key" not in pf.schema_arrow.names:
                return None  # a schema-v1 part: its rows were never retried
            return pf.read(columns=columns)

    errors: dict[str, pa.Table] = {}
    for part in list_parts(out.child(TABLES[ERROR])):
        if (t := read(part, ["input_key", "created_at", "reasons"])) is None:
            continue
        first = pc.fill_null(pc.list_element(t.column("reasons"), 0), "")
        errors[part] = t.append_column("transient", pc.match_substring(first, TRANSIENT_MARK))
    retried = {
        k for t in errors.values() for k in pc.filter(t["input_key"], t["transient"]).to_pylist()
    }
    if not retried:
        return 0
    value_set = pa.array(sorted(retried), pa.string())
    done_later: set[str] = set()
    for name in (t for s, t in TABLES.items() if s != ERROR):
        for part in list_parts(out.child(name)):
            if (t := read(part, ["input_key"])) is None:
                continue
            col = t.column("input_key")
            done_later.update(pc.filter(col, pc.is_in(col, value_set=value_set)).to_pylist())
    newest: dict[str, Any] = {}
    for t in errors.values():
        for k, c in zip(t["input_key"].to_pylist(), t["created_at"].to_pylist(), strict=True):
            if k in retried and (k not in newest or c > newest[k]):
                newest[k] = c
    dropped = 0
    for part, t in errors.items():
        keys, times = t["input_key"].to_pylist(), t["created_at"].to_pylist()
        keep = [
            not (flag and (k in done_later or times[i] < newest[k]))
            for i, (k, flag) in enumerate(zip(keys, t["transient"].to_pylist(), strict=True))
        ]
        if all(keep):
            continue
        kept = read(part).filter(pa.array(keep))
        buf = io.BytesIO()
        pq.write_table(kept, buf, compression="zstd")
        out.write_bytes(part, buf.getvalue())
        dropped += keep.count(False)
    return dropped
