"""Shared fixtures: a real S3-compatible server (SeaweedFS) on 127.0.0.1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
