"""The Layered Image Curator: recombine a decomposition and check that it is usable.

Checks, each producing scores and, on failure, a reason a person can read plus a short
code the agent can act on (``failures``):

* **fidelity** – PSNR of the recomposed stack against the source photo;
* **alpha sanity** (per object) – area fraction, contact with the image border, number of
  fragments, edge alignment (does the matte boundary sit on image edges?);
* **background cleanliness** (per object) – residue: the region the object was removed from
  must differ from the source there (or the object is still in the background) and must
  look like its surround (no blob); seam: gradient energy along the mask boundary against
  the surround;
* **shadow plausibility** (per object) – attenuation range, near-grey colour, attached to
  the object, not much larger than the object;
* **VLM verdict** – optional, through any callable ``(source, stack) -> (ok, reason, score)``
  (the ``verify`` tool fits).

Thresholds live in :class:`CuratorConfig` with a comment each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from liwi.layers import LayerStack

VlmJudge = Callable[[np.ndarray, LayerStack], tuple[bool, str, float]]


class CuratorConfig(BaseModel):
    """Thresholds of the curator (all fractions are of the image unless said otherwise)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_psnr: float = 30.0  # dB; recomposed stack vs source: below this the layers lose content
    min_object_area: float = 0.003  # an object must cover at least 0.3% of the image
    # …and at most 80% (else it is the scene, not an object); the subjects of the sample
    # lake's portraits (cat, astronaut) cover 62–64% and touch 36–43% of the border
    max_object_area: float = 0.8
    max_border_contact: float = 0.5  # fraction of the image border the object may touch
    max_fragments: int = 3  # connected pieces of alpha>0.5 bigger than min_fragment
    min_fragment: float = 0.02  # pieces smaller than 2% of the object's area are specks
    min_edge_alignment: float = 0.9  # mean |∇I| on the matte boundary / mean |∇I| in the image
    min_bg_change: float = 0.015  # mean |B − I| in the object's core: below = object left in B
    max_region_contrast: float = 2.5  # |mean(B in hole) − mean(B around)| / std(B around)
    max_seam_ratio: float = 3.0  # gradient energy of B on the hole boundary / in the surround
    ring_width: int = 8  # px; width of the surround ring used by residue and seam checks
    min_shadow_attenuation: float = 0.08  # S below this (92% darkening) is not a cast shadow
    max_shadow_chroma: float = 0.25  # max over pixels of (max_c S − min_c S): shadows are greyish
    max_shadow_gap: float = 0.15  # px gap allowed between shadow and object, × object bbox diagonal
    min_shadow_attached: float = 0.6  # fraction of shadow area in pieces that come within that gap
    max_shadow_to_object: float = 6.0  # shadow area / object area
    shadow_threshold: float = 0.9  # a pixel is "in shadow" where mean_c S < this
    use_vlm: bool = False  # ask the VLM judge (if one is given) for a verdict too


