"""The Ray adapter turns StageResources into an autoscaling actor pool (current Ray API)."""

import warnings

from liwi.add.base import StageResources
from liwi.add.ray_adapter import pool_args


def test_pool_args_are_an_autoscaling_actor_pool_without_deprecated_forms():
    from ray.data import ActorPoolStrategy

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated form (concurrency=, size=) warns
        args = pool_args(StageResources(batch_size=16, min_actors=1, max_actors=4, num_gpus=0.25))
    assert "concurrency" not in args
    compute = args["compute"]
    assert isinstance(compute, ActorPoolStrategy)
    assert (compute.min_size, compute.max_size) == (1, 4)
    assert (args["batch_size"], args["num_gpus"]) == (16, 0.25)
    assert pool_args(StageResources())["num_gpus"] is None  # CPU pools ask for no GPU


def test_pools_that_cannot_start_on_the_local_ray_are_named_before_it_starts():
    from liwi.add.config import DecomposeConfig
    from liwi.add.driver import plan, stage_calls
    from liwi.add.ray_adapter import local_fit_problems

    fused = DecomposeConfig(input="in", output="out")  # the default: 2 CPUs, fused
    assert local_fit_problems(fused.ray, plan(fused, stage_calls(fused))) == []
    gpu = {"segment": {"min_actors": 1, "max_actors": 2, "num_gpus": 0.25}}
    unfused = DecomposeConfig(input="in", output="out", fuse=False, stages=gpu)
    problems = local_fit_problems(unfused.ray, plan(unfused, stage_calls(unfused)))
    assert len(problems) == 2  # 2.5 CPUs of 2 and a quarter GPU of none
    assert "2.5 CPUs at min_actors" in problems[0] and "ray.num_gpus" in problems[1]
