"""``liwi convert``: public benchmarks (Crello Parquet, DIS-5K folders) → layer tables."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", choices=["crello", "dis5k"], help="source layout")
    p.add_argument("source", help="Crello Parquet file/folder, or a DIS-5K split folder")
    p.add_argument("--out", required=True, help="output layer table (folder or s3://…)")
    p.add_argument("--split", default="test", help="split written on every row")
    p.add_argument("--max-side", type=int, help="resize so the long side is at most this")
    p.add_argument("--limit", type=int, help="at most this many samples")


def run(args: argparse.Namespace) -> int:
    import json

    from liwi.evaluation.adapters import convert_crello, convert_dis5k

    convert = convert_crello if args.dataset == "crello" else convert_dis5k
    kwargs = {"split": args.split, "limit": args.limit}
    if args.max_side:
        kwargs["max_side"] = args.max_side
    summary = convert(args.source, args.out, **kwargs)
    print(json.dumps(summary.to_dict(), indent=2))
    return 0 if summary.rows else 1
