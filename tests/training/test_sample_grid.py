"""The sample-decomposition grid logged to MLflow."""

from __future__ import annotations

import numpy as np

from liwi.training.sample_grid import COLUMNS, GAP, MIN_TILE_PX, decomposition_grid


def test_grid_has_a_row_per_sample_and_a_tile_per_column():
    n, h, w = 2, 32, 32
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.random((n, 3, h, w)),
        "background": rng.random((n, 3, h, w)),
        "alpha": np.zeros((n, 1, h, w)),
        "shadow": np.ones((n, 3, h, w)),
    }
    pred = {
        "background": rng.random((n, 3, h, w)),
        "alpha": np.ones((n, 1, h, w)),
        "color": np.zeros((n, 3, h, w)),
        "shadow": np.full((n, 1, h, w), 0.5),
    }
    grid = decomposition_grid(batch, pred)
    k = MIN_TILE_PX // h  # enlarged so 32-px crops are visible
    assert grid.shape == (k * (n * (h + GAP) - GAP), k * (len(COLUMNS) * (w + GAP) - GAP), 3)
    assert grid.min() >= 0 and grid.max() <= 1
    # first tile of the first row is the input image, enlarged k×
    np.testing.assert_allclose(grid[0, 0], batch["image"][0, :, 0, 0], rtol=1e-6)
    # the predicted object (alpha 1, black) covers its checkerboard completely
    col = COLUMNS.index("predicted object (on checker)")
    x0 = k * col * (w + GAP)
    assert np.all(grid[: k * h, x0 : x0 + k * w] == 0)
    # grey predicted shadow is broadcast to RGB
    col = COLUMNS.index("predicted shadow")
    x0 = k * col * (w + GAP)
    np.testing.assert_allclose(grid[: k * h, x0 : x0 + k * w], 0.5)
