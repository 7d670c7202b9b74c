"""A model from the MLflow registry by alias: /v1/models reports the registry version.

Uses a real MLflow registry in a temp sqlite file. Slow (MLflow creates its schema with
migrations, minutes on a busy machine), so it runs with `make test-all`.
"""

from __future__ import annotations

import pytest

from liwi.serving.deployments import describe_model

pytestmark = pytest.mark.slow


def test_registry_alias_resolves_to_its_version(tmp_path, monkeypatch, tiny_checkpoint):
    import mlflow
    from mlflow import MlflowClient

    from liwi.predictor import Predictor

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("serving-test")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tiny_checkpoint), artifact_path="model")
    client = MlflowClient()
    client.create_registered_model("liwi-serving-test")
    for _ in range(2):  # two versions; the alias points at the second
        mv = client.create_model_version(
            "liwi-serving-test", source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
    client.set_registered_model_alias("liwi-serving-test", "champion", mv.version)

    info = describe_model("models:/liwi-serving-test@champion")
    assert info == {
        "uri": "models:/liwi-serving-test@champion",
        "name": "liwi-serving-test",
        "version": "2",
        "source": "models:/liwi-serving-test@champion",
    }
    assert describe_model("models:/liwi-serving-test/1")["version"] == "1"
    predictor = Predictor.from_uri("models:/liwi-serving-test@champion", device="cpu")
    assert predictor.config.resolution == 64

    # a replica resolves the alias once and loads exactly that version; moving the alias
    # later changes nothing it serves until a rollout pins the new version
    from liwi.serving.loaded import LoadedModel, load_uri

    served = LoadedModel("models:/liwi-serving-test@champion", prior_ref=None, device="cpu")
    assert served.identity["version"] == "2"
    assert load_uri(served.identity) == "models:/liwi-serving-test/2"
    client.set_registered_model_alias("liwi-serving-test", "champion", "1")
    assert served.model_ref()["version"] == "2"
    assert describe_model("models:/liwi-serving-test@champion")["version"] == "1"
