"""Model artifacts (checkpoints, pipeline folders) from a local path or a lake URI.

Nothing here talks to a model hub: weights come from where the config points
(``/models/x.pt``, ``file:///models/x.pt``, ``s3://bucket/models/x.pt``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from liwi.tools.base import ToolError


def is_remote(uri: str) -> bool:
    return urlparse(uri).scheme not in ("", "file")


def local_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(parsed.path if parsed.scheme == "file" else uri).expanduser()


def read_artifact(uri: str | os.PathLike[str]) -> bytes:
    """Bytes of one artifact file; a missing or unreadable file raises :class:`ToolError`."""
    from liwi.lake import Lake, LakeError

    uri = os.fspath(uri)
    if not is_remote(uri):
        path = local_path(uri)
        if not path.is_file():
            raise ToolError(f"model file not found: {path}")
        return path.read_bytes()
    try:
        lake = Lake.from_uri(uri)
        return lake.read_bytes(lake.root)
    except LakeError as exc:
        raise ToolError(f"cannot read model file {uri}: {exc}") from exc


def artifact_dir(uri: str | os.PathLike[str], cache_dir: str | None = None) -> Path:
    """A local folder holding the artifact folder ``uri`` (copied from a lake if remote).

    Local folders are used in place. Remote folders are copied file by file into
    ``cache_dir`` (or a fresh temporary folder) keeping their relative layout.
    """
    from liwi.lake import Lake, LakeError

    uri = os.fspath(uri)
    if not is_remote(uri):
        path = local_path(uri)
        if not path.is_dir():
            raise ToolError(f"model folder not found: {path}")
        return path
    try:
        lake = Lake.from_uri(uri)
        files = lake.list()
        if not files:
            raise ToolError(f"model folder {uri} is empty or missing")
        dest = Path(cache_dir or tempfile.mkdtemp(prefix="liwi-model-"))
        for path in files:
            rel = path[len(lake.root) :].lstrip("/")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(lake.read_bytes(path))
        return dest
    except LakeError as exc:
        raise ToolError(f"cannot copy model folder {uri}: {exc}") from exc
