"""Layer tables through Ray Data: ``read_parquet`` with the training columns and ok rows only."""

from __future__ import annotations

import pytest

from liwi.training.data import TRAINING_COLUMNS, DataConfig
from training.test_data import _table_with_a_ruined_column

pytestmark = pytest.mark.integration


def test_read_parquet_projects_the_training_columns_and_filters_rows(ray_local, tmp_path):
    from liwi.training.ray_data import layer_table_dataset, training_samples

    splits = ["train", "val", "train", "test"]
    table = _table_with_a_ruined_column(tmp_path / "t", splits, "agent_trace")
    rows = layer_table_dataset([table, table], split="train", ok_only=True)
    assert sorted(rows.columns()) == sorted(TRAINING_COLUMNS)
    got = rows.take_all()  # the ruined column is never read
    assert len(got) == 4 and {r["split"] for r in got} == {"train"}
    assert "ReadFilesParquet" in rows.stats()  # read_parquet, filter and projection fused

    samples = training_samples([table], "val", DataConfig(crop=32), seed=0).take_all()
    assert len(samples) == 1 and samples[0]["image"].shape == (3, 32, 32)


def test_a_table_without_parquet_files_is_named(ray_local, tmp_path):
    from liwi.training.ray_data import layer_table_dataset

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty has no Parquet files"):
        layer_table_dataset([str(tmp_path / "empty")])
