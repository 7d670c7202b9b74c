"""``liwi submit JOB --config FILE``: run a platform job on a Ray cluster (Ray Jobs API)."""

from __future__ import annotations

import argparse
import shlex
import sys

JOBS = ("decompose", "train", "evaluate")


def add_address_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help="Ray dashboard URL, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS, "
        "an http $RAY_ADDRESS, else http://127.0.0.1:8265). The auth token comes from "
        "$RAY_AUTH_TOKEN or ~/.ray/auth_token ($RAY_AUTH_TOKEN_PATH).",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", choices=JOBS, help="which job: runs jobs/<job>.py on the cluster")
    parser.add_argument(
        "--config", required=True, help="job YAML inside the repository, e.g. jobs/configs/…"
    )
    add_address_argument(parser)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="extra environment variable for the job (repeatable; no credentials: those "
        "come from the cluster's environment). AWS_ENDPOINT_URL, AWS_REGION and "
        "MLFLOW_TRACKING_URI are forwarded from this shell when set.",
    )
    parser.add_argument(
        "--working-dir",
        default=None,
        help="folder uploaded as the job's working dir (default: this repository)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="stream the job's logs and exit with its outcome"
    )
    parser.add_argument(
        "--job-args",
        default="",
        metavar="'ARGS'",
        help="extra arguments for the job script, one quoted string, e.g. "
        "--job-args '--input s3://lake/photos --output s3://lake/add/v1'",
    )


def run(args: argparse.Namespace) -> int:
    from liwi.submit import RayJobs, SubmitError, describe_env, parse_env_pairs

    try:
        extra_env = parse_env_pairs(args.env)
        jobs = RayJobs(args.address)
        submission_id = jobs.submit(
            args.job,
            args.config,
            extra_env=extra_env,
            working_dir=args.working_dir,
            job_args=shlex.split(args.job_args),
        )
        env_vars = jobs.info(submission_id).runtime_env.get("env_vars", {})
        print(f"submitted {submission_id} to {jobs.address}")
        print(f"  env: {describe_env(env_vars)}")
        print(f"  follow: liwi jobs logs {submission_id} --follow --address {jobs.address}")
        if not args.wait:
            return 0
        jobs.follow(submission_id, lambda chunk: print(chunk, end="", flush=True))
        status = jobs.wait(submission_id)
        print(f"{submission_id}: {status}")
        return 0 if status == "SUCCEEDED" else 1
    except SubmitError as exc:
        print(f"liwi submit: {exc}", file=sys.stderr)
        return 1
