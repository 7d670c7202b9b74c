"""The synth job: ``SynthConfig`` and ``run(config)``.

Writes under ``out`` (a local path or ``s3://bucket/prefix`` lake):

* ``images/<sample_id>.jpg|png`` — the degraded flat images (an image lake),
* ``table/part-synth-….parquet`` — the ground-truth layer table (schema v2, status ok),
* ``contact_sheet.png`` — a few samples: image, background, objects, shadow map,
* ``summary.json`` — counts per split, timing, the config.

Parts are named from the config (seed, layers, size, chunk), so re-running overwrites and
2- and 3-layer runs into the same lake sit side by side.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal

from pydantic import Field, model_validator

from liwi.config import JobConfig

SPLIT_ORDER = ("train", "val", "test")


class SynthConfig(JobConfig):
    """Config of the synthetic layered-data job (``jobs/configs/synth.yaml``)."""

    out: str = Field(description="output lake URI: /path, file://… or s3://bucket/prefix")
    kind: Literal["paste", "render"] = Field(
        "paste",
        description="paste: flat objects and 2-D shadows over a photo (liwi.synth.generator);"
        " render: ray-traced solids on a photo-textured floor (liwi.synth.render)",
    )
    n: int = Field(64, ge=1, description="number of samples")
    layers: Literal[2, 3] = Field(2, description="2 = background + 1 object, 3 = + 2 objects")
    size: int = Field(256, ge=32, le=4096, description="square image side in pixels")
    seed: int = Field(0, ge=0, description="base seed; sample i uses (seed, i, size, objects)")
    backgrounds: str | None = Field(
        None, description="folder of background photos; default data/backgrounds"
    )
    cutouts: str | None = Field(
        None, description="folder of real RGBA cut-outs (*.png, recursive) to use as objects"
    )
    cutout_share: float = Field(
        1.0, ge=0, le=1, description="with cutouts: the share of objects that are real cut-outs"
    )
    val_fraction: float = Field(0.1, ge=0, le=1, description="share of samples in val")
    test_fraction: float = Field(0.1, ge=0, le=1, description="share of samples in test")
    rows_per_part: int = Field(512, ge=1, description="rows per Parquet part")
    contact_sheet_samples: int = Field(8, ge=0, le=32, description="columns of the sheet")
    progress: bool = Field(True, description="show a progress bar")

    @model_validator(mode="after")
    def _share_needs_cutouts(self) -> SynthConfig:
        if "cutout_share" in self.model_fields_set and self.cutouts is None:
            raise ValueError("cutout_share is set but cutouts is not: name the cut-out folder")
        if self.kind == "render" and self.cutouts is not None:
            raise ValueError("kind 'render' draws its own solids: cutouts are for kind 'paste'")
        return self


def split_for(sample_id: str, val_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """Deterministic split from a hash of the sample id: test, then val, else train."""
    u = int(hashlib.sha256(f"split:{sample_id}".encode()).hexdigest()[:15], 16) / 16**15
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def _row_scores(sample: Any) -> dict[str, float]:
    if sample.tool == "synth.render":
        sun = sample.params["sun"]
        return {
            **sample.degradation,
            "n_lights": 1.0,
            "sun_elevation_deg": sun["elevation_deg"],
            "sun_radius_deg": sun["radius_deg"],
            "sun_to_sky": sun["sun_to_sky"],
        }
    key = sample.params["lights"][0]
    return {
        **sample.degradation,
        "n_lights": float(len(sample.params["lights"])),
        "light_sx": key["sx"],
        "light_sy": key["sy"],
        "light_softness": key["softness"],
    }


def run(config: SynthConfig) -> dict[str, Any]:
    """Generate ``config.n`` samples and write images, table, contact sheet and summary."""
    from tqdm import tqdm

    from liwi.lake import Lake
    from liwi.schema import sample_id_for, stack_to_row
    from liwi.synth.backgrounds import load_photos
    from liwi.synth.contact_sheet import contact_sheet
    from liwi.synth.cutouts import load_cutouts
    from liwi.synth.generator import SampleSpec, generate
    from liwi.synth.render import render
    from liwi.table import write_table

    if config.val_fraction + config.test_fraction > 1:
        raise ValueError("val_fraction + test_fraction must be ≤ 1")
    t0 = time.perf_counter()
    photos = load_photos(config.backgrounds)
    cutouts = load_cutouts(config.cutouts) if config.cutouts else ()
    lake = Lake.from_uri(config.out)
    images, table = lake.child("images"), lake.child("table")
    rows: list[dict[str, Any]] = []
    sheet: list[tuple[Any, bytes]] = []
    parts: list[str] = []
    splits = dict.fromkeys(SPLIT_ORDER, 0)
    name = "render" if config.kind == "render" else "synth"
    prefix = f"{name}-seed{config.seed}-layers{config.layers}-size{config.size}"

    def flush() -> None:
        if rows:
            name = f"{prefix}-{len(parts):05d}"
            parts.append(write_table(rows, table, name=name))
            rows.clear()

    for i in tqdm(range(config.n), desc="synth", unit="img", disable=not config.progress):
        spec = SampleSpec(config.seed, i, config.size, config.layers - 1)
        if config.kind == "render":
            sample = render(spec, photos)
        else:
            sample = generate(spec, photos, cutouts, config.cutout_share)
        sample_id = sample_id_for(sample.image)
        path = images.path(f"{sample_id}.{sample.ext}")
        images.write_bytes(path, sample.image)
        split = split_for(sample_id, config.val_fraction, config.test_fraction)
        splits[split] += 1
        rows.append(
            stack_to_row(
                sample.stack,
                sample_id=sample_id,
                source_uri=images.uri_of(path),
                image=sample.image,
                split=split,
                scores=_row_scores(sample),
                agent_trace=sample.trace(),
            )
        )
        if len(sheet) < config.contact_sheet_samples:
            sheet.append((sample.stack, sample.image))
        if len(rows) >= config.rows_per_part:
            flush()
    flush()
    if sheet:
        lake.write_bytes(lake.path("contact_sheet.png"), contact_sheet(sheet))
    seconds = time.perf_counter() - t0
    summary = {
        "out": config.out,
        "n": config.n,
        "layers": config.layers,
        "size": config.size,
        "seed": config.seed,
        "splits": splits,
        "images": images.uri,
        "table": table.uri,
        "table_parts": [lake.uri_of(p) for p in parts],
        "contact_sheet": lake.uri_of(lake.path("contact_sheet.png")) if sheet else None,
        "seconds": round(seconds, 3),
        "samples_per_second": round(config.n / max(seconds, 1e-9), 2),
        "config": config.to_dict(),
    }
    lake.write_bytes(lake.path("summary.json"), json.dumps(summary, indent=2).encode())
    return summary
