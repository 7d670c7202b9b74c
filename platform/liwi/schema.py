"""Layer table schema v2: one row per sample, explicit pyarrow types.

Rows are built from a :class:`~liwi.layers.LayerStack` with :func:`stack_to_row` and
turned back with :func:`row_to_stack`. :func:`validate_table` checks a table against
the schema and the row invariants with errors that name the column and row. v2 adds the
nullable ``input_key`` (which listed input a row came from, see :func:`input_key_for`);
:func:`upgrade` reads a v1 table as v2 (``input_key`` null).
See ``docs/architecture.md`` for the column reference.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from liwi import __version__
from liwi.imageio import decode_rgb, decode_rgba, encode_png
from liwi.layers import LayerStack, ObjectLayer

SCHEMA_VERSION = 2  # 2: + input_key (ADD resumption without downloads)
PIPELINE_VERSION = f"liwi-{__version__}"
STATUSES = ("ok", "rejected", "error")
SPLITS = ("train", "val", "test", "")  # "" = not assigned (e.g. ADD output before splitting)

SCORES_TYPE = pa.map_(pa.string(), pa.float64())

OBJECT_TYPE = pa.struct(
    [
        pa.field("rgba", pa.binary(), nullable=False),  # RGBA PNG, straight alpha
        pa.field("shadow", pa.binary(), nullable=False),  # RGBA PNG, multiply blend
        pa.field("bbox", pa.list_(pa.int32(), 4), nullable=False),  # x0, y0, x1, y1 (excl.)
        pa.field("area", pa.float32(), nullable=False),  # mean alpha
        pa.field("shadow_area", pa.float32(), nullable=False),  # fraction with S < 0.9
        pa.field("label", pa.string(), nullable=False),
        pa.field("scores", SCORES_TYPE, nullable=False),
    ]
)

LAYER_TABLE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("image", pa.binary(), nullable=True),  # flat image (PNG/JPEG); null on error
        pa.field("background", pa.binary(), nullable=True),  # RGB PNG; null on error
        pa.field("objects", pa.list_(OBJECT_TYPE), nullable=False),  # back to front
        pa.field("n_layers", pa.int32(), nullable=False),  # background + objects
        pa.field("split", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("scores", SCORES_TYPE, nullable=False),
        pa.field("agent_trace", pa.string(), nullable=False),  # JSON list of tool calls
        pa.field("pipeline_version", pa.string(), nullable=False),
        pa.field("schema_version", pa.int32(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("input_key", pa.string(), nullable=True),  # listed input (path + version)
    ],
    metadata={"liwi.schema_version": str(SCHEMA_VERSION)},
)


class SchemaError(ValueError):
    """A table does not match layer table schema v2."""


def input_key_for(source_uri: str, version: str) -> str:
    """Id of one listed input: its URI plus its version (S3 ETag, or size-mtime locally).

    Known from a listing alone, so a re-run skips done inputs without downloading them;
    a file rewritten in place gets a new version, hence a new key, and is processed again.
    """
    return hashlib.sha256(f"{source_uri}\n{version}".encode()).hexdigest()[:32]


def upgrade(table: pa.Table) -> pa.Table:
    """A v1 table (no ``input_key``) as v2: ``input_key`` appended, all null."""
    if "input_key" in table.column_names or "sample_id" not in table.column_names:
        return table
    return table.append_column(
        LAYER_TABLE_SCHEMA.field("input_key"), pa.nulls(table.num_rows, pa.string())
    )


def sample_id_for(data: bytes) -> str:
    """Content hash of the source bytes (sha256, first 32 hex digits)."""
    return hashlib.sha256(data).hexdigest()[:32]


def _scores(d: dict[str, float] | None) -> list[tuple[str, float]]:
    return [(str(k), float(v)) for k, v in sorted((d or {}).items())]


def stack_to_row(
    stack: LayerStack,
    *,
    sample_id: str,
    source_uri: str,
    image: bytes | None = None,
    split: str = "",
    status: str = "ok",
    reasons: list[str] | None = None,
    scores: dict[str, float] | None = None,
    agent_trace: list[dict[str, Any]] | None = None,
    created_at: datetime | None = None,
    input_key: str | None = None,
) -> dict[str, Any]:
    """A schema-v2 row (Python dict) for ``stack``; ``image`` defaults to its composite PNG."""
    h, w = stack.size
    objects = [
        {
            "rgba": encode_png(obj.rgba),
            "shadow": encode_png(obj.shadow),
            "bbox": list(obj.bbox),
            "area": obj.area,
            "shadow_area": obj.shadow_area,
            "label": obj.label,
            "scores": _scores(obj.scores),
        }
        for obj in stack.objects
    ]
    return {
        "sample_id": sample_id,
        "source_uri": source_uri,
        "width": w,
        "height": h,
        "image": image if image is not None else encode_png(stack.composite()),
        "background": encode_png(stack.background),
        "objects": objects,
        "n_layers": stack.n_layers,
        "split": split,
        "status": status,
        "reasons": list(reasons or []),
        "scores": _scores(scores),
        "agent_trace": json.dumps(agent_trace or [], default=str),
        "pipeline_version": PIPELINE_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created_at": created_at or datetime.now(UTC),
        "input_key": input_key,
    }


def error_row(
    *,
    sample_id: str,
    source_uri: str,
    reason: str,
    status: str = "error",
    width: int = 0,
    height: int = 0,
    image: bytes | None = None,
    scores: dict[str, float] | None = None,
    agent_trace: list[dict[str, Any]] | None = None,
    input_key: str | None = None,
) -> dict[str, Any]:
    """A row for an input that produced no layers (undecodable, failed tool …)."""
    return {
        "sample_id": sample_id,
        "source_uri": source_uri,
        "width": width,
        "height": height,
        "image": image,
        "background": None,
        "objects": [],
        "n_layers": 0,
        "split": "",
        "status": status,
        "reasons": [reason],
        "scores": _scores(scores),
        "agent_trace": json.dumps(agent_trace or [], default=str),
        "pipeline_version": PIPELINE_VERSION,
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC),
        "input_key": input_key,
    }


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Build a schema-v2 table from row dicts (raises :class:`SchemaError` on bad rows)."""
    names = set(LAYER_TABLE_SCHEMA.names)
    for i, row in enumerate(rows):
        if set(row) != names:
            raise SchemaError(
                f"row {i} does not fit layer table schema v{SCHEMA_VERSION}: "
                f"missing {sorted(names - set(row))}, unexpected {sorted(set(row) - names)}"
            )
    try:
        return pa.Table.from_pylist(rows, schema=LAYER_TABLE_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError) as exc:
        raise SchemaError(f"rows do not fit layer table schema v{SCHEMA_VERSION}: {exc}") from exc


