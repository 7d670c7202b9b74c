"""Lakes: one URI scheme for local folders and S3.

``/path``, ``file:///path`` and ``s3://bucket/prefix`` resolve to a pyarrow filesystem
plus a path on it. The S3 endpoint comes from :class:`S3Options` or the standard
``AWS_ENDPOINT_URL`` variable (``http://`` endpoints are allowed for local servers);
credentials come from the standard AWS chain (environment, profile files, instance
metadata) and are never logged or put in error messages.
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

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


class LakeError(OSError):
    """A lake URI is malformed, unreachable or refused."""


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
        )

    # -- listing / IO -----------------------------------------------------------------
    def list(self, extensions: Iterable[str] | None = None, recursive: bool = True) -> list[str]:
        """Sorted paths of files under the root, optionally filtered by extension."""
        import pyarrow.fs as pafs

        exts = tuple(e.lower() for e in extensions) if extensions else None
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
            if info.type != pafs.FileType.File:
                continue
            name = info.base_name
            rel = info.path[len(self.root) :].strip("/")
            if ".tmp-" in name or any(part.startswith(".") for part in rel.split("/")):
                continue  # temporary files of in-flight writes, hidden files and folders
            if exts is None or name.lower().endswith(exts):
                out.append(info.path)
        return sorted(out)

    def list_images(self) -> list[str]:
        """Every file whose extension looks like an image (decoding decides the rest)."""
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
        parent = os.path.dirname(path)
        tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
        try:
            os.makedirs(parent, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise LakeError(f"cannot write {self.uri_of(path)}: {exc}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def delete(self, path: str) -> None:
        self.fs.delete_file(path)

    def walk_bytes(self, paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        for p in paths:
            yield p, self.read_bytes(p)


def s3_filesystem(opts: S3Options) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for ``opts``; credentials come from the AWS chain."""
    import pyarrow.fs as pafs

    endpoint = opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, object] = {
        "region": opts.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
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
