"""Every YAML config this part ships loads into its typed config; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from liwi.config import ConfigError
from liwi.evaluation.ablation import AblationConfig, variant_config
from liwi.evaluation.job import EvaluateConfig
from liwi.tracking import PromoteConfig
from liwi.training.distributed import TrainConfig
from liwi.training.finetune import FinetuneConfig
from liwi.training.prior import PriorFinetuneConfig

CONFIGS = Path(__file__).resolve().parents[2] / "jobs" / "configs"


def _config_class(name: str):
    """The typed config a shipped YAML file is read with, by its name."""
    from liwi.add.config import DecomposeConfig
    from liwi.synth.job import SynthConfig
    from liwi.training.local import TrainLocalConfig

    if name.startswith("train_local_"):
        return TrainLocalConfig
    if name.startswith("decompose"):
        return DecomposeConfig
    by_name = {
        "train.yaml": TrainConfig,
        "train_gpu.yaml": TrainConfig,
        "evaluate.yaml": EvaluateConfig,
        "ablation.yaml": AblationConfig,
        "promote.yaml": PromoteConfig,
        "finetune_v2.yaml": FinetuneConfig,
        "finetune_v2_u2net_gpu.yaml": FinetuneConfig,
        "finetune_prior_u2netp.yaml": PriorFinetuneConfig,
        "finetune_prior_u2netp_zoom.yaml": PriorFinetuneConfig,
        "finetune_prior_u2netp_photos.yaml": PriorFinetuneConfig,
        "synth.yaml": SynthConfig,
        "synth_render.yaml": SynthConfig,
    }
    return by_name.get(name)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_yaml_in_jobs_configs_loads(path, monkeypatch):
    # a new config file must be added to _config_class, so it is checked from day one
    cls = _config_class(path.name)
    assert cls is not None, f"{path.name}: no typed config known for it"
    monkeypatch.chdir(CONFIGS.parents[1])  # relative paths in configs are from the repo root
    assert cls.from_yaml(path).to_dict()


def test_gpu_config_asks_for_gpus_and_shared_storage():
    cfg = TrainConfig.from_yaml(CONFIGS / "train_gpu.yaml")
    assert cfg.scaling.use_gpu and cfg.storage_path.startswith("s3://")


def test_unknown_key_and_bad_crop_are_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables: [x]\nstepz: 3\n")
    with pytest.raises(ConfigError, match="stepz"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="multiple of"):
        TrainConfig.from_dict({"tables": ["x"], "preset": "tiny", "data": {"crop": 34}})


def test_ablation_variants_share_the_budget_and_switch_one_objective(monkeypatch):
    monkeypatch.chdir(CONFIGS.parents[1])  # train_config is relative to the repo root
    cfg = AblationConfig.from_yaml(CONFIGS / "ablation.yaml")
    full, no_shadow, no_degr = (variant_config(cfg, v) for v in cfg.variants)
    assert full.steps == no_shadow.steps == no_degr.steps == 300
    assert len({full.name, no_shadow.name, no_degr.name}) == 3
    assert full.loss.shadow_attenuation > 0 and full.loss.degradation_restoration > 0
    assert no_shadow.loss.shadow_attenuation == no_shadow.loss.shadow_background == 0
    assert no_shadow.loss.degradation_restoration > 0
    assert no_degr.loss.degradation_restoration == 0 and no_degr.loss.shadow_attenuation > 0
    # degraded samples would only feed the switched-off term: none are drawn
    assert no_degr.data.degrade_prob == 0 < full.data.degrade_prob == no_shadow.data.degrade_prob
