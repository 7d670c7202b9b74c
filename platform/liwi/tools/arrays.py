"""Input checks and resizing shared by the tools (numpy + OpenCV, imported lazily).

Every tool validates its arrays here so a bad input becomes a :class:`ToolError` with a
reason instead of an OpenCV assertion deep inside a worker.
"""

from __future__ import annotations

import numpy as np

from liwi.tools.base import ToolError


def as_image(arr: np.ndarray, name: str = "image") -> np.ndarray:
    """``arr`` as a contiguous float32 H×W×3 image in [0, 1] (uint8 is converted)."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ToolError(f"{name}: expected float32 in [0, 1] or uint8, got dtype {arr.dtype}")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ToolError(f"{name}: expected H×W×3, got shape {arr.shape}")
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ToolError(f"{name}: too small ({arr.shape[1]}×{arr.shape[0]}), need ≥ 8×8")
    if not np.isfinite(arr).all():
        raise ToolError(f"{name}: contains NaN or infinite values")
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)


def as_mask(arr: np.ndarray, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """``arr`` as a float32 H×W map in [0, 1] matching ``shape`` (bool/uint8 converted)."""
    arr = np.asarray(arr)
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ToolError(f"{name}: expected float/bool/uint8, got dtype {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.shape != tuple(shape):
        raise ToolError(f"{name}: shape {arr.shape} does not match the image {tuple(shape)}")
    if not np.isfinite(arr).all():
        raise ToolError(f"{name}: contains NaN or infinite values")
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)


def scale_for(shape: tuple[int, ...], max_side: int) -> float:
    """Factor (≤ 1) that brings the longer side of ``shape`` down to ``max_side``."""
    return min(1.0, max_side / float(max(shape[0], shape[1])))


def resize(arr: np.ndarray, size_hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize H×W or H×W×C to ``size_hw``; area filter when shrinking, linear when growing."""
    import cv2

    h, w = size_hw
    if arr.shape[:2] == (h, w):
        return arr
    if nearest:
        interp = cv2.INTER_NEAREST
    elif h < arr.shape[0] or w < arr.shape[1]:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    out = cv2.resize(arr, (w, h), interpolation=interp)
    if arr.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def disk(radius: int) -> np.ndarray:
    """Elliptical structuring element of the given radius (≥ 0)."""
    import cv2

    r = max(0, int(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a boolean mask by a disc."""
    import cv2

    if radius <= 0:
        return mask.astype(bool)
    return cv2.dilate(mask.astype(np.uint8), disk(radius)).astype(bool)


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion of a boolean mask by a disc (pixels outside the image count as set)."""
    import cv2

    if radius <= 0:
        return mask.astype(bool)
    return cv2.erode(mask.astype(np.uint8), disk(radius), borderValue=1).astype(bool)


def weighted_blur(
    values: np.ndarray, weight: np.ndarray, sigma: float, fallback, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-weighted mean of ``values`` (H×W or H×W×C) over pixels weighted by
    ``weight`` (H×W): a normalised convolution. Where the blurred weight is at most
    ``eps`` (no weighted pixel near) the mean is ``fallback`` (a scalar or an array
    broadcastable to ``values``). Returns the mean and the blurred H×W weight."""
    import cv2

    w = weight[..., None] if values.ndim == 3 else weight
    num = cv2.GaussianBlur(values * w, (0, 0), sigma)
    den = cv2.GaussianBlur(weight, (0, 0), sigma)
    d = den[..., None] if values.ndim == 3 else den
    return np.where(d > eps, num / np.maximum(d, eps), fallback), den
