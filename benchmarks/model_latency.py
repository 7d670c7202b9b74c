"""CPU latency of ``Predictor.decompose`` on a 512×512 photo (run by hand).

    python benchmarks/model_latency.py [--model URI] [--runs 20] [--threads 2]

Reports median and p90 wall time of a full decomposition (resize, up to two peels,
upsampling, stack assembly) with ``max_layers`` 3, and of a single peel (``max_layers``
2). The input is a sample-lake photo resized to 512×512.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photo", default="data/sample_lake/cat.jpg")
    args = ap.parse_args(argv)

    import numpy as np
    import torch
    from PIL import Image

    from liwi.predictor import Predictor

    torch.set_num_threads(args.threads)
    img = Image.open(args.photo).convert("RGB").resize((512, 512), Image.BICUBIC)
    image = np.asarray(img, np.float32) / 255.0
    predictor = Predictor.from_uri(args.model, device="cpu")
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "model_params": sum(p.numel() for p in predictor.model.parameters()),
        "model_resolution": predictor.config.resolution,
    }
    for max_layers in (2, 3):
        for _ in range(3):  # warm-up
            predictor.decompose(image, max_layers=max_layers)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            st = predictor.decompose(image, max_layers=max_layers)
            times.append(time.perf_counter() - t)
        times.sort()
        out[f"max_layers_{max_layers}"] = {
            "median_s": round(statistics.median(times), 4),
            "p90_s": round(times[int(0.9 * (len(times) - 1))], 4),
            "objects": len(st.objects),
        }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
