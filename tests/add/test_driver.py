"""The ADD job end to end: local loop, Ray Data, S3 → S3, resumption, bad input, CLI."""

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

from liwi.add.driver import DecomposeConfig, run
from liwi.add.stages import STAGE_ORDER
from liwi.cli import main
from liwi.config import ConfigError
from liwi.sample_photos import bad_input_files, procedural_photo
from liwi.schema import image_of, row_to_stack
from liwi.table import list_parts, read_table

CONFIG = Path(__file__).parents[2] / "jobs" / "configs" / "decompose.yaml"
FAST = {"max_side": 128, "progress": False}  # small layers keep the suite fast
ONE_ACTOR = {  # one worker process per pool: actor start-up dominates tiny test runs
    "decompose": {"batch_size": 2, "min_actors": 1, "max_actors": 1, "num_cpus": 1.0},
    "write": {"batch_size": 16, "min_actors": 1, "max_actors": 1, "num_cpus": 0.25},
}


def make_lake(root: Path, n_photos: int = 3, bad: bool = True) -> int:
    root.mkdir(parents=True, exist_ok=True)
    for s in range(n_photos):
        (root / f"photo_{s}.jpg").write_bytes(procedural_photo(s, 128, 1 + s % 2))
    if bad:
        for name, (data, _) in bad_input_files().items():
            (root / name).write_bytes(data)
    (root / "notes.txt").write_text("not an image extension: never an input")
    return n_photos + (len(bad_input_files()) if bad else 0)


def counts(out: str) -> dict[str, int]:
    con = duckdb.connect()
    return {
        t: con.execute(f"SELECT count(*) FROM read_parquet('{out}/{t}/*.parquet')").fetchone()[0]
        for t in ("layers", "rejects", "errors")
    }


def test_shipped_config_loads_and_unknown_keys_are_errors(tmp_path):
    config = DecomposeConfig.from_yaml(CONFIG)
    assert config.runner == "ray" and config.agent.policy == "rule_based"
    assert config.stages["decompose"].max_actors == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: {max_attempts: 3, retry_forever: true}\n")
    with pytest.raises(ConfigError, match="retry_forever"):
        DecomposeConfig.from_yaml(bad)


def test_loop_run_accounts_for_every_input_and_resumes(tmp_path):
    n = make_lake(tmp_path / "lake")
    out = str(tmp_path / "out")
    config = DecomposeConfig.from_yaml(
        CONFIG, input=str(tmp_path / "lake"), output=out, runner="loop", recombine=2, **FAST
    )
    summary = run(config)
    c = counts(out)
    assert sum(c.values()) == n == summary["inputs"]  # inputs = ok + rejected + error
    assert summary["unaccounted"] == 0
    assert summary["counts"]["ok"] == c["layers"] and summary["counts"]["error"] == c["errors"]
    con = duckdb.connect()
    errors = dict(
        con.execute(
            f"SELECT regexp_extract(source_uri, '[^/]+$'), reasons[1] FROM read_parquet('{out}/errors/*.parquet')"
        ).fetchall()
    )
    expected_errors = {k for k, (_, e) in bad_input_files().items() if e == "error"}
    assert set(errors) == expected_errors
    assert "decompression bomb" in errors["bomb.png"] and "0 bytes" in errors["empty.jpg"]
    assert c["layers"] >= 3  # the procedural photos decompose with the classical tools
    ok = read_table(f"{out}/layers").to_pylist()
    for row in ok:
        trace = json.loads(row["agent_trace"])
        assert trace[0]["tool"] == "segment" and any(e["tool"] == "curate" for e in trace)
        assert row["scores"] and row_to_stack(row).n_layers == row["n_layers"]
    # summary and report are written
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["counts"] == summary["counts"] and saved["images_per_second"] > 0
    assert set(saved["stage_seconds"]) == set(STAGE_ORDER)  # segment included
    report = json.loads((tmp_path / "out" / "report" / "report.json").read_text())
    assert report["counts"]["total"] == n
    assert sum(report["error_reasons"].values()) == c["errors"]
    with Image.open(tmp_path / "out" / "report" / "report.png") as png:
        assert png.size[0] > 800
    # recombined samples: layers from different photos, exact by construction
    recombined = read_table(f"{out}/recombined").to_pylist()
    assert summary["recombined"] == len(recombined) == 2
    for row in recombined:
        fg, bg = row["source_uri"][len("recombined:") :].split("|")
        assert fg != bg
        assert np.abs(row_to_stack(row).composite() - image_of(row)).max() <= 2.5 / 255
    # a second run writes nothing new
    parts = {
        t: sorted(list_parts(f"{out}/{t}")) for t in ("layers", "rejects", "errors", "recombined")
    }
    mtimes = {p: Path(p).stat().st_mtime_ns for ps in parts.values() for p in ps}
    again = run(config)
    assert again["counts"] == {"ok": 0, "rejected": 0, "error": 0, "skipped": n}
    assert {t: sorted(list_parts(f"{out}/{t}")) for t in parts} == parts
    assert {p: Path(p).stat().st_mtime_ns for p in mtimes} == mtimes
    assert counts(out) == c
    # a new photo arrives: only it is processed
    (tmp_path / "lake" / "photo_new.jpg").write_bytes(procedural_photo(11, 128, 1))
    third = run(config)
    assert third["counts"]["skipped"] == n and third["processed"] == 1
    assert sum(counts(out).values()) == n + 1


