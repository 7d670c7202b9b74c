"""infra/: manifests parse, validate, agree on versions, carry no secrets, and stay generated.

Kubernetes core objects (and every pod template inside the KubeRay resources) are validated
against the official JSON schemas shipped offline by ``kubernetes-validate``. The KubeRay
CRDs themselves are not available offline here, so their fields are checked structurally
against the KubeRay API reference (ray.io/v1).
"""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
K8S = INFRA / "k8s"
KUBERNETES_VERSION = "1.33"  # oldest Kubernetes the manifests must validate against
CORE_KINDS = {"Namespace", "ConfigMap", "Service", "Deployment", "StatefulSet"}
KUBERAY_KINDS = {"RayCluster", "RayJob", "RayService"}
SECRET_KEY = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL|PRIVATE", re.I)


def _render_module():
    spec = importlib.util.spec_from_file_location("liwi_infra_render", INFRA / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _render_module()


def manifests() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, doc) for name, doc in manifests() if doc["kind"] == kind]


def cluster_specs() -> list[tuple[str, dict[str, Any]]]:
    """Every RayCluster spec: the cluster itself and those embedded in jobs and services."""
    out = [(n, d["spec"]) for n, d in by_kind("RayCluster")]
    out += [(n, d["spec"]["rayClusterSpec"]) for n, d in by_kind("RayJob")]
    out += [(n, d["spec"]["rayClusterConfig"]) for n, d in by_kind("RayService")]
    return out


def pod_templates() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, spec in cluster_specs():
        out.append((f"{name}:head", spec["headGroupSpec"]["template"]))
        out += [(f"{name}:{g['groupName']}", g["template"]) for g in spec["workerGroupSpecs"]]
    for name, doc in manifests():
        if doc["kind"] in ("Deployment", "StatefulSet"):
            out.append((name, doc["spec"]["template"]))
    return out


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [(n, c) for n, t in pod_templates() for c in t["spec"]["containers"]]


def pinned_ray_version() -> str:
    for line in (REPO / "constraints" / "py311-x86_64.txt").read_text().splitlines():
        if line.startswith("ray=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError("constraints/py311-x86_64.txt does not pin ray")


def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


# -- parsing and schemas ------------------------------------------------------------------
def test_every_manifest_parses_with_kind_and_name():
    docs = manifests()
    kinds = {d["kind"] for _, d in docs}
    assert kinds >= KUBERAY_KINDS | CORE_KINDS
    for name, doc in docs:
        assert doc.get("apiVersion") and doc.get("metadata", {}).get("name"), name
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "liwi", name
    assert yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]


def test_core_objects_validate_against_kubernetes_schemas():
    import kubernetes_validate

    checked = 0
    for _name, doc in manifests():
        if doc["kind"] in CORE_KINDS:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
            checked += 1
    assert checked >= 6


def test_kuberay_pod_templates_validate_as_pod_template_specs():
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict"
    schema = utils.schema_contents(f"{folder}/podtemplatespec-v1.json", KUBERNETES_VERSION)
    defs = utils.schema_contents(f"{folder}/_definitions.json", KUBERNETES_VERSION)
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    templates = pod_templates()
    assert len(templates) >= 15  # head + 2 groups, in the cluster, 3 jobs and the service
    for name, template in templates:
        errors = [
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(template)
        ]
        assert not errors, f"{name}: {errors}"


def test_a_broken_pod_template_is_caught():
    """The schema check above can fail: a misspelt field is an error in strict mode."""
    import kubernetes_validate

    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}},
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


# -- KubeRay structure ------------------------------------------------------------------
def test_ray_clusters_have_a_zero_cpu_head_cpu_and_gpu_groups_and_autoscaler_v2():
    specs = cluster_specs()
    assert len(specs) == 5  # RayCluster + 3 RayJobs + RayService
    for name, spec in specs:
        assert spec["enableInTreeAutoscaling"] is True, name
        assert spec["autoscalerOptions"]["version"] == "v2", name
        assert spec["authOptions"] == {"mode": "token", "secretName": "liwi-ray-token"}, name
        head = spec["headGroupSpec"]
        assert head["rayStartParams"]["num-cpus"] == "0", name
        for group in [head, *spec["workerGroupSpecs"]]:
            params = group["rayStartParams"]
            assert all(isinstance(v, str) for v in params.values()), f"{name}: strings only"
        groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
        assert set(groups) == {"cpu", "gpu"}, name
        for group in groups.values():
            assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
        gpu = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]
        assert gpu["limits"]["nvidia.com/gpu"] == "1", name
        cpu = groups["cpu"]["template"]["spec"]["containers"][0]["resources"]
        assert "nvidia.com/gpu" not in cpu["limits"], name


def test_rayjobs_run_the_same_entrypoints_as_liwi_submit():
    from liwi.submit import JOB_SCRIPTS, build_entrypoint

    jobs = {d["metadata"]["annotations"]["liwi.io/job"]: d for _, d in by_kind("RayJob")}
    assert set(jobs) == set(JOB_SCRIPTS) == set(render.JOBS)
    for job, doc in jobs.items():
        config, job_args, _ = render.JOBS[job]
        assert doc["spec"]["entrypoint"] == build_entrypoint(job, config, job_args)
        assert doc["spec"]["entrypoint"].startswith(f"python {JOB_SCRIPTS[job]} --config ")
        assert yaml.safe_load(doc["spec"]["runtimeEnvYAML"]) == {"working_dir": "/home/ray/liwi"}
        assert doc["spec"]["shutdownAfterJobFinishes"] is True


