"""The synth job writes its lake to a real S3 server (SeaweedFS on loopback)."""

import json
from urllib.parse import urlparse

import numpy as np
import pytest

from liwi.schema import row_to_stack
from liwi.synth.backgrounds import load_photos
from liwi.synth.generator import generate, spec_from_trace
from liwi.synth.job import SynthConfig, run
from liwi.table import read_table

pytestmark = pytest.mark.integration


def test_synth_to_s3(s3_bucket_uri, s3_env):
    summary = run(SynthConfig(out=s3_bucket_uri, n=3, layers=3, size=48, progress=False))
    bucket = urlparse(s3_bucket_uri).netloc
    listed = s3_env.client().list_objects_v2(Bucket=bucket, Prefix="prefix/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    assert sum(k.startswith("prefix/images/") for k in keys) == 3
    assert sum(k.startswith("prefix/table/part-") for k in keys) == 1
    assert {"prefix/contact_sheet.png", "prefix/summary.json"} <= set(keys)
    body = s3_env.client().get_object(Bucket=bucket, Key="prefix/summary.json")["Body"].read()
    assert json.loads(body)["table"] == summary["table"] == f"{s3_bucket_uri}/table"

    photos = load_photos()
    rows = read_table(summary["table"]).to_pylist()
    assert len(rows) == 3
    for row in rows:
        clean = generate(spec_from_trace(json.loads(row["agent_trace"])), photos).clean
        assert np.abs(row_to_stack(row).composite() - clean).mean() < 1 / 255
