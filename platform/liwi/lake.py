"""Lakes: one URI scheme for local folders and S3.

``/path``, ``file:///path`` and ``s3://bucket/prefix`` resolve to a pyarrow filesystem
plus a path on it. The S3 endpoint comes from :class:`S3Options` or the standard
``AWS_ENDPOINT_URL`` variable (``http://`` endpoints are allowed for local servers);
credentials come from the standard AWS chain (environment, profile files, instance
metadata) and are never logged or put in error messages.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from liwi.atomic import write_atomic

if TYPE_CHECKING:
    import pyarrow.fs as pafs

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

# Where S3 is (not who may use it): safe to pass to workers and jobs. Credentials
# (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) are never among them.
ENDPOINT_ENV_VARS: tuple[str, ...] = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


def endpoint_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The :data:`ENDPOINT_ENV_VARS` set in ``environ`` (default: this process)."""
    env = os.environ if environ is None else environ
    return {k: env[k] for k in ENDPOINT_ENV_VARS if env.get(k)}


def _entry_filter(
    extensions: Iterable[str] | None, exclude: Iterable[str]
) -> Callable[[str, str], bool]:
    """``keep(path, name)``: the file has one of ``extensions`` (any when None) and lies
    neither at nor under a path of ``exclude``."""
    exts = tuple(e.lower() for e in extensions) if extensions else None
    excluded = tuple(p.rstrip("/") for p in exclude)

    def keep(path: str, name: str) -> bool:
        if any(path == p or path.startswith(p + "/") for p in excluded):
            return False
        return exts is None or name.lower().endswith(exts)

    return keep


class LakeError(OSError):
    """A lake URI is malformed, unreachable or refused."""


# Words in an S3/HTTP error that mark it as worth retrying: throttling, 5xx, timeouts,
# dropped connections (pyarrow and botocore put the AWS error code in the message).
TRANSIENT_MARKERS: tuple[str, ...] = (
    "SLOW_DOWN",
    "SlowDown",
    "THROTTL",
    "Throttl",
    "SERVICE_UNAVAILABLE",
    "ServiceUnavailable",
    "INTERNAL_FAILURE",
    "InternalError",
    "NETWORK_CONNECTION",
    "REQUEST_TIMEOUT",
    "RequestTimeout",
    "timed out",
    "Timeout",
    "Connection reset",
    "HTTP response code: 5",
    "response code 5",
)
# OSErrors that retrying cannot fix: the file is gone, refused or not a file.
PERMANENT_OS_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an I/O failure that may pass on a retry.

    Timeouts and dropped connections are, and S3 throttling / 5xx (by the AWS error code
    in the message). Any other ``OSError`` counts only when a lake operation raised it
    (a :class:`LakeError` wrapping it: EIO, EAGAIN, …), unless retrying cannot fix it
    (missing, forbidden, not a file, any other AWS error code). Everything else is
    permanent, also the ``OSError`` s a decoder raises for broken bytes (PIL does).
    """
    from_lake = False
    while isinstance(exc, LakeError) and exc.__cause__ is not None:
        exc, from_lake = exc.__cause__, True
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    if not isinstance(exc, OSError) or isinstance(exc, PERMANENT_OS_ERRORS):
        return False
    text = str(exc)
    if any(m in text for m in TRANSIENT_MARKERS):
        return True
    if "AWS Error" in text or "NO_SUCH" in text or "ACCESS_DENIED" in text:
        return False  # any other S3 error code (no such key, access denied, …)
    return from_lake and not isinstance(exc, LakeError)


# Why a listed file cannot be read (an ``Entry.problem``).
BROKEN_LINK = "broken symbolic link"
LINK_OUTSIDE = "symbolic link to a file outside the lake"
NOT_REGULAR = "not a regular file"


@dataclass(frozen=True)
class Entry:
    """One listed file: its path on the lake's filesystem, size, and why it cannot be read."""

    path: str
    size: int  # bytes (0 when unreadable)
    problem: str = ""  # "" = readable; else BROKEN_LINK, LINK_OUTSIDE or NOT_REGULAR
    version: str = ""  # changes when the content may have: S3 ETag, or "<size>-<mtime ns>"


