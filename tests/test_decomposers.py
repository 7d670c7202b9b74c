"""One decomposer interface: model, add and prior write the same contract."""

from pathlib import Path

import numpy as np
import pytest

from liwi.decomposers import METHODS, build_decomposer
from liwi.imageio import decode_rgb
from liwi.layer_export import write_folder
from liwi.model.prompts import Prompt
from liwi.predictor import PredictorError

PHOTO = Path(__file__).resolve().parents[1] / "data" / "sample_lake" / "flower_wide.jpg"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_writes_the_output_contract(method, tmp_path):
    img = decode_rgb(PHOTO.read_bytes())
    stack = build_decomposer(method, device="cpu").decompose(img, max_layers=2)
    assert stack.size == img.shape[:2] and stack.n_layers == 2, method
    flower = stack.objects[-1].alpha
    h, w = flower.shape
    assert flower[h // 2, w // 2 - 5 : w // 2 + 5].mean() > 0.8, method  # the dahlia
    folder = write_folder(stack, tmp_path / method)
    for name in ("background.png", "foreground.png", "shadow.png", "layers.json"):
        assert (folder / name).is_file(), (method, name)


def test_prompts_and_names_are_checked():
    img = np.full((32, 32, 3), 0.5, np.float32)
    with pytest.raises(PredictorError, match="unknown method"):
        build_decomposer("magic")
    with pytest.raises(PredictorError, match="needs a prior"):
        build_decomposer("prior", prior=None)
    with pytest.raises(PredictorError, match="no prompt"):
        build_decomposer("add").decompose(img, prompt=Prompt(box=(1, 1, 9, 9)))
    with pytest.raises(PredictorError, match="not points"):
        build_decomposer("prior").decompose(img, prompt=Prompt(points=[(3, 3)]))
