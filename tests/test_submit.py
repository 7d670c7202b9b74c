"""Job submission: token lookup, runtime envs, and the CLI against a real Ray head."""

from __future__ import annotations

import os
import secrets
import textwrap
import time
from pathlib import Path

import pytest

from liwi import __version__
from liwi.cli import main
from liwi.submit import (
    FORWARDED_ENV_VARS,
    AuthToken,
    RayJobs,
    SubmitError,
    build_entrypoint,
    build_runtime_env,
    config_in_working_dir,
    describe_env,
    find_auth_token,
    forwarded_env,
    parse_env_pairs,
    resolve_address,
    token_file_path,
)
from liwi.testing.ray_head import free_port, start_ray_head


# -- token lookup ------------------------------------------------------------------------
def test_token_from_variable_wins_over_files(tmp_path):
    (tmp_path / "tok").write_text("from-file\n")
    env = {"RAY_AUTH_TOKEN": " from-var ", "RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")}
    token = find_auth_token(env)
    assert token.value == "from-var" and "RAY_AUTH_TOKEN" in token.source


def test_token_from_path_variable_then_home_file(tmp_path):
    (tmp_path / "tok").write_text("from-path\n")
    assert find_auth_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")}).value == "from-path"
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home")
    token = find_auth_token({"HOME": str(home)})
    assert token.value == "from-home" and str(home / ".ray" / "auth_token") in token.source


def test_no_token_anywhere_is_none(tmp_path):
    assert find_auth_token({"HOME": str(tmp_path)}) is None
    assert token_file_path({"HOME": str(tmp_path)}) == tmp_path / ".ray" / "auth_token"


def test_token_repr_never_shows_the_value():
    assert "s3cr3t" not in repr(AuthToken("s3cr3t", "x")) and "s3cr3t" not in str(
        AuthToken("s3cr3t", "x")
    )


# -- what a submission carries ------------------------------------------------------------
def test_env_pairs_parse_and_refuse_credentials():
    assert parse_env_pairs(["A=1", "B_2=x=y"]) == {"A": "1", "B_2": "x=y"}
    for bad in (
        "AWS_SECRET_ACCESS_KEY=abc",
        "AWS_ACCESS_KEY_ID=abc",
        "HF_TOKEN=x",
        "DB_PASSWORD=x",
    ):
        with pytest.raises(SubmitError, match="credential") as err:
            parse_env_pairs([bad])
        assert "abc" not in str(err.value)
    for malformed in ("NOVALUE", "1BAD=x", "=x"):
        with pytest.raises(SubmitError, match="NAME=VALUE"):
            parse_env_pairs([malformed])


def test_only_endpoints_are_forwarded():
    env = {
        "AWS_ENDPOINT_URL": "http://s3:8333",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "shh",
        "HOME": "/root",
    }
    assert forwarded_env(env) == {
        "AWS_ENDPOINT_URL": "http://s3:8333",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
    }
    assert not any("SECRET" in k or "ACCESS_KEY" in k for k in FORWARDED_ENV_VARS)
    assert describe_env({"A": "1", "X_TOKEN": "t"}) == "A=1, X_TOKEN=***"


def test_runtime_env_ships_code_and_liwi_without_venv(tmp_path):
    env = build_runtime_env(tmp_path, {"K": "v"}, environ={"AWS_ENDPOINT_URL": "http://e"})
    assert env["working_dir"] == str(tmp_path)
    assert {".venv", ".git", "artifacts"} <= set(env["excludes"])
    assert Path(env["py_modules"][0]).name == "liwi"
    assert env["env_vars"]["K"] == "v" and env["env_vars"]["AWS_ENDPOINT_URL"] == "http://e"


def test_entrypoint_and_config_checks(tmp_path):
    assert build_entrypoint("train", "jobs/configs/a b.yaml") == (
        "python jobs/train.py --config 'jobs/configs/a b.yaml'"
    )
    assert build_entrypoint("decompose", "c.yaml", ["--input", "s3://b/p q"]) == (
        "python jobs/decompose.py --config c.yaml --input 's3://b/p q'"
    )
    with pytest.raises(SubmitError, match="unknown job"):
        build_entrypoint("nope", "x.yaml")
    repo = tmp_path / "repo"
    (repo / "cfg").mkdir(parents=True)
    (repo / "cfg" / "ok.yaml").write_text("a: 1\n")
    (repo / "cfg" / "list.yaml").write_text("- 1\n")
    (repo / "cfg" / "bad.yaml").write_text("a: [\n")
    (tmp_path / "outside.yaml").write_text("a: 1\n")
    assert config_in_working_dir(repo / "cfg" / "ok.yaml", repo) == "cfg/ok.yaml"
    assert config_in_working_dir("cfg/ok.yaml", repo) == "cfg/ok.yaml"
    with pytest.raises(SubmitError, match="outside the working dir"):
        config_in_working_dir(tmp_path / "outside.yaml", repo)
    with pytest.raises(SubmitError, match="not found"):
        config_in_working_dir(repo / "cfg" / "missing.yaml", repo)
    with pytest.raises(SubmitError, match="invalid YAML"):
        config_in_working_dir(repo / "cfg" / "bad.yaml", repo)
    with pytest.raises(SubmitError, match="mapping"):
        config_in_working_dir(repo / "cfg" / "list.yaml", repo)


def test_address_resolution():
    assert resolve_address("http://h:8265/", {}) == "http://h:8265"
    assert resolve_address(None, {"RAY_API_SERVER_ADDRESS": "http://a:1"}) == "http://a:1"
    assert resolve_address(None, {"RAY_ADDRESS": "10.0.0.1:6379"}) == "http://127.0.0.1:8265"
    with pytest.raises(SubmitError, match="HTTP URL"):
        resolve_address("ray://h:10001", {})


