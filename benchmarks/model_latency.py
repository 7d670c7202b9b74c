"""CPU latency of ``Predictor.decompose`` on a 512×512 photo (run by hand).

    python benchmarks/model_latency.py [--model URI] [--runs 20] [--threads 2] [--box x0,y0,x1,y1]
        [--priors u2netp,u2net,none] [--no-classical] [--compare-model NAME=URI ...] \
        [--compare-single-view] [--compare-second-look] [--compare-second-look-side PX]

Reports median and p90 wall time of a full decomposition (resize, up to two peels,
upsampling, stack assembly) with ``max_layers`` 3, and of a single peel (``max_layers``
2). The input is a sample-lake photo resized to 512×512. The classical ADD tool chain
(``liwi.evaluation.methods.classical_method``: segment, matting, inpaint, shadow) runs
side by side, interleaved run by run so that outside load hits both alike, and the
report gives the model's median as a ratio of the classical one. ``--priors`` times the
model with each salient prior (``none``: the network alone) in the same interleaved loop;
the first one listed is "model".
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

from liwi.model.prompts import parse_box  # the one x0,y0,x1,y1 parser (the CLI's too)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photo", default="data/sample_lake/cat.jpg")
    ap.add_argument(
        "--box",
        type=parse_box,
        default=None,
        help="x0,y0,x1,y1 box prompt for the model's first peel, in the 512×512 frame "
        "(an unprompted model that finds nothing stops after one pass: time the peels)",
    )
    ap.add_argument(
        "--priors",
        default="u2netp-liwi",
        help="comma-separated prior weights to time ('none' = off)",
    )
    ap.add_argument("--no-classical", action="store_true", help="time the model only")
    ap.add_argument(
        "--compare-single-view",
        action="store_true",
        help="also time the model with the first prior as before 2026-11-30's fifth session: "
        "one view (no mirror) at the training resolution",
    )
    ap.add_argument(
        "--compare-second-look",
        action="store_true",
        help="also time the model with the first prior and its second look (the prior run "
        "again on the peeled background; the default from the seventh to the 13th session)",
    )
    ap.add_argument(
        "--compare-second-look-side",
        type=int,
        default=None,
        metavar="PX",
        help="also time the model with the first prior and its second look at PX² (the "
        "predictor's SECOND_LOOK_SIDE is the default's)",
    )
    ap.add_argument(
        "--compare-model",
        action="append",
        default=[],
        metavar="NAME=URI",
        help="another model timed in the same loop with the first prior (repeatable)",
    )
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from liwi.evaluation.methods import Method, classical_method
    from liwi.model.prompts import Prompt
    from liwi.predictor import Predictor

    torch.set_num_threads(args.threads)
    img = Image.open(args.photo).convert("RGB").resize((512, 512), Image.BICUBIC)
    image = np.asarray(img, np.float32) / 255.0
    prompt = Prompt(box=args.box) if args.box else None
    methods = []
    for k, prior in enumerate(args.priors.split(",")):
        weight = None if prior == "none" else prior
        predictor = Predictor.from_uri(args.model, device="cpu", prior=weight)
        name = "model" if k == 0 else f"model+{prior}"

        def run(im, n, p=predictor):
            return p.decompose(im, prompt, max_layers=n)

        methods.append(Method(name, run, f"LiWi model, prior {prior}"))
    first_prior = args.priors.split(",")[0]

    def first_prior_method(name: str, uri: str | None, description: str, **attrs) -> Method:
        """A predictor with the first prior listed, ``attrs`` set on it, timed as ``name``."""
        p = Predictor.from_uri(
            uri, device="cpu", prior=None if first_prior == "none" else first_prior
        )
        for key, value in attrs.items():
            setattr(p, key, value)
        return Method(name, lambda im, n: p.decompose(im, prompt, max_layers=n), description)

    for spec in args.compare_model:
        name, _, uri = spec.partition("=")
        methods.append(first_prior_method(name, uri or None, uri))
    if args.compare_single_view:
        methods.append(
            first_prior_method(
                "model-single-view",
                args.model,
                "LiWi model, first prior, one view at the training resolution",
                flip_average=False,
                net_side=predictor.config.resolution,
            )
        )
    if args.compare_second_look:
        methods.append(
            first_prior_method(
                "model-second-look",
                args.model,
                "LiWi model, first prior, second look",
                second_look=True,
            )
        )
    if args.compare_second_look_side:
        px = args.compare_second_look_side
        methods.append(
            first_prior_method(
                f"model-second-look-{px}",
                args.model,
                f"LiWi model, first prior, second look at {px}²",
                second_look=True,
                second_look_side=px,
            )
        )
    if not args.no_classical:
        methods.append(classical_method())
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "model_params": sum(p.numel() for p in predictor.model.parameters()),
        "priors": args.priors,
        "model_resolution": predictor.config.resolution,
        "net_side": predictor.net_side,
        "photo": args.photo,
        "box": ",".join(f"{v:g}" for v in args.box) if args.box else None,
    }
    for max_layers in (2, 3):
        times: dict[str, list[float]] = {m.name: [] for m in methods}
        objects: dict[str, int] = {}
        for m in methods:  # warm-up
            for _ in range(2):
                m.decompose(image, max_layers)
        for _ in range(args.runs):  # interleaved: outside load hits every method alike
            for m in methods:
                t = time.perf_counter()
                st = m.decompose(image, max_layers)
                times[m.name].append(time.perf_counter() - t)
                objects[m.name] = len(st.objects)
        row = {}
        for name, ts in times.items():
            ts.sort()
            row[name] = {
                "median_s": round(statistics.median(ts), 4),
                "p90_s": round(ts[int(0.9 * (len(ts) - 1))], 4),
                "objects": objects[name],
            }
        if "classical" in row:
            row["model_over_classical"] = round(
                row["model"]["median_s"] / row["classical"]["median_s"], 3
            )
        out[f"max_layers_{max_layers}"] = row
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
