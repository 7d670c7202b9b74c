"""A throw-away ``mlflow server`` on 127.0.0.1 (sqlite backend, artifacts in a temp dir).

Used by the test suite and benchmarks to exercise :mod:`liwi.tracking` against the real
REST API (runs, metrics, artifacts proxied by the server, the model registry). The server
runs in its own process group, which is stopped by the PID we started (SIGTERM, then
SIGKILL after a grace period); its folder is removed.

    with MlflowServer() as server:
        os.environ["MLFLOW_TRACKING_URI"] = server.uri
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from liwi.testing.process import stop_process_group

HOST = "127.0.0.1"
READY_TIMEOUT_S = 180.0  # ~10-15 s on an idle 2-core box; minutes when the box is shared
STOP_TIMEOUT_S = 5.0  # grace period after SIGTERM before SIGKILL


class MlflowServerError(RuntimeError):
    """The MLflow test server could not be started or reached."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class MlflowServer:
    """Start ``mlflow server --workers 1`` with a sqlite store and proxied artifacts."""

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: Path | None = None
        self.port: int | None = None

    @property
    def uri(self) -> str:
        """The tracking URI clients use (``http://127.0.0.1:<port>``)."""
        if self.port is None:
            raise MlflowServerError("server not started")
        return f"http://{HOST}:{self.port}"

    def start(self) -> MlflowServer:
        if self.proc is not None:
            return self
        self.dir = Path(tempfile.mkdtemp(prefix="liwi-mlflow-"))
        self.port = _free_port()
        artifacts = self.dir / "artifacts"
        artifacts.mkdir()
        cmd = [
            self.python,
            "-m",
            "mlflow",
            "server",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.dir / 'mlflow.db'}",
            "--artifacts-destination",
            str(artifacts),
        ]
        self.log_path = self.dir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        # no background job runner (huey consumers): nothing we test uses server-side jobs
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        with open(self.log_path, "wb") as log:
            try:
                self.proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=self.dir,
                    env=env,
                    start_new_session=True,  # own process group: stopped as one, by our PID
                )
            except OSError as exc:
                self._cleanup()
                raise MlflowServerError(f"cannot run mlflow server: {exc}") from exc
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        url = f"{self.uri}/health"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise MlflowServerError(
                    f"mlflow server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise MlflowServerError(
            f"mlflow server not ready after {READY_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "<no log>"

    def stop(self) -> None:
        """SIGTERM the server's process group (our child's PID), SIGKILL after a grace period."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process_group(proc, STOP_TIMEOUT_S)
        self._cleanup()

    def _cleanup(self) -> None:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
