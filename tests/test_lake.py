"""Lakes on a local path, ``file://`` and a real S3 server (SeaweedFS, signatures checked)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from liwi.lake import Lake, LakeError, S3Options
from liwi.testing.s3_server import SeaweedS3

FILES = {
    "b.png": b"png-b",
    "a.JPG": b"jpg-a",
    "notes.txt": b"text",
    "sub/deeper/d.png": b"png-d",
    ".hidden.png": b"hidden",
    ".cache/e.png": b"hidden folder",
    "sub/.tmp-0123-f.png": b"in-flight write",
}
VISIBLE_IMAGES = ["a.JPG", "b.png", "sub/deeper/d.png"]


@pytest.fixture(
    params=["path", "file", pytest.param("s3", marks=pytest.mark.integration)],
)
def lake_uri(request: pytest.FixtureRequest, tmp_path) -> str:
    """The same lake contract on three kinds of URI."""
    if request.param == "path":
        return str(tmp_path / "lake")
    if request.param == "file":
        return f"file://{tmp_path}/lake"
    return request.getfixturevalue("s3_bucket_uri")


def fill(lake: Lake) -> None:
    for rel, data in FILES.items():
        lake.write_bytes(lake.path(rel), data)


def rel(lake: Lake, paths: list[str]) -> list[str]:
    return [p[len(lake.root) + 1 :] for p in paths]


def test_write_read_and_list_with_extension_filter(lake_uri: str) -> None:
    lake = Lake.from_uri(lake_uri)
    fill(lake)
    assert rel(lake, lake.list_images()) == VISIBLE_IMAGES
    assert rel(lake, lake.list([".txt"])) == ["notes.txt"]
    assert rel(lake, lake.list([".PNG"])) == ["b.png", "sub/deeper/d.png"]
    assert rel(lake, lake.list()) == sorted(VISIBLE_IMAGES + ["notes.txt"])
    assert rel(lake, lake.list(recursive=False)) == ["a.JPG", "b.png", "notes.txt"]
    for name in VISIBLE_IMAGES:
        assert lake.read_bytes(lake.path(name)) == FILES[name]
    # overwrite replaces the content
    lake.write_bytes(lake.path("b.png"), b"new")
    assert lake.read_bytes(lake.path("b.png")) == b"new"


def test_child_is_a_lake_on_the_sub_prefix(lake_uri: str) -> None:
    lake = Lake.from_uri(lake_uri)
    fill(lake)
    sub = lake.child("sub", "deeper")
    assert sub.root == lake.path("sub/deeper")
    assert sub.scheme == lake.scheme
    assert rel(sub, sub.list_images()) == ["d.png"]
    sub.write_bytes(sub.path("g.png"), b"via child")
    assert lake.read_bytes(lake.path("sub/deeper/g.png")) == b"via child"
    # the child's URI resolves to the same place
    again = Lake.from_uri(sub.uri)
    assert again.root == sub.root
    assert rel(again, again.list_images()) == ["d.png", "g.png"]


def test_local_listing_never_follows_folder_links_and_reports_bad_links(tmp_path) -> None:
    from liwi.lake import BROKEN_LINK, LINK_OUTSIDE, NOT_REGULAR

    root, outside = tmp_path / "lake", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "a.png").write_bytes(b"a")
    (root / "sub" / "b.png").write_bytes(b"bb")
    (outside / "c.png").write_bytes(b"secret")
    (root / "loop").symlink_to(".")  # a folder loop (40 levels deep before the fix)
    (root / "sub" / "up").symlink_to("..")
    (root / "ext").symlink_to(outside)  # a folder outside the lake
    (root / "folder.png").symlink_to(root / "sub")  # a folder link with an image name
    (root / "inside.png").symlink_to(root / "a.png")  # a file link inside: that file
    (root / "leak.png").symlink_to(outside / "c.png")  # a file link outside: refused
    (root / "broken.png").symlink_to(root / "gone.png")
    (root / "self.png").symlink_to("self.png")  # a link loop on itself
    os.mkfifo(root / "pipe.png")  # reading it would block forever
    lake = Lake.from_uri(root)
    entries = {e.path[len(lake.root) + 1 :]: (e.size, e.problem) for e in lake.list_entries()}
    assert entries == {
        "a.png": (1, ""),
        "broken.png": (0, BROKEN_LINK),
        "inside.png": (1, ""),
        "leak.png": (0, LINK_OUTSIDE),
        "pipe.png": (0, NOT_REGULAR),
        "self.png": (0, BROKEN_LINK),
        "sub/b.png": (2, ""),
    }
    assert rel(lake, lake.list_images()) == ["a.png", "inside.png", "sub/b.png"]
    kept = lake.list_entries(exclude=[lake.path("sub"), lake.path("a.png")])
    assert [e.path for e in kept if not e.problem] == [lake.path("inside.png")]


def test_missing_lake_and_missing_file_are_clear_errors(lake_uri: str) -> None:
    lake = Lake.from_uri(lake_uri)
    with pytest.raises(LakeError, match="lake not found"):
        lake.list_images()
    assert not lake.exists(lake.root)
    lake.write_bytes(lake.path("x.png"), b"x")
    with pytest.raises(LakeError, match="not found: .*missing.png"):
        lake.read_bytes(lake.path("missing.png"))


def test_write_rejects_non_bytes_and_keeps_nothing(lake_uri: str) -> None:
    lake = Lake.from_uri(lake_uri)
    with pytest.raises(TypeError, match="needs bytes"):
        lake.write_bytes(lake.path("x.png"), "a string")  # type: ignore[arg-type]
    with pytest.raises(LakeError, match="lake not found"):
        lake.list()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://example.com/x", "unsupported lake URI scheme 'http'"),
        ("ftp://host/x", "unsupported lake URI scheme 'ftp'"),
        ("s3:///prefix-only", "S3 URI has no bucket"),
        ("s3://", "S3 URI has no bucket"),
    ],
)
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(LakeError, match=message):
        Lake.from_uri(uri)


def test_bad_endpoint_is_rejected() -> None:
    with pytest.raises(LakeError, match="endpoint must be http"):
        Lake.from_uri("s3://bucket/x", s3=S3Options(endpoint_url="ftp://127.0.0.1:1"))


# -- local atomic writes -----------------------------------------------------------------


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path) -> None:
    lake = Lake.from_uri(tmp_path)
    target = lake.path("a/b/c.bin")
    for i in range(3):
        lake.write_bytes(target, bytes([i]) * 1000)
    assert Path(target).read_bytes() == bytes([2]) * 1000
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["c.bin"]


def test_failing_local_write_keeps_old_content(tmp_path, monkeypatch) -> None:
    lake = Lake.from_uri(tmp_path)
    target = lake.path("c.bin")
    lake.write_bytes(target, b"old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # fail after the temp file has data
    with pytest.raises(LakeError, match="cannot write .*No space left"):
        lake.write_bytes(target, b"new content that never lands")
    assert Path(target).read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["c.bin"]


def test_local_write_into_a_file_parent_fails_clearly(tmp_path) -> None:
    lake = Lake.from_uri(tmp_path)
    lake.write_bytes(lake.path("f"), b"a file")
    with pytest.raises(LakeError, match="cannot write"):
        lake.write_bytes(lake.path("f/child.png"), b"x")
    assert lake.read_bytes(lake.path("f")) == b"a file"


# -- S3 specifics (real SeaweedFS, verified with boto3) -------------------------------------


@pytest.mark.integration
def test_s3_objects_land_where_boto3_sees_them(s3_bucket_uri: str, s3_env: SeaweedS3) -> None:
    lake = Lake.from_uri(s3_bucket_uri)
    fill(lake)
    bucket = s3_bucket_uri.removeprefix("s3://").split("/")[0]
    client = s3_env.client()
    listed = client.list_objects_v2(Bucket=bucket)
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert keys == sorted(f"prefix/{k}" for k in FILES)
    for name, data in FILES.items():
        assert client.get_object(Bucket=bucket, Key=f"prefix/{name}")["Body"].read() == data
    # and the other way round: an object put by boto3 is listed and read by the lake
    client.put_object(Bucket=bucket, Key="prefix/zz/from-boto3.webp", Body=b"webp")
    assert rel(lake, lake.list_images())[-1] == "zz/from-boto3.webp"
    assert lake.read_bytes(lake.path("zz/from-boto3.webp")) == b"webp"


@pytest.mark.integration
def test_s3_without_bucket_creation_does_not_create(s3_bucket_uri: str, s3_env: SeaweedS3) -> None:
    lake = Lake.from_uri(s3_bucket_uri, s3=S3Options(allow_bucket_creation=False))
    with pytest.raises(LakeError, match="NO_SUCH_BUCKET"):
        lake.write_bytes(lake.path("x.png"), b"x")
    buckets = [b["Name"] for b in s3_env.client().list_buckets().get("Buckets", [])]
    assert s3_bucket_uri.split("/")[2] not in buckets


@pytest.mark.integration
def test_s3_wrong_secret_is_rejected_and_never_shown(
    s3_bucket_uri: str, s3_env: SeaweedS3, monkeypatch, caplog
) -> None:
    good = Lake.from_uri(s3_bucket_uri)
    good.write_bytes(good.path("a.png"), b"a")
    wrong_secret = "wrong-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong_secret)
    bad = Lake.from_uri(s3_bucket_uri)
    errors = []
    for attempt in (
        bad.list_images,
        lambda: bad.read_bytes(bad.path("a.png")),
        lambda: bad.write_bytes(bad.path("b.png"), b"b"),
        lambda: bad.exists(bad.path("a.png")),
    ):
        with pytest.raises(LakeError) as info:
            attempt()
        errors.append(str(info.value))
    text = "\n".join(errors) + caplog.text
    assert "SIGNATURE_DOES_NOT_MATCH" in text or "ACCESS_DENIED" in text
    assert wrong_secret not in text
    assert s3_env.secret_key not in text
    # nothing was written with the wrong secret
    bucket = s3_bucket_uri.split("/")[2]
    keys = [o["Key"] for o in s3_env.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["prefix/a.png"]


@pytest.mark.integration
def test_s3_endpoint_from_options_beats_environment(
    s3_bucket_uri: str, s3_env: SeaweedS3, monkeypatch
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    lake = Lake.from_uri(s3_bucket_uri, s3=S3Options(endpoint_url=s3_env.endpoint_url))
    lake.write_bytes(lake.path("a.png"), b"a")
    assert rel(lake, lake.list_images()) == ["a.png"]
    # the environment alone points at the dead endpoint, so this must fail
    with pytest.raises(LakeError):
        Lake.from_uri(s3_bucket_uri).list_images()


def test_paged_listing_streams_the_same_entries_with_versions(lake_uri: str) -> None:
    lake = Lake.from_uri(lake_uri)
    fill(lake)
    from liwi.lake import IMAGE_EXTENSIONS

    pages = list(lake.iter_pages(IMAGE_EXTENSIONS, page=2))
    assert [len(p) for p in pages] == [2, 1]
    entries = [e for p in pages for e in p]
    assert rel(lake, [e.path for e in entries]) == VISIBLE_IMAGES
    assert all(
        e.version and e.size == len(FILES[n]) for e, n in zip(entries, VISIBLE_IMAGES, strict=True)
    )
    v = entries[1].version
    lake.write_bytes(entries[1].path, b"other content")  # rewritten: a new version
    assert next(lake.iter_pages(IMAGE_EXTENSIONS, page=2))[1].version != v
    assert not list(lake.iter_pages([".none"]))


@pytest.mark.parametrize(
    ("exc", "raw", "read"),  # transient as raised, and as Lake.read_bytes raises it
    [
        (OSError("AWS Error SLOW_DOWN during GetObject operation"), True, True),
        (OSError("AWS Error SERVICE_UNAVAILABLE (HTTP response code: 503)"), True, True),
        (OSError("AWS Error NETWORK_CONNECTION during GetObject: curlCode: 28"), True, True),
        (TimeoutError("read timed out"), True, True),
        (ConnectionResetError("peer"), True, True),
        (OSError(5, "Input/output error"), False, True),  # EIO: only from a lake read
        (OSError("AWS Error ACCESS_DENIED during GetObject operation"), False, False),
        (FileNotFoundError("gone"), False, False),
        (PermissionError("no"), False, False),
        (OSError("image file is truncated (3 bytes not processed)"), False, True),
        (ValueError("cannot identify image file"), False, False),
    ],
)
def test_transient_failures_are_told_from_permanent_ones(
    exc: Exception, raw: bool, read: bool
) -> None:
    from liwi.lake import is_transient

    assert is_transient(exc) is raw  # PIL raises OSError for broken bytes: permanent
    try:
        raise LakeError("cannot read s3://b/k") from exc  # how Lake.read_bytes wraps it
    except LakeError as wrapped:
        assert is_transient(wrapped) is read
