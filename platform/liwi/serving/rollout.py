"""Pin the served model to one registry version and roll running Serve apps onto it.

The model replicas (:class:`~liwi.serving.deployments.LiwiModel`) take the model to load
from their deployment's ``user_config`` (``{"model_uri": "models:/liwi/7"}``). Serve hands a
changed ``user_config`` to every running replica's ``reconfigure`` in rolling batches, without
restarting them, and new (autoscaled) replicas read the same value, so every replica serves the
pinned version and reports the version it loaded.

* :func:`pin_model` — a Serve config whose model deployments carry the pin (``infra/render.py
  --model-version`` writes it into the RayService);
* :func:`rollout` — ``liwi promote --serve-address``: read the deployed config from the Ray
  dashboard's Serve REST API, pin the promoted version, PUT it back and wait until every
  model deployment is healthy again.

Light module: no Ray import (only ``requests``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

MODEL_DEPLOYMENT = "LiwiModel"  # the model deployment's name (deployments.MODEL_NAME)
BUILD_APP = "liwi.serving.deployments:build_app"  # import_path of a LiWi Serve app
SERVE_API = "/api/serve/applications/"  # the dashboard's Serve REST endpoint
# Top-level fields of a Serve deploy config kept from the running instance on a re-deploy.
INSTANCE_FIELDS = ("proxy_location", "http_options", "grpc_options", "logging_config")


class RolloutError(RuntimeError):
    """The Serve apps could not be read, re-deployed or did not become healthy."""


def version_uri(name: str, version: str | int) -> str:
    """The registry URI of one version: ``models:/name/7``."""
    return f"models:/{name}/{version}"


def liwi_apps(serve_config: dict[str, Any], app: str | None = None) -> list[dict[str, Any]]:
    """The applications of ``serve_config`` that run the LiWi app (named ``app``, if given)."""
    return [
        a
        for a in serve_config.get("applications", [])
        if a.get("import_path") == BUILD_APP and (app is None or a.get("name") == app)
    ]


def pin_model(
    serve_config: dict[str, Any], model_uri: str, app: str | None = None
) -> dict[str, Any]:
    """A copy of ``serve_config`` whose model deployments load ``model_uri`` (``user_config``)."""
    cfg = copy.deepcopy(serve_config)
    apps = liwi_apps(cfg, app)
    if not apps:
        which = f"named {app!r} " if app else ""
        raise RolloutError(f"no LiWi Serve application {which}(import_path {BUILD_APP})")
    for a in apps:
        deployments = a.setdefault("deployments", [])
        dep = next((d for d in deployments if d.get("name") == MODEL_DEPLOYMENT), None)
        if dep is None:
            dep = {"name": MODEL_DEPLOYMENT}
            deployments.append(dep)
        dep["user_config"] = {**(dep.get("user_config") or {}), "model_uri": model_uri}
    return cfg


def pinned_uris(serve_config: dict[str, Any]) -> dict[str, str | None]:
    """App name → the model URI its model deployment is pinned to (None: not pinned)."""
    out: dict[str, str | None] = {}
    for a in liwi_apps(serve_config):
        dep = next((d for d in a.get("deployments", []) if d.get("name") == MODEL_DEPLOYMENT), {})
        out[a["name"]] = (dep.get("user_config") or {}).get("model_uri")
    return out


def deploy_config_of(details: dict[str, Any]) -> dict[str, Any]:
    """The deploy config (``serve deploy`` / PUT body) of a running Serve instance's details."""
    cfg = {k: details[k] for k in INSTANCE_FIELDS if details.get(k) is not None}
    apps = details.get("applications") or {}
    cfg["applications"] = [
        a["deployed_app_config"] for a in apps.values() if a.get("deployed_app_config")
    ]
    return cfg


def _apps_settled(details: dict[str, Any], model_uri: str, names: list[str]) -> bool:
    """Every named app is RUNNING, pinned to ``model_uri``, with every deployment HEALTHY."""
    apps = details.get("applications") or {}
    for name in names:
        a = apps.get(name) or {}
        if a.get("status") == "DEPLOY_FAILED":
            raise RolloutError(f"Serve app {name} failed to deploy: {a.get('message', '')[:2000]}")
        pinned = pinned_uris({"applications": [a.get("deployed_app_config") or {}]})
        if a.get("status") != "RUNNING" or set(pinned.values()) != {model_uri}:
            return False
        deployments = (a.get("deployments") or {}).values()
        if any(d.get("status") != "HEALTHY" for d in deployments):
            return False
    return True


def rollout(
    address: str,
    model_uri: str,
    app: str | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 900.0,
    poll_s: float = 2.0,
    log: Callable[[str], Any] = print,
) -> list[str]:
    """Pin ``model_uri`` in the running LiWi apps at the dashboard ``address``; wait till healthy.

    Returns the names of the apps rolled. Other applications are re-deployed unchanged
    (a Serve PUT replaces the whole set).
    """
    import requests

    url = address.rstrip("/") + SERVE_API

    def get() -> dict[str, Any]:
        r = requests.get(url, headers=headers, timeout=60)
        if r.status_code != 200:
            raise RolloutError(f"GET {url}: HTTP {r.status_code}: {r.text[:500]}")
        return r.json()

    current = deploy_config_of(get())
    pinned = pin_model(current, model_uri, app)
    names = [a["name"] for a in liwi_apps(pinned, app)]
    r = requests.put(url, json=pinned, headers=headers, timeout=60)
    if r.status_code != 200:
        raise RolloutError(f"PUT {url}: HTTP {r.status_code}: {r.text[:500]}")
    log(f"rolling {', '.join(names)} onto {model_uri} …")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _apps_settled(get(), model_uri, names):
            return names
        time.sleep(poll_s)
    raise RolloutError(f"{', '.join(names)} not healthy on {model_uri} after {timeout_s:.0f} s")
