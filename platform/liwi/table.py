"""Read and write layer tables (Parquet files of schema v2; v1 parts read as v2) in a lake.

File names are deterministic: ``part-<name>.parquet`` where ``name`` is given by the
caller or derived from the sorted sample ids, so re-running a job overwrites its files
and never duplicates rows.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from liwi.lake import Lake, LakeError, S3Options
from liwi.schema import LAYER_TABLE_SCHEMA, SchemaError, rows_to_table, upgrade, validate_table

PART_PREFIX = "part-"


def part_name(sample_ids: list[str]) -> str:
    """Deterministic part name for a set of samples."""
    digest = hashlib.sha256("\n".join(sorted(sample_ids)).encode()).hexdigest()[:16]
    return digest


def write_table(
    table: pa.Table | list[dict[str, Any]],
    lake: Lake | str,
    name: str | None = None,
    validate: bool = True,
    s3: S3Options | None = None,
) -> str:
    """Write one Parquet part under ``lake``; returns its path on the lake's filesystem.

    The part name is deterministic (``name`` or a hash of the sample ids), so writing the
    same rows again replaces the part instead of adding a duplicate.
    """
    if isinstance(lake, str):
        lake = Lake.from_uri(lake, s3=s3)
    if isinstance(table, list):
        table = rows_to_table(table)
    if validate:
        validate_table(table)
    name = name or part_name(table.column("sample_id").to_pylist())
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    path = lake.path(f"{PART_PREFIX}{name}.parquet")
    lake.write_bytes(path, buf.getvalue())
    return path


def list_parts(lake: Lake | str, s3: S3Options | None = None) -> list[str]:
    """Sorted paths of the table's Parquet parts (empty if the table does not exist yet)."""
    if isinstance(lake, str):
        lake = Lake.from_uri(lake, s3=s3)
    try:
        paths = lake.list([".parquet"], recursive=False)
    except LakeError as exc:
        if str(exc).startswith("lake not found"):
            return []
        raise
    return [p for p in paths if p.rsplit("/", 1)[-1].startswith(PART_PREFIX)]


def read_table(
    lake: Lake | str,
    columns: list[str] | None = None,
    s3: S3Options | None = None,
    validate: bool = True,
) -> pa.Table:
    """Read every part of a layer table; an empty schema-v2 table if there are none."""
    if isinstance(lake, str):
        lake = Lake.from_uri(lake, s3=s3)
    parts = list_parts(lake)
    schema = LAYER_TABLE_SCHEMA
    if not parts:
        empty = schema.empty_table()
        return empty.select(columns) if columns else empty
    tables = []
    for p in parts:
        data = lake.read_bytes(p)
        try:
            t = pq.read_table(pa.BufferReader(data), columns=columns)
            t = t if columns else upgrade(t)  # v1 parts read as v2
        except (pa.ArrowInvalid, KeyError) as exc:
            raise SchemaError(f"cannot read part {lake.uri_of(p)}: {exc}") from exc
        tables.append(t)
    try:
        table = pa.concat_tables(tables)
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"parts of {lake.uri} disagree on schema: {exc}") from exc
    if validate and columns is None:
        validate_table(table)
    return table


def read_sample_ids(lake: Lake | str, s3: S3Options | None = None) -> set[str]:
    """The sample ids already present in a table (for resumable jobs)."""
    t = read_table(lake, columns=["sample_id"], s3=s3, validate=False)
    return set(t.column("sample_id").to_pylist())