def row_to_stack(row: dict[str, Any]) -> LayerStack:
    """Decode a row (as from ``table.to_pylist()``) back into a :class:`LayerStack`."""
    if row.get("background") is None:
        raise SchemaError(f"row {row.get('sample_id')} has no layers (status={row.get('status')})")
    objects = [
        ObjectLayer(
            rgba=decode_rgba(o["rgba"]),
            shadow=decode_rgba(o["shadow"]),
            label=o["label"],
            scores=dict(o["scores"] or []),
        )
        for o in row["objects"]
    ]
    return LayerStack(
        background=decode_rgb(row["background"]),
        objects=objects,
        meta={"sample_id": row["sample_id"], "source_uri": row["source_uri"]},
    )


def image_of(row: dict[str, Any]) -> np.ndarray:
    """The row's flat image as float32 H×W×3."""
    return decode_rgb(row["image"])


def validate_table(table: pa.Table) -> None:
    """Check ``table`` against schema v2 and the row invariants; raise :class:`SchemaError`."""
    expected = {f.name: f for f in LAYER_TABLE_SCHEMA}
    actual = {f.name: f for f in table.schema}
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if missing or extra:
        raise SchemaError(f"column mismatch: missing {missing}, unexpected {extra}")
    for name, field in expected.items():
        if not actual[name].type.equals(field.type):
            raise SchemaError(
                f"column {name!r}: expected type {field.type}, got {actual[name].type}"
            )
        if not field.nullable and table.column(name).null_count:
            raise SchemaError(f"column {name!r}: {table.column(name).null_count} null values")
    cols = table.select(["sample_id", "status", "split", "n_layers", "objects", "background"])
    for i, row in enumerate(cols.to_pylist()):
        where = f"row {i} (sample_id={row['sample_id']})"
        if row["status"] not in STATUSES:
            raise SchemaError(f"{where}: status {row['status']!r} not in {STATUSES}")
        if row["split"] not in SPLITS:
            raise SchemaError(f"{where}: split {row['split']!r} not in {SPLITS}")
        if row["status"] == "ok":
            if row["background"] is None:
                raise SchemaError(f"{where}: status ok but no background")
            if row["n_layers"] != 1 + len(row["objects"]):
                raise SchemaError(
                    f"{where}: n_layers={row['n_layers']} but {len(row['objects'])} objects"
                )