def _local_version(st: os.stat_result) -> str:
    return f"{st.st_size}-{st.st_mtime_ns}"


def _hidden(name: str) -> bool:
    """Hidden files and folders, and the temporary files of in-flight writes."""
    return name.startswith(".") or ".tmp-" in name


def _local_entry(e: os.DirEntry[str], real_root: str) -> Entry | None:
    """The entry of a file or link; ``None`` for a link to a folder (never followed)."""
    if not e.is_symlink():
        if not e.is_file(follow_symlinks=False):
            return Entry(e.path, 0, NOT_REGULAR)  # a FIFO or device: reading could hang
        st = e.stat(follow_symlinks=False)
        return Entry(e.path, st.st_size, version=_local_version(st))
    target = os.path.realpath(e.path)
    if not os.path.exists(target):
        return Entry(e.path, 0, BROKEN_LINK)
    if os.path.isdir(target):
        return None
    if os.path.commonpath([real_root, target]) != real_root:
        return Entry(e.path, 0, LINK_OUTSIDE)
    if not os.path.isfile(target):
        return Entry(e.path, 0, NOT_REGULAR)
    st = os.stat(target)
    return Entry(e.path, st.st_size, version=_local_version(st))


@dataclass(frozen=True)
class S3Options:
    """How to reach S3. ``None`` fields fall back to the standard AWS variables/chain."""

    endpoint_url: str | None = None  # e.g. http://127.0.0.1:8333; default AWS_ENDPOINT_URL
    region: str | None = None  # default AWS_REGION / AWS_DEFAULT_REGION, else us-east-1
    allow_bucket_creation: bool = True  # create the bucket on first write if missing


