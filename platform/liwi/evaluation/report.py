"""Evaluation report files: ``report.json``, ``report.md`` and PNG charts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from liwi.metrics.shadow import SHADOW_KEYS

FG_KEYS = ("soft_iou", "max_f", "weighted_f", "mae", "s_measure", "max_e", "mean_e", "hce")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    return str(v)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines


def markdown(report: dict[str, Any]) -> str:
    res = report["results"]
    lines = [
        "# LiWi evaluation report",
        "",
        f"- model: `{report['model']}`",
        f"- tables: {', '.join(f'`{t}`' for t in report['tables'])} (split `{report['split']}`)",
        f"- samples: {report['samples']} ("
        + ", ".join(f"{n} with {g} layers" for g, n in report["samples_per_layers"].items())
        + ")",
        "- methods: " + "; ".join(f"**{k}** ({v})" for k, v in report["methods"].items()),
    ]
    lines += ["", "## Headline (model, all samples)", ""]
    lines += _table(["metric", "value"], [[k, v] for k, v in report["headline"].items()])
    lines += ["", "## Layers: RGB L1 ↓ / Alpha soft IoU ↑ by allowed merges", ""]
    groups = sorted({g for r in res.values() for g in r["layers"]})
    for g in groups:
        merges = max(len(r["layers"].get(g, [])) for r in res.values())
        if not merges:
            continue
        lines += [f"### {'all samples' if g == 'all' else g + ' layers'}", ""]
        header = ["method", "metric"] + [str(m) for m in range(merges)]
        rows = []
        for name, r in res.items():
            seq = r["layers"].get(g, [])
            if seq:
                rows.append([name, "RGB L1"] + [s["rgb_l1"] for s in seq])
                rows.append([name, "soft IoU"] + [s["alpha_soft_iou"] for s in seq])
        lines += _table(header, rows) + [""]
    lines += ["## Shadows (all samples)", ""]
    rows = [
        [name] + [r["shadow"].get("all", {}).get(k) for k in SHADOW_KEYS] for name, r in res.items()
    ]
    lines += _table(
        [
            "method",
            "attenuation L1 ↓",
            "shadow IoU ↑",
            "shadow precision ↑",
            "shadow recall ↑",
            "background L1 in shadow ↓",
        ],
        rows,
    )
    lines += ["", "## Foreground segmentation (DIS-5K protocol)", ""]
    rows = [[name] + [r["foreground"].get(k) for k in FG_KEYS] for name, r in res.items()]
    lines += _table(
        [
            "method",
            "maxFβ ↑",
            "weighted Fβ ↑",
            "MAE ↓",
            "S-measure ↑",
            "maxEφ ↑",
            "meanEφ ↑",
            "HCE ↓",
        ],
        rows,
    )
    lines += ["", "## Speed", ""]
    lines += _table(
        ["method", "seconds / image"], [[k, v] for k, v in report["seconds_per_image"].items()]
    )
    lines += ["", "Charts: `merges.png`, `shadow.png`, `foreground.png`.", ""]
    return "\n".join(lines)


def _charts(report: dict[str, Any], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = report["results"]
    files: dict[str, Path] = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, r in res.items():
        for g, seq in sorted(r["layers"].items()):
            if not seq or (g != "all" and len(r["layers"]) == 2):
                continue  # one layer count only: its curve is the "all" curve
            label = f"{name} ({'all' if g == 'all' else g + 'L'})"
            style = "-" if g == "all" else "--"
            xs = [s["merges"] for s in seq]
            axes[0].plot(xs, [s["rgb_l1"] for s in seq], style, marker="o", label=label)
            axes[1].plot(xs, [s["alpha_soft_iou"] for s in seq], style, marker="o", label=label)
    axes[0].set(title="RGB L1 (lower is better)", xlabel="allowed merges")
    axes[1].set(title="Alpha soft IoU (higher is better)", xlabel="allowed merges", ylim=(0, 1))
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    files["merges_png"] = out / "merges.png"
    fig.savefig(files["merges_png"], dpi=100)
    plt.close(fig)

    for key, keys, title in (
        ("shadow_png", SHADOW_KEYS, "Shadow metrics (all samples)"),
        ("foreground_png", ("max_f", "weighted_f", "mae", "s_measure", "mean_e"), "Foreground"),
    ):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = list(res)
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            src = (
                res[name]["shadow"].get("all", {})
                if key == "shadow_png"
                else res[name]["foreground"]
            )
            vals = [src.get(k, float("nan")) for k in keys]
            ax.bar([j + i * width for j in range(len(keys))], vals, width, label=name)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))], keys, fontsize=8)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        files[key] = out / f"{key.removesuffix('_png')}.png"
        fig.savefig(files[key], dpi=100)
        plt.close(fig)
    return files


def write_report(report: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write the JSON, Markdown and charts of ``report`` into ``out``; their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "markdown": out / "report.md"}
    files["json"].write_text(json.dumps(report, indent=2, default=str))
    files["markdown"].write_text(markdown(report))
    files.update(_charts(report, out))
    return files
