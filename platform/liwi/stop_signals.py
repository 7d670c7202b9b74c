"""Stop signals for long-running commands: SIGTERM and SIGINT both raise in the main thread,
so a job or server stops through its ``finally`` blocks (summary written, Ray shut down)
whichever way it was asked to stop.

Ray's ``init`` installs its own SIGTERM handler (``sys.exit`` plus a native stack dump from
its core worker), so these are installed again after Ray starts.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises ``KeyboardInterrupt``."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


def catch_sigterm() -> Any:
    """Make SIGTERM raise :class:`Terminated`; returns the previous handler (``None`` off
    the main thread, where signal handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def catch_stop_signals() -> None:
    """:func:`catch_sigterm`, and SIGINT raises ``KeyboardInterrupt`` even when it was
    inherited as ignored: a shell without job control starts background commands with
    SIGINT ignored, and Python then never installs its Ctrl-C handler, so a server started
    that way could not be stopped with ``kill -INT`` at all."""
    if catch_sigterm() is not None:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def signal_of(interrupt: KeyboardInterrupt) -> signal.Signals:
    """Which signal raised ``interrupt``: SIGTERM for :class:`Terminated`, else SIGINT
    (a command it stopped exits ``128 +`` its number: 143 or 130, as a shell reports)."""
    return signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT


class StopRequest:
    """While entered (main thread), the first SIGINT or SIGTERM is only recorded in
    :attr:`signal`, so a loop can finish the step it is in, save, and stop; a second one
    raises as usual (Ctrl-C twice abandons the run). A signal that was ignored on entry (a
    background job's SIGINT) stays ignored; handlers are restored on exit."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # the second request: stop now
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.signal = signal.Signals(signum)
        print(
            f"{self.signal.name}: stopping after this step (again to abandon the run)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
