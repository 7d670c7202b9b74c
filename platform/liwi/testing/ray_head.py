"""Start and stop a real single-node Ray head for tests and local end-to-end runs.

``ray start --head`` forks daemons (GCS, raylet, dashboard, …) and exits. We start it in a
new session so every daemon shares one process group whose id is the ``ray start`` PID;
:meth:`RayHead.stop` signals exactly that group (never ``ray stop``, which kills every Ray
process on the machine by name, including other users' clusters).

Every port is chosen free up front (worker ports random), and the temp dir is private and
short (Unix socket paths must stay under ~107 bytes), so several heads can run side by side.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

# Flags of ``ray start`` that take a port; each gets a free one (worker ports are random).
_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--node-manager-port",
    "--object-manager-port",
    "--runtime-env-agent-port",
)


class RayHeadError(RuntimeError):
    """The Ray head did not start or did not become ready."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_executable() -> str:
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise RayHeadError("the `ray` command was not found (pip install 'ray[default]')")
    return found


@dataclass
class RayHead:
    """A running Ray head: its dashboard URL, process group and log folder."""

    dashboard_url: str
    gcs_address: str
    pgid: int
    temp_dir: Path
    env: dict[str, str] = field(repr=False)
    auth_token: str | None = field(default=None, repr=False)

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}

    def alive(self) -> bool:
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM the head's process group, then SIGKILL what is left after ``timeout_s``.

        Idempotent; removes the head's temp dir (logs included) once the group is gone.
        """
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not self.alive():
                    shutil.rmtree(self.temp_dir, ignore_errors=True)
                    return
                time.sleep(0.2)
        raise RayHeadError(f"Ray head process group {self.pgid} survived SIGKILL")


def start_ray_head(*, attempts: int = 2, **kwargs) -> RayHead:
    """:func:`_start_once`, retried when Ray's own 30 s node-registration wait runs out.

    On a swamped machine the raylet can miss that hard-coded wait ("The current node timed
    out during startup"); a fresh start with fresh ports usually succeeds.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _start_once(**kwargs)
        except RayHeadError as exc:
            if attempt == attempts or "timed out during startup" not in str(exc):
                raise
    raise AssertionError("unreachable")


def _start_once(
    *,
    num_cpus: int = 1,
    auth_token: str | None = None,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 300.0,  # ~10 s on an idle 2-core box; minutes on a swamped one
) -> RayHead:
    """Start a head on this machine with the dashboard on 127.0.0.1.

    ``auth_token`` turns Ray's token authentication on (``RAY_AUTH_MODE=token``) with that
    token; ``None`` turns it off. ``env`` adds variables to the head's environment, which
    every job driver and worker inherits (that is how jobs get S3 credentials here).
    ``extra_args`` go to ``ray start`` as they are (e.g. ``--object-store-memory=…``).
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="liwi-ray-", dir="/tmp"))
    ports = {flag: free_port() for flag in _PORT_FLAGS}
    head_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    head_env.update(env or {})
    # Job entrypoints say `python …`: make that this interpreter (a venv need not be active).
    head_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), head_env.get("PATH", "")])
    head_env["HOME"] = str(temp_dir / "home")  # keep ~/.ray/auth_token out of the real home
    (temp_dir / "home").mkdir()
    if auth_token:
        head_env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=auth_token)
    else:
        head_env["RAY_AUTH_MODE"] = "disabled"
    cmd = [
        _ray_executable(),
        "start",
        "--head",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        f"--num-cpus={num_cpus}",
        "--num-gpus=0",
        "--min-worker-port=0",
        "--max-worker-port=0",
        f"--temp-dir={temp_dir / 't'}",
        "--disable-usage-stats",
        *[f"{flag}={port}" for flag, port in ports.items()],
        *extra_args,
    ]
    log = temp_dir / "ray-start.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=head_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    head = RayHead(
        dashboard_url=f"http://127.0.0.1:{ports['--dashboard-port']}",
        gcs_address=f"127.0.0.1:{ports['--port']}",
        pgid=proc.pid,
        temp_dir=temp_dir,
        env=head_env,
        auth_token=auth_token,
    )
    try:
        try:
            rc = proc.wait(timeout=ready_timeout_s)
        except subprocess.TimeoutExpired:
            raise RayHeadError(
                f"`ray start` still running after {ready_timeout_s:.0f}s:\n"
                + log.read_text()[-3000:]
            ) from None
        if rc != 0:
            raise RayHeadError(f"`ray start` exited {rc}:\n{log.read_text()[-3000:]}")
        _wait_ready(head, time.monotonic() + ready_timeout_s)
    except BaseException:
        with contextlib.suppress(RayHeadError):
            head.stop()
        raise
    return head


def _wait_ready(head: RayHead, deadline: float) -> None:
    """Poll the job API until it answers (the dashboard starts after ``ray start`` exits)."""
    last = ""
    while time.monotonic() < deadline:
        try:
            r = requests.get(
                head.dashboard_url + "/api/version", headers=head.auth_headers, timeout=2
            )
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    raise RayHeadError(f"Ray dashboard at {head.dashboard_url} not ready: {last}")


@contextlib.contextmanager
def ray_head(**kwargs) -> Iterator[RayHead]:
    """``start_ray_head(**kwargs)`` as a context manager that always stops it."""
    head = start_ray_head(**kwargs)
    try:
        yield head
    finally:
        head.stop()