@pytest.mark.slow  # the default suite runs Ray Data in test_s3_to_s3 (one Ray run pair)
@pytest.mark.integration
def test_ray_data_run_writes_the_same_tables(tmp_path, ray_local):
    lake = tmp_path / "lake"
    n = make_lake(lake, n_photos=2, bad=False)
    (lake / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = str(tmp_path / "out")
    config = DecomposeConfig.from_yaml(
        CONFIG, input=str(lake), output=out, stages=ONE_ACTOR, **FAST
    )
    summary = run(config)
    assert summary["runner"] == "ray" and summary["unaccounted"] == 0
    c = counts(out)
    assert sum(c.values()) == n + 1 and c["errors"] == 1
    assert summary["counts"]["ok"] == c["layers"] and summary["stage_seconds"]["decompose"] > 0
    rows = read_table(f"{out}/layers").to_pylist()
    assert all(json.loads(r["agent_trace"])[0]["tool"] == "segment" for r in rows)


@pytest.mark.integration
def test_s3_to_s3(s3_bucket_uri, ray_local):
    from liwi.lake import Lake

    src = Lake.from_uri(f"{s3_bucket_uri}/lake")
    for s in range(3):
        src.write_bytes(src.path(f"photo_{s}.jpg"), procedural_photo(s, 96, 1))
    src.write_bytes(src.path("truncated.png"), bad_input_files()["truncated.png"][0])
    out = f"{s3_bucket_uri}/add"
    config = DecomposeConfig.from_dict({}, input=src.uri, output=out, stages=ONE_ACTOR, **FAST)
    summary = run(config)
    assert summary["unaccounted"] == 0 and summary["counts"]["error"] == 1
    tables = {t: read_table(f"{out}/{t}") for t in ("layers", "rejects", "errors")}
    assert sum(t.num_rows for t in tables.values()) == 4
    assert tables["errors"].column("source_uri").to_pylist() == [f"{src.uri}/truncated.png"]
    assert Lake.from_uri(out).exists(Lake.from_uri(out).path("report", "report.png"))
    # resumption on S3 (the runner does not matter for it; the loop saves Ray's actor start-up)
    again = run(config.model_copy(update={"runner": "loop"}))
    assert again["counts"]["skipped"] == 4 and again["processed"] == 0


def test_cli_runs_the_job(tmp_path, capsys):
    make_lake(tmp_path / "lake", n_photos=1, bad=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("runner: loop\nmax_side: 96\nreport: false\n")
    code = main(
        [
            "decompose",
            "--input",
            str(tmp_path / "lake"),
            "--output",
            str(tmp_path / "out"),
            "--config",
            str(cfg),
            "--no-progress",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0 and "inputs 1:" in text and "images/s" in text
    assert not (tmp_path / "out" / "report").exists()
    assert (
        main(
            [
                "decompose",
                "--input",
                "x",
                "--output",
                "y",
                "--config",
                str(tmp_path / "missing.yaml"),
            ]
        )
        == 2
    )


def test_cluster_entry_point_is_the_same_command():
    import os
    import subprocess
    import sys

    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "platform")}
    out = subprocess.run(
        [sys.executable, str(root / "jobs" / "decompose.py"), "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "--input" in out.stdout and "--ray-address" in out.stdout
