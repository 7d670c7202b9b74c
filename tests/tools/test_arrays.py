"""Shared array helpers of the tools."""

import numpy as np

from liwi.tools.arrays import weighted_blur


def test_weighted_blur_averages_only_weighted_pixels_and_falls_back_far_from_them():
    values = np.zeros((40, 60, 3), np.float32)
    values[:, :30] = 0.8  # the weighted half holds 0.8 ...
    values[:, 30:] = 0.1  # ... and the unweighted half something else
    weight = np.zeros((40, 60), np.float32)
    weight[:, :30] = 1.0
    mean, den = weighted_blur(values, weight, 2.0, fallback=-1.0)
    assert den.shape == (40, 60)
    np.testing.assert_allclose(mean[:, :36], 0.8, atol=1e-5)  # unweighted values never leak in
    assert (mean[:, 50:] == -1.0).all()  # no weighted pixel within reach: the fallback
    grey, _ = weighted_blur(values[..., 0], weight, 2.0, fallback=-1.0)  # H×W works too
    np.testing.assert_allclose(grey, mean[..., 0], atol=1e-6)
