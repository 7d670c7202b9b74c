"""The decomposition network: config, blocks, UNet trunk, heads, prompts, checkpoints.

``build_model(config, checkpoint)`` is the factory; see ``docs/architecture.md``.
Torch is imported by the submodules, not here, so ``import liwi.model`` stays light.
"""

from liwi.model.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint
from liwi.model.config import PRESETS, PROMPT_CHANNELS, ModelConfig, preset

__all__ = [
    "PRESETS",
    "PROMPT_CHANNELS",
    "CheckpointError",
    "ModelConfig",
    "build_model",
    "load_checkpoint",
    "preset",
    "save_checkpoint",
]
