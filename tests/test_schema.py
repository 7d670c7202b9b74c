"""Layer table schema v2: rows, validation, the writer/reader and DuckDB as outside reader."""

import numpy as np
import pyarrow as pa
import pytest

from liwi.layers import LayerStack
from liwi.schema import (
    LAYER_TABLE_SCHEMA,
    SchemaError,
    error_row,
    row_to_stack,
    rows_to_table,
    sample_id_for,
    stack_to_row,
    validate_table,
)
from liwi.table import list_parts, read_sample_ids, read_table, write_table


def make_stack(seed: int, n: int = 1) -> LayerStack:
    rng = np.random.default_rng(seed)
    h, w = 16, 20
    alphas = []
    for i in range(n):
        a = np.zeros((h, w), np.float32)
        a[2 + i : 8 + i, 3:10] = 1.0
        alphas.append(a)
    s = np.ones((h, w), np.float32)
    s[10:14, 3:10] = 0.4
    return LayerStack.from_arrays(
        rng.random((h, w, 3), dtype=np.float32),
        [rng.random((h, w, 3), dtype=np.float32) for _ in range(n)],
        alphas,
        [s] * n,
    )


def make_rows(k: int = 4) -> list[dict]:
    rows = []
    for i in range(k):
        src = f"img-{i}".encode()
        rows.append(
            stack_to_row(
                make_stack(i, 1 + i % 2),
                sample_id=sample_id_for(src),
                source_uri=f"/lake/img-{i}.png",
                split=["train", "val", "test", "train"][i % 4],
                scores={"psnr": 40.0 + i},
                agent_trace=[{"tool": "synth", "seed": i}],
            )
        )
    rows.append(
        error_row(
            sample_id=sample_id_for(b"bad"),
            source_uri="/lake/bad.jpg",
            reason="empty file (0 bytes)",
        )
    )
    return rows


def test_rows_round_trip_to_stacks():
    rows = make_rows()
    table = rows_to_table(rows)
    validate_table(table)
    assert table.schema.equals(LAYER_TABLE_SCHEMA)
    back = table.to_pylist()
    stack = row_to_stack(back[1])
    original = make_stack(1, 2)
    assert len(stack.objects) == 2
    assert np.abs(stack.composite() - original.composite()).max() <= 2 / 255
    assert back[1]["n_layers"] == 3 and back[1]["objects"][0]["bbox"] == [3, 2, 10, 8]
    with pytest.raises(SchemaError, match="has no layers"):
        row_to_stack(back[-1])


def test_validation_names_the_problem():
    table = rows_to_table(make_rows())
    bad_status = table.set_column(
        table.schema.get_field_index("status"), "status", pa.array(["ok"] * 4 + ["weird"])
    )
    with pytest.raises(SchemaError, match="row 4 .* status 'weird'"):
        validate_table(bad_status)
    with pytest.raises(SchemaError, match="missing \\['split'\\]"):
        validate_table(table.drop_columns(["split"]))
    wrong_type = table.set_column(
        table.schema.get_field_index("width"), "width", table.column("width").cast(pa.int64())
    )
    with pytest.raises(SchemaError, match="column 'width': expected type int32"):
        validate_table(wrong_type)
    with pytest.raises(SchemaError, match="does not fit"):
        rows_to_table([{"sample_id": "x"}])


def test_writer_is_deterministic_and_duckdb_reads_it(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    rows = make_rows()
    write_table(rows, str(tmp_path / "t"))
    write_table(rows, str(tmp_path / "t"))  # re-run: same file name, no duplicates
    assert len(list_parts(str(tmp_path / "t"))) == 1
    assert len(read_table(str(tmp_path / "t"))) == 5
    assert read_sample_ids(str(tmp_path / "t")) == {r["sample_id"] for r in rows}

    con = duckdb.connect()
    glob = str(tmp_path / "t" / "*.parquet")
    counts = dict(con.execute(f"SELECT status, count(*) FROM '{glob}' GROUP BY status").fetchall())
    assert counts == {"ok": 4, "error": 1}
    types = dict(
        con.execute(
            f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{glob}')"
        ).fetchall()
    )
    assert types["width"] == "INTEGER"
    assert types["image"] == "BLOB"
    assert types["created_at"].startswith("TIMESTAMP")
    assert "STRUCT(rgba BLOB, shadow BLOB, bbox INTEGER[]" in types["objects"]
    n_obj = con.execute(f"SELECT sum(len(objects)) FROM '{glob}'").fetchone()[0]
    assert n_obj == 1 + 2 + 1 + 2
    psnr = con.execute(
        f"SELECT scores['psnr'] FROM '{glob}' WHERE status = 'ok' ORDER BY 1"
    ).fetchall()
    assert [p[0] for p in psnr] == [40.0, 41.0, 42.0, 43.0]


def test_empty_table_reads_as_empty(tmp_path):
    assert read_table(str(tmp_path / "nothing")).num_rows == 0


def test_a_v1_part_reads_as_v2_with_no_input_key(tmp_path):
    import pyarrow.parquet as pq

    from liwi.schema import error_row, input_key_for, rows_to_table
    from liwi.table import read_table

    v2 = rows_to_table([error_row(sample_id="a" * 32, source_uri="/x.png", reason="r")])
    (tmp_path / "t").mkdir()
    pq.write_table(v2.drop_columns(["input_key"]), tmp_path / "t" / "part-old.parquet")
    table = read_table(str(tmp_path / "t"))
    assert table.schema.equals(LAYER_TABLE_SCHEMA) and table["input_key"].null_count == 1
    assert input_key_for("/x.png", "1-2") != input_key_for("/x.png", "1-3")
