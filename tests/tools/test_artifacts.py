"""Model artifacts from local paths and from an S3 lake (SeaweedFS fixture)."""

import pytest

from liwi.tools.artifacts import artifact_dir, read_artifact
from liwi.tools.base import ToolError


def test_local_files_and_folders(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"\x00weights")
    assert read_artifact(tmp_path / "m" / "w.bin") == b"\x00weights"
    assert read_artifact(f"file://{tmp_path}/m/w.bin") == b"\x00weights"
    assert artifact_dir(f"file://{tmp_path}/m") == tmp_path / "m"
    with pytest.raises(ToolError, match="model file not found"):
        read_artifact(tmp_path / "nope.bin")
    with pytest.raises(ToolError, match="model folder not found"):
        artifact_dir(tmp_path / "nope")


@pytest.mark.integration
def test_files_and_folders_from_an_s3_lake(s3_bucket_uri, tmp_path):
    from liwi.lake import Lake

    lake = Lake.from_uri(s3_bucket_uri)
    lake.write_bytes(lake.path("models/sam.pt"), b"checkpoint-bytes")
    lake.write_bytes(lake.path("models/pipe/model_index.json"), b"{}")
    lake.write_bytes(lake.path("models/pipe/unet/config.json"), b'{"in_channels": 9}')
    assert read_artifact(f"{s3_bucket_uri}/models/sam.pt") == b"checkpoint-bytes"
    local = artifact_dir(f"{s3_bucket_uri}/models/pipe", cache_dir=str(tmp_path / "cache"))
    assert (local / "model_index.json").read_bytes() == b"{}"
    assert (local / "unet" / "config.json").read_bytes() == b'{"in_channels": 9}'
    with pytest.raises(ToolError, match="sam-missing.pt"):
        read_artifact(f"{s3_bucket_uri}/models/sam-missing.pt")
    with pytest.raises(ToolError, match="nothing-here"):
        artifact_dir(f"{s3_bucket_uri}/models/nothing-here")
