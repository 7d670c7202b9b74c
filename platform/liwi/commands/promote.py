"""``liwi promote``: move a registry alias (``champion``) to an evaluated version that passes a gate.

With ``--serve-address`` the running Serve app then rolls onto the promoted version: its
model deployment is pinned to ``models:/<name>/<version>`` (:mod:`liwi.serving.rollout`).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="PromoteConfig YAML (jobs/configs/promote.yaml)")
    p.add_argument("--name", help="registered model name (default: liwi)")
    p.add_argument("--alias", help="alias to move (default: champion)")
    p.add_argument("--from-alias", help="alias of the version to promote (default: candidate)")
    p.add_argument("--version", help="promote this version instead of --from-alias")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: env or local store)")
    p.add_argument(
        "--serve-address",
        help="Ray dashboard (http://HEAD:8265) whose Serve app then rolls onto the version",
    )
    p.add_argument("--serve-app", help="only this Serve application (default: every LiWi app)")


def run(args: argparse.Namespace) -> int:
    import sys

    from liwi.tracking import PromoteConfig, TrackingError, promote

    overrides = {
        "name": args.name,
        "alias": args.alias,
        "from_alias": args.from_alias,
        "version": args.version,
        "tracking_uri": args.tracking_uri,
    }
    cfg = PromoteConfig.load(args.config, **overrides)
    try:
        done = promote(
            cfg.name,
            alias=cfg.alias,
            gate=cfg.gate,
            from_alias=cfg.from_alias,
            version=cfg.version,
            tracking_uri=cfg.tracking_uri,
        )
    except TrackingError as exc:
        print(f"not promoted: {exc}", file=sys.stderr)
        return 1
    before = f" (was version {done.previous_version})" if done.previous_version else ""
    print(f"models:/{done.name}@{done.alias} → version {done.version}{before}")
    for k, v in sorted(done.metrics.items()):
        print(f"  {k} = {v:.4f}")
    if getattr(args, "serve_address", None):
        return roll_serve(args.serve_address, done.name, done.version, args.serve_app)
    return 0


def roll_serve(address: str, name: str, version: str, app: str | None) -> int:
    """Pin ``models:/name/version`` in the Serve apps at ``address``; 1 when that fails."""
    import sys

    from liwi.serving.rollout import RolloutError, rollout, version_uri
    from liwi.submit import find_auth_token

    token = find_auth_token()
    headers = {"Authorization": f"Bearer {token.value}"} if token else None
    uri = version_uri(name, version)
    try:
        apps = rollout(address, uri, app=app, headers=headers)
    except (RolloutError, OSError) as exc:
        print(f"promoted, but the Serve rollout failed: {exc}", file=sys.stderr)
        return 1
    print(f"serving {uri} on every replica of {', '.join(apps)}")
    return 0
