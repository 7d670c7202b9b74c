"""Layer tables → Ray Data → training samples (decoding and augmentation in the data path).

:func:`layer_table_dataset` reads the Parquet files of one or more layer tables (local
folders or ``s3://`` lakes) with ``ray.data.read_parquet``: Ray lists the files in its own
tasks, only the training columns are read (projection pushed into the scan) and only the
``ok`` rows of the wanted split are kept (filter pushed into the scan). :func:`count_rows`
counts rows from Parquet footers and row-group statistics. The driver never downloads a
table. :func:`training_samples`
maps it, batch by batch in Ray Data tasks, through :func:`decode_and_sample`: PNG
decoding, the peeling target, random crop/flip, prompts and the degradation-restoration
augmentations of :mod:`liwi.training.data`. Training workers only receive ready tensors
(``ray.train.get_dataset_shard(...).iter_torch_batches``).

Randomness: a training draw of a sample is seeded by ``(seed, sample_id, k)`` where ``k``
counts how often this data process has drawn the sample, so every epoch sees a new
augmentation. Validation draws are seeded by ``(seed, sample_id)`` only, so validation
sees the same samples every time.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np

from liwi.lake import Lake, S3Options
from liwi.training.data import TRAINING_COLUMNS, DataConfig

COLUMNS = TRAINING_COLUMNS  # the only columns read from a layer table
# Keys of a training sample, in the order the model and the losses read them.
SAMPLE_KEYS = ("image", "prompt", "alpha", "color", "background", "shadow", "degraded")

_draws: Counter[str] = Counter()  # per data process: how often each sample was drawn


def _seed_of(sample_id: str) -> int:
    return int(hashlib.sha256(sample_id.encode()).hexdigest()[:12], 16)


def layer_table_dataset(
    uris: list[str],
    s3: S3Options | None = None,
    num_cpus: float = 1.0,
    split: str | None = None,
    ok_only: bool = False,
):
    """One Ray Dataset over every table in ``uris`` (columns :data:`COLUMNS`).

    ``ray.data.read_parquet`` per filesystem, read tasks with the data path's CPUs, the
    training columns projected; with ``ok_only`` only ``ok`` rows (of ``split``) are read.
    """
    import ray.data
    from ray.data.expressions import col

    if not uris:
        raise ValueError("no layer tables given")
    datasets = []
    for uri in uris:
        lake = Lake.from_uri(uri, s3=s3)
        try:
            ds = ray.data.read_parquet(
                lake.root, filesystem=lake.fs, num_cpus=num_cpus, partitioning=None
            )
        except (ValueError, FileNotFoundError) as exc:
            raise FileNotFoundError(f"layer table {uri} has no Parquet files ({exc})") from None
        ds = ds.select_columns(COLUMNS)
        if ok_only:
            keep = col("status") == "ok"
            if split is not None:
                keep = keep & (col("split") == split)
            ds = ds.filter(expr=keep, num_cpus=num_cpus)
        datasets.append(ds)
    ds = datasets[0]
    return ds.union(*datasets[1:]) if len(datasets) > 1 else ds


def decode_and_sample(
    batch, *, split: str | None, cfg: DataConfig, seed: int, deterministic: bool
) -> dict[str, np.ndarray]:
    """Ray Data ``map_batches`` function: pyarrow rows → stacked training arrays.

    Rows not ``ok`` or of another split are dropped; an undecodable row is dropped and
    counted in ``dropped`` rather than failing the whole batch.
    """
    from liwi.imageio import ImageDecodeError
    from liwi.training.data import decode_row, make_sample

    samples: list[dict[str, np.ndarray]] = []
    for row in batch.to_pylist():
        if row["status"] != "ok" or (split is not None and row["split"] != split):
            continue
        sid = row["sample_id"]
        draw = 0 if deterministic else _draws[sid]
        _draws[sid] += 1
        rng = np.random.default_rng([seed, _seed_of(sid), draw])
        try:
            stack, flat = decode_row(row)
            samples.append(make_sample(stack, cfg, rng, flat))
        except (ValueError, ImageDecodeError):
            continue  # a corrupt row must not stop training; validate_table catches these
    if not samples:
        shape = (0, 1, cfg.crop, cfg.crop)
        return {
            "image": np.zeros((0, 3, cfg.crop, cfg.crop), np.float32),
            "prompt": np.zeros((0, 3, cfg.crop, cfg.crop), np.float32),
            "alpha": np.zeros(shape, np.float32),
            "color": np.zeros((0, 3, cfg.crop, cfg.crop), np.float32),
            "background": np.zeros((0, 3, cfg.crop, cfg.crop), np.float32),
            "shadow": np.zeros((0, 3, cfg.crop, cfg.crop), np.float32),
            "degraded": np.zeros((0,), np.float32),
        }
    return {k: np.stack([s[k] for s in samples]) for k in SAMPLE_KEYS}


def training_samples(
    uris: list[str],
    split: str | None,
    cfg: DataConfig,
    seed: int,
    deterministic: bool = False,
    s3: S3Options | None = None,
    rows_per_task: int = 8,
    num_cpus: float = 1.0,
):
    """The Ray Dataset of training samples of ``split`` in ``uris``."""
    rows = layer_table_dataset(uris, s3=s3, num_cpus=num_cpus, split=split, ok_only=True)
    return rows.map_batches(
        decode_and_sample,
        batch_format="pyarrow",
        batch_size=rows_per_task,
        num_cpus=num_cpus,
        fn_kwargs={"split": split, "cfg": cfg, "seed": seed, "deterministic": deterministic},
    )


def count_rows(uris: list[str], split: str | None, s3: S3Options | None = None) -> int:
    """Number of ``ok`` rows of ``split`` over ``uris``, from Parquet metadata.

    Row groups whose statistics decide the filter are counted from their footers; the
    others read only their ``status`` and ``split`` column chunks.
    """
    from liwi.training.data import ok_rows, parquet_dataset

    n = 0
    for uri in uris:
        ds = parquet_dataset(uri, s3=s3)
        n += ds.count_rows(filter=ok_rows(split)) if ds is not None else 0
    return n
