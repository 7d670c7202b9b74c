"""The read stage's retry policy: transient failures are retried with back-off, permanent
ones are recorded once, and a transient failure that outlasts the retries is marked so the
next run tries again (the job-level story on S3 is in ``test_retry.py``)."""

from __future__ import annotations

import json

import pytest

from liwi.add import reading
from liwi.add.base import ERROR, OK, TRANSIENT_MARK, batch_to_rows, rows_to_batch
from liwi.add.reading import READ_ATTEMPTS, ReadDecode, read_with_retry
from liwi.lake import Lake
from liwi.sample_photos import procedural_photo

THROTTLED = "AWS Error SLOW_DOWN during GetObject operation: Please reduce your request rate."


class Faulty:
    """A read function that fails ``fails`` times with ``exc`` before it reads."""

    def __init__(self, read, exc: BaseException, fails: int) -> None:
        self.read, self.exc, self.fails, self.calls = read, exc, fails, 0

    def __call__(self, path: str) -> bytes:
        self.calls += 1
        if self.calls <= self.fails:
            raise self.exc
        return self.read(path)


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(reading.time, "sleep", waits.append)
    return waits


def test_transient_failures_are_retried_with_growing_waits(no_waiting: list[float]) -> None:
    read = Faulty(lambda p: b"bytes", OSError(THROTTLED), fails=READ_ATTEMPTS - 1)
    assert read_with_retry(read, "k") == b"bytes" and read.calls == READ_ATTEMPTS
    assert len(no_waiting) == READ_ATTEMPTS - 1
    assert no_waiting == sorted(no_waiting) and no_waiting[-1] <= reading.BACKOFF_MAX_S


@pytest.mark.parametrize("exc", [FileNotFoundError("gone"), ValueError("not an image")])
def test_permanent_failures_are_not_retried(exc: Exception) -> None:
    read = Faulty(lambda p: b"", exc, fails=1)
    with pytest.raises(type(exc)):
        read_with_retry(read, "k")
    assert read.calls == 1


def test_a_failure_that_outlasts_the_retries_is_a_transient_error_row(tmp_path, monkeypatch):
    (tmp_path / "a.jpg").write_bytes(procedural_photo(0, 64, 1))
    (tmp_path / "b.jpg").write_bytes(procedural_photo(1, 64, 1))
    real = Lake.read_bytes

    def flaky(lake: Lake, path: str) -> bytes:
        if path.endswith("a.jpg"):
            raise OSError(THROTTLED)
        return real(lake, path)

    monkeypatch.setattr(Lake, "read_bytes", flaky)
    paths = [str(tmp_path / n) for n in ("a.jpg", "b.jpg")]
    rows = batch_to_rows(ReadDecode(str(tmp_path))(rows_to_batch([{"path": p} for p in paths])))
    assert [r["status"] for r in rows] == [ERROR, "pending"]
    reason = json.loads(rows[0]["reasons"])[0]
    assert reason.startswith(f"read_decode{TRANSIENT_MARK}cannot read") and "SLOW_DOWN" in reason
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    bad = batch_to_rows(
        ReadDecode(str(tmp_path))(rows_to_batch([{"path": paths[1][:-5] + "c.jpg"}]))
    )
    assert TRANSIENT_MARK not in json.loads(bad[0]["reasons"])[0]  # undecodable: permanent
    assert OK not in {r["status"] for r in rows}  # ReadDecode leaves judging to later stages
