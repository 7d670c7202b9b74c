"""Run the Serve config on a local Ray: ``liwi serve``, the tests and the benchmark.

The same ``serve/config.yaml`` that ``serve deploy`` sends to a cluster is validated
here (Ray's ``ServeDeploySchema`` plus our :class:`ServeAppArgs`), overridden from the
command line (model URI, host, port, app args) and applied with the controller's
``deploy_apps`` — the call ``serve run <config>`` makes.

An ``api_key`` in the config never reaches Serve: Serve's controller logs every
application's arguments (``Importing application 'liwi' with arguments {...}``) to its log
file and the driver's console, so :func:`start` moves each key into an environment
variable of this process before it starts the local Ray, whose replicas inherit it, and
leaves only the variable's name (``api_key_env``) in the arguments.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from liwi.config import ConfigError
from liwi.paths import SERVE_CONFIG
from liwi.serving.settings import ServeAppArgs

IMPORT_PATH = "liwi.serving.deployments:build_app"
DEFAULT_CONFIG = SERVE_CONFIG  # the checkout's serve/config.yaml, wherever the cwd is


class ServeStartError(RuntimeError):
    """The application did not become ready (deploy failed or timed out)."""


def default_config() -> dict[str, Any]:
    """The config used when ``serve/config.yaml`` is not around (e.g. an installed wheel)."""
    return {
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "applications": [
            {"name": "liwi", "route_prefix": "/", "import_path": IMPORT_PATH, "args": {}}
        ],
    }


def load_serve_config(
    path: str | Path | None = None,
    model_uri: str | None = None,
    host: str | None = None,
    port: int | None = None,
    app_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read, override and validate a Serve config; returns the plain dict."""
    if path is None and not DEFAULT_CONFIG.is_file():
        data = default_config()
    else:
        path = Path(path or DEFAULT_CONFIG)
        if not path.is_file():
            raise ConfigError(f"serve config not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return apply_overrides(data, model_uri, host, port, app_args, source=str(path or "<default>"))


def apply_overrides(
    data: dict[str, Any],
    model_uri: str | None = None,
    host: str | None = None,
    port: int | None = None,
    app_args: dict[str, Any] | None = None,
    source: str = "<config>",
) -> dict[str, Any]:
    """Return a copy with the overrides applied, validated by Ray and by ServeAppArgs."""
    from ray.serve.schema import ServeDeploySchema

    from liwi.serving.rollout import pin_model, pinned_uris

    data = copy.deepcopy(data)
    if not isinstance(data, dict) or not data.get("applications"):
        raise ConfigError(f"{source}: expected a Serve config with 'applications'")
    http = data.setdefault("http_options", {})
    if host is not None:
        http["host"] = host
    if port is not None:
        http["port"] = port
    for app in data["applications"]:
        if app.get("import_path") != IMPORT_PATH:
            continue
        args = dict(app.get("args") or {})
        if model_uri is not None:
            args["model_uri"] = model_uri
        args.update(app_args or {})
        ServeAppArgs.from_dict(args, source=f"{source}: application {app.get('name')!r} args")
        app["args"] = args
    if model_uri is not None and any(pinned_uris(data).values()):
        data = pin_model(data, model_uri)  # an explicit model beats a version pinned in the file
    try:
        ServeDeploySchema.model_validate(data)
    except Exception as exc:  # pydantic ValidationError: report it as a config error
        raise ConfigError(f"{source}: invalid Serve config: {exc}") from None
    return data


def base_url(config: dict[str, Any], app_name: str | None = None) -> str:
    http = config.get("http_options", {})
    host = http.get("host", "127.0.0.1")
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    prefix = "/"
    for app in config["applications"]:
        if app_name is None or app["name"] == app_name:
            prefix = app.get("route_prefix", "/") or "/"
            break
    return f"http://{host}:{http.get('port', 8000)}{prefix.rstrip('/')}"


def keys_to_environment(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of ``config`` without API keys in any LiWi app's args, and the environment
    variables that carry them instead (``LIWI_API_KEY_<n>_<APP>`` → key)."""
    config = copy.deepcopy(config)
    env: dict[str, str] = {}
    for i, app in enumerate(config.get("applications") or []):
        args = app.get("args") or {}
        if app.get("import_path") != IMPORT_PATH or not args.get("api_key"):
            continue
        name = f"LIWI_API_KEY_{i}_{re.sub(r'[^A-Za-z0-9]+', '_', str(app.get('name', ''))).upper()}"
        env[name] = str(args["api_key"])
        app["args"] = {**args, "api_key": None, "api_key_env": name}
    return config, env


def start(config: dict[str, Any], num_cpus: float | None = None, timeout_s: float = 180.0) -> None:
    """Start a local Ray (unless this process already has one) and Serve, deploy ``config``,
    wait until all apps are ready. API keys travel by environment (see the module doc)."""
    import ray
    from ray.serve._private import api as serve_private_api
    from ray.serve.schema import ServeDeploySchema

    config, key_env = keys_to_environment(config)
    if key_env and ray.is_initialized():
        raise ServeStartError(
            "api_key in the Serve config needs a Ray started by liwi serve (Serve logs "
            "application args); set the key in the replicas' environment (api_key_env) instead"
        )
    os.environ.update(key_env)  # before ray.init: the raylet and its workers inherit it
    schema = ServeDeploySchema.model_validate(config)
    for attempt in (1, 2):
        if ray.is_initialized():
            break
        try:
            ray.init(
                address="local",  # always our own Ray, never one found on the machine
                namespace="serve",
                num_cpus=num_cpus,
                include_dashboard=False,
                log_to_driver=True,
                configure_logging=False,
            )
        except Exception as exc:  # Ray raises a bare Exception when its raylet starts slowly
            if attempt == 2 or "timed out during startup" not in str(exc):
                raise
            ray.shutdown()  # on a busy machine the 30 s raylet wait can lapse; retry once
    client = serve_private_api.serve_start(
        http_options=schema.http_options.model_dump(),
        proxy_location=schema.proxy_location,
    )
    client.deploy_apps(schema)
    wait_until_ready(config, timeout_s)


def wait_until_ready(config: dict[str, Any], timeout_s: float) -> None:
    """Poll Serve's status, then each app's ``/readyz``, until ready or ``timeout_s``."""
    from ray import serve

    deadline = time.monotonic() + timeout_s
    names = [a["name"] for a in config["applications"]]
    while True:
        apps = serve.status().applications
        states = {n: (apps[n].status if n in apps else "NOT_STARTED") for n in names}
        failed = {n: apps[n].message for n in names if states[n] == "DEPLOY_FAILED"}
        if failed:
            raise ServeStartError(f"deploy failed: {json.dumps(failed)[:2000]}")
        if all(s == "RUNNING" for s in states.values()):
            break
        if time.monotonic() > deadline:
            raise ServeStartError(f"applications not running after {timeout_s:g}s: {states}")
        time.sleep(0.5)
    for name in names:
        url = base_url(config, name) + "/readyz"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise ServeStartError(f"{url} not ready after {timeout_s:g}s")
            time.sleep(0.5)


def stop() -> None:
    """Shut Serve and the local Ray down."""
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()


def run_foreground(config: dict[str, Any], num_cpus: float | None = None) -> int:
    """``liwi serve``: start, print where, block until Ctrl-C or SIGTERM (what a process
    manager sends), then shut Serve and the local Ray down; exits 130 or 143 as a shell
    reports a command a signal stopped. A signal while Ray starts stops it the same way."""
    from liwi.stop_signals import catch_stop_signals, signal_of

    catch_stop_signals()
    try:
        start(config, num_cpus=num_cpus)
        catch_stop_signals()  # again: ray.init replaced the SIGTERM handler with its own
        url = base_url(config)
        print(f"LiWi is serving at {url}/  (viewer)  ·  API docs {url}/docs  ·  Ctrl-C stops")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt as interrupt:
        stopped_by = signal_of(interrupt)
        print(f"{stopped_by.name}: shutting down", flush=True)
        return 128 + int(stopped_by)
    finally:
        stop()