@pytest.mark.parametrize("job", sorted(render.JOBS))
def test_rayjob_script_and_config_exist_in_the_repository(job):
    from liwi.submit import JOB_SCRIPTS

    assert (REPO / JOB_SCRIPTS[job]).is_file(), f"the {job} RayJob runs a missing script"
    config = REPO / render.JOBS[job][0]
    assert config.is_file(), f"the {job} RayJob runs {config}, which does not exist"


def test_generated_manifests_are_up_to_date(capsys):
    rc = render.main(["--check"])
    assert rc == 0, capsys.readouterr().err


def test_rayservice_serve_config_is_rendered_from_serve_config_yaml():
    (service,) = [d for _, d in by_kind("RayService")]
    source = REPO / service["metadata"]["annotations"]["liwi.io/serve-config"]
    assert source.is_file(), f"the RayService names a missing Serve config: {source}"
    expected = render.render_serve_config(
        yaml.safe_load(source.read_text()), render.DEFAULT_MODEL_URI
    )
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == expected


def test_serve_config_rendering_rules():
    src = {
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "applications": [
            {
                "name": "a",
                "import_path": "m:app",
                "runtime_env": {"working_dir": "/local/path", "env_vars": {"K": "v"}},
                "args": {"model_uri": None, "other": 1},
            }
        ],
    }
    out = render.render_serve_config(src, "models:/liwi@champion")
    assert out["http_options"] == {"host": "0.0.0.0", "port": 8000}
    assert out["applications"][0]["runtime_env"] == {"env_vars": {"K": "v"}}
    assert out["applications"][0]["args"] == {"model_uri": "models:/liwi@champion", "other": 1}
    assert src["http_options"]["host"] == "127.0.0.1"  # the source is not modified


def test_a_stale_rayservice_is_reported(tmp_path, monkeypatch):
    """--check really compares: a changed cluster spec makes every output stale."""
    cluster = yaml.safe_load((K8S / "raycluster.yaml").read_text())
    cluster["spec"]["workerGroupSpecs"][0]["maxReplicas"] = 99
    monkeypatch.setattr(render, "load_cluster", lambda: cluster)
    assert render.main(["--check"]) == 1


# -- versions ---------------------------------------------------------------------------
def test_ray_versions_agree_everywhere():
    import ray
    from packaging.requirements import Requirement

    pinned = pinned_ray_version()
    ray_req = next(
        Requirement(r) for r in pyproject()["project"]["dependencies"] if r.startswith("ray")
    )
    assert ray_req.specifier.contains(pinned), f"pyproject {ray_req} excludes {pinned}"
    assert ray.__version__ == pinned, "the submitting client must match the cluster image"
    for name, spec in cluster_specs():
        assert spec["rayVersion"] == pinned, name
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert f"ARG RAY_VERSION={pinned}\n" in dockerfile
    assert "FROM rayproject/ray:${RAY_VERSION}-py311-gpu AS platform" in dockerfile


def test_images_are_tagged_with_the_liwi_and_ray_versions():
    tag = f"liwi/platform:{pyproject()['project']['version']}-ray{pinned_ray_version()}-gpu"
    images = [c["image"] for _, c in containers() if c["image"].startswith("liwi/platform")]
    assert len(images) >= 15 and set(images) == {tag}
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    assert compose["ray-head"]["image"] == compose["ray-worker"]["image"] == tag
    import mlflow

    mlflow_tag = f"liwi/mlflow:{mlflow.__version__}"
    assert compose["mlflow"]["image"] == mlflow_tag
    assert f"ARG MLFLOW_VERSION={mlflow.__version__}\n" in (INFRA / "Dockerfile").read_text()
    assert mlflow_tag in [c["image"] for _, c in containers()]


# -- secrets ----------------------------------------------------------------------------
def test_no_secret_literals_in_manifests():
    assert not by_kind("Secret"), "Secrets are created with kubectl, not committed"
    for name, container in containers():
        for env in container.get("env", []):
            assert not SECRET_KEY.search(env["name"]) or "value" not in env, (name, env)
    for path in [*K8S.glob("*.yaml"), INFRA / "compose.yaml", INFRA / "Dockerfile"]:
        text = path.read_text()
        assert not re.search(r"AKIA[0-9A-Z]{16}", text), path
        assert not re.search(r"postgres(ql)?://[^:\s]+:[^$@\s{]+@", text), path


def test_secrets_reach_pods_through_env_from():
    for name, container in containers():
        refs = {r["secretRef"]["name"] for r in container.get("envFrom", []) if "secretRef" in r}
        if container["image"].startswith(("liwi/platform", "liwi/mlflow")):
            assert "liwi-s3" in refs, name
        if container["image"].startswith(("liwi/mlflow", "postgres")):
            assert "liwi-mlflow-db" in refs, name


def test_compose_takes_every_secret_from_the_env_file():
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    for service_name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_KEY.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), (service_name, key)
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (service_name, port)
    example = (INFRA / ".env.example").read_text()
    for line in example.splitlines():
        if line and not line.startswith("#"):
            assert line.split("=", 1)[1].startswith("change-me"), line
    assert "/infra/.env" in (REPO / ".gitignore").read_text().splitlines()


def test_compose_stack_has_s3_mlflow_and_a_ray_head_and_worker():
    services = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]
    assert {"s3", "postgres", "mlflow", "ray-head", "ray-worker"} <= set(services)
    assert services["s3"]["image"].startswith("chrislusf/seaweedfs:")
    assert "--head" in services["ray-head"]["command"]
    assert "--num-cpus=0" in services["ray-head"]["command"]
    assert "ray-head:6379" in services["ray-worker"]["command"]
    assert "postgresql://" in services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
