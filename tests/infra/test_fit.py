"""Every shipped Train, ADD and Serve config fits the cluster of the manifest it is rendered into.

The configs are read back from the generated manifests themselves (the RayJob's entrypoint
names its config, the RayService carries its Serve config), so a config edited without
re-rendering, or a cluster shrunk under a config, fails here. Placement is first-fit on the
pods each worker group can grow to (``maxReplicas``), per resource: GPU, CPU and memory.
"""

from __future__ import annotations

import copy
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_manifests import REPO, by_kind, render

CLUSTER = yaml.safe_load((REPO / "infra/k8s/raycluster.yaml").read_text())
GiB = 2**30


def entrypoint_config(doc: dict[str, Any]) -> Path:
    argv = shlex.split(doc["spec"]["entrypoint"])
    return REPO / argv[argv.index("--config") + 1]


def train_jobs() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(config path, config, cluster spec) of every RayJob that runs Ray Train."""
    out = []
    for _, doc in by_kind("RayJob"):
        path = entrypoint_config(doc)
        cfg = yaml.safe_load(path.read_text())
        if "scaling" in cfg:
            out.append((str(path.relative_to(REPO)), cfg, doc["spec"]["rayClusterSpec"]))
    return out


def test_the_train_rayjob_is_checked():
    assert [p for p, _, _ in train_jobs()] == ["jobs/configs/train_gpu.yaml"]


@pytest.mark.parametrize(
    "path,cfg,spec", train_jobs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_train_workers_and_data_tasks_fit_the_rayjob_cluster(path, cfg, spec):
    from liwi.training.config import TrainConfig

    TrainConfig.from_dict(cfg)  # a valid config to begin with
    assert render.train_fit_problems(cfg, spec) == [], path
    scaling = cfg["scaling"]
    where, _ = render.place([dict(scaling["resources_per_worker"])] * scaling["num_workers"], spec)
    assert set(where) == {"gpu"}, where  # GPU workers land on the GPU group


def test_the_rayservice_fits_its_cluster_and_serves_on_gpus():
    ((_, service),) = by_kind("RayService")
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    spec = service["spec"]["rayClusterConfig"]
    assert render.serve_fit_problems(serve_config, spec) == []
    # the cluster has a GPU group, so the RayService runs the GPU config
    assert service["metadata"]["annotations"]["liwi.io/serve-config"] == "serve/config.gpu.yaml"
    model = [b for n, b in render.serve_bundles(serve_config) if n.endswith("/LiwiModel")]
    assert model and all(b["GPU"] == 1 for b in model)


@pytest.mark.parametrize("source", ["serve/config.yaml", "serve/config.gpu.yaml"])
def test_both_serve_configs_fit_the_cluster(source):
    serve_config = yaml.safe_load((REPO / source).read_text())
    assert render.serve_fit_problems(serve_config, CLUSTER["spec"]) == []


# -- the ADD job's actor pools -------------------------------------------------------------
ADD_CONFIGS = ["jobs/configs/decompose.yaml", "jobs/configs/decompose_gpu.yaml"]


def add_config(path: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / path).read_text())


@pytest.mark.parametrize("path", ADD_CONFIGS)
def test_every_shipped_add_config_fits_the_cluster_and_the_rayjob(path):
    from liwi.add.config import DecomposeConfig

    DecomposeConfig.from_yaml(REPO / path)  # strict: unknown keys are errors
    jobs = [d for _, d in by_kind("RayJob")]
    (job,) = [d for d in jobs if d["metadata"]["annotations"]["liwi.io/job"] == "decompose"]
    for spec in (CLUSTER["spec"], job["spec"]["rayClusterSpec"]):
        assert render.add_fit_problems(add_config(path), spec) == [], path


def test_the_gpu_add_config_runs_the_segmenter_on_gpu_fractions_and_the_rest_on_cpus():
    pools = {
        name: (bundle, lo, hi)
        for name, bundle, lo, hi in render.add_pools(add_config("jobs/configs/decompose_gpu.yaml"))
    }
    assert set(pools) == {"read_decode", "segment", "decompose", "curate", "to_rows", "write"}
    bundle, lo, hi = pools["segment"]
    assert 0 < bundle["GPU"] < 1 and lo < hi  # a fraction of a GPU, an autoscaling pool
    assert all(b["GPU"] == 0 and lo <= hi for n, (b, lo, hi) in pools.items() if n != "segment")
    where, unplaced = render.place([bundle] * hi, CLUSTER["spec"])
    assert not unplaced and set(where) == {"gpu"}


def test_add_pools_that_do_not_fit_are_reported():
    cfg = add_config("jobs/configs/decompose_gpu.yaml")
    (problem,) = render.add_fit_problems(cfg, cpu_only(CLUSTER)["spec"])
    assert "pool segment" in problem and "fits no pod" in problem  # it would wait forever
    cfg["stages"]["decompose"]["max_actors"] = 90
    (problem,) = render.add_fit_problems(cfg, CLUSTER["spec"])
    assert "do not fit" in problem


# -- the checker catches what does not fit ------------------------------------------------
def train(num_workers: int, cpu: float, data_cpus: float = 1.0, **extra) -> dict[str, Any]:
    worker = {"CPU": cpu, "GPU": 1, **extra}
    scaling = {"num_workers": num_workers, "use_gpu": True, "data_cpus": data_cpus}
    return {"scaling": {**scaling, "resources_per_worker": worker}}


def test_more_gpu_workers_than_gpu_pods_do_not_fit():
    assert render.train_fit_problems(train(4, 6), CLUSTER["spec"]) == []
    (problem,) = render.train_fit_problems(train(5, 6), CLUSTER["spec"])
    assert "5 workers" in problem and "1 bundles left over" in problem


def test_a_worker_that_takes_its_whole_pod_leaves_no_cpu_for_data():
    (problem,) = render.train_fit_problems(train(4, 8), CLUSTER["spec"])
    assert "no room beside it for a data task" in problem


def test_memory_is_checked_where_declared():
    # a 48 Gi GPU pod leaves ~33.6 GiB to tasks after Ray's object store share
    assert render.train_fit_problems(train(4, 6, memory=30 * GiB), CLUSTER["spec"]) == []
    assert render.train_fit_problems(train(4, 6, memory=40 * GiB), CLUSTER["spec"])


def test_serve_replicas_are_counted_at_max_replicas():
    cfg = yaml.safe_load((REPO / "serve/config.gpu.yaml").read_text())
    model = next(d for d in cfg["applications"][0]["deployments"] if d["name"] == "LiwiModel")
    model["autoscaling_config"]["max_replicas"] = 8
    (problem,) = render.serve_fit_problems(cfg, CLUSTER["spec"])
    assert "4 of 16 replicas find no pod" in problem


def test_quantities_parse_like_kubernetes():
    assert render.quantity("500m") == 0.5
    assert render.quantity("8") == 8 and render.quantity(2) == 2
    assert render.quantity("48Gi") == 48 * GiB and render.quantity("1G") == 1e9


def test_rendering_refuses_a_config_that_does_not_fit(monkeypatch, capsys):
    small = copy.deepcopy(CLUSTER)
    gpu = next(g for g in small["spec"]["workerGroupSpecs"] if g["groupName"] == "gpu")
    gpu["maxReplicas"] = 2
    monkeypatch.setattr(render, "load_cluster", lambda: small)
    assert render.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert "jobs/configs/train_gpu.yaml" in err and "serve:" in err


# -- which Serve config a cluster gets -----------------------------------------------------
def cpu_only(cluster: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(cluster)
    groups = out["spec"]["workerGroupSpecs"]
    out["spec"]["workerGroupSpecs"] = [g for g in groups if g["groupName"] != "gpu"]
    return out


def test_serve_config_follows_the_cluster_kind():
    assert render.serve_source(CLUSTER) == "serve/config.gpu.yaml"
    assert render.serve_source(cpu_only(CLUSTER)) == "serve/config.yaml"
    assert render.serve_source(CLUSTER, "cpu") == "serve/config.yaml"
    assert render.serve_source(cpu_only(CLUSTER), "gpu") == "serve/config.gpu.yaml"
    with pytest.raises(ValueError):
        render.serve_source(CLUSTER, "tpu")


def test_a_cpu_cluster_renders_the_cpu_serve_config(monkeypatch):
    monkeypatch.setattr(render, "load_cluster", lambda: cpu_only(CLUSTER))
    monkeypatch.setattr(render, "fit_problems", lambda *a: [])  # no GPU group for train_gpu
    text = render.render_all()[render.K8S / "rayservice.yaml"]
    service = yaml.safe_load(text)
    assert service["metadata"]["annotations"]["liwi.io/serve-config"] == "serve/config.yaml"
    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    expected = render.render_serve_config(
        yaml.safe_load((REPO / "serve/config.yaml").read_text()), render.DEFAULT_MODEL_URI
    )
    assert serve_config == expected
    assert "from infra/k8s/raycluster.yaml and serve/config.yaml." in text


def test_model_version_pins_every_model_replica():
    text = render.render_all(model_version="7")[render.K8S / "rayservice.yaml"]
    serve_config = yaml.safe_load(yaml.safe_load(text)["spec"]["serveConfigV2"])
    app = serve_config["applications"][0]
    model = next(d for d in app["deployments"] if d["name"] == "LiwiModel")
    assert model["user_config"] == {"model_uri": "models:/liwi/7"}
    assert app["args"]["model_uri"] == "models:/liwi@champion"  # the alias stays the default
    with pytest.raises(ValueError, match="registry --model-uri"):
        render.render_all(model_uri="/ckpt/model.pt", model_version="7")
