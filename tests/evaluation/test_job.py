"""The evaluation job on a tiny synthetic table: report files, baselines, MLflow, promotion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liwi import tracking
from liwi.evaluation.job import EvaluateConfig
from liwi.evaluation.job import run as evaluate


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    from liwi.synth.job import SynthConfig
    from liwi.synth.job import run as synth

    out = tmp_path_factory.mktemp("evalsynth")
    synth(SynthConfig(out=str(out / "l2"), n=5, layers=2, size=32, seed=1, progress=False))
    synth(SynthConfig(out=str(out / "l3"), n=5, layers=3, size=32, seed=2, progress=False))
    return [str(out / "l2" / "table"), str(out / "l3" / "table")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    from liwi.model import build_model, preset, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return save_checkpoint(build_model(preset("tiny", resolution=32)), path)


def test_report_scores_model_and_identity_per_layer_count_and_merges(
    table, checkpoint, tmp_path, local_mlflow_store
):
    from liwi.schema import row_to_stack
    from liwi.table import read_table

    cfg = EvaluateConfig(
        model=str(checkpoint),
        tables=table,
        split=None,
        out=str(tmp_path / "eval"),
        baselines=["identity"],
        hce=False,
    )
    report = evaluate(cfg, progress=False)

    assert report["samples"] == 10 and report["samples_per_layers"] == {"2": 5, "3": 5}
    for method in ("model", "identity"):
        layers = report["results"][method]["layers"]
        assert set(layers) == {"2", "3", "all"}
        assert [r["merges"] for r in layers["all"]] == [0, 1, 2, 3, 4, 5]
        iou = [r["alpha_soft_iou"] for r in layers["all"]]
        assert iou == sorted(iou)  # more allowed merges never score worse
    # identity: the predicted attenuation is 1 everywhere, so its L1 is mean |1 − S_gt|
    rows = [r for t in table for r in read_table(t).to_pylist()]
    expected = np.mean([np.abs(1 - row_to_stack(r).total_attenuation()).mean() for r in rows])
    got = report["results"]["identity"]["shadow"]["all"]["attenuation_l1"]
    assert got == pytest.approx(expected, rel=1e-5)
    # … and its foreground alpha is 0, so its MAE is the ground-truth foreground fraction
    fg = np.mean([(row_to_stack(r).foreground()[..., 3] > 0.5).mean() for r in rows])
    assert report["results"]["identity"]["foreground"]["mae"] == pytest.approx(fg, abs=0.01)

    out = tmp_path / "eval"
    for name in ("report.md", "report.json", "merges.png", "shadow.png", "foreground.png"):
        assert (out / name).stat().st_size > 0
    assert json.loads((out / "report.json").read_text())["headline"] == report["headline"]
    assert "| identity | RGB L1 |" in (out / "report.md").read_text()

    data = tracking.get_run_data(report["mlflow_run_id"], local_mlflow_store)
    assert data["metrics"]["eval/alpha_soft_iou"] == pytest.approx(
        report["headline"]["alpha_soft_iou"]
    )
    assert "identity/L3/m5/alpha_soft_iou" in data["metrics"]
    assert data["artifacts"] == ["report"]


def test_evaluate_tags_the_version_and_promote_cli_applies_the_gate(
    table, checkpoint, tmp_path, local_mlflow_store, capsys
):
    from liwi.cli import main

    run = tracking.start_run(tracking.TrackingConfig(system_metrics=False))
    run.log_model(checkpoint, registered_model="liwi-eval-test")
    run.end()
    uri = "models:/liwi-eval-test@candidate"
    report = evaluate(
        EvaluateConfig(
            model=uri,
            tables=table[:1],
            split=None,
            out=str(tmp_path / "e"),
            baselines=[],
            hce=False,
        ),
        progress=False,
    )
    tags = tracking.evaluation_of("liwi-eval-test", "1")
    assert tags["alpha_soft_iou"] == pytest.approx(report["headline"]["alpha_soft_iou"])

    gate = tmp_path / "gate.yaml"
    gate.write_text("name: liwi-eval-test\ngate:\n  min: {alpha_soft_iou: 1.01}\n")
    assert main(["promote", "--config", str(gate)]) == 1
    assert "does not pass the gate" in capsys.readouterr().err
    gate.write_text("name: liwi-eval-test\ngate:\n  min: {alpha_soft_iou: 0.0}\n")
    assert main(["promote", "--config", str(gate)]) == 0
    assert "models:/liwi-eval-test@champion → version 1" in capsys.readouterr().out
