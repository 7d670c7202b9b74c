"""``liwi jobs list | status ID | logs ID [--follow] | stop ID``: jobs on a Ray cluster."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from liwi.commands.submit import add_address_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add_address_argument(sub.add_parser("list", help="every job on the cluster"))
    for name, help_text in (
        ("status", "a job's state and message"),
        ("logs", "a job's driver log"),
        ("stop", "stop a running job"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("submission_id", help="as printed by `liwi submit` / `liwi jobs list`")
        add_address_argument(p)
        if name == "logs":
            p.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")


def _time(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def run(args: argparse.Namespace) -> int:
    from liwi.submit import RayJobs, SubmitError

    try:
        jobs = RayJobs(args.address)
        if args.action == "list":
            rows = jobs.list()
            print(f"{'SUBMISSION ID':<42} {'STATUS':<10} {'STARTED':<21} ENTRYPOINT")
            for job in rows:
                sid = job.submission_id or job.job_id or "-"
                print(
                    f"{sid:<42} {job.status.value:<10} {_time(job.start_time):<21} {job.entrypoint}"
                )
            return 0
        if args.action == "status":
            info = jobs.info(args.submission_id)
            print(f"{args.submission_id}: {info.status.value}")
            print(f"  entrypoint: {info.entrypoint}")
            print(f"  started: {_time(info.start_time)}  ended: {_time(info.end_time)}")
            if info.message:
                print(f"  message: {info.message}")
            return 0
        if args.action == "logs":
            if args.follow:
                jobs.follow(args.submission_id, lambda c: print(c, end="", flush=True))
            else:
                print(jobs.logs(args.submission_id), end="")
            return 0
        stopped = jobs.stop(args.submission_id)
        print(f"{args.submission_id}: {'stop requested' if stopped else 'already finished'}")
        return 0
    except SubmitError as exc:
        print(f"liwi jobs: {exc}", file=sys.stderr)
        return 1
