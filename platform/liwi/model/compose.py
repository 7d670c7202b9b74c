"""The layer math of :mod:`liwi.layers` in torch (B×C×H×W), for losses and training.

Same formulas, same order: ``over`` is the normal blend, ``multiply`` the shadow blend,
and :func:`composite_one` is ``I = α·F + (1 − α)·(B ⊙ S)``. Tests check these against the
numpy versions.
"""

from __future__ import annotations

import torch


def over(base: torch.Tensor, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Normal blend: a·rgb + (1 − a)·C (alpha B×1×H×W)."""
    return alpha * rgb + (1.0 - alpha) * base


def attenuation(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Attenuation S = 1 − a + a·rgb of a multiply layer."""
    return 1.0 - alpha + alpha * rgb


def multiply(base: torch.Tensor, rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Multiply blend: C ⊙ (1 − a + a·rgb)."""
    return base * attenuation(rgb, alpha)


def composite_one(
    background: torch.Tensor, color: torch.Tensor, alpha: torch.Tensor, shadow: torch.Tensor
) -> torch.Tensor:
    """One object over a shadowed background: α·F + (1 − α)·(B ⊙ S); S grey or RGB."""
    return over(background * shadow, color, alpha)
