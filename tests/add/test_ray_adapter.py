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