@dataclass(frozen=True)
class Lake:
    """A resolved lake location: a filesystem and the root path on it."""

    uri: str
    fs: pafs.FileSystem
    root: str  # path on ``fs`` (bucket/prefix for S3, absolute path locally)
    scheme: str  # "file" or "s3"
    allow_bucket_creation: bool = True  # S3 only: create a missing bucket on first write
    endpoint_url: str | None = None  # S3 only: the configured endpoint (None: AWS chain)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_uri(cls, uri: str | os.PathLike[str], s3: S3Options | None = None) -> Lake:
        """Resolve ``uri`` (``/path``, ``file://``, ``s3://bucket/prefix``)."""
        uri = os.fspath(uri)
        parsed = urlparse(uri)
        if parsed.scheme in ("", "file"):
            import pyarrow.fs as pafs

            path = parsed.path if parsed.scheme == "file" else uri
            root = str(Path(path).expanduser().resolve())
            return cls(uri=uri, fs=pafs.LocalFileSystem(), root=root, scheme="file")
        if parsed.scheme == "s3":
            if not parsed.netloc:
                raise LakeError(f"S3 URI has no bucket: {uri!r} (expected s3://bucket/prefix)")
            opts = s3 or S3Options()
            root = (parsed.netloc + "/" + parsed.path.strip("/")).rstrip("/")
            return cls(
                uri=uri,
                fs=s3_filesystem(opts),
                root=root,
                scheme="s3",
                allow_bucket_creation=opts.allow_bucket_creation,
                endpoint_url=opts.endpoint_url,
            )
        raise LakeError(f"unsupported lake URI scheme {parsed.scheme!r} in {uri!r}")

    # -- paths ------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """Path on ``fs`` of ``parts`` under the root."""
        return posixpath.join(self.root, *[p.strip("/") for p in parts if p])

    def uri_of(self, path: str) -> str:
        """Full URI of a path on ``fs`` (inverse of :meth:`path`)."""
        return f"s3://{path}" if self.scheme == "s3" else path

    def child(self, *parts: str) -> Lake:
        """A lake rooted at a sub-folder."""
        sub = self.path(*parts)
        return Lake(
            uri=self.uri_of(sub),
            fs=self.fs,
            root=sub,
            scheme=self.scheme,
            allow_bucket_creation=self.allow_bucket_creation,
            endpoint_url=self.endpoint_url,
        )

    # -- listing / IO -----------------------------------------------------------------
    def list(self, extensions: Iterable[str] | None = None, recursive: bool = True) -> list[str]:
        """Sorted paths of the readable files under the root, optionally by extension."""
        return [e.path for e in self.list_entries(extensions, recursive) if not e.problem]

    def list_entries(
        self,
        extensions: Iterable[str] | None = None,
        recursive: bool = True,
        exclude: Iterable[str] = (),
    ) -> list[Entry]:
        """Sorted entries under the root: every file, with its size and any reason it
        cannot be read (see :class:`Entry`).

        Skipped: hidden files and folders, in-flight ``.tmp-*`` files, and whatever lies at
        or under a path in ``exclude``. Locally, symbolic links to folders are never
        followed (no loops, nothing outside the lake is walked); a link to a file counts
        as that file if it stays inside the lake, otherwise it is listed with a problem.
        """
        keep = _entry_filter(extensions, exclude)
        if self.scheme == "file":
            entries = list(_iter_local(self.root, keep, recursive))
        else:
            entries = self._list_remote(recursive, keep)
        return sorted(entries, key=lambda e: e.path)

    def _list_remote(self, recursive: bool, keep: Callable[[str, str], bool]) -> list[Entry]:
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.root, recursive=recursive))
        except FileNotFoundError as exc:
            raise LakeError(f"lake not found: {self.uri}") from exc
        except OSError as exc:
            if "NO_SUCH_BUCKET" in str(exc):
                raise LakeError(f"lake not found: {self.uri} (no such bucket)") from exc
            raise LakeError(f"cannot list {self.uri}: {_redact(exc)}") from exc
        out = []
        for info in infos:
            rel = info.path[len(self.root) :].strip("/")
            if info.type != pafs.FileType.File or any(_hidden(p) for p in rel.split("/")):
                continue
            if keep(info.path, info.base_name):
                out.append(Entry(info.path, int(info.size or 0)))
        return out

    def iter_pages(
        self, extensions: Iterable[str] | None = None, exclude: Iterable[str] = (), page: int = 1000
    ) -> Iterator[list[Entry]]:
        """The entries of :meth:`list_entries`, streamed in pages of at most ``page``.

        Nothing is held beyond one folder (locally, walked depth first, each folder's names
        sorted) or one S3 listing page (``ListObjectsV2``, key order, ETag as ``version``),
        so the first page comes after one request whatever the size of the lake.
        """
        keep = _entry_filter(extensions, exclude)
        source = _iter_local(self.root, keep) if self.scheme == "file" else self._iter_s3(keep)
        buf: list[Entry] = []
        for entry in source:
            buf.append(entry)
            if len(buf) >= page:
                yield buf
                buf = []
        if buf:
            yield buf

    def _iter_s3(self, keep: Callable[[str, str], bool]) -> Iterator[Entry]:
        bucket, _, prefix = self.root.partition("/")
        client = s3_client(S3Options(endpoint_url=self.endpoint_url))
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
        )
        try:
            for listing in pages:
                for obj in listing.get("Contents", []):
                    path = f"{bucket}/{obj['Key']}"
                    rel = path[len(self.root) :].strip("/")
                    if obj["Key"].endswith("/") or any(_hidden(p) for p in rel.split("/")):
                        continue
                    if keep(path, path.rsplit("/", 1)[-1]):
                        etag = str(obj.get("ETag", "")).strip('"')
                        yield Entry(path, int(obj.get("Size", 0)), version=etag)
        except Exception as exc:  # noqa: BLE001 - botocore raises its own classes
            if "NoSuchBucket" in str(exc):
                raise LakeError(f"lake not found: {self.uri} (no such bucket)") from exc
            raise LakeError(f"cannot list {self.uri}: {_redact(exc)}") from exc

    def list_images(self) -> list[str]:
        """Every readable file whose extension looks like an image (decoding decides the rest)."""
        return self.list(IMAGE_EXTENSIONS)

    def exists(self, path: str) -> bool:
        """Whether a file or folder exists at ``path`` (errors other than absence raise)."""
        import pyarrow.fs as pafs

        try:
            return self.fs.get_file_info(path).type != pafs.FileType.NotFound
        except OSError as exc:
            raise LakeError(f"cannot check {self.uri_of(path)}: {_redact(exc)}") from exc

    def read_bytes(self, path: str) -> bytes:
        try:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        except FileNotFoundError as exc:
            raise LakeError(f"not found: {self.uri_of(path)}") from exc
        except OSError as exc:
            raise LakeError(f"cannot read {self.uri_of(path)}: {_redact(exc)}") from exc

    def sha256(self, path: str, chunk: int = 1 << 20) -> str:
        """Hex sha256 of a file's bytes, read ``chunk`` bytes at a time."""
        h = hashlib.sha256()
        try:
            with self.fs.open_input_stream(path) as f:
                while data := f.read(chunk):
                    h.update(data)
        except FileNotFoundError as exc:
            raise LakeError(f"not found: {self.uri_of(path)}") from exc
        except OSError as exc:
            raise LakeError(f"cannot read {self.uri_of(path)}: {_redact(exc)}") from exc
        return h.hexdigest()

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write atomically: readers see the old content or the new, never a partial file.

        Locally the bytes go to a hidden temporary name in the same folder, are flushed to
        disk, then renamed into place; a failed write removes the temporary file and leaves
        any old content untouched. On S3 an object PUT is already atomic, so the temporary
        step is skipped; a missing bucket is created when ``S3Options.allow_bucket_creation``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"write_bytes needs bytes, got {type(data).__name__}")
        if self.scheme == "file":
            self._write_local(path, bytes(data))
            return
        try:
            self._put(path, data)
        except OSError as exc:
            if not (self.allow_bucket_creation and "NO_SUCH_BUCKET" in str(exc)):
                raise LakeError(f"cannot write {self.uri_of(path)}: {_redact(exc)}") from exc
            try:  # first write into a new bucket: create it, then retry once
                self.fs.create_dir(path.split("/", 1)[0], recursive=False)
                self._put(path, data)
            except OSError as exc2:
                raise LakeError(f"cannot write {self.uri_of(path)}: {_redact(exc2)}") from exc2

    def _put(self, path: str, data: bytes) -> None:
        with self.fs.open_output_stream(path) as f:
            f.write(data)

    def _write_local(self, path: str, data: bytes) -> None:
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise LakeError(f"cannot write {self.uri_of(path)}: {exc}") from exc

    def delete(self, path: str) -> None:
        self.fs.delete_file(path)

    def walk_bytes(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for p in paths:
            yield p, self.read_bytes(p)


def _iter_local(
    root: str, keep: Callable[[str, str], bool], recursive: bool = True
) -> Iterator[Entry]:
    """Depth-first walk of a local folder, names sorted per folder, symbolic links to
    folders never followed, one folder in memory at a time."""
    real_root = os.path.realpath(root)
    if not os.path.isdir(real_root):
        raise LakeError(f"lake not found: {root}")
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                found = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise LakeError(f"cannot list {folder}: {exc}") from exc
        subfolders = []
        for e in found:
            if _hidden(e.name):
                continue
            if e.is_dir(follow_symlinks=False):
                if recursive:
                    subfolders.append(e.path)
            elif keep(e.path, e.name) and (entry := _local_entry(e, real_root)) is not None:
                yield entry
        stack.extend(reversed(subfolders))  # files of a folder first, then its folders


def s3_client(opts: S3Options) -> object:
    """A boto3 S3 client (for paged listings with ETags); credentials from the AWS chain."""
    import boto3

    endpoint = opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=_region(opts))


def _region(opts: S3Options) -> str:
    """The S3 region: the lake's option, else the AWS environment, else us-east-1."""
    env = os.environ
    return opts.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_filesystem(opts: S3Options) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for ``opts``; credentials come from the AWS chain."""
    import pyarrow.fs as pafs

    endpoint = opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, object] = {
        "region": _region(opts),
        "allow_bucket_creation": opts.allow_bucket_creation,
    }
    if endpoint:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise LakeError(f"S3 endpoint must be http(s)://host[:port], got {endpoint!r}")
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        kwargs["access_key"] = key
        kwargs["secret_key"] = secret
        if os.environ.get("AWS_SESSION_TOKEN"):
            kwargs["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    return pafs.S3FileSystem(**kwargs)


def _redact(exc: BaseException) -> str:
    """Error text with any credential values from the environment removed."""
    text = str(exc)
    for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID"):
        val = os.environ.get(var)
        if val and len(val) >= 4:
            text = text.replace(val, "***")
    return text
