"""``liwi synth`` end to end, as a user runs it."""

import json
import subprocess
import sys

import pytest

from liwi.table import read_table


@pytest.mark.parametrize("layers", [2, 3])
def test_cli_end_to_end(tmp_path, layers):
    out = tmp_path / "lake"
    cmd = [sys.executable, "-m", "liwi.cli", "synth", "--out", str(out), "--n", "6"]
    cmd += ["--layers", str(layers), "--size", "64", "--seed", "2", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    printed = json.loads(res.stdout)
    assert printed["contact_sheet"] == str(out / "contact_sheet.png")
    assert len(list((out / "images").iterdir())) == 6
    table = read_table(str(out / "table"))
    assert set(table.column("n_layers").to_pylist()) == {layers}
    assert (out / "contact_sheet.png").stat().st_size > 1000


def test_cli_reports_bad_backgrounds_folder(tmp_path):
    cmd = [sys.executable, "-m", "liwi.cli", "synth", "--out", str(tmp_path / "o")]
    cmd += ["--n", "1", "--backgrounds", str(tmp_path), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "no background photos" in res.stderr
    assert not (tmp_path / "o").exists()


def test_cli_rejects_unsupported_layer_count(tmp_path):
    cmd = [sys.executable, "-m", "liwi.cli", "synth", "--out", str(tmp_path), "--layers", "4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "invalid choice" in res.stderr
