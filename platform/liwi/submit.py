"""Submit the platform's jobs to a Ray cluster through the Ray Jobs API, and manage them.

:class:`RayJobs` wraps one cluster's job API (submit, list, status, logs, follow, stop,
wait); the CLI (``liwi submit``, ``liwi jobs``) is a thin shell over them.

What travels with a job (its ``runtime_env``):

* ``working_dir``: the repository (``jobs/``, configs, ``serve/``, …) minus ``.venv``,
  ``.git``, ``artifacts`` and caches; the entrypoint is ``python jobs/<job>.py --config
  <path relative to the repository>``.
* ``py_modules``: the ``liwi`` package itself, so every worker (Ray Data actors included)
  imports the submitted code, whatever the cluster image has installed.
* ``env_vars``: the lake and MLflow *endpoints* found in the local environment
  (:data:`FORWARDED_ENV_VARS`) plus ``--env K=V``. Never credentials: runtime envs are
  stored in the cluster's job table and shown by the dashboard, so secrets must come from
  the cluster's own environment (a Kubernetes Secret through ``envFrom``, the compose
  ``.env``); a secret-looking ``--env`` name is refused.

Authentication: Ray 2.60 enables token authentication by default (a bearer token on the
dashboard). We read the token the way Ray does — ``RAY_AUTH_TOKEN``, else the file named by
``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` — and send it whether or not
``RAY_AUTH_MODE`` is set locally (Ray's client only sends it in token mode). A 401 or 403
becomes a :class:`SubmitError` that says which of those was missing or wrong.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from liwi.lake import ENDPOINT_ENV_VARS
from liwi.paths import REPO_ROOT

# Job name -> entry point script, relative to the repository root.
JOB_SCRIPTS: dict[str, str] = {
    "decompose": "jobs/decompose.py",
    "train": "jobs/train.py",
    "evaluate": "jobs/evaluate.py",
}

# Endpoints (not credentials) copied from the submitting shell into the job's environment.
FORWARDED_ENV_VARS: tuple[str, ...] = (
    *ENDPOINT_ENV_VARS,
    "MLFLOW_TRACKING_URI",
    "MLFLOW_S3_ENDPOINT_URL",
)

# Variable names that look like credentials: refused in --env, never logged.
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE|API_KEY", re.I
)

# Paths left out of the uploaded working_dir (gitignore syntax, relative to it).
WORKING_DIR_EXCLUDES: tuple[str, ...] = (
    ".venv",
    ".git",
    "artifacts",
    "mlruns",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    "build",
)

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
DEFAULT_TOKEN_PATH = Path("~/.ray/auth_token")


class SubmitError(RuntimeError):
    """A submission or job query failed; the message says what to fix."""


# -- authentication ---------------------------------------------------------------------
@dataclass(frozen=True)
class AuthToken:
    """A Ray auth token and where it came from (for messages; the value is never shown)."""

    value: str
    source: str

    def __repr__(self) -> str:  # never print the token itself
        return f"AuthToken(source={self.source!r})"


def token_file_path(environ: Mapping[str, str] | None = None) -> Path:
    """The token file Ray reads: ``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser()
    home = env.get("HOME")
    return Path(home) / ".ray" / "auth_token" if home else DEFAULT_TOKEN_PATH.expanduser()


def find_auth_token(environ: Mapping[str, str] | None = None) -> AuthToken | None:
    """The token in Ray's order: ``RAY_AUTH_TOKEN``, then the token file; ``None`` if absent."""
    env = os.environ if environ is None else environ
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return AuthToken(env["RAY_AUTH_TOKEN"].strip(), "the RAY_AUTH_TOKEN variable")
    path = token_file_path(env)
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SubmitError(f"cannot read the Ray auth token file {path}: {exc.strerror}") from None
    return AuthToken(value, f"the token file {path}") if value else None


def refused_message(address: str, status: int, token: AuthToken | None, path: Path) -> str:
    """What to do when the dashboard answers 401 (no token) or 403 (wrong token)."""
    where = (
        f"Set RAY_AUTH_TOKEN to the cluster's token, or write it to {path} "
        "(RAY_AUTH_TOKEN_PATH names another file). On the head node `ray get-auth-token` "
        "prints it; on KubeRay it is in the Secret the RayCluster's authOptions name."
    )
    if status == 401 or token is None:
        return (
            f"the Ray cluster at {address} refused the request (HTTP {status}): it requires "
            f"token authentication and no token was found (RAY_AUTH_TOKEN is unset and {path} "
            f"does not exist). {where}"
        )
    return (
        f"the Ray cluster at {address} refused the request (HTTP {status}): the auth token "
        f"from {token.source} is not this cluster's token. {where}"
    )


