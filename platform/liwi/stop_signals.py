"""Stop signals for long-running commands: SIGTERM and SIGINT both raise in the main thread,
so a job or server stops through its ``finally`` blocks (summary written, Ray shut down)
whichever way it was asked to stop.

Ray's ``init`` installs its own SIGTERM handler (``sys.exit`` plus a native stack dump from
its core worker), so these are installed again after Ray starts.
"""

from __future__ import annotations

import signal
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
