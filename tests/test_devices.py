"""A worker's torch device follows the GPUs Ray gave it, never the driver's hardware."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

from liwi.devices import actor_device, device_for, resolve_device


def test_device_follows_the_assigned_gpu_ids():
    assert device_for([]) == "cpu"
    assert device_for([0]) == device_for(["3"]) == "cuda"


def test_auto_outside_a_ray_worker_is_cpu_and_explicit_devices_are_kept():
    assert actor_device() == "cpu"  # this test process is no Ray worker
    assert resolve_device("auto") == resolve_device(None) == "cpu"
    assert resolve_device("cuda:1") == "cuda:1" and resolve_device("cpu") == "cpu"


# A private local Ray that *declares* one GPU (none needs to exist: nothing touches CUDA):
# an actor granted a quarter of it derives "cuda", a CPU actor and the driver "cpu".
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import ray
    from liwi.devices import actor_device

    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False,
             log_to_driver=False, _temp_dir=sys.argv[1])
    try:
        @ray.remote
        class Probe:
            def device(self):
                return actor_device()

        quarter = Probe.options(num_gpus=0.25, num_cpus=0).remote()
        cpu = Probe.options(num_gpus=0, num_cpus=0).remote()
        print(json.dumps({"quarter": ray.get(quarter.device.remote()),
                          "cpu": ray.get(cpu.device.remote()), "driver": actor_device()}))
    finally:
        ray.shutdown()
    """
)


def test_a_ray_actor_with_a_fractional_gpu_derives_cuda_one_without_derives_cpu():
    temp = tempfile.mkdtemp(prefix="liwi-dev-", dir="/tmp")  # short: Ray's socket paths
    try:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["HOME"] = temp  # Ray's auth token file stays out of the real home
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, temp],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=True,
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"quarter": "cuda", "cpu": "cpu", "driver": "cpu"}
