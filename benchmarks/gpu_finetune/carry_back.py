"""Carry a fine-tuned U²-Net-preset checkpoint back from the GPU machine, and rebuild it.

The full checkpoint (176 MB) does not fit what the device tool returns (64 MB, 16 MB per
file), so the machine sends the trunk as its change from the int8 starting weights both
sides hold (:mod:`liwi.model.int8_state`, ``base``) and the heads as they are::

    pack   CKPT BASE_STEM OUT_STEM    # on the device: OUT_STEM.partNN (≈ 44 MB)
    unpack OUT_STEM BASE_STEM CKPT    # here: the checkpoint again, within the delta's step

``pack`` also reports how far the rebuilt network's alpha lies from the exact one on a
random input, so the returned figure says what the round trip cost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _split(state: dict) -> tuple[dict, dict]:
    trunk = {k[len("trunk.") :]: v for k, v in state.items() if k.startswith("trunk.")}
    heads = {k: v for k, v in state.items() if not k.startswith("trunk.")}
    return trunk, heads


def pack(ckpt_path: str, base_stem: str, out_stem: str) -> None:
    import torch

    from liwi.model import build_model, int8_state
    from liwi.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    base = int8_state.unpack(int8_state.load_parts(base_stem))
    trunk, heads = _split(ckpt["state_dict"])
    payload = {
        "trunk_delta": int8_state.pack(trunk, base=base),
        "heads": heads,
        "config": ckpt["config"],
        "meta": ckpt["meta"],
    }
    parts = int8_state.save_parts(payload, out_stem)
    print(f"carry back: {sum(p.stat().st_size for p in parts) / 1e6:.1f} MB, {len(parts)} parts")
    exact = build_model(checkpoint=ckpt)
    back = build_model(checkpoint=_rebuilt(payload, base))
    x = torch.rand(1, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        d = (exact(x)["alpha"] - back(x)["alpha"]).abs()
    print(f"round trip: alpha max |diff| {d.max():.5f}, mean {d.mean():.6f} (random input)")


def _rebuilt(payload: dict, base: dict) -> dict:
    from liwi.model import int8_state
    from liwi.model.checkpoint import FORMAT, FORMAT_VERSION

    trunk = int8_state.unpack(payload["trunk_delta"], base=base)
    state = {f"trunk.{k}": v for k, v in trunk.items()} | payload["heads"]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": payload["config"],
        "state_dict": state,
        "meta": payload["meta"] | {"carried_back": "int8 trunk delta (liwi.model.int8_state)"},
    }


def unpack(in_stem: str, base_stem: str, ckpt_path: str) -> None:
    import torch

    from liwi.model import build_model, int8_state

    base = int8_state.unpack(int8_state.load_parts(base_stem))
    ckpt = _rebuilt(int8_state.load_parts(in_stem), base)
    build_model(checkpoint=ckpt)  # strict: every key fits
    Path(ckpt_path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, ckpt_path)
    print(f"checkpoint: {ckpt_path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("ckpt")
    p.add_argument("base_stem")
    p.add_argument("out_stem")
    u = sub.add_parser("unpack")
    u.add_argument("in_stem")
    u.add_argument("base_stem")
    u.add_argument("ckpt")
    args = ap.parse_args()
    if args.cmd == "pack":
        pack(args.ckpt, args.base_stem, args.out_stem)
    else:
        unpack(args.in_stem, args.base_stem, args.ckpt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
