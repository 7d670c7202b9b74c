"""The dataset report of an ADD output: JSON statistics plus one PNG of distribution charts.

Our counterpart of the LiWi-100k distribution figure. It reads only light columns of the
``layers``, ``rejects`` and ``errors`` tables (never the PNG payloads) and draws: layers per
sample, object area, shadow coverage, image sizes and rejection / error reasons.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from typing import Any

import numpy as np

from liwi.add.base import TABLE_NAMES
from liwi.lake import Lake

LIGHT_COLUMNS = [
    "sample_id",
    "status",
    "reasons",
    "width",
    "height",
    "n_layers",
    "objects.list.element.area",
    "objects.list.element.shadow_area",
]


def read_light(lake: Lake) -> list[dict[str, Any]]:
    """Light columns of every part of the table at ``lake`` (empty list if none)."""
    import pyarrow.parquet as pq

    from liwi.table import list_parts

    rows: list[dict[str, Any]] = []
    for part in list_parts(lake):
        with lake.fs.open_input_file(part) as f:
            rows.extend(pq.ParquetFile(f).read(columns=LIGHT_COLUMNS).to_pylist())
    return rows


def reason_kind(reason: str) -> str:
    """A short category for a reason: stage prefix + first clause, numbers and details dropped.

    ``"read_decode: truncated or corrupt JPEG data: image file is truncated (13 bytes)"``
    → ``"read_decode: truncated or corrupt JPEG data"``.
    """
    stage, sep, rest = reason.partition(": ")
    if not sep or " " in stage:
        stage, rest = "", reason
    parts = re.split(r": |\(", rest)
    clause = parts[0]
    if " " not in clause.strip() and len(parts) > 1:  # "segment: no object found" keeps both
        clause = f"{clause}: {parts[1]}"
    clause = re.sub(r"object \d+('s)?", "object", clause)
    clause = re.sub(r"[-+]?\d[\d.]*%?", "#", clause)
    text = f"{stage}: {clause}" if stage else clause
    return " ".join(text.split())[:60]


def _hist(values: list[float], bins: list[float]) -> dict[str, Any]:
    counts, edges = np.histogram(np.asarray(values, float), bins=bins)
    return {"edges": [round(float(e), 4) for e in edges], "counts": counts.tolist()}


def build_report(output: Lake) -> dict[str, Any]:
    """Statistics over all rows of the three tables under ``output``."""
    rows = {name: read_light(output.child(name)) for name in TABLE_NAMES}
    ok = rows["layers"]
    areas = [o["area"] for r in ok for o in r["objects"]]
    shadows = [o["shadow_area"] for r in ok for o in r["objects"]]
    layers = Counter(int(r["n_layers"]) for r in ok)
    rejected = Counter(reason_kind(x) for r in rows["rejects"] for x in r["reasons"] or ["?"])
    errored = Counter(reason_kind(x) for r in rows["errors"] for x in r["reasons"] or ["?"])
    sizes = [(int(r["width"]), int(r["height"])) for r in ok + rows["rejects"] if r["width"]]
    return {
        "counts": {
            "ok": len(ok),
            "rejected": len(rows["rejects"]),
            "error": len(rows["errors"]),
            "total": sum(len(v) for v in rows.values()),
        },
        "layers_per_sample": {str(k): v for k, v in sorted(layers.items())},
        "object_area": {
            "mean": float(np.mean(areas)) if areas else 0.0,
            **_hist(areas, list(np.linspace(0, 0.6, 13))),
        },
        "shadow_coverage": {
            "with_shadow": int(sum(s > 0 for s in shadows)),
            "mean": float(np.mean(shadows)) if shadows else 0.0,
            **_hist(shadows, list(np.linspace(0, 0.3, 13))),
        },
        "image_sizes": {
            "n": len(sizes),
            "median_width": float(np.median([w for w, _ in sizes])) if sizes else 0.0,
            "median_height": float(np.median([h for _, h in sizes])) if sizes else 0.0,
            "points": sizes[:5000],
        },
        "rejection_reasons": dict(rejected.most_common()),
        "error_reasons": dict(errored.most_common()),
    }


def plot_report(report: dict[str, Any]) -> bytes:
    """One PNG with five panels (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    c = report["counts"]
    fig.suptitle(
        f"ADD dataset: {c['ok']} layered samples, {c['rejected']} rejected, {c['error']} errors",
        fontsize=13,
    )
    ax = axes[0, 0]
    lps = report["layers_per_sample"]
    ax.bar([f"{k}-layer" for k in lps], list(lps.values()), color="#4c72b0")
    ax.set_title("layers per sample")
    ax.set_ylabel("samples")
    ax.yaxis.get_major_locator().set_params(integer=True)
    for panel, key, color, label in (
        (axes[0, 1], "object_area", "#55a868", "object area (fraction of image)"),
        (axes[0, 2], "shadow_coverage", "#8172b2", "shadow coverage (fraction, S < 0.9)"),
    ):
        h = report[key]
        edges = np.asarray(h["edges"])
        panel.bar(
            edges[:-1],
            h["counts"],
            width=np.diff(edges),
            align="edge",
            color=color,
            edgecolor="white",
        )
        panel.set_title(f"{label}\nmean {h['mean']:.3f}")
        panel.set_ylabel("objects")
        panel.yaxis.get_major_locator().set_params(integer=True)
    ax = axes[1, 0]
    pts = report["image_sizes"]["points"]
    if pts:
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, alpha=0.6, color="#c44e52")
    ax.set_title("image sizes (after downscaling)")
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    for panel, key, color, title in (
        (axes[1, 1], "rejection_reasons", "#dd8452", "rejection reasons"),
        (axes[1, 2], "error_reasons", "#937860", "error reasons"),
    ):
        items = list(report[key].items())[:8][::-1]
        if items:
            panel.barh([k for k, _ in items], [v for _, v in items], color=color)
            panel.tick_params(axis="y", labelsize=7)
        else:
            panel.text(0.5, 0.5, "none", ha="center", va="center", transform=panel.transAxes)
            panel.set_xticks([])
            panel.set_yticks([])
        panel.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def contact_sheet(output: Lake, n: int = 8, tile: int = 192) -> bytes | None:
    """PNG grid of up to ``n`` accepted samples: photo, background, objects, shadow, composite.

    Objects are shown over a grey checkerboard; the shadow panel is the total attenuation
    (white = no shadow). ``None`` when there are no accepted samples.
    """
    import pyarrow.parquet as pq
    from PIL import Image, ImageDraw

    from liwi.imageio import to_uint8
    from liwi.schema import image_of, row_to_stack
    from liwi.table import list_parts

    rows: list[dict[str, Any]] = []
    for part in list_parts(output.child("layers")):
        with output.fs.open_input_file(part) as f:
            rows.extend(pq.read_table(f).to_pylist()[: n - len(rows)])
        if len(rows) >= n:
            break
    if not rows:
        return None
    cols = ["photo", "background", "objects", "shadow", "recomposed"]
    head = 18
    sheet = Image.new("RGB", (tile * len(cols), head + tile * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(cols):
        draw.text((c * tile + 4, 3), name, fill="black")
    for r, row in enumerate(rows):
        stack = row_to_stack(row)
        h, w = stack.size
        yy, xx = np.mgrid[0:h, 0:w]
        checker = np.where(((yy // 8 + xx // 8) % 2)[..., None] == 0, 0.75, 0.55)
        fg = stack.foreground()
        panels = [
            image_of(row),
            stack.background,
            fg[..., 3:] * fg[..., :3] + (1 - fg[..., 3:]) * checker,
            stack.total_attenuation(),
            stack.composite(),
        ]
        for c, arr in enumerate(panels):
            img = Image.fromarray(to_uint8(np.asarray(arr, np.float32)))
            scale = (tile - 4) / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
            x, y = c * tile + 2, head + r * tile + 2
            sheet.paste(img, (x, y))
            draw.rectangle([x - 1, y - 1, x + img.width, y + img.height], outline="#999999")
        draw.text((6, head + r * tile + 4), f"{row['n_layers']}-layer", fill="yellow")
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def write_report(output: Lake) -> dict[str, Any]:
    """Write ``report/report.json``, ``report/report.png`` and ``report/contact_sheet.png``."""
    report = build_report(output)
    output.write_bytes(output.path("report", "report.json"), json.dumps(report, indent=1).encode())
    output.write_bytes(output.path("report", "report.png"), plot_report(report))
    sheet = contact_sheet(output)
    if sheet is not None:
        output.write_bytes(output.path("report", "contact_sheet.png"), sheet)
    return report
