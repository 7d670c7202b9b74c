"""Pinning the served model: the config edits, and a real rolling update on Ray Serve."""

from __future__ import annotations

import copy

import pytest

from liwi.serving.rollout import (
    RolloutError,
    _apps_settled,
    deploy_config_of,
    pin_model,
    pinned_uris,
    version_uri,
)

APP = {"name": "liwi", "import_path": "liwi.serving.deployments:build_app", "args": {}}
OTHER = {"name": "other", "import_path": "x:app"}


def test_pin_model_sets_user_config_on_every_liwi_app():
    cfg = {
        "applications": [
            {**APP, "deployments": [{"name": "LiwiModel", "user_config": {"model_uri": "a"}}]},
            {**APP, "name": "second"},
            OTHER,
        ]
    }
    before = copy.deepcopy(cfg)
    out = pin_model(cfg, version_uri("liwi", 7))
    assert cfg == before  # a copy
    assert pinned_uris(out) == {"liwi": "models:/liwi/7", "second": "models:/liwi/7"}
    assert out["applications"][2] == OTHER
    only = pin_model(cfg, "models:/liwi/8", app="second")
    assert pinned_uris(only) == {"liwi": "a", "second": "models:/liwi/8"}
    with pytest.raises(RolloutError, match="named 'nope'"):
        pin_model(cfg, "models:/liwi/8", app="nope")


def test_deploy_config_is_rebuilt_from_the_running_instance():
    details = {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "grpc_options": None,
        "controller_info": {"node_id": "x"},
        "applications": {
            "liwi": {"status": "RUNNING", "deployed_app_config": APP},
            "gone": {"status": "DELETING", "deployed_app_config": None},
        },
    }
    assert deploy_config_of(details) == {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "applications": [APP],
    }


def test_an_app_is_settled_when_running_pinned_and_healthy():
    pinned = pin_model({"applications": [APP]}, "m2")["applications"][0]

    def details(status="RUNNING", config=pinned, dep="HEALTHY"):
        app = {"status": status, "deployed_app_config": config}
        app["deployments"] = {"LiwiModel": {"status": dep}}
        return {"applications": {"liwi": app}}

    assert _apps_settled(details(), "m2", ["liwi"])
    assert not _apps_settled(details(status="DEPLOYING"), "m2", ["liwi"])
    assert not _apps_settled(details(dep="UPDATING"), "m2", ["liwi"])
    assert not _apps_settled(details(config=APP), "m2", ["liwi"])
    with pytest.raises(RolloutError, match="failed to deploy"):
        _apps_settled(details(status="DEPLOY_FAILED"), "m2", ["liwi"])


# -- a real rolling update on Ray Serve ------------------------------------------------------
def _details(head) -> dict:
    import requests

    from liwi.serving.rollout import SERVE_API

    r = requests.get(head.dashboard_url + SERVE_API, headers=head.auth_headers, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _wait_running(head, timeout_s: float = 600) -> dict:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app = _details(head).get("applications", {}).get("liwi", {})
        assert app.get("status") != "DEPLOY_FAILED", str(app)[:3000]
        deps = app.get("deployments", {})
        if app.get("status") == "RUNNING" and all(
            d.get("status") == "HEALTHY" for d in deps.values()
        ):
            return app
        time.sleep(1)
    pytest.fail(f"Serve app not RUNNING after {timeout_s}s")


def _replica_ids(app: dict) -> set[str]:
    return {r["replica_id"] for r in app["deployments"]["LiwiModel"]["replicas"]}


@pytest.mark.integration
def test_a_pinned_version_rolls_onto_every_replica_in_place(
    ray_cluster, tiny_checkpoint, session_dir
):
    """Two model replicas serve checkpoint A; the rollout pins B through the dashboard's
    REST API; both replicas switch without a restart and every answer names B."""
    import requests
    import torch

    from liwi.model import build_model, preset, save_checkpoint
    from liwi.serving.loaded import describe_model
    from liwi.serving.rollout import BUILD_APP, SERVE_API, rollout
    from serving.serving_support import free_port, photo, png_bytes

    torch.manual_seed(7)
    other = session_dir / "rollout-b.pt"
    save_checkpoint(build_model(preset("tiny")), other, meta={"purpose": "rollout test"})
    v_a, v_b = (describe_model(str(p))["version"] for p in (tiny_checkpoint, other))
    port = free_port()
    config = {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": port},
        "applications": [
            {
                "name": "liwi",
                "route_prefix": "/",
                "import_path": BUILD_APP,
                "args": {"model_uri": str(tiny_checkpoint), "prior": "none"},
                "deployments": [
                    {"name": "LiwiIngress", "num_replicas": 1, "ray_actor_options": {"num_cpus": 0.25}},
                    {"name": "LiwiModel", "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.5}},
                ],
            }
        ],
    }  # fmt: skip
    url = ray_cluster.dashboard_url + SERVE_API
    base = f"http://127.0.0.1:{port}"
    r = requests.put(url, json=config, headers=ray_cluster.auth_headers, timeout=60)
    assert r.status_code == 200, r.text
    try:
        before = _replica_ids(_wait_running(ray_cluster))
        assert len(before) == 2

        def versions(n: int = 12) -> set[str]:
            return {
                requests.get(f"{base}/v1/models", timeout=60).json()["data"][0]["version"]
                for _ in range(n)
            }

        assert versions() == {v_a}
        rolled = rollout(
            ray_cluster.dashboard_url, str(other), headers=ray_cluster.auth_headers, log=print
        )
        assert rolled == ["liwi"]
        app = _wait_running(ray_cluster)
        assert _replica_ids(app) == before  # reconfigured in place, not restarted
        assert pinned_uris({"applications": [app["deployed_app_config"]]}) == {"liwi": str(other)}
        assert versions() == {v_b}
        answer = requests.post(
            f"{base}/v1/decompose",
            files={"image": ("p.png", png_bytes(photo(48, 40)), "image/png")},
            data={"format": "json", "max_layers": "2"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text[:500]
        assert answer.json()["model"]["version"] == v_b
    finally:
        requests.delete(url, headers=ray_cluster.auth_headers, timeout=60)