def test_unreachable_cluster_is_a_clear_error():
    with pytest.raises(SubmitError, match="cannot reach the Ray dashboard"):
        RayJobs(f"http://127.0.0.1:{free_port()}", token=None)


# -- against a real Ray head with token authentication -----------------------------------
TOKEN = secrets.token_hex(16)


@pytest.fixture(scope="module")
def head():
    h = start_ray_head(num_cpus=1, auth_token=TOKEN)
    yield h
    h.stop()


@pytest.fixture
def as_user(monkeypatch, tmp_path):
    """A submitting shell with the cluster's token and no stray Ray/AWS variables."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    return monkeypatch


def _fake_repo(root: Path) -> Path:
    """A repository with a jobs/decompose.py that reports what it received."""
    (root / "jobs" / "configs").mkdir(parents=True)
    (root / ".venv").mkdir()
    (root / ".venv" / "big.bin").write_bytes(b"0" * 1024)
    (root / "jobs" / "configs" / "tiny.yaml").write_text("answer: 42\n")
    (root / "jobs" / "decompose.py").write_text(
        textwrap.dedent(
            """
            import argparse, os, pathlib, yaml
            import liwi
            p = argparse.ArgumentParser(); p.add_argument("--config"); p.add_argument("--flag")
            a = p.parse_args()
            print("flag", a.flag)
            print("answer", yaml.safe_load(open(a.config))["answer"])
            print("liwi", liwi.__version__, liwi.__file__)
            print("endpoint", os.environ.get("AWS_ENDPOINT_URL"))
            print("secret", os.environ.get("AWS_SECRET_ACCESS_KEY"))
            print("venv shipped", pathlib.Path(".venv").exists())
            """
        )
    )
    return root


@pytest.mark.integration
def test_submit_runs_the_job_script_with_its_config(head, as_user, tmp_path, capsys):
    repo = _fake_repo(tmp_path / "repo")
    as_user.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    as_user.setenv("AWS_SECRET_ACCESS_KEY", "never-send-this")
    rc = main(
        [
            "submit", "decompose", "--address", head.dashboard_url, "--working-dir", str(repo),
            "--config", str(repo / "jobs/configs/tiny.yaml"), "--env", "EXTRA=1", "--wait",
            "--job-args", "--flag 'two words'",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "answer 42" in out and "flag two words" in out
    assert f"liwi {__version__}" in out and "_ray_pkg_" in out  # liwi came via py_modules
    assert "endpoint http://127.0.0.1:9" in out
    assert "secret None" in out and "never-send-this" not in out
    assert "venv shipped False" in out
    assert "SUCCEEDED" in out


@pytest.mark.integration
def test_jobs_list_status_logs(head, as_user, capsys):
    jobs = RayJobs(head.dashboard_url)
    sid = jobs.submit_entrypoint("python -c 'print(6 * 7)'")
    assert jobs.wait(sid, timeout_s=60, poll_s=0.5) == "SUCCEEDED"
    assert main(["jobs", "list", "--address", head.dashboard_url]) == 0
    assert sid in capsys.readouterr().out
    assert main(["jobs", "status", sid, "--address", head.dashboard_url]) == 0
    assert f"{sid}: SUCCEEDED" in capsys.readouterr().out
    assert main(["jobs", "logs", sid, "--address", head.dashboard_url]) == 0
    assert "42" in capsys.readouterr().out
    assert main(["jobs", "logs", sid, "--follow", "--address", head.dashboard_url]) == 0
    assert "42" in capsys.readouterr().out


@pytest.mark.integration
def test_jobs_stop(head, as_user, capsys):
    jobs = RayJobs(head.dashboard_url)
    sid = jobs.submit_entrypoint(
        "python -c 'import time; print(\"up\", flush=True); time.sleep(300)'"
    )
    for _ in range(120):
        if "up" in jobs.logs(sid):
            break
        time.sleep(0.5)
    assert jobs.status(sid) == "RUNNING"
    assert main(["jobs", "stop", sid, "--address", head.dashboard_url]) == 0
    assert "stop requested" in capsys.readouterr().out
    assert jobs.wait(sid, timeout_s=60, poll_s=0.5) == "STOPPED"


@pytest.mark.integration
def test_wrong_token_is_refused_with_a_clear_message(head, as_user, capsys):
    as_user.setenv("RAY_AUTH_TOKEN", "not-the-token")
    rc = main(["jobs", "list", "--address", head.dashboard_url])
    err = capsys.readouterr().err
    assert rc == 1
    assert "HTTP 403" in err and "not this cluster's token" in err and "RAY_AUTH_TOKEN" in err
    assert "not-the-token" not in err


@pytest.mark.integration
def test_missing_token_names_the_variable_and_the_file(head, as_user, tmp_path, capsys):
    as_user.delenv("RAY_AUTH_TOKEN")
    rc = main(["jobs", "list", "--address", head.dashboard_url])
    err = capsys.readouterr().err
    assert rc == 1
    # 401 normally; 403 when this process joined another Ray cluster before (Ray's client
    # then sends that cluster's cached token). Either way the advice must be the same.
    assert ("HTTP 401" in err or "HTTP 403" in err) and "no token was found" in err
    assert "RAY_AUTH_TOKEN" in err and str(tmp_path / "home" / ".ray" / "auth_token") in err


@pytest.mark.integration
def test_head_stops_by_process_group(head):
    """Runs last in this module: stopping the head ends every daemon of its process group."""
    assert head.alive()
    head.stop()
    assert not head.alive()
    with pytest.raises(ProcessLookupError):
        os.killpg(head.pgid, 0)
    assert not head.temp_dir.exists()
    head.stop()  # idempotent: the fixture's teardown calls it again