# -- addresses and errors -------------------------------------------------------------------------
def resolve_address(address: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``address``, else ``$RAY_API_SERVER_ADDRESS``, else an http ``$RAY_ADDRESS``, else local."""
    env = os.environ if environ is None else environ
    if address:
        chosen = address
    elif env.get("RAY_API_SERVER_ADDRESS"):
        chosen = env["RAY_API_SERVER_ADDRESS"]
    elif env.get("RAY_ADDRESS", "").startswith(("http://", "https://")):
        chosen = env["RAY_ADDRESS"]
    else:
        chosen = DEFAULT_ADDRESS
    if not chosen.startswith(("http://", "https://")):
        raise SubmitError(
            f"job address must be the dashboard's HTTP URL, e.g. http://HEAD:8265, got {chosen!r}"
        )
    return chosen.rstrip("/")


@contextlib.contextmanager
def _without_address_env() -> Iterator[None]:
    """Ray lets RAY_ADDRESS / RAY_API_SERVER_ADDRESS override an explicit address; we don't."""
    saved = {
        k: os.environ.pop(k) for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS") if k in os.environ
    }
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _translate_errors(address: str, token: AuthToken | None) -> Iterator[None]:
    """Turn Ray's auth and connection errors into one clear :class:`SubmitError`."""
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        status = 401 if "Authentication required" in exc.message else 403
        raise SubmitError(refused_message(address, status, token, token_file_path())) from None
    except ConnectionError as exc:
        raise SubmitError(
            f"cannot reach the Ray dashboard at {address} ({exc}); is the head running and "
            "is the dashboard port (default 8265) reachable?"
        ) from None
    except RuntimeError as exc:
        if isinstance(exc, SubmitError):
            raise
        raise SubmitError(f"Ray job API at {address}: {exc}") from None


# -- building a submission --------------------------------------------------------------
def default_repo_root() -> Path:
    """The repository holding this ``liwi`` package (where ``jobs/`` lives)."""
    return REPO_ROOT


def parse_env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``["K=V", ...]`` -> dict; refuses malformed pairs and credential-looking names."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise SubmitError(f"--env expects NAME=VALUE, got {pair.split('=')[0]!r}=…")
        if SECRET_NAME.search(key):
            raise SubmitError(
                f"--env {key}=… looks like a credential; job environments are stored and shown "
                "by the Ray dashboard, so credentials must come from the cluster's environment "
                "(a Kubernetes Secret via envFrom, or the compose .env file), not the submission"
            )
        out[key] = value
    return out


def forwarded_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The endpoint variables of :data:`FORWARDED_ENV_VARS` set in ``environ``."""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in FORWARDED_ENV_VARS if env.get(k)}


def config_in_working_dir(config: str | os.PathLike[str], working_dir: Path) -> str:
    """Check ``config`` is a YAML mapping inside ``working_dir``; return its relative path."""
    path = Path(config)
    if not path.is_absolute() and not path.exists() and (working_dir / path).exists():
        path = working_dir / path
    path = path.resolve()
    if not path.is_file():
        raise SubmitError(f"config file not found: {config}")
    try:
        rel = path.relative_to(working_dir.resolve())
    except ValueError:
        raise SubmitError(
            f"config {path} is outside the working dir {working_dir}; it must travel with the "
            "job, so put it under the repository (e.g. jobs/configs/) or pass --working-dir"
        ) from None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SubmitError(f"{rel}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SubmitError(f"{rel}: expected a mapping at the top level")
    return rel.as_posix()


def build_entrypoint(job: str, config_rel: str, job_args: Sequence[str] = ()) -> str:
    """``python jobs/<job>.py --config <config> [job_args…]``, shell-quoted."""
    if job not in JOB_SCRIPTS:
        raise SubmitError(f"unknown job {job!r}; choose one of {', '.join(JOB_SCRIPTS)}")
    return shlex.join(["python", JOB_SCRIPTS[job], "--config", config_rel, *job_args])


def build_runtime_env(
    working_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The job's ``runtime_env``: code, the ``liwi`` package and endpoint variables."""
    env_vars = {**forwarded_env(environ), **(extra_env or {})}
    env_vars.setdefault("PYTHONUNBUFFERED", "1")  # logs stream as they are printed
    return {
        "working_dir": str(working_dir),
        "excludes": list(WORKING_DIR_EXCLUDES),
        "py_modules": [str(Path(__file__).resolve().parent)],
        "env_vars": env_vars,
    }


def describe_env(env_vars: Mapping[str, str]) -> str:
    """``K=V`` list for logs, with anything credential-like masked."""
    return ", ".join(
        f"{k}={'***' if SECRET_NAME.search(k) else v}" for k, v in sorted(env_vars.items())
    )


# -- the client -----------------------------------------------------------------------
class RayJobs:
    """The Ray Jobs API of one cluster, with auth and errors handled the platform's way."""

    def __init__(self, address: str | None = None, token: AuthToken | None = None):
        from ray.job_submission import JobSubmissionClient

        self.address = resolve_address(address)
        self.token = token if token is not None else find_auth_token()
        headers = {"Authorization": f"Bearer {self.token.value}"} if self.token else None
        with self._errors(), _without_address_env():
            self.client = JobSubmissionClient(self.address, headers=headers)

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return _translate_errors(self.address, self.token)

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        with self._errors():
            return getattr(self.client, fn)(*args, **kwargs)

    # -- submitting -----------------------------------------------------------------------
    def submit(
        self,
        job: str,
        config: str | os.PathLike[str],
        *,
        extra_env: Mapping[str, str] | None = None,
        working_dir: str | os.PathLike[str] | None = None,
        job_args: Sequence[str] = (),
    ) -> str:
        """Submit ``jobs/<job>.py --config <config> [job_args…]``; return the submission id."""
        wd = Path(working_dir).resolve() if working_dir else default_repo_root()
        if job in JOB_SCRIPTS and not (wd / JOB_SCRIPTS[job]).is_file():
            raise SubmitError(
                f"{wd / JOB_SCRIPTS[job]} not found: is --working-dir the repository?"
            )
        entrypoint = build_entrypoint(job, config_in_working_dir(config, wd), job_args)
        submission_id = f"liwi-{job}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        return self.submit_entrypoint(
            entrypoint,
            build_runtime_env(wd, extra_env),
            submission_id=submission_id,
            metadata={"liwi_job": job, "liwi_config": Path(config).as_posix()},
        )

    def submit_entrypoint(
        self,
        entrypoint: str,
        runtime_env: Mapping[str, Any] | None = None,
        submission_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """Submit any shell command with a runtime env (ad-hoc runs and tests)."""
        return self._call(
            "submit_job",
            entrypoint=entrypoint,
            runtime_env=dict(runtime_env or {}),
            submission_id=submission_id,
            metadata=dict(metadata or {}),
        )

    # -- querying -------------------------------------------------------------------------
    def list(self) -> list[Any]:
        """Every job the cluster knows, oldest first."""
        return sorted(self._call("list_jobs"), key=lambda j: j.start_time or 0)

    def info(self, submission_id: str) -> Any:
        return self._call("get_job_info", submission_id)

    def status(self, submission_id: str) -> str:
        return str(self._call("get_job_status", submission_id).value)

    def logs(self, submission_id: str) -> str:
        return self._call("get_job_logs", submission_id)

    def stop(self, submission_id: str) -> bool:
        """Ask the cluster to stop a job; ``False`` if it had already finished."""
        return bool(self._call("stop_job", submission_id))

    def follow(self, submission_id: str, write: Callable[[str], Any]) -> None:
        """Stream the job's logs to ``write`` until the job ends."""
        import asyncio

        async def _tail() -> None:
            async for chunk in self.client.tail_job_logs(submission_id):
                write(chunk)

        with self._errors():
            asyncio.run(_tail())

    def wait(self, submission_id: str, timeout_s: float | None = None, poll_s: float = 1.0) -> str:
        """Poll until the job reaches a terminal state; return it (raises on timeout)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.status(submission_id)
            if status in TERMINAL_STATES:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise SubmitError(f"job {submission_id} still {status} after {timeout_s:.0f}s")
            time.sleep(poll_s)
