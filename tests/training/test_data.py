"""Training data: peeling targets recompose the input; samples are shaped and seeded."""

from pathlib import Path

import numpy as np
import pytest
import torch

from liwi.model.compose import composite_one
from liwi.schema import sample_id_for, stack_to_row
from liwi.synth.procedural import procedural_scene
from liwi.training.data import (
    DataConfig,
    StackDataset,
    collate,
    degrade_mask,
    make_sample,
    peel_target,
    rows_from_table,
)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))[None])


@pytest.mark.parametrize("level", [0, 1, 2])
def test_peel_target_recomposes_its_input(level):
    stack = procedural_scene(np.random.default_rng(0), 32, 2)
    t = peel_target(stack, level)
    recomposed = composite_one(_t(t.background), _t(t.color), _t(t.alpha), _t(t.shadow))
    np.testing.assert_allclose(recomposed[0].numpy().transpose(1, 2, 0), t.image, atol=2e-6)
    if level == 0:
        assert t.alpha.max() == 0 and t.shadow.min() == 1
    with pytest.raises(ValueError):
        peel_target(stack, 3)


def test_flat_image_is_the_top_level_input_only():
    stack = procedural_scene(np.random.default_rng(0), 32, 2)
    flat = np.full((32, 32, 3), 0.5, np.float32)
    assert np.array_equal(peel_target(stack, 2, flat).image, flat)
    assert not np.array_equal(peel_target(stack, 1, flat).image, flat)


def test_samples_are_shaped_and_reproducible():
    stacks = [procedural_scene(np.random.default_rng(i), 48, 1 + i % 2) for i in range(4)]
    ds = StackDataset(stacks, DataConfig(crop=32, degrade_prob=0.5), seed=7)
    batch = collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 32, 32) and batch["prompt"].shape == (4, 3, 32, 32)
    assert batch["alpha"].shape == (4, 1, 32, 32) and batch["degraded"].shape == (4,)
    again = collate([ds[i] for i in range(4)])
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    ds.set_epoch(1)
    other = collate([ds[i] for i in range(4)])
    assert not torch.equal(batch["image"], other["image"])


def test_degraded_samples_carry_a_damaged_mask_prompt():
    stack = procedural_scene(np.random.default_rng(5), 48, 1)
    cfg = DataConfig(
        crop=48, prompt_prob=1.0, degrade_prob=1.0, empty_prob=0.0, scale_max=1.0, flip_prob=0.0
    )
    s = make_sample(stack, cfg, np.random.default_rng(0))
    assert s["degraded"] == 1.0
    assert np.abs(s["prompt"][0] - s["alpha"][0]).mean() > 1e-3  # not the clean alpha
    assert np.abs(s["prompt"][0] - s["alpha"][0]).mean() < 0.2  # but close to it


def test_degraded_samples_come_out_of_the_prompted_share():
    stacks = [procedural_scene(np.random.default_rng(i), 40, 1) for i in range(3)]
    base = {"crop": 32, "empty_prob": 0.0, "prompt_prob": 0.5}

    def shares(degrade_prob):
        cfg = DataConfig(**base, degrade_prob=degrade_prob)
        draws = [make_sample(stacks[i % 3], cfg, np.random.default_rng(i)) for i in range(600)]
        unprompted = np.mean([not s["prompt"].any() for s in draws])
        return unprompted, np.mean([s["degraded"] for s in draws])

    unprompted_on, degraded_on = shares(0.3)
    unprompted_off, degraded_off = shares(0.0)
    assert degraded_off == 0 and abs(degraded_on - 0.3) < 0.06
    assert abs(unprompted_on - 0.5) < 0.06 and abs(unprompted_off - 0.5) < 0.06
    with pytest.raises(ValueError, match="share of the prompted"):
        DataConfig(prompt_prob=0.2, degrade_prob=0.3)


def test_degrade_mask_changes_area_as_expected():
    a = np.zeros((32, 32), np.float32)
    a[8:24, 8:24] = 1
    rng = np.random.default_rng(0)
    areas = {float(degrade_mask(a, 3, rng).sum()) for _ in range(20)}
    assert min(areas) < a.sum() < max(areas)  # erosions and dilations both occur