@dataclass
class Verdict:
    """The curator's answer: pass/fail, numeric scores, reasons and machine-readable codes."""

    passed: bool
    scores: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # codes like "alpha_area", "seam"
    object_failures: list[list[str]] = field(default_factory=list)  # codes per object
    object_scores: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "reasons": self.reasons,
            "failures": self.failures,
            "object_failures": self.object_failures,
        }


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two float images in [0, 1] (capped at 100)."""
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 100.0 if mse <= 1e-10 else float(min(100.0, 10.0 * np.log10(1.0 / mse)))


def _grad_mag(img: np.ndarray) -> np.ndarray:
    grey = img.mean(axis=2) if img.ndim == 3 else img
    gy, gx = np.gradient(grey.astype(np.float32))
    return np.hypot(gx, gy)


def _boundary(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import binary_dilation, binary_erosion

    return binary_dilation(mask, iterations=1) & ~binary_erosion(mask, iterations=1)


class Curator:
    """Scores a :class:`LayerStack` against its source photo (see module docstring)."""

    def __init__(self, config: CuratorConfig | None = None, vlm: VlmJudge | None = None):
        self.config = config or CuratorConfig()
        self.vlm = vlm

    def __call__(self, source: np.ndarray, stack: LayerStack) -> Verdict:
        c = self.config
        v = Verdict(passed=True)
        if source.shape[:2] != stack.size:
            v.passed = False
            v.reasons.append(f"size mismatch: source {source.shape[:2]} vs stack {stack.size}")
            v.failures.append("size")
            return v
        if not stack.objects:
            self._fail(v, "no_objects", "no object layers: nothing was decomposed")
        fidelity = psnr(stack.composite(), source)
        v.scores["psnr"] = fidelity
        if fidelity < c.min_psnr:
            self._fail(v, "psnr", f"recomposition PSNR {fidelity:.1f} dB below {c.min_psnr:.1f} dB")
        grad = _grad_mag(source)
        v.object_failures = [[] for _ in stack.objects]
        for i, obj in enumerate(stack.objects):
            scores: dict[str, float] = {}
            self._check_alpha(v, i, obj.alpha, grad, scores)
            self._check_background(v, i, source, stack.background, obj.alpha, scores)
            self._check_shadow(v, i, obj, scores)
            v.object_scores.append(scores)
            for k, val in scores.items():
                v.scores[f"obj{i + 1}_{k}"] = val
        if c.use_vlm and self.vlm is not None and v.passed:
            ok, reason, score = self.vlm(source, stack)
            v.scores["vlm"] = float(score)
            if not ok:
                self._fail(v, "vlm", f"VLM verdict: {reason}")
        v.scores["passed"] = float(v.passed)
        return v

    @staticmethod
    def _fail(v: Verdict, code: str, reason: str, obj: int | None = None) -> None:
        v.passed = False
        v.reasons.append(reason)
        if code not in v.failures:
            v.failures.append(code)
        if obj is not None and code not in v.object_failures[obj]:
            v.object_failures[obj].append(code)

    # -- alpha ---------------------------------------------------------------------------
    def _check_alpha(
        self, v: Verdict, i: int, alpha: np.ndarray, grad: np.ndarray, s: dict[str, float]
    ) -> None:
        from scipy.ndimage import label

        c = self.config
        name = f"object {i + 1}"
        area = float(alpha.mean())
        s["area"] = area
        if area < c.min_object_area:
            self._fail(
                v,
                "alpha_area",
                f"{name} covers {area:.2%} of the image (min {c.min_object_area:.1%})",
                obj=i,
            )
        elif area > c.max_object_area:
            self._fail(
                v,
                "alpha_area",
                f"{name} covers {area:.1%} of the image (max {c.max_object_area:.0%})",
                obj=i,
            )
        hard = alpha > 0.5
        border = np.concatenate([hard[0], hard[-1], hard[1:-1, 0], hard[1:-1, -1]])
        contact = float(border.mean()) if border.size else 0.0
        s["border_contact"] = contact
        if contact > c.max_border_contact:
            self._fail(
                v,
                "alpha_border",
                f"{name} touches {contact:.0%} of the image border (max {c.max_border_contact:.0%})",
                obj=i,
            )
        labels, n = label(hard)
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            big = int((sizes >= c.min_fragment * max(1, hard.sum())).sum())
        else:
            big = 0
        s["fragments"] = float(big)
        if big > c.max_fragments:
            self._fail(
                v,
                "alpha_fragments",
                f"{name} is split into {big} pieces (max {c.max_fragments})",
                obj=i,
            )
        edge = _boundary(hard)
        if edge.any() and area >= c.min_object_area:
            alignment = float(grad[edge].mean() / (grad.mean() + 1e-6))
            s["edge_alignment"] = alignment
            if alignment < c.min_edge_alignment:
                self._fail(
                    v,
                    "alpha_edges",
                    f"{name}'s matte boundary does not follow image edges "
                    f"(alignment {alignment:.2f} < {c.min_edge_alignment:.2f})",
                    obj=i,
                )

    # -- background ----------------------------------------------------------------------
    def _check_background(
        self,
        v: Verdict,
        i: int,
        source: np.ndarray,
        background: np.ndarray,
        alpha: np.ndarray,
        s: dict[str, float],
    ) -> None:
        from scipy.ndimage import binary_dilation, binary_erosion

        c = self.config
        name = f"object {i + 1}"
        hole = alpha > 0.05
        if not hole.any() or hole.mean() > c.max_object_area:
            return  # nothing to check / already rejected on area
        core = binary_erosion(alpha > 0.9, iterations=2)
        if core.any():
            change = float(np.abs(background[core] - source[core]).mean())
            s["bg_change"] = change
            if change < c.min_bg_change:
                self._fail(
                    v,
                    "residue",
                    f"background still shows {name} (mean change {change:.3f} where it was "
                    f"removed, min {c.min_bg_change:.3f})",
                    obj=i,
                )
        ring = binary_dilation(hole, iterations=c.ring_width) & ~hole
        if ring.sum() < 16:
            return
        inside = background[hole]
        around = background[ring]
        contrast = float(
            np.linalg.norm(inside.mean(axis=0) - around.mean(axis=0))
            / (np.linalg.norm(around.std(axis=0)) + 0.02)
        )
        s["region_contrast"] = contrast
        if contrast > c.max_region_contrast:
            self._fail(
                v,
                "residue",
                f"the region {name} was removed from stands out from its surround "
                f"(contrast {contrast:.2f} > {c.max_region_contrast:.2f})",
                obj=i,
            )
        g = _grad_mag(background)
        seam_px = _boundary(hole)
        seam = float(g[seam_px].mean() / (g[ring & ~seam_px].mean() + 1e-3))
        s["seam_ratio"] = seam
        if seam > c.max_seam_ratio:
            self._fail(
                v,
                "seam",
                f"visible seam around {name}'s hole (boundary gradient {seam:.1f}× the "
                f"surround, max {c.max_seam_ratio:.1f}×)",
                obj=i,
            )

    # -- shadow --------------------------------------------------------------------------
    def _check_shadow(self, v: Verdict, i: int, obj: Any, s: dict[str, float]) -> None:
        from scipy.ndimage import distance_transform_edt, label

        c = self.config
        name = f"object {i + 1}"
        att = obj.attenuation
        grey = att.mean(axis=2)
        shadow = grey < c.shadow_threshold
        s["shadow_area"] = float(shadow.mean())
        if not shadow.any():
            return
        s["shadow_min"] = float(att.min())
        if att.min() < c.min_shadow_attenuation:
            self._fail(
                v,
                "shadow_range",
                f"{name}'s shadow darkens to {att.min():.2f} (min {c.min_shadow_attenuation:.2f})",
                obj=i,
            )
        chroma = float((att.max(axis=2) - att.min(axis=2))[shadow].max())
        s["shadow_chroma"] = chroma
        if chroma > c.max_shadow_chroma:
            self._fail(
                v,
                "shadow_colour",
                f"{name}'s shadow is strongly coloured (chroma {chroma:.2f} > {c.max_shadow_chroma:.2f})",
                obj=i,
            )
        body = obj.alpha > 0.5
        if not body.any():
            self._fail(v, "shadow_detached", f"{name} has a shadow but no body", obj=i)
            return
        x0, y0, x1, y1 = obj.bbox
        gap = c.max_shadow_gap * float(np.hypot(x1 - x0, y1 - y0))
        dist = distance_transform_edt(~body)
        # A shadow piece is attached when its nearest pixel comes within ``gap`` of the body.
        pieces, n = label(shadow)
        near = np.zeros(n + 1, bool)
        np.logical_or.at(near, pieces[shadow], dist[shadow] <= gap)
        attached = float(near[pieces[shadow]].mean())
        s["shadow_attached"] = attached
        if attached < c.min_shadow_attached:
            self._fail(
                v,
                "shadow_detached",
                f"{name}'s shadow is not attached to it (only {attached:.0%} of it comes within "
                f"{gap:.0f} px, "
                f"min {c.min_shadow_attached:.0%})",
                obj=i,
            )
        ratio = float(shadow.sum() / max(1.0, body.sum()))
        s["shadow_to_object"] = ratio
        if ratio > c.max_shadow_to_object:
            self._fail(
                v,
                "shadow_size",
                f"{name}'s shadow is {ratio:.1f}× its area (max {c.max_shadow_to_object:.1f}×)",
                obj=i,
            )
