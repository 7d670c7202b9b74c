"""The shipped decompose RayJob's entrypoint runs on a Ray head through the Jobs API, as is.

The entrypoint is read from ``infra/k8s/rayjob-decompose.yaml`` and submitted unchanged (no
``--ray-address``, no other flag): under a job the supervisor sets ``RAY_ADDRESS`` and the
job must join that cluster. Its lake (``s3://liwi/lake/photos``) and output
(``s3://liwi/tables/add-v1``) live on the session's S3 server, which the head's environment
points at, as a cluster's pods would be. The working dir holds ``jobs/`` (the image's
``/home/ray/liwi`` holds the repository); ``liwi`` is installed where the head runs.
"""

from __future__ import annotations

import shlex
import shutil
import time

import pytest
import yaml
from test_manifests import K8S, REPO

pytestmark = pytest.mark.integration
N_PHOTOS = 2  # tiny procedural photos: the default config's tools take seconds each


def test_the_shipped_decompose_entrypoint_succeeds_on_a_ray_head(
    ray_cluster, s3_env, tmp_path, capsys
):
    from liwi.lake import Lake
    from liwi.sample_photos import procedural_photo
    from liwi.submit import AuthToken, RayJobs
    from liwi.training.data import parquet_dataset

    manifest = yaml.safe_load((K8S / "rayjob-decompose.yaml").read_text())
    entrypoint = manifest["spec"]["entrypoint"]
    argv = shlex.split(entrypoint)
    assert "--ray-address" not in argv
    source, output = argv[argv.index("--input") + 1], argv[argv.index("--output") + 1]

    lake = Lake.from_uri(source)
    for i in range(N_PHOTOS):
        lake.write_bytes(lake.path(f"photo{i}.jpg"), procedural_photo(i, size=96))
    shutil.copytree(REPO / "jobs", tmp_path / "repo" / "jobs")

    jobs = RayJobs(ray_cluster.dashboard_url, AuthToken(ray_cluster.auth_token, "the test"))
    t0 = time.perf_counter()
    sid = jobs.submit_entrypoint(entrypoint, {"working_dir": str(tmp_path / "repo")})
    status = jobs.wait(sid, timeout_s=900)
    took = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[rayjob-decompose] {status} in {took:.1f} s", flush=True)
    assert status == "SUCCEEDED", jobs.logs(sid)[-6000:]

    counts = {}
    for table in ("layers", "rejects", "errors"):
        ds = parquet_dataset(f"{output}/{table}")
        counts[table] = ds.count_rows() if ds is not None else 0
    assert sum(counts.values()) == N_PHOTOS, counts  # every photo landed in one table
