"""Shared fixtures: a real S3-compatible server (SeaweedFS) on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from liwi.testing.ray_head import RayHead
from liwi.testing.s3_server import SeaweedS3


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    """One SeaweedFS ``weed mini`` for the session; checks request signatures.

    If it cannot start this fails loudly (S3ServerError), it never skips: the S3 round
    trip is part of the default suite.
    """
    server = SeaweedS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """Point the standard AWS variables at the test server for one test."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    for var, value in s3_server.env().items():
        monkeypatch.setenv(var, value)
    return s3_server


@pytest.fixture
def s3_bucket_uri(s3_env: SeaweedS3) -> str:
    """A fresh ``s3://bucket-<uuid>/prefix`` (the bucket does not exist yet)."""
    return f"s3://bucket-{uuid.uuid4().hex[:16]}/prefix"


@pytest.fixture(scope="session")
def ray_local(s3_server: SeaweedS3) -> Iterator[None]:
    """One in-process local Ray for the whole session (startup is slow on 2 cores).

    Resources are declared (2 CPUs, no GPUs), never probed. Jobs that find Ray already
    initialised use it and leave it running. Local workers inherit the environment the
    raylet starts with (jobs never put credentials in a ``runtime_env``), so Ray starts
    with the test S3 server's variables set; the session's environment is restored after.
    """
    import ray

    from liwi.add.ray_adapter import start_local_ray

    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            mp.delenv(var, raising=False)
        for var, value in s3_server.env().items():
            mp.setenv(var, value)
        start_local_ray(num_cpus=2, num_gpus=0, object_store_mb=256)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_cluster(s3_server: SeaweedS3) -> Iterator[RayHead]:
    """A real Ray head (``ray start --head``) for Jobs API and Serve REST tests.

    Its own temp dir, token auth, the dashboard on 127.0.0.1, 4 logical CPUs (a job and a
    small Serve app side by side). Its environment is what a cluster gives its pods: the S3
    endpoint and credentials, and ``LIWI_WEIGHTS_DIR`` (the weight cache the image carries).
    Stopped by process group at the end of the session; its temp dir goes with it.
    """
    import secrets

    from liwi.testing.ray_head import start_ray_head
    from liwi.weights import cache_dir

    env = {**s3_server.env(), "LIWI_WEIGHTS_DIR": str(cache_dir())}
    head = start_ray_head(
        num_cpus=4,
        auth_token=secrets.token_hex(16),
        env=env,
        extra_args=["--object-store-memory=300000000"],  # 300 MB: a small box
    )
    try:
        yield head
    finally:
        head.stop()


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
