"""Layer tables on a real S3 server: our writer/reader, then pyarrow, boto3 and DuckDB.

DuckDB's ``httpfs`` extension is not bundled with the wheel and cannot be downloaded
offline here, so DuckDB reads the parts through a pyarrow dataset on an S3 filesystem
that the test builds itself (not through :mod:`liwi.lake`).
"""

from __future__ import annotations

import io
from urllib.parse import urlparse

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from liwi.layers import LayerStack
from liwi.schema import LAYER_TABLE_SCHEMA, error_row, sample_id_for, stack_to_row
from liwi.table import list_parts, read_sample_ids, read_table, write_table
from liwi.testing.s3_server import SeaweedS3

pytestmark = pytest.mark.integration


def make_rows(start: int, k: int) -> list[dict]:
    """``k`` rows with 1-2 objects each; the last of each batch is an error row."""
    rng = np.random.default_rng(start)
    h, w = 12, 16
    rows = []
    for i in range(start, start + k - 1):
        n = 1 + i % 2
        alphas = [np.zeros((h, w), np.float32) for _ in range(n)]
        for j, a in enumerate(alphas):
            a[2 + j : 7 + j, 3:9] = 1.0
        stack = LayerStack.from_arrays(
            rng.random((h, w, 3), dtype=np.float32),
            [rng.random((h, w, 3), dtype=np.float32) for _ in range(n)],
            alphas,
            [np.full((h, w), 0.7, np.float32)] * n,
        )
        rows.append(
            stack_to_row(
                stack,
                sample_id=sample_id_for(f"img-{i}".encode()),
                source_uri=f"s3://src/img-{i}.png",
                split="train",
            )
        )
    rows.append(
        error_row(
            sample_id=sample_id_for(f"bad-{start}".encode()),
            source_uri=f"s3://src/bad-{start}.jpg",
            reason="cannot decode",
        )
    )
    return rows


def bucket_and_prefix(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.strip("/")


def test_layer_table_round_trip_on_s3(s3_bucket_uri: str, s3_env: SeaweedS3) -> None:
    table_uri = s3_bucket_uri + "/layers"
    batch_a, batch_b = make_rows(0, 4), make_rows(10, 3)
    part_a = write_table(batch_a, table_uri)
    part_b = write_table(batch_b, table_uri)
    assert part_a != part_b
    assert list_parts(table_uri) == sorted([part_a, part_b])

    # our reader
    table = read_table(table_uri)
    assert table.num_rows == 7
    assert table.schema.equals(LAYER_TABLE_SCHEMA)
    ids = {r["sample_id"] for r in batch_a + batch_b}
    assert read_sample_ids(table_uri) == ids
    assert sorted(table.column("n_layers").to_pylist()) == [0, 0, 2, 2, 2, 3, 3]

    # boto3 sees exactly two Parquet objects, and pyarrow reads them without our code
    bucket, prefix = bucket_and_prefix(table_uri)
    client = s3_env.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(p.split("/", 1)[1] for p in (part_a, part_b))
    assert all(k.startswith(f"{prefix}/part-") and k.endswith(".parquet") for k in keys)
    body = client.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    one = pq.read_table(io.BytesIO(body))
    assert one.schema.field("objects").type == LAYER_TABLE_SCHEMA.field("objects").type
    assert one.num_rows in (3, 4)

    # DuckDB over a pyarrow dataset on an S3 filesystem we configure here by hand
    fs = pafs.S3FileSystem(
        endpoint_override=urlparse(s3_env.endpoint_url).netloc,
        scheme="http",
        access_key=s3_env.access_key,
        secret_key=s3_env.secret_key,
        region=s3_env.region,
    )
    dataset = ds.dataset(f"{bucket}/{prefix}", filesystem=fs, format="parquet")  # noqa: F841
    con = duckdb.connect()
    counts = dict(
        con.sql("select status, count(*) from dataset group by status order by status").fetchall()
    )
    assert counts == {"error": 2, "ok": 5}
    types = dict(con.sql("select column_name, column_type from (describe dataset)").fetchall())
    assert types["width"] == "INTEGER"
    assert types["image"] == "BLOB"
    assert types["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["objects"].startswith("STRUCT(rgba BLOB, shadow BLOB, bbox INTEGER[4]")
    total_objects = con.sql("select sum(len(objects)) from dataset").fetchall()[0][0]
    assert total_objects == 7  # i = 0, 1, 2, 10, 11 -> 1 + 2 + 1 + 1 + 2
    assert (
        con.sql("select sum(n_layers) from dataset").fetchall()[0][0] == 7 + 5
    )  # objects + one background per ok row


def test_rewriting_the_same_rows_adds_no_parts(s3_bucket_uri: str, s3_env: SeaweedS3) -> None:
    rows = make_rows(0, 3)
    first = write_table(rows, s3_bucket_uri)
    second = write_table(make_rows(0, 3), s3_bucket_uri)  # same samples, fresh timestamps
    assert first == second
    assert len(list_parts(s3_bucket_uri)) == 1
    assert read_table(s3_bucket_uri).num_rows == 3
    bucket, _ = bucket_and_prefix(s3_bucket_uri)
    assert s3_env.client().list_objects_v2(Bucket=bucket)["KeyCount"] == 1


def test_missing_table_on_s3_reads_empty(s3_bucket_uri: str) -> None:
    assert list_parts(s3_bucket_uri) == []  # bucket does not even exist
    empty = read_table(s3_bucket_uri)
    assert empty.num_rows == 0 and empty.schema.equals(LAYER_TABLE_SCHEMA)
    assert read_sample_ids(s3_bucket_uri) == set()


def test_read_table_with_wrong_secret_fails_loudly(
    s3_bucket_uri: str, s3_env: SeaweedS3, monkeypatch
) -> None:
    from liwi.lake import LakeError

    write_table(make_rows(0, 2), s3_bucket_uri)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(LakeError) as info:
        read_table(s3_bucket_uri)  # must not pretend the table is empty
    assert "not-the-secret" not in str(info.value)


def test_arrow_table_input_is_written_as_is(s3_bucket_uri: str) -> None:
    from liwi.schema import rows_to_table

    table = rows_to_table(make_rows(20, 2))
    assert isinstance(table, pa.Table)
    path = write_table(table, s3_bucket_uri, name="fixed")
    assert path.endswith("/prefix/part-fixed.parquet")
    assert read_table(s3_bucket_uri).num_rows == 2
