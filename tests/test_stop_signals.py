"""Stop signals: SIGINT and SIGTERM raise in the main thread, or are only recorded while a
loop finishes its step (a second one raises)."""

import os
import signal

import pytest

from liwi.stop_signals import StopRequest, Terminated, catch_stop_signals, signal_of


@pytest.fixture(autouse=True)
def _restore_handlers():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def test_the_first_signal_is_recorded_and_the_second_raises():
    # Python's own SIGINT handler, whatever this process inherited (a runner started in the
    # background has SIGINT ignored, which StopRequest rightly keeps)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.signal is signal.SIGTERM
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal is signal.SIGINT
        with pytest.raises(KeyboardInterrupt) as raised:
            os.kill(os.getpid(), signal.SIGINT)
        assert not isinstance(raised.value, Terminated)


def test_handlers_come_back_and_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)  # ignored: nothing recorded
        assert stop.signal is None
    assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_a_server_takes_sigint_even_when_started_with_it_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    catch_stop_signals()
    with pytest.raises(KeyboardInterrupt) as raised:
        os.kill(os.getpid(), signal.SIGINT)
    assert signal_of(raised.value) is signal.SIGINT
    with pytest.raises(Terminated) as raised:
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal_of(raised.value) is signal.SIGTERM
