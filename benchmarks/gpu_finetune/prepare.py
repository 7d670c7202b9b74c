"""Pack what the GPU fine-tune of the U²-Net preset needs into ``.gpu/`` (run here, once).

The lent GPU machine takes the working tree plus carried folders, 64 MiB in all, and
reaches no registry. What travels (``.gpu/`` is in ``.git/info/exclude``):

* ``u2net_trunk.int8.partNN`` — the U²-Net trunk (44 M params, 176 MB as float32 ONNX) as
  int8 codes + per-channel scales, xz-compressed (:mod:`liwi.model.int8_state`, ≈ 39 MB); its error
  against the float weights is measured by ``--check``;
* ``bgs/`` — the training backgrounds (data/backgrounds + the mate-backgrounds photographs);
* ``clipart/`` — a CC0 clip-art subset (openclipart-png), long side ≤ ``--clip-side``;
* ``whl/`` — the Python 3.12 wheels the machine lacks (pydantic and its own needs).

    python benchmarks/gpu_finetune/prepare.py --bgs /tmp/bgs --clipart /tmp/clipart/sel
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
from pathlib import Path

# Wheels the GPU image lacks (its torch, numpy, pyarrow, opencv, onnx, yaml, tqdm serve).
WHEELS = [
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
]


def pack_trunk(out: Path, check: bool) -> None:
    import torch

    from liwi.model import int8_state
    from liwi.model.u2layernet import U2Trunk, load_trunk_weights
    from liwi.weights import resolve

    trunk = U2Trunk("u2net")
    load_trunk_weights(trunk, str(resolve("u2net")))
    state = trunk.state_dict()
    packed = int8_state.pack(state)
    parts = int8_state.save_parts(packed, out, xz=True)
    print(f"trunk: {sum(p.stat().st_size for p in parts) / 1e6:.1f} MB in {len(parts)} parts")
    if check:
        back = U2Trunk("u2net")
        back.load_state_dict(int8_state.unpack(int8_state.load_parts(out)))
        x = torch.rand(2, 3, 320, 320, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            d = (trunk(x)[:, :1] - back(x)[:, :1]).abs()
        print(
            f"int8 trunk vs float32, fused saliency on noise: max {d.max():.4f}, mean {d.mean():.5f}"
        )


def copy_clipart(src: Path, out: Path, n: int, side: int, seed: int) -> None:
    from PIL import Image

    files = sorted(src.rglob("*.png"))
    random.Random(seed).shuffle(files)
    out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files[:n]):
        im = Image.open(f).convert("RGBA")
        im.thumbnail((side, side))
        im.save(out / f"{i:04d}_{f.stem[:40]}.png", optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".gpu", help="folder to fill (carried to the device)")
    ap.add_argument("--bgs", required=True, help="background photos folder")
    ap.add_argument(
        "--clipart", required=True, help="clip-art cut-outs (benchmarks/cutout_folders.py)"
    )
    ap.add_argument("--clip-n", type=int, default=120, help="clip-art drawings to carry")
    ap.add_argument("--clip-side", type=int, default=256, help="their longest side, px")
    ap.add_argument("--check", action="store_true", help="measure the int8 trunk's error")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    pack_trunk(out / "u2net_trunk.int8", args.check)
    shutil.rmtree(out / "bgs", ignore_errors=True)
    shutil.copytree(args.bgs, out / "bgs")
    shutil.rmtree(out / "clipart", ignore_errors=True)
    copy_clipart(Path(args.clipart), out / "clipart", args.clip_n, args.clip_side, seed=0)
    shutil.rmtree(out / "whl", ignore_errors=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
    pip += ["--python-version", "3.12", "--implementation", "cp", "-d", str(out / "whl")]
    for plat in ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "any"):
        pip += ["--platform", plat]
    subprocess.run(pip + WHEELS, check=True)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {total / 2**20:.1f} MiB to carry")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
