"""The ADD job's inputs and outputs on a hostile lake: links, copies, output inside input.

The hostile lake holds a folder link loop, a byte-identical copy of a photo, a broken
link, a link to a file outside the lake, and the job's output inside it. The job runs
twice through the CLI (the second run resumes); DuckDB over the written Parquet checks
that the rows written equal the inputs and that no ``sample_id`` appears twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from liwi.add.inputs import (
    DoneIndex,
    iter_items,
    key_bits,
    list_inputs,
    own_output_paths,
    written_rows,
)
from liwi.add.stages import WriteParts
from liwi.cli import main
from liwi.lake import Lake
from liwi.schema import error_row
from liwi.table import list_parts

from .hostile import make_hostile_lake

TABLES = ("layers", "rejects", "errors")
CONFIG = "runner: loop\nmax_side: 96\nreport: true\n"  # the loop runs the same stages as Ray


def test_copies_are_found_by_content_and_the_first_is_the_input(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    lake_dir.mkdir()
    (lake_dir / "a.png").write_bytes(b"same bytes")
    (lake_dir / "b.png").write_bytes(b"same bytes")
    (lake_dir / "c.png").write_bytes(b"diff bytes")  # same size, other content
    (lake_dir / "d.png").write_bytes(b"short")
    src = Lake.from_uri(lake_dir)
    out = Lake.from_uri(tmp_path / "out")
    items = {Path(i["path"]).name: i["problem"] for i in list_inputs(src, out)}
    assert items == {
        "a.png": "",
        "b.png": f"duplicate of {src.path('a.png')}",
        "c.png": "",
        "d.png": "",
    }
    # an input already done is not an item: the page's tally row counts it, unread
    done = DoneIndex(key_bits([items_by_name(src, out)["a.png"]["input_key"]]))
    pages = list(iter_items(src, out, done=done))
    assert [i["status"] for page in pages for i in page] == ["pending"] * 3 + ["skipped"]
    assert pages[-1][-1]["n"] == 1 and not pages[0][0]["problem"]  # b.png: its copy is done


def items_by_name(src: Lake, out: Lake) -> dict[str, dict]:
    return {Path(i["path"]).name: i for i in list_inputs(src, out)}


def test_listing_streams_pages_and_a_changed_file_gets_a_new_key(tmp_path: Path) -> None:
    import os

    lake_dir = tmp_path / "lake"
    (lake_dir / "sub").mkdir(parents=True)
    for n in range(5):
        (lake_dir / f"{n}.png").write_bytes(b"x" * (n + 1))
    (lake_dir / "sub" / "z.jpg").write_bytes(b"z")
    src, out = Lake.from_uri(lake_dir), Lake.from_uri(tmp_path / "out")
    pages = [[Path(e.path).name for e in p] for p in src.iter_pages(page=2)]
    assert pages == [["0.png", "1.png"], ["2.png", "3.png"], ["4.png", "z.jpg"]]
    assert sum(len(p) for p in iter_items(src, out, limit=3)) == 3
    before = items_by_name(src, out)["0.png"]["input_key"]
    os.utime(lake_dir / "0.png", ns=(1, 1))  # rewritten in place: a new version
    assert items_by_name(src, out)["0.png"]["input_key"] != before


def test_the_jobs_own_output_is_never_an_input(tmp_path: Path) -> None:
    src = Lake.from_uri(tmp_path / "lake")
    inside = Lake.from_uri(tmp_path / "lake" / "tables")
    assert own_output_paths(src, inside) == [inside.root]
    same = own_output_paths(src, src)
    assert src.path("layers") in same and src.path("report") in same
    assert own_output_paths(src, Lake.from_uri(tmp_path / "elsewhere")) == []
    assert own_output_paths(inside, src) == []  # input inside output: nothing to exclude


def test_parts_are_unique_per_batch_and_run(tmp_path: Path) -> None:
    rows = [error_row(sample_id="x" * 32, source_uri=f"/lake/{n}.png", reason="r") for n in "ab"]
    batches = [[rows[0]], [rows[1]]]  # the same sample id from two files, two batches
    names = {WriteParts(str(tmp_path), run_id=r).part(b) for r in ("r1", "r2") for b in batches}
    assert len(names) == 4 and all(n.startswith(("r1-", "r2-")) for n in names)
    assert WriteParts(str(tmp_path), run_id="r1").part(batches[0]) in names  # a retry: same


def decompose(lake: Path, out: Path, cfg: Path) -> dict:
    argv = ["decompose", "--input", str(lake), "--output", str(out), "--config", str(cfg)]
    assert main([*argv, "--no-progress"]) == 0
    return json.loads((out / "summary.json").read_text())


def test_hostile_lake_writes_one_row_per_input_and_no_id_twice(tmp_path: Path) -> None:
    lake, out = tmp_path / "lake", tmp_path / "lake" / "tables"  # output inside input
    expected = make_hostile_lake(lake, tmp_path / "outside")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    first = decompose(lake, out, cfg)
    assert first["inputs"] == len(expected)
    assert first["unaccounted"] == 0 and first["ids_written_twice"] == []

    con = duckdb.connect()
    rows = con.execute(
        f"SELECT sample_id, status, regexp_extract(source_uri, '[^/]+$'), reasons "
        f"FROM read_parquet('{out}/*/part-*.parquet')"
    ).fetchall()
    assert len(rows) == len(expected)  # written rows = inputs
    assert len({r[0] for r in rows}) == len(rows)  # no sample_id twice, in any table
    by_name = {name: (status, reasons) for _, status, name, reasons in rows}
    assert set(by_name) == set(expected)
    for name, problem in expected.items():
        status, reasons = by_name[name]
        if problem:
            assert status == "error" and problem in reasons[0], (name, reasons)
        else:
            assert status in ("ok", "rejected"), (name, reasons)
    assert sum(first["counts"][k] for k in ("ok", "rejected", "error")) == len(rows)
    assert written_rows(Lake.from_uri(out), first["run_id"])["counts"]["errors"] == 3

    # a second run: the report and contact sheets under tables/ are not inputs; nothing new
    assert (out / "report" / "report.png").exists()
    parts = sorted(p for t in TABLES for p in list_parts(f"{out}/{t}"))
    again = decompose(lake, out, cfg)
    assert again["inputs"] == len(expected) and again["counts"]["skipped"] == len(expected)
    assert again["processed"] == 0 and again["unaccounted"] == 0
    assert parts == sorted(p for t in TABLES for p in list_parts(f"{out}/{t}"))
