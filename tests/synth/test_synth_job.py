"""The synth job: image lake, layer table (read back by DuckDB), splits, sheet, summary."""

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest

from liwi.config import ConfigError
from liwi.imageio import decode_rgb
from liwi.lake import Lake
from liwi.schema import row_to_stack, sample_id_for
from liwi.synth.backgrounds import load_photos
from liwi.synth.generator import generate, spec_from_trace
from liwi.synth.job import SynthConfig, run, split_for
from liwi.table import read_table

N = 10


@pytest.fixture(scope="module")
def job3(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth3")
    config = SynthConfig(out=str(out), n=N, layers=3, size=64, seed=1, progress=False)
    return out, run(config)


def test_writes_images_table_sheet_and_summary(job3):
    out, summary = job3
    images = sorted((out / "images").iterdir())
    assert len(images) == N
    table = read_table(str(out / "table"))  # validates schema v2
    assert table.num_rows == N
    rows = table.to_pylist()
    for row, path in zip(sorted(rows, key=lambda r: r["source_uri"]), images, strict=True):
        assert row["source_uri"] == str(path)
        assert row["sample_id"] == sample_id_for(path.read_bytes()) == path.stem
        assert row["image"] == path.read_bytes()
        assert row["status"] == "ok" and row["n_layers"] == 3 and len(row["objects"]) == 2
        assert row["split"] == split_for(row["sample_id"])
        assert {"jpeg_quality", "noise_sigma", "blur_sigma"} <= dict(row["scores"]).keys()
    sheet = decode_rgb((out / "contact_sheet.png").read_bytes())
    assert sheet.shape[0] > 4 * 100 and sheet.std() > 0.05
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["n"] == N and sum(on_disk["splits"].values()) == N
    assert on_disk == summary


def test_recomposited_table_layers_match_the_clean_image(job3):
    """The ground truth in the table reproduces each flat image before degradation."""
    out, _ = job3
    photos = load_photos()
    for row in read_table(str(out / "table")).to_pylist():
        clean = generate(spec_from_trace(json.loads(row["agent_trace"])), photos).clean
        mae = np.abs(row_to_stack(row).composite() - clean).mean()
        assert mae < 1 / 255, f"{row['sample_id']}: MAE {mae * 255:.3f}/255"


def test_duckdb_reads_the_table(job3):
    duckdb = pytest.importorskip("duckdb")
    out, _ = job3
    glob = str(out / "table" / "*.parquet")
    con = duckdb.connect()
    n, layers, objects = con.execute(
        f"select count(*), min(n_layers), sum(len(objects)) from read_parquet('{glob}')"
    ).fetchone()
    assert (n, layers, objects) == (N, 3, 2 * N)
    types = dict(
        con.execute(
            f"select column_name, column_type from (describe select * from read_parquet('{glob}'))"
        ).fetchall()
    )
    assert types["image"] == "BLOB" and types["n_layers"] == "INTEGER"
    assert types["objects"].startswith("STRUCT(rgba BLOB")
    splits = dict(
        con.execute(f"select split, count(*) from read_parquet('{glob}') group by 1").fetchall()
    )
    assert set(splits) <= {"train", "val", "test"} and sum(splits.values()) == N


def test_same_seed_same_output_and_rerun_overwrites(tmp_path):
    def go(out):
        run(SynthConfig(out=str(out), n=4, layers=2, size=48, seed=5, progress=False))
        table = read_table(str(out / "table"))
        names = [u.rsplit("/", 1)[-1] for u in table.column("source_uri").to_pylist()]
        return table.drop_columns(["created_at", "source_uri"]).append_column("name", [names])

    a = go(tmp_path / "a")
    b = go(tmp_path / "b")
    assert a.equals(b)
    again = go(tmp_path / "a")  # same lake again: overwritten, not duplicated
    assert again.num_rows == 4
    assert len(list((tmp_path / "a" / "table").iterdir())) == 1


def test_two_and_three_layer_runs_share_a_lake(tmp_path):
    run(SynthConfig(out=str(tmp_path), n=3, layers=2, size=48, progress=False))
    run(SynthConfig(out=str(tmp_path), n=2, layers=3, size=48, progress=False))
    table = read_table(str(tmp_path / "table"))
    assert Counter(table.column("n_layers").to_pylist()) == {2: 3, 3: 2}


def test_rows_per_part_splits_the_table(tmp_path):
    summary = run(SynthConfig(out=str(tmp_path), n=5, size=48, rows_per_part=2, progress=False))
    assert len(summary["table_parts"]) == 3
    assert sum(pq.read_metadata(p).num_rows for p in summary["table_parts"]) == 5


def test_split_assignment_is_deterministic_and_proportional():
    ids = [f"{i:032x}" for i in range(4000)]
    splits = [split_for(i) for i in ids]
    assert splits == [split_for(i) for i in ids]
    counts = Counter(splits)
    assert abs(counts["val"] / 4000 - 0.1) < 0.02 and abs(counts["test"] / 4000 - 0.1) < 0.02
    assert set(split_for(i, val_fraction=0.0, test_fraction=0.0) for i in ids) == {"train"}
    assert set(split_for(i, val_fraction=0.0, test_fraction=1.0) for i in ids) == {"test"}


def test_bad_config_is_refused():
    with pytest.raises(ConfigError, match="layers"):
        SynthConfig.from_dict({"out": "/tmp/x", "layers": 4})
    with pytest.raises(ConfigError, match="colour"):
        SynthConfig.from_dict({"out": "/tmp/x", "colour": "red"})
    with pytest.raises(ValueError, match="val_fraction"):
        run(SynthConfig(out="/tmp/never", n=1, val_fraction=0.6, test_fraction=0.6))


def test_lake_uri_forms(tmp_path):
    summary = run(SynthConfig(out=f"file://{tmp_path}", n=1, size=48, progress=False))
    assert Lake.from_uri(summary["images"]).list_images()
