"""``liwi weights push``, as a user runs it: a fine-tuned weight goes into the lake with the
base it asks when unsure, so cluster workers reading the lake decide as a local run does."""

import subprocess
import sys

from liwi import weights


def _push(name: str, lake_uri: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "liwi.cli", "weights", "push", name, lake_uri]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_push_puts_the_base_beside_a_fine_tuned_weight(tmp_path):
    lake = tmp_path / "lake" / "weights"
    res = _push("u2netp-liwi", lake.as_uri())  # u2netp: fetched by the set-up
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in lake.iterdir()) == ["u2netp-liwi.onnx", "u2netp.onnx"]
    for name in ("u2netp-liwi", "u2netp"):
        got = lake / weights.spec(name).filename
        assert weights.sha256_of(got) == weights.spec(name).sha256
    assert res.stdout.count("→") == 2


def test_push_without_the_base_fetched_warns_and_pushes_the_weight(tmp_path):
    import os

    env = {**os.environ, "LIWI_WEIGHTS_DIR": str(tmp_path / "empty-cache")}
    lake = tmp_path / "lake"
    res = _push("u2netp-liwi", lake.as_uri(), env)
    assert res.returncode == 0, res.stderr
    assert [p.name for p in lake.iterdir()] == ["u2netp-liwi.onnx"]
    assert "liwi weights fetch u2netp" in res.stderr and "second opinion" in res.stderr
    res = _push("u2netp", lake.as_uri(), env)  # the weight itself missing: an error
    assert res.returncode == 1 and "liwi weights fetch u2netp" in res.stderr
