"""Atomic file writes: a reader sees the old file, the whole new file, or nothing.

One implementation for every local write that others may read concurrently: lake files,
the checkpoint cache and the weight cache.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    check: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``data`` to ``path`` through a temporary name beside it, then rename.

    The temporary file is unique to this process and call (several workers of one node
    may write the same path at once; the last rename wins with identical content), is
    flushed to disk before the rename, and is removed on any failure. ``check`` (given the
    temporary path) may raise to refuse the content: the target is then left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if check is not None:
            check(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
