"""Layer tables → Ray Data → training samples (decoding and augmentation in the data path).

:func:`layer_table_dataset` reads the Parquet parts of one or more layer tables (local
folders or ``s3://`` lakes) with ``ray.data.read_parquet``; :func:`training_samples`
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
from liwi.training.data import DataConfig

# Columns the training path needs (the flat image is the top-level input where present).
COLUMNS = ["sample_id", "source_uri", "image", "background", "objects", "status", "split"]
# Keys of a training sample, in the order the model and the losses read them.
SAMPLE_KEYS = ("image", "prompt", "alpha", "color", "background", "shadow", "degraded")

_draws: Counter[str] = Counter()  # per data process: how often each sample was drawn


def _seed_of(sample_id: str) -> int:
    return int(hashlib.sha256(sample_id.encode()).hexdigest()[:12], 16)


def read_parts(batch, *, fs, columns: list[str], rows_per_batch: int = 64):
    """Ray Data ``map_batches`` generator: Parquet part paths → row batches (pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in batch.column("path").to_pylist():
        with fs.open_input_file(path) as f:
            for rb in pq.ParquetFile(f).iter_batches(batch_size=rows_per_batch, columns=columns):
                yield pa.Table.from_batches([rb])


def layer_table_dataset(uris: list[str], s3: S3Options | None = None, num_cpus: float = 1.0):
    """One Ray Dataset over the parts of every table in ``uris`` (columns :data:`COLUMNS`).

    One read task per Parquet part, with the CPUs of the data path: Ray Data's own
    ``read_parquet`` adds a file-listing operator that asks for a whole CPU per table,
    which starves when training workers already hold most of a small node.
    """
    import ray.data

    from liwi.table import list_parts

    if not uris:
        raise ValueError("no layer tables given")
    datasets = []
    for uri in uris:
        lake = Lake.from_uri(uri, s3=s3)
        parts = list_parts(lake)
        if not parts:
            raise FileNotFoundError(f"layer table {uri} has no Parquet parts")
        items = ray.data.from_items([{"path": p} for p in parts], override_num_blocks=len(parts))
        datasets.append(
            items.map_batches(
                read_parts,
                batch_size=1,
                batch_format="pyarrow",
                num_cpus=num_cpus,
                fn_kwargs={"fs": lake.fs, "columns": COLUMNS},
            )
        )
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
    return layer_table_dataset(uris, s3=s3, num_cpus=num_cpus).map_batches(
        decode_and_sample,
        batch_format="pyarrow",
        batch_size=rows_per_task,
        num_cpus=num_cpus,
        fn_kwargs={"split": split, "cfg": cfg, "seed": seed, "deterministic": deterministic},
    )


def count_rows(uris: list[str], split: str | None, s3: S3Options | None = None) -> int:
    """Number of ``ok`` rows of ``split`` over ``uris`` (read on the driver, two columns)."""
    from liwi.table import read_table

    n = 0
    for uri in uris:
        t = read_table(Lake.from_uri(uri, s3=s3), columns=["status", "split"], validate=False)
        for row in t.to_pylist():
            n += row["status"] == "ok" and (split is None or row["split"] == split)
    return n
