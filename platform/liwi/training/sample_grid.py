"""A grid of sample decompositions (one row per sample) for people to look at in MLflow."""

from __future__ import annotations

import numpy as np

# Columns of the grid, left to right.
COLUMNS = (
    "input",
    "target background",
    "predicted background",
    "target alpha",
    "predicted alpha",
    "predicted object (on checker)",
    "target shadow",
    "predicted shadow",
)
CHECKER_PX = 8  # side of a checkerboard square behind transparent objects
GAP = 2  # pixels between tiles (white)
MIN_TILE_PX = 128  # small crops are enlarged (nearest neighbour) to at least this height


def _hwc(x: np.ndarray) -> np.ndarray:
    """C×H×W (C = 1 or 3) → H×W×3 float32."""
    x = np.asarray(x, np.float32)
    x = np.transpose(x, (1, 2, 0))
    if x.shape[2] == 1:
        x = np.repeat(x, 3, axis=2)
    return np.clip(x, 0.0, 1.0)


def _checker(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // CHECKER_PX + xx // CHECKER_PX) % 2).astype(np.float32)
    return np.repeat((0.6 + 0.3 * board)[..., None], 3, axis=2)


def decomposition_grid(batch: dict[str, np.ndarray], pred: dict[str, np.ndarray]) -> np.ndarray:
    """H×W×3 float image: one row per sample with the :data:`COLUMNS` tiles.

    ``batch`` holds the targets (``image``, ``background``, ``alpha``, ``shadow``) and
    ``pred`` the model output (``background``, ``alpha``, ``color``, ``shadow``), all
    N×C×H×W arrays.
    """
    n, _, h, w = batch["image"].shape
    rows = []
    for i in range(n):
        alpha = _hwc(pred["alpha"][i])
        obj = alpha * _hwc(pred["color"][i]) + (1 - alpha) * _checker(h, w)
        tiles = [
            _hwc(batch["image"][i]),
            _hwc(batch["background"][i]),
            _hwc(pred["background"][i]),
            _hwc(batch["alpha"][i]),
            alpha,
            obj,
            _hwc(batch["shadow"][i]),
            _hwc(pred["shadow"][i]),
        ]
        row = np.ones((h, len(tiles) * (w + GAP) - GAP, 3), np.float32)
        for j, tile in enumerate(tiles):
            row[:, j * (w + GAP) : j * (w + GAP) + w] = tile
        rows.append(row)
    grid = np.ones((n * (h + GAP) - GAP, rows[0].shape[1], 3), np.float32)
    for i, row in enumerate(rows):
        grid[i * (h + GAP) : i * (h + GAP) + h] = row
    k = max(1, -(-MIN_TILE_PX // h))
    return np.repeat(np.repeat(grid, k, axis=0), k, axis=1) if k > 1 else grid
