"""The shipped Serve configs load, validate (Ray's schema + ours) and take overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from liwi.config import ConfigError
from liwi.serving.runner import IMPORT_PATH, apply_overrides, base_url, load_serve_config
from liwi.serving.settings import ServeAppArgs

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "serve").glob("*.yaml"))


def deployments(config: dict) -> dict[str, dict]:
    (app,) = [a for a in config["applications"] if a["import_path"] == IMPORT_PATH]
    return {d["name"]: d for d in app["deployments"]}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_is_valid(path):
    config = load_serve_config(path)
    (app,) = config["applications"]
    args = ServeAppArgs.from_dict(app["args"])
    model = deployments(config)["LiwiModel"]
    # A full batch must fit on one replica, with room for the next one to form.
    assert model["max_ongoing_requests"] > args.max_batch_size
    auto = model["autoscaling_config"]
    assert 1 <= auto["min_replicas"] < auto["max_replicas"]
    assert {"target_ongoing_requests", "upscale_delay_s", "downscale_delay_s"} <= set(auto)
    assert model["max_queued_requests"] > 0


def test_shipped_configs_are_cpu_here_and_gpu_on_clusters():
    local = deployments(load_serve_config(REPO / "serve" / "config.yaml"))
    gpu = deployments(load_serve_config(REPO / "serve" / "config.gpu.yaml"))
    assert local["LiwiModel"]["ray_actor_options"].get("num_gpus", 0) == 0
    assert gpu["LiwiModel"]["ray_actor_options"]["num_gpus"] == 1


def test_overrides_and_base_url():
    config = load_serve_config(
        REPO / "serve" / "config.yaml", model_uri="/m.pt", host="127.0.0.1", port=9123
    )
    assert config["applications"][0]["args"]["model_uri"] == "/m.pt"
    assert base_url(config) == "http://127.0.0.1:9123"
    raw = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    assert raw["applications"][0]["args"]["model_uri"] is None  # the file is untouched


def test_unknown_app_arg_is_a_clear_error():
    raw = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    raw["applications"][0]["args"]["max_batch"] = 4
    with pytest.raises(ConfigError, match="max_batch"):
        apply_overrides(raw)


def test_bad_serve_schema_is_a_clear_error():
    raw = yaml.safe_load((REPO / "serve" / "config.yaml").read_text())
    raw["applications"][0]["deployments"][1]["max_queued_requests"] = "many"
    with pytest.raises(ConfigError, match="invalid Serve config"):
        apply_overrides(raw)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_serve_config(tmp_path / "nope.yaml")


def test_default_layers_must_fit_the_limit():
    with pytest.raises(ValueError, match="default_max_layers"):
        ServeAppArgs(default_max_layers=5, max_layers_limit=4)


def test_default_config_is_the_checkouts_wherever_the_cwd_is(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no serve/config.yaml here
    assert load_serve_config() == load_serve_config(REPO / "serve" / "config.yaml")


def test_api_keys_leave_the_app_args_for_the_environment(monkeypatch):
    """Serve logs application args: a key in the config must travel by environment."""
    from liwi.serving.runner import keys_to_environment

    config = apply_overrides(
        {
            "applications": [
                {"name": "a-b", "import_path": IMPORT_PATH, "args": {"api_key": "s3cret-1"}},
                {"name": "open", "route_prefix": "/open", "import_path": IMPORT_PATH},
            ]
        }
    )
    moved, env = keys_to_environment(config)
    assert "s3cret-1" not in json.dumps(moved) and "s3cret-1" in json.dumps(config)
    assert env == {"LIWI_API_KEY_0_A_B": "s3cret-1"}
    args = moved["applications"][0]["args"]
    assert args["api_key"] is None and args["api_key_env"] == "LIWI_API_KEY_0_A_B"
    monkeypatch.setenv("LIWI_API_KEY_0_A_B", "s3cret-1")
    assert ServeAppArgs.from_dict(args).resolved_api_key() == "s3cret-1"
    assert "api_key_env" not in (moved["applications"][1].get("args") or {})


def test_an_explicit_model_uri_replaces_a_pinned_version():
    from liwi.serving.rollout import pin_model, pinned_uris

    raw = pin_model(yaml.safe_load((REPO / "serve" / "config.yaml").read_text()), "models:/liwi/3")
    assert pinned_uris(apply_overrides(raw)) == {"liwi": "models:/liwi/3"}
    assert pinned_uris(apply_overrides(raw, model_uri="/m.pt")) == {"liwi": "/m.pt"}
