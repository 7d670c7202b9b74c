"""JobConfig: YAML or defaults, command-line overrides, unknown keys rejected."""

import pytest

from liwi.config import ConfigError, JobConfig


class Example(JobConfig):
    size: int = 8  # a field with a default
    name: str = "x"  # another


def test_load_without_a_path_gives_defaults_plus_overrides():
    cfg = Example.load(None, size=16, name=None)  # None overrides are "not given"
    assert (cfg.size, cfg.name) == (16, "x")


def test_load_reads_yaml_and_overrides_win(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("size: 4\nname: from-yaml\n")
    assert Example.load(path).size == 4
    assert Example.load(str(path), size=32).model_dump() == {"size": 32, "name": "from-yaml"}


def test_unknown_keys_and_bad_values_are_errors_that_name_the_source(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("size: 4\ncolour: red\n")
    with pytest.raises(ConfigError, match=r"(?s)c\.yaml.*colour"):
        Example.load(path)
    with pytest.raises(ConfigError, match="(?s)command line.*size"):
        Example.load(None, size="big")
    with pytest.raises(ConfigError, match="not found"):
        Example.load(tmp_path / "missing.yaml")
