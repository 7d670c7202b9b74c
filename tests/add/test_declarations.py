"""Each stage declares its name, resources and columns once; the job derives the rest."""

from liwi.add.base import TABLE_NAMES, Pipeline, batch_to_rows, rows_to_batch
from liwi.add.config import DecomposeConfig, default_resources
from liwi.add.driver import plan, stage_calls
from liwi.add.stages import INPUT_COLUMNS, STAGE_ORDER, STAGES, WriteParts
from liwi.sample_photos import procedural_photo


def test_order_names_and_tables_come_from_one_list():
    assert STAGE_ORDER == ("read_decode", "segment", "decompose", "curate", "to_rows", "write")
    assert TABLE_NAMES == ("layers", "rejects", "errors")
    assert default_resources() == {s.name: s.resources for s in STAGES}
    assert DecomposeConfig().stages == default_resources()


def test_every_read_column_is_written_upstream_and_not_dropped():
    available = set(INPUT_COLUMNS)
    for stage in STAGES:
        missing = set(stage.reads) - available
        assert not missing, f"{stage.name} reads {sorted(missing)} that no earlier stage writes"
        available = (available | set(stage.writes)) - set(stage.drops)


def test_a_real_run_writes_and_drops_what_each_stage_declares(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "a.jpg").write_bytes(procedural_photo(0, 96, 1))
    config = DecomposeConfig(input=str(lake), output=str(tmp_path / "out"), runner="loop")
    batch = rows_to_batch([{"path": str(lake / "a.jpg")}])
    for call in stage_calls(config):
        batch = call.cls(**call.kwargs)(batch)
        columns = set(batch)
        assert set(call.cls.writes) <= columns, call.cls.name
        assert not set(call.cls.drops) & columns, call.cls.name
        assert f"t_{call.cls.name}" in columns
    assert batch_to_rows(batch)[0]["n_ok"] == 1  # the writer returns one tally row


def test_fusing_puts_all_but_the_writer_in_one_pool_sized_by_decompose():
    config = DecomposeConfig(input="in", output="out", fuse=True)
    calls = stage_calls(config)
    pools = plan(config, calls)
    assert [p.cls for p in pools] == [Pipeline, WriteParts]
    assert [cls.name for cls, _ in pools[0].kwargs["stages"]] == list(STAGE_ORDER[:-1])
    assert pools[0].resources == config.stage_resources()["decompose"]
    unfused = plan(config.model_copy(update={"fuse": False}), calls)
    assert [p.cls for p in unfused] == list(STAGES)


def test_the_shipped_pools_and_the_listing_task_fit_the_declared_ray():
    """Ray Data starts the pools first; a listing task that does not fit what they leave
    is never scheduled and the job hangs (it did, with 0.25 CPU, in the end-to-end run)."""
    from pathlib import Path

    from liwi.add.ray_adapter import LISTING_CPUS

    config = DecomposeConfig.from_yaml(Path(__file__).parents[2] / "jobs/configs/decompose.yaml")
    pools = plan(config, stage_calls(config))
    held = sum(p.resources.max_actors * p.resources.num_cpus for p in pools)  # fully scaled
    assert held + LISTING_CPUS <= config.ray.num_cpus
