"""One place knows where the checkout and its default locations are."""

from pathlib import Path

from liwi import paths
from liwi.commands import demo
from liwi.submit import default_repo_root
from liwi.synth.backgrounds import default_background_dir
from liwi.synth.shapes import default_silhouette_dir

REPO = Path(__file__).resolve().parents[1]


def test_repo_root_and_defaults_point_into_this_checkout():
    assert paths.REPO_ROOT == REPO
    assert default_repo_root() == REPO
    assert default_silhouette_dir() == REPO / "data" / "shapes"
    assert default_background_dir() == REPO / "data" / "backgrounds"
    assert demo.DEFAULT_INPUT == REPO / "data" / "sample_lake"
    assert demo.DEFAULT_CONFIG.is_file() and paths.SERVE_CONFIG.is_file()


def test_liwi_home_prefers_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("LIWI_HOME", str(tmp_path))
    assert paths.liwi_home() == tmp_path
    monkeypatch.delenv("LIWI_HOME")
    assert paths.liwi_home() == REPO / ".liwi"