def test_rows_from_table_filters_ok_rows_by_split(tmp_path):
    from liwi.table import write_table

    rows = []
    for i, split in enumerate(["train", "train", "val"]):
        st = procedural_scene(np.random.default_rng(i), 32, 1)
        rows.append(
            stack_to_row(st, sample_id=sample_id_for(bytes([i])), source_uri="t", split=split)
        )
    write_table(rows, str(tmp_path))
    assert len(rows_from_table(str(tmp_path), split="train")) == 2
    assert len(rows_from_table([str(tmp_path), str(tmp_path)], split="val")) == 2
    ds = StackDataset(rows_from_table(str(tmp_path)), DataConfig(crop=32))
    assert ds[0]["image"].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="no samples"):
        StackDataset([], DataConfig())


def _table_with_a_ruined_column(path, splits: list[str], column: str) -> str:
    """A one-part layer table whose ``column`` chunk is overwritten with zeros.

    Any read of that column fails, so a count or a projected read that succeeds has not
    downloaded it (``image`` is most of a real table's bytes).
    """
    import pyarrow.parquet as pq

    from liwi.table import write_table

    rows = [
        stack_to_row(
            procedural_scene(i, 32, 1),
            sample_id=sample_id_for(bytes([i])),
            source_uri=f"p{i}.png",
            split=split,
        )
        for i, split in enumerate(splits)
    ]
    part = write_table(rows, str(path))
    md = pq.ParquetFile(part).metadata
    data = bytearray(Path(part).read_bytes())
    chunk = md.row_group(0).column(md.schema.names.index(column))
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data[start : start + chunk.total_compressed_size] = bytes(chunk.total_compressed_size)
    Path(part).write_bytes(bytes(data))
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for a ruined chunk
        pq.read_table(part, columns=[column])
    return str(path)


def test_counts_come_from_metadata_without_reading_images(tmp_path):
    from liwi.training.ray_data import count_rows

    table = _table_with_a_ruined_column(tmp_path / "t", ["train", "train", "val"], "image")
    assert count_rows([table], "train") == 2
    assert count_rows([table, table], "val") == 2
    assert count_rows([table], None) == 3
    assert count_rows([table], "test") == 0
    assert count_rows([str(tmp_path / "missing")], "train") == 0


def test_rows_from_table_reads_only_the_training_columns(tmp_path):
    from liwi.training.data import TRAINING_COLUMNS

    assert "agent_trace" not in TRAINING_COLUMNS
    table = _table_with_a_ruined_column(tmp_path / "t", ["train", "val"], "agent_trace")
    (row,) = rows_from_table(table, split="val")
    assert set(row) == set(TRAINING_COLUMNS) and row["source_uri"] == "p1.png"
    assert rows_from_table(str(tmp_path / "missing")) == []


def test_shadow_prompts_cover_the_cast_shadow_and_the_target_leaves_it_out():
    # the prior's mask spills onto the object's shadow; such a prompt must still ask for
    # the clean alpha, so the network learns to cut the shadow out of it
    stack = procedural_scene(np.random.default_rng(5), 64, 1)
    base = {
        "crop": 64,
        "prompt_prob": 1.0,
        "degrade_prob": 1.0,
        "empty_prob": 0.0,
        "scale_max": 1.0,
        "flip_prob": 0.0,
    }
    with_shadow = make_sample(
        stack, DataConfig(**base, shadow_prompt_prob=1.0), np.random.default_rng(0)
    )
    without = make_sample(stack, DataConfig(**base), np.random.default_rng(0))
    alpha = with_shadow["alpha"][0]
    shade = 1.0 - with_shadow["shadow"].min(axis=0)
    only_shadow = (shade > 0.2) & (alpha < 0.01)
    assert only_shadow.sum() > 20  # the scene casts a visible shadow
    assert with_shadow["prompt"][0][only_shadow].mean() > 0.4  # the prompt covers it
    assert without["prompt"][0][only_shadow].mean() < 0.1  # a plain degraded mask does not
    np.testing.assert_array_equal(with_shadow["alpha"], without["alpha"])  # same clean target
    assert with_shadow["degraded"] == 1.0
