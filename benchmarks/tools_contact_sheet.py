"""Contact sheet of the classical tools on real photos (and their per-stage timings).

Runs segment → refine_alpha → inpaint → extract_shadow on each photo and draws one row per
photo: the photo with the chosen mask outline, the saliency map, the alpha matte, the
foreground over a checkerboard, the clean background, the shadow layer (attenuation) and
the recomposed stack with its PSNR against the photo.

    python benchmarks/tools_contact_sheet.py        # data/sample_lake, else skimage samples
    python benchmarks/tools_contact_sheet.py --images DIR --out sheet.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from liwi.layers import LayerStack
from liwi.tools.inpaint import InpaintInput
from liwi.tools.matting import MattingInput, consistent_foreground
from liwi.tools.registry import get_tool
from liwi.tools.segment import SegmentInput
from liwi.tools.shadow import ShadowInput

MAX_SIDE = 512  # photos are resized to this longer side, as in the ADD job


def load_photos(folder: str | None, limit: int) -> list[tuple[str, np.ndarray]]:
    from liwi.imageio import decode_rgb
    from liwi.tools.arrays import resize, scale_for

    if folder is None and Path("data/sample_lake").is_dir():
        folder = "data/sample_lake"
    if folder is None:
        import skimage.data

        raw = [(n, getattr(skimage.data, n)()) for n in ("astronaut", "coffee", "chelsea")]
        photos = [(n, img.astype(np.float32) / 255.0) for n, img in raw]
    else:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".png"))
        photos = [(p.stem, decode_rgb(p.read_bytes())) for p in files[:limit]]
    out = []
    for name, img in photos:
        s = scale_for(img.shape, MAX_SIDE)
        size = (round(img.shape[0] * s), round(img.shape[1] * s))
        out.append((name, resize(img, size)))
    return out


def decompose(image: np.ndarray, tools: dict) -> tuple[dict, dict[str, float]]:
    times: dict[str, float] = {}

    def timed(name, fn):  # CPU seconds: wall time is meaningless on a shared box
        t = time.process_time()
        result = fn()
        times[name] = time.process_time() - t
        return result

    seg = timed("segment", lambda: tools["segment"](SegmentInput(image)))
    mask = seg.candidates[0].mask
    mat = timed("refine_alpha", lambda: tools["refine_alpha"](MattingInput(image, mask)))
    hole = (mat.alpha > 0.02).astype(np.float32)  # everything the object touches
    inp = timed("inpaint", lambda: tools["inpaint"](InpaintInput(image, hole), {"dilate_px": 2}))
    sh = timed(
        "extract_shadow",
        lambda: tools["extract_shadow"](ShadowInput(image, mat.alpha, inp.image)),
    )
    # edge colours solved against the final background, so the stack recomposes the photo
    fg = consistent_foreground(image, mat.alpha, mat.foreground, sh.background * sh.attenuation)
    stack = LayerStack.from_arrays(sh.background, [fg], [mat.alpha], [sh.attenuation])
    recomposed = stack.composite()
    mse = float(np.mean((recomposed - image) ** 2))
    psnr = 10 * np.log10(1.0 / max(mse, 1e-10))
    return {
        "image": image,
        "mask": mask,
        "saliency": seg.saliency,
        "alpha": mat.alpha,
        "foreground": fg,
        "background": sh.background,
        "attenuation": sh.attenuation,
        "shadow_found": sh.found,
        "recomposed": recomposed,
        "psnr": psnr,
        "n_candidates": len(seg.candidates),
    }, times


def checkerboard(h: int, w: int, cell: int = 16) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // cell + xx // cell) % 2).astype(np.float32) * 0.25 + 0.6
    return np.repeat(board[..., None], 3, axis=2)


def draw_sheet(rows: list[tuple[str, dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    cols = [
        "photo + mask",
        "saliency",
        "alpha",
        "foreground",
        "clean background",
        "shadow layer (S)",
        "recomposed",
    ]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(2.6 * len(cols), 2.3 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (name, d) in enumerate(rows):
        h, w = d["alpha"].shape
        photo = d["image"].copy()
        photo[find_boundaries(d["mask"] > 0.5, mode="thick")] = (0.1, 1.0, 0.2)
        fg = d["alpha"][..., None] * d["foreground"] + (1 - d["alpha"][..., None]) * checkerboard(
            h, w
        )
        panels = [
            photo,
            d["saliency"],
            d["alpha"],
            fg,
            d["background"],
            d["attenuation"],
            d["recomposed"],
        ]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
        axes[r, 0].set_ylabel(name, fontsize=9)
        shadow = "shadow found" if d["shadow_found"] else "no shadow"
        axes[r, 5].set_xlabel(shadow, fontsize=8)
        axes[r, 6].set_xlabel(f"PSNR {d['psnr']:.1f} dB", fontsize=8)
    fig.suptitle(
        "LiWi classical tools: segment → refine_alpha → inpaint → extract_shadow", fontsize=11
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", help="folder of photos (default: data/sample_lake)")
    parser.add_argument("--limit", type=int, default=8, help="most photos from --images")
    parser.add_argument("--out", default="docs/images/classical_tools_sheet.png")
    args = parser.parse_args()
    tools = {n: get_tool(n) for n in ("segment", "refine_alpha", "inpaint", "extract_shadow")}
    rows, all_times = [], []
    for name, image in load_photos(args.images, args.limit):
        d, times = decompose(image, tools)
        rows.append((name, d))
        all_times.append(times)
        stages = "  ".join(f"{k} {v:.2f}s" for k, v in times.items())  # CPU time
        print(
            f"{name:24s} {image.shape[1]}×{image.shape[0]}  PSNR {d['psnr']:.1f} dB  "
            f"shadow={d['shadow_found']}  {stages}"
        )
    mean = {k: np.mean([t[k] for t in all_times]) for k in all_times[0]}
    print("mean CPU s per stage: " + "  ".join(f"{k} {v:.2f}s" for k, v in mean.items()))
    draw_sheet(rows, Path(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
