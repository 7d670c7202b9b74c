"""Shared pytest fixtures (each helper appends its own at the end)."""

from __future__ import annotations

import pytest


# -- MLflow (liwi.tracking) --------------------------------------------------------------
@pytest.fixture(scope="session")
def mlflow_server():
    """A real ``mlflow server`` on 127.0.0.1 (sqlite, proxied artifacts), stopped by PID."""
    from liwi.testing.mlflow_server import MlflowServer

    with MlflowServer() as server:
        yield server


@pytest.fixture
def local_mlflow_store(tmp_path, monkeypatch):
    """A fresh local sqlite store: LIWI_HOME in a temp dir, no MLFLOW_TRACKING_URI."""
    monkeypatch.setenv("LIWI_HOME", str(tmp_path / "liwi-home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    from liwi.tracking import local_store_uri

    return local_store_uri()
