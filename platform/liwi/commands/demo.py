"""``liwi demo``: the main job on the embedded defaults.

Decomposes the bundled sample lake (``data/sample_lake``) with the ADD job on local Ray
into a layer table with its report, decomposes the same photos with the shipped model,
records the run in the local MLflow store, and prints where everything is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from liwi.paths import JOB_CONFIGS, SAMPLE_LAKE

DEFAULT_INPUT = SAMPLE_LAKE
DEFAULT_CONFIG = JOB_CONFIGS / "decompose.yaml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default=str(DEFAULT_INPUT), help="image lake to decompose")
    parser.add_argument("--output", default="out/demo", help="where the outputs go")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="decompose job config")
    parser.add_argument("--no-tracking", action="store_true", help="skip the MLflow record")
    parser.add_argument("--limit", type=int, help="decompose at most N photos")
    parser.add_argument("--runner", choices=["ray", "loop"], help="override the config's runner")


def run(args: argparse.Namespace) -> int:
    import json
    import time

    from liwi.add.driver import DecomposeConfig, format_summary
    from liwi.add.driver import run as run_decompose

    out = Path(args.output).resolve()
    if not Path(args.input).exists() and "://" not in args.input:
        print(f"input lake not found: {args.input}")
        return 2
    start = time.perf_counter()

    print(f"[demo] 1/3 ADD decomposition of {args.input} on local Ray")
    config = DecomposeConfig.from_yaml(
        args.config,
        input=args.input,
        output=str(out / "add"),
        limit=args.limit,
        runner=args.runner,
        progress=False,
    )
    summary = run_decompose(config)
    print(format_summary(summary))

    print("[demo] 2/3 the shipped model on the same photos")
    predictions = _predict_folder(Path(args.input), out / "predict", args.limit)

    run_uri = None
    if not args.no_tracking:
        print("[demo] 3/3 recording the run in the local MLflow store")
        run_uri = _track(config, summary, out, predictions)

    print(f"\n[demo] done in {time.perf_counter() - start:.0f}s. Outputs:")
    print(f"  layer table      {out / 'add' / 'layers'}")
    print(f"  rejects, errors  {out / 'add' / 'rejects'}, {out / 'add' / 'errors'}")
    print(f"  summary          {out / 'add' / 'summary.json'}")
    print(f"  dataset report   {out / 'add' / 'report'}")
    print(f"  model layers     {out / 'predict'} ({len(predictions)} photos)")
    if run_uri:
        print(f"  MLflow run       {run_uri}")
    print(json.dumps({"counts": summary["counts"], "unaccounted": summary["unaccounted"]}))
    return 0 if summary["unaccounted"] == 0 else 1


def _predict_folder(src: Path, dst: Path, limit: int | None = None) -> list[Path]:
    """Decompose every image in ``src`` with the shipped model into ``dst/<stem>/``."""
    from liwi.imageio import ImageDecodeError, decode_rgb
    from liwi.lake import IMAGE_EXTENSIONS
    from liwi.layer_export import write_folder
    from liwi.predictor import Predictor

    predictor = Predictor.from_uri(None)
    written = []
    paths = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    for path in paths[:limit]:
        try:
            image = decode_rgb(path.read_bytes())
        except ImageDecodeError as exc:
            print(f"  skip {path.name}: {exc}")
            continue
        written.append(write_folder(predictor.decompose(image), dst / path.stem))
    return written


def _track(config, summary: dict, out: Path, predictions: list[Path]) -> str:
    """Log the demo's config, counts and report to the local MLflow store."""
    from liwi.tracking import TrackingConfig, start_run

    run = start_run(
        TrackingConfig(run_name="demo-decompose", system_metrics=False),
        params=config.to_dict(),
        tags={"liwi.job": "demo"},
    )
    counts = summary["counts"]
    run.log_metrics({f"count_{k}": float(v) for k, v in counts.items()})
    run.log_metrics({"images_per_second": float(summary["images_per_second"])})
    report = out / "add" / "report"
    if report.is_dir():
        run.log_artifact(report, "report")
    for folder in predictions[:4]:
        run.log_artifact(folder / "recomposed.png", f"predict/{folder.name}")
    run.end()
    return f"{run.tracking_uri} (run {run.run_id})"
