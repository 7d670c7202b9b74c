"""Where things are: the source checkout and the default locations inside it.

``platform/liwi`` is this package, so the repository root is two levels up. The data,
job and Serve locations only exist in a source checkout (or an image built from one);
callers fall back to built-in defaults when a file is missing, never to the working
directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # platform/liwi
REPO_ROOT = PACKAGE_DIR.parents[1]  # the checkout holding platform/, jobs/, serve/, data/
DATA_DIR = REPO_ROOT / "data"
SAMPLE_LAKE = DATA_DIR / "sample_lake"  # the demo's bundled photos
SHAPES_DIR = DATA_DIR / "shapes"  # silhouettes for the synthetic generator
BACKGROUNDS_DIR = DATA_DIR / "backgrounds"  # photos for the synthetic generator
JOB_CONFIGS = REPO_ROOT / "jobs" / "configs"
SERVE_CONFIG = REPO_ROOT / "serve" / "config.yaml"


def liwi_home() -> Path:
    """``$LIWI_HOME`` or ``<repo>/.liwi`` (a writable source checkout), else ``~/.liwi``."""
    env = os.environ.get("LIWI_HOME")
    if env:
        return Path(env).expanduser()
    if (REPO_ROOT / "pyproject.toml").is_file() and os.access(REPO_ROOT, os.W_OK):
        return REPO_ROOT / ".liwi"
    return Path.home() / ".liwi"


def cache_file(data: bytes, suffix: str = ".pt") -> Path:
    """A local file holding ``data``: ``<liwi home>/cache/<sha256><suffix>``.

    Content-addressed, so fetching the same checkpoint again reuses the file instead of
    leaving a temporary copy per load; written under a temporary name and renamed, so a
    concurrent reader never sees half a file.
    """
    import hashlib

    from liwi.atomic import write_atomic

    path = liwi_home() / "cache" / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    return write_atomic(path, data)
