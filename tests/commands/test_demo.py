"""``liwi demo``: the README's main job, on two sample photos in one process."""

import json
from pathlib import Path

import pyarrow.parquet as pq

from liwi.cli import main


def test_demo_writes_tables_predictions_and_mlflow_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LIWI_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "demo"
    rc = main(["demo", "--output", str(out), "--limit", "2", "--runner", "loop"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    counts = json.loads(printed.strip().splitlines()[-1])
    assert counts["unaccounted"] == 0
    assert sum(v for k, v in counts["counts"].items() if k != "skipped") == 2
    parts = list((out / "add" / "layers").glob("part-*.parquet"))
    assert sum(pq.read_metadata(p).num_rows for p in parts) == counts["counts"]["ok"]
    predicted = sorted(Path(out / "predict").iterdir())
    assert len(predicted) == 2
    assert all(
        (d / "recomposed.png").is_file() and (d / "layers.json").is_file() for d in predicted
    )
    assert "MLflow run" in printed and (tmp_path / "home" / "mlflow.db").is_file()
