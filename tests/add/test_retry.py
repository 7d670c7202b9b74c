"""Transient S3 failures on a real S3 server (SeaweedFS): retried in the read stage, retried
again on resume, and every image ends in exactly one table.

The failures are injected at the read seam (``Lake.read_bytes``) of the loop runner, which
runs the same stages as Ray Data; the bytes, listing and tables are on the S3 server. The
identity decomposer keeps the runs fast (the agent is not what is tested here).
"""

from __future__ import annotations

from collections import Counter

import pytest

from liwi.add import reading
from liwi.add.driver import DecomposeConfig, run
from liwi.add.reading import READ_ATTEMPTS
from liwi.lake import Lake
from liwi.sample_photos import procedural_photo
from liwi.table import read_table

THROTTLED = "AWS Error SLOW_DOWN during GetObject operation: Please reduce your request rate."
TABLES = ("layers", "rejects", "errors")
FAST = {"runner": "loop", "decomposer": "identity", "max_side": 64, "progress": False}


class Faults:
    """``Lake.read_bytes`` that throttles chosen keys a number of times, counting reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.left: dict[str, int] = {}
        self.reads: Counter[str] = Counter()
        real = Lake.read_bytes

        def read_bytes(lake: Lake, path: str) -> bytes:
            name = path.rsplit("/", 1)[-1]
            self.reads[name] += 1
            if self.left.get(name, 0) > 0:
                self.left[name] -= 1
                raise OSError(THROTTLED)
            return real(lake, path)

        monkeypatch.setattr(Lake, "read_bytes", read_bytes)
        monkeypatch.setattr(reading.time, "sleep", lambda s: None)  # back-off, not waited


def rows_by_table(out: str) -> dict[str, list[tuple[str, str]]]:
    return {
        t: [(r["input_key"], r["source_uri"].rsplit("/", 1)[-1]) for r in read_table(f"{out}/{t}").to_pylist()]
        for t in TABLES
    }  # fmt: skip


@pytest.mark.integration
def test_transient_s3_failures_are_retried_and_each_image_lands_once(
    s3_bucket_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = Lake.from_uri(f"{s3_bucket_uri}/lake")
    names = [f"photo_{i}.jpg" for i in range(4)]
    for i, name in enumerate(names):
        src.write_bytes(src.path(name), procedural_photo(i, 64, 1))
    src.write_bytes(src.path("junk.png"), b"\x89PNG\r\n\x1a\n not really")  # permanent
    out = f"{s3_bucket_uri}/add"
    config = DecomposeConfig.from_dict({}, input=src.uri, output=out, **FAST)
    faults = Faults(monkeypatch)
    faults.left = {"photo_1.jpg": READ_ATTEMPTS - 1, "photo_2.jpg": 10 * READ_ATTEMPTS}

    first = run(config)
    # photo_1 failed READ_ATTEMPTS - 1 times and was read on the last try: it is in layers
    assert faults.reads["photo_1.jpg"] == READ_ATTEMPTS
    tables = rows_by_table(out)
    assert "photo_1.jpg" in {n for _, n in tables["layers"]}
    # photo_2 outlasted the retries: a transient error row; junk.png: a permanent one
    errors = {r["source_uri"].rsplit("/", 1)[-1]: r["reasons"][0] for r in read_table(f"{out}/errors").to_pylist()}  # fmt: skip
    assert set(errors) == {"photo_2.jpg", "junk.png"}
    assert errors["photo_2.jpg"].startswith("read_decode: transient: cannot read")
    assert "transient" not in errors["junk.png"]
    assert first["counts"] == {"ok": 3, "rejected": 0, "error": 2, "skipped": 0}
    assert first["inputs"] == 5 and first["unaccounted"] == 0

    # resume, S3 healthy again: only photo_2 is read again; junk.png is not (recorded once)
    faults.reads.clear()
    faults.left.clear()
    second = run(config)
    assert dict(faults.reads) == {"photo_2.jpg": 1}
    assert second["counts"] == {"ok": 1, "rejected": 0, "error": 0, "skipped": 4}
    assert second["errors_superseded"] == 1
    tables = rows_by_table(out)
    keys = [k for rows in tables.values() for k, _ in rows]
    uris = [n for rows in tables.values() for _, n in rows]
    assert len(keys) == len(set(keys)) == 5  # no image in two tables, none twice
    assert sorted(uris) == sorted([*names, "junk.png"])  # ok + rejected + error = inputs
    assert [n for _, n in tables["errors"]] == ["junk.png"]

    # a third run has nothing to do and reads nothing
    faults.reads.clear()
    third = run(config)
    assert third["counts"]["skipped"] == 5 and third["processed"] == 0 and not faults.reads
