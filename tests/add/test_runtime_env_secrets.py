"""The ADD actors' ``runtime_env`` carries endpoints, never credentials.

Ray stores a runtime env in its job table, shows it on the dashboard and logs it from the
runtime-env agent, so whatever reaches it is readable by anyone with dashboard access.
"""

from __future__ import annotations

from pathlib import Path

from liwi.add import driver
from liwi.add.driver import DecomposeConfig

CONFIG = Path(__file__).parents[2] / "jobs" / "configs" / "decompose.yaml"
SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY0000",
    "AWS_SECRET_ACCESS_KEY": "secret-value-that-must-not-travel",
    "AWS_SESSION_TOKEN": "session-token-that-must-not-travel",
}
ENDPOINTS = {"AWS_ENDPOINT_URL": "http://s3.example:8333", "AWS_REGION": "us-east-1"}


def test_the_actors_runtime_env_holds_endpoints_and_no_secret(monkeypatch):
    for k, v in {**SECRETS, **ENDPOINTS}.items():
        monkeypatch.setenv(k, v)
    captured = []

    def fake_run_ray(ray_config, stages, pages, runtime_env):
        captured.append(runtime_env)
        return iter(())

    monkeypatch.setattr(driver, "plan", lambda config, calls: [])
    monkeypatch.setattr(driver, "run_ray", fake_run_ray)
    config = DecomposeConfig.load(CONFIG)
    assert list(driver._run_ray(config, [])) == []
    (runtime_env,) = captured
    assert runtime_env == {"env_vars": ENDPOINTS}
    text = repr(runtime_env)
    assert not any(v in text for v in SECRETS.values())
    assert not any(k in text for k in SECRETS)
