"""What the ADD job takes in and what it wrote: listing, duplicates, this run's rows.

* :func:`list_inputs`: the image files of the input lake as the driver's items
  (``{"path", "problem"}``), minus the job's own output when that lies inside the input;
  files that cannot be read (broken or escaping links, see :meth:`liwi.lake.Lake.list_entries`)
  and byte-identical copies carry a ``problem`` and become error rows, never silently dropped.
* :func:`written_rows`: what this run's Parquet parts hold, the truth the summary reports.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from liwi.add.base import TABLE_NAMES

if TYPE_CHECKING:
    from liwi.lake import Entry, Lake

# Names the job writes directly under its output (tables, report, recombined samples).
OWN_OUTPUTS: tuple[str, ...] = (*TABLE_NAMES, "report", "recombined", "summary.json")
DUPLICATE = "duplicate of"  # reason prefix of a byte-identical copy of an earlier input


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


def list_inputs(
    src: Lake, out: Lake, limit: int | None = None, done: set[str] | frozenset[str] = frozenset()
) -> list[dict[str, str]]:
    """The driver's items, sorted: one per listed image file, with its ``problem`` ("" = ok).

    Of byte-identical files the first (sorted order) is the input and the others are
    ``"duplicate of <uri>"``, unless that content is already in an output table (``done``):
    then every copy is read and skipped. Only files of equal size can be identical, so
    only those are hashed here; in a lake of photos that is almost none.
    """
    from liwi.lake import IMAGE_EXTENSIONS

    entries = src.list_entries(IMAGE_EXTENSIONS, exclude=own_output_paths(src, out))
    if limit:
        entries = entries[:limit]
    dup = duplicates(src, entries, done)
    return [{"path": e.path, "problem": e.problem or dup.get(e.path, "")} for e in entries]


def duplicates(
    src: Lake, entries: list[Entry], done: set[str] | frozenset[str] = frozenset()
) -> dict[str, str]:
    """``{path: "duplicate of <uri>"}`` for every later copy of an earlier entry's bytes."""
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
        for sample_id, paths in by_id.items():
            if sample_id in done:
                continue  # already written: every copy is skipped
            for path in paths[1:]:
                out[path] = f"{DUPLICATE} {src.uri_of(paths[0])}"
    return out


def content_id(src: Lake, path: str) -> str:
    """The sample id of a file (as :func:`liwi.schema.sample_id_for`), read in chunks."""
    return src.sha256(path)[:32]


def written_rows(out: Lake, run_id: str) -> dict[str, Any]:
    """Rows in this run's parts (``part-<run_id>-*``) per table, and ids written twice."""
    import pyarrow.parquet as pq

    from liwi.table import PART_PREFIX, list_parts

    counts: dict[str, int] = {}
    seen: set[str] = set()
    twice: set[str] = set()
    for name in TABLE_NAMES:
        counts[name] = 0
        for part in list_parts(out.child(name)):
            if not part.rsplit("/", 1)[-1].startswith(f"{PART_PREFIX}{run_id}-"):
                continue
            with out.fs.open_input_file(part) as f:
                ids = pq.read_table(f, columns=["sample_id"]).column("sample_id").to_pylist()
            counts[name] += len(ids)
            twice |= seen.intersection(ids) | {i for i, n in Counter(ids).items() if n > 1}
            seen.update(ids)
    return {"counts": counts, "ids_written_twice": sorted(twice)}
