"""StageResources: an autoscaling pool range, fractional GPUs, strict keys."""

import pytest
from pydantic import ValidationError

from liwi.add.base import StageResources


def test_a_pool_autoscales_between_min_and_max_actors():
    r = StageResources(min_actors=1, max_actors=4, num_gpus=0.25)
    assert (r.min_actors, r.max_actors, r.num_gpus) == (1, 4, 0.25)
    assert StageResources().min_actors == StageResources().max_actors == 1  # fixed by default


@pytest.mark.parametrize(
    "bad",
    [
        {"min_actors": 3, "max_actors": 2},  # an empty range
        {"min_actors": 0},  # a pool has at least one actor
        {"num_gpus": 1.5},  # above one GPU only whole GPUs
        {"actors": 2},  # the old fixed-size key: unknown keys are errors
    ],
)
def test_bad_pools_are_errors(bad):
    with pytest.raises(ValidationError):
        StageResources(**bad)
