"""The shipped synth YAML loads into SynthConfig, and the thin job entry point runs."""

import json
from pathlib import Path

import yaml

from liwi.synth.job import SynthConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "jobs" / "configs" / "synth.yaml"


def test_shipped_yaml_loads():
    config = SynthConfig.from_yaml(CONFIG)
    assert config.layers in (2, 3) and config.n == 64 and config.size == 256
    assert config.to_dict() == {
        **SynthConfig(out=config.out).to_dict(),
        **yaml.safe_load(CONFIG.read_text()),
    }


def test_job_entry_point_runs_a_small_config(tmp_path, capsys):
    import importlib.util

    small = tmp_path / "small.yaml"
    data = {**yaml.safe_load(CONFIG.read_text()), "n": 2, "size": 48, "progress": False}
    small.write_text(yaml.safe_dump(data))
    spec = importlib.util.spec_from_file_location("synth_job", ROOT / "jobs" / "synth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--config", str(small), "--out", str(tmp_path / "out")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 2 and (tmp_path / "out" / "summary.json").exists()
