"""How the ADD job reaches Ray, what it leaves in Ray's logs, how it stops on SIGTERM.

One real ``liwi decompose`` subprocess on local Ray, in a hostile environment: a dead
head's ``ray_current_cluster`` file where Ray looks for it, planted AWS credentials, and
the hostile lake of issue 15 (:mod:`.hostile`) with the output inside it. Ray gets a
private temp dir (``RAY_TMPDIR``), so every log it writes can be searched. A second run is
stopped with SIGTERM mid-job.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from liwi.add.config import RayConfig
from liwi.add.ray_adapter import ray_init_kwargs
from liwi.sample_photos import procedural_photo
from liwi.testing.ray_head import free_port

from .hostile import make_hostile_lake

# The job's config for the subprocess runs: one actor per pool, tiny layers.
SMALL_CONFIG = """\
runner: ray
max_side: 96
report: false
progress: false
stages:
  decompose: {batch_size: 2, min_actors: 1, max_actors: 1, num_cpus: 1.0}
  write: {batch_size: 16, min_actors: 1, max_actors: 1, num_cpus: 0.25}
ray: {num_cpus: 2, num_gpus: 0, object_store_mb: 128}
"""
SECRET_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
RUN_TIMEOUT_S = 600  # Ray start-up alone can take a minute on the shared 2-core box


def test_local_start_ignores_cluster_files_and_joins_only_on_request():
    config = RayConfig(num_cpus=3, num_gpus=1, object_store_mb=100)
    local = ray_init_kwargs(config, {})
    assert local["address"] == "local"  # never the address file of a dead head
    assert (local["num_cpus"], local["num_gpus"]) == (3, 1)
    # a Ray job supervisor sets RAY_ADDRESS: join it, declaring no resources
    joined = ray_init_kwargs(config, {"RAY_ADDRESS": "10.0.0.1:6379"})
    assert joined["address"] == "10.0.0.1:6379" and "num_cpus" not in joined
    # an explicit address in the config wins over the variable
    explicit = ray_init_kwargs(config.model_copy(update={"address": "auto"}), {"RAY_ADDRESS": "x"})
    assert explicit["address"] == "auto" and "num_gpus" not in explicit


@dataclass
class LocalRun:
    """A finished ``liwi decompose`` subprocess and where its Ray wrote."""

    proc: subprocess.CompletedProcess[str]
    ray_dir: Path
    secrets: dict[str, str]
    n_inputs: int
    out: Path


@pytest.fixture(scope="module")
def hostile_local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    """One local run with a stale cluster file and planted credentials."""
    base = tmp_path_factory.mktemp("local_ray")
    lake, out = base / "lake", base / "lake" / "tables"  # output inside the input
    expected = make_hostile_lake(lake, base / "outside")
    (base / "c.yaml").write_text(SMALL_CONFIG)
    ray_tmp = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp"))  # short: socket paths ≤ 107 B
    ray_dir = ray_tmp / "ray"
    ray_dir.mkdir()
    # what `ray start` leaves behind when its head dies without `ray stop`
    (ray_dir / "ray_current_cluster").write_text(f"127.0.0.1:{free_port()}")
    secrets = {var: f"planted-{var.lower()}-{uuid.uuid4().hex}" for var in SECRET_VARS}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    env |= {"RAY_TMPDIR": str(ray_tmp), **secrets}
    cmd = [sys.executable, "-m", "liwi.cli", "decompose", "--input", str(lake)]
    cmd += ["--output", str(out), "--config", str(base / "c.yaml")]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        yield LocalRun(
            subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr),
            ray_dir,
            secrets,
            len(expected),
            out,
        )
    finally:
        if proc.poll() is None:  # a hung run: stop its whole process group (Ray's daemons too)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_stale_cluster_file_does_not_stop_a_local_run(hostile_local_run: LocalRun):
    run = hostile_local_run
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    assert (run.ray_dir / "ray_current_cluster").exists()  # still there: Ray ignored it
    summary = json.loads(run.proc.stdout.strip().splitlines()[-1])
    assert summary["inputs"] == run.n_inputs == sum(summary["counts"].values())
    # the hostile lake through Ray Data: one row per input, no sample_id twice
    n, ids = (
        duckdb.connect()
        .execute(
            f"SELECT count(*), count(DISTINCT sample_id) "
            f"FROM read_parquet('{run.out}/*/part-*.parquet')"
        )
        .fetchone()
    )
    assert n == ids == run.n_inputs


def test_planted_credentials_reach_no_file_ray_wrote(hostile_local_run: LocalRun):
    run = hostile_local_run
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    files = [p for p in run.ray_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    logs = [p for p in files if "logs" in p.parts]
    assert any(p.name.startswith("runtime_env_agent") for p in logs), "Ray wrote no logs?"
    leaks = [
        f"{var} in {p.relative_to(run.ray_dir)}"
        for p in files
        for var, value in run.secrets.items()
        if value.encode() in p.read_bytes()
    ]
    assert not leaks
    for var, value in run.secrets.items():
        assert value not in run.proc.stdout + run.proc.stderr, var


def test_sigterm_stops_a_local_run_like_ctrl_c(tmp_path: Path):
    lake = tmp_path / "lake"
    lake.mkdir()
    for s in range(16):  # enough work that the job is still running when the signal comes
        (lake / f"photo_{s:02d}.jpg").write_bytes(procedural_photo(s, 128, 1))
    (tmp_path / "c.yaml").write_text(SMALL_CONFIG.replace("batch_size: 16", "batch_size: 2"))
    ray_tmp = Path(tempfile.mkdtemp(prefix="lt", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "liwi.cli", "decompose", "--input", str(lake)]
    cmd += ["--output", str(out), "--config", str(tmp_path / "c.yaml")]
    proc = subprocess.Popen(
        cmd, env=env | {"RAY_TMPDIR": str(ray_tmp)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not list(out.glob("*/part-*.parquet")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no part written"
            time.sleep(0.2)
        assert proc.poll() is None, "finished before the signal: give it more work"
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
        assert "SIGTERM received" not in stderr and "Fatal Python" not in stderr  # no dump
        assert "INTERRUPTED by SIGTERM" in stdout and "interrupted by SIGTERM" in stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["interrupted"] == "SIGTERM"
        written = (
            duckdb.connect()
            .execute(f"SELECT count(*) FROM read_parquet('{out}/*/part-*.parquet')")
            .fetchone()[0]
        )
        assert 0 < written < 16 and summary["processed"] == written
        assert summary["unaccounted"] == 16 - written
        with pytest.raises(ProcessLookupError):  # Ray's daemons went with it
            os.killpg(proc.pid, 0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
