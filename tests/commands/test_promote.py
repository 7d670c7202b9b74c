"""``liwi promote --serve-address`` rolls the Serve app onto the promoted version."""

from __future__ import annotations

import pytest

from liwi.cli import main as liwi


@pytest.fixture
def promoted(monkeypatch):
    """``tracking.promote`` answers version 7 of ``liwi`` (the registry itself: test_tracking)."""
    from liwi import tracking
    from liwi.tracking.registry import Promotion

    monkeypatch.setattr(
        tracking, "promote", lambda name, **kw: Promotion(name, "7", kw["alias"], {}, "6")
    )


def test_promote_with_a_serve_address_pins_the_promoted_version(promoted, monkeypatch, capsys):
    from liwi.serving import rollout

    calls = []

    def fake_rollout(address, uri, app=None, headers=None, **kw):
        calls.append((address, uri, app, headers))
        return ["liwi"]

    monkeypatch.setattr(rollout, "rollout", fake_rollout)
    monkeypatch.setenv("RAY_AUTH_TOKEN", "tok")
    argv = ["promote", "--name", "liwi", "--serve-address", "http://127.0.0.1:8265"]
    assert liwi(argv) == 0
    assert calls == [
        ("http://127.0.0.1:8265", "models:/liwi/7", None, {"Authorization": "Bearer tok"})
    ]
    out = capsys.readouterr().out
    assert "version 7 (was version 6)" in out and "serving models:/liwi/7" in out
    assert "tok" not in out


def test_promote_without_a_serve_address_touches_no_server(promoted, monkeypatch):
    from liwi.serving import rollout

    monkeypatch.setattr(rollout, "rollout", lambda *a, **k: pytest.fail("rolled"))
    assert liwi(["promote", "--name", "liwi"]) == 0


def test_a_failed_rollout_is_reported_after_the_promotion(promoted, monkeypatch, capsys):
    from liwi.serving import rollout

    def broken(*a, **k):
        raise rollout.RolloutError("PUT …: HTTP 500")

    monkeypatch.setattr(rollout, "rollout", broken)
    assert liwi(["promote", "--serve-address", "http://127.0.0.1:1"]) == 1
    assert "promoted, but the Serve rollout failed: PUT" in capsys.readouterr().err
