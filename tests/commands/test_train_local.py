"""``liwi train-local`` stopped with Ctrl-C keeps what it trained: checkpoint, history, 130."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from liwi.synth.procedural import write_scene_table
from liwi.testing.process import stop_process_group

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # torch import and the first step on a busy 2-core box


def _default_sigint() -> None:
    """Ctrl-C reaches the child even when this suite runs as a background job (SIGINT
    inherited as ignored, which a training job keeps, as a batch job should)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_saves_the_checkpoint_of_the_steps_so_far_and_exits_130(tmp_path):
    table = write_scene_table(str(tmp_path / "table"), n=8, size=40, seed=3)
    out = tmp_path / "run" / "m.pt"
    config = {
        "tables": [table],
        "out": str(out),
        "preset": "tiny",
        "model": {"resolution": 32},
        "data": {"crop": 32},
        "steps": 100_000,  # neither budget ends it: only the signal does
        "max_minutes": 30,
        "batch_size": 2,
        "val_every": 100_000,
        "val_samples": 2,
        "threads": 1,
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO / "platform")}
    cmd = [sys.executable, "-m", "liwi.cli", "train-local", "--config", str(tmp_path / "cfg.yaml")]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        start_new_session=True, preexec_fn=_default_sigint,
    )  # fmt: skip
    history = out.with_suffix(".history.jsonl")
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (history.is_file() and history.read_text().count('"train"') >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no training steps yet"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop_process_group(proc, grace_s=10)  # only if the test failed before it exited
    assert proc.returncode == 130, stderr[-2000:]
    assert "SIGINT: stopping after this step" in stderr
    records = [json.loads(line) for line in history.read_text().splitlines()]
    steps = records[-1]["step"]
    assert records[-1] == {"kind": "stopped", "step": steps, "signal": "SIGINT"} and steps >= 3
    assert f"stopped by SIGINT after {steps} steps; checkpoint: {out}" in stdout
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["stopped_by"] == "SIGINT" and meta["steps"] == steps
