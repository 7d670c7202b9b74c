"""Stopping the servers that tests start: by the PID we hold, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process_group(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM the process group led by ``proc`` (started with ``start_new_session=True``),
    SIGKILL it after ``grace_s`` seconds, and kill any group member that outlives the leader.
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)
    # workers (e.g. uvicorn's) live in the same group; none may outlive the leader
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
