"""diffusers inpainting adapter with a tiny random pipeline built from configs."""

import json

import numpy as np
import pytest

from liwi.tools.base import ToolError
from liwi.tools.inpaint import InpaintInput

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from liwi.tools.inpaint_diffusers import DiffusersInpainter, crop_box  # noqa: E402

FAST = {"steps": 1, "work_side": 64, "guidance_scale": 1.0}


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz,":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=9,  # latents + masked-image latents + mask
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=[8, 16],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
        norm_num_groups=4,
    )
    text = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=16,
            intermediate_size=16,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=64,
            projection_dim=16,
        )
    )
    scheduler = DDIMScheduler(
        beta_schedule="scaled_linear", clip_sample=False, set_alpha_to_one=False
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text,
        tokenizer=tiny_tokenizer(),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    path = tmp_path_factory.mktemp("sd") / "tiny-inpaint"
    pipe.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tool(pipeline_dir):
    t = DiffusersInpainter(model=f"file://{pipeline_dir}")
    t.setup()
    return t


def scene(h=64, w=80):
    rng = np.random.default_rng(0)
    img = np.clip(0.5 + rng.normal(0, 0.05, (h, w, 3)), 0, 1).astype(np.float32)
    mask = np.zeros((h, w), np.float32)
    mask[20:40, 30:50] = 1
    return img, mask


def test_fills_only_the_hole_and_is_seeded(tool):
    img, mask = scene()
    out = tool(InpaintInput(img, mask), FAST)
    hole = out.mask > 0.5
    assert out.image.shape == img.shape and out.image.dtype == np.float32
    assert hole[mask > 0.5].all() and hole.sum() > (mask > 0.5).sum()  # dilated
    assert np.array_equal(out.image[~hole], img[~hole])
    assert np.abs(out.image[hole] - img[hole]).mean() > 1e-3  # the model painted something
    assert out.image.min() >= 0.0 and out.image.max() <= 1.0
    again = tool(InpaintInput(img, mask), FAST)
    np.testing.assert_array_equal(again.image, out.image)
    other = tool(InpaintInput(img, mask), {**FAST, "seed": 1})
    assert not np.array_equal(other.image[hole], out.image[hole])


def test_loads_with_an_explicit_pipeline_class(pipeline_dir):
    t = DiffusersInpainter(model=str(pipeline_dir), pipeline_class="StableDiffusionInpaintPipeline")
    t.setup()
    assert type(t.pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert t.pipe.unet.config.in_channels == 9


def test_bad_model_folders_are_refused(tmp_path, pipeline_dir):
    with pytest.raises(ToolError, match="needs a model folder"):
        DiffusersInpainter().setup()
    with pytest.raises(ToolError, match="not found"):
        DiffusersInpainter(model=str(tmp_path / "nope")).setup()
    with pytest.raises(ToolError, match="model_index.json"):
        DiffusersInpainter(model=str(tmp_path)).setup()
    with pytest.raises(ToolError, match="no pipeline class"):
        DiffusersInpainter(model=str(pipeline_dir), pipeline_class="NoSuchPipeline").setup()
    broken = tmp_path / "broken"
    broken.mkdir()
    index = json.loads((pipeline_dir / "model_index.json").read_text())
    (broken / "model_index.json").write_text(json.dumps(index))  # components missing
    with pytest.raises(ToolError, match="cannot load"):
        DiffusersInpainter(model=str(broken)).setup()


def test_bad_masks_are_refused(tool):
    img, mask = scene()
    with pytest.raises(ToolError, match="empty"):
        tool(InpaintInput(img, np.zeros_like(mask)), FAST)
    with pytest.raises(ToolError, match="does not match"):
        tool(InpaintInput(img, mask[:10]), FAST)


def test_crop_box_holds_the_hole_with_context():
    hole = np.zeros((200, 300), bool)
    hole[150:170, 270:290] = True
    y0, y1, x0, x1 = crop_box(hole, context=2.0)
    assert 0 <= y0 < 150 and 170 <= y1 <= 200 and 0 <= x0 < 270 and 290 <= x1 <= 300
