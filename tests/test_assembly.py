"""assemble: the input's own pixels far from the object, the shadow kept where it is."""

import numpy as np

from liwi.assembly import assemble


def test_faint_shadow_far_from_the_object_is_none_and_recomposites_exactly():
    rng = np.random.default_rng(6)
    h, w = 120, 200
    img = rng.random((h, w, 3)).astype(np.float32)
    own = np.zeros((h, w, 1), np.float32)
    own[40:60, 30:50] = 0.9
    shadow = np.full((h, w, 1), 0.99, np.float32)  # sub-2 % darkening everywhere (noise)
    shadow[60:70, 30:60] = 0.5
    raw = {
        "image": img,
        "alpha": own,
        "shadow": shadow,
        "bg_delta": np.zeros((h, w, 3), np.float32),
    }
    out = assemble(raw)
    grow = 0.03 * max(h, w) + 2  # REGION_GROW_FRAC of the long side, plus the distance slack
    far = np.ones((h, w), bool)
    far[int(40 - grow) : int(70 + grow), int(30 - grow) : int(60 + grow)] = False
    assert (out["shadow"][far] == 1.0).all()  # no shadow where the background is the input
    assert (out["shadow"][60:70, 30:60] == 0.5).all()  # the real shadow is kept
    # so the layers recomposite to the input there, and the shadow crops to its region
    np.testing.assert_array_equal((out["background"] * out["shadow"])[far], img[far])
    dark = (out["shadow"] < 1.0).any(axis=2)
    cols = np.flatnonzero(dark.any(axis=0))
    assert cols[-1] - cols[0] < w * 0.6


def test_the_shadow_under_the_object_is_the_networks_own():
    # the network is trained on the whole attenuation, the part hidden by the object
    # included: what it predicts there is kept, neither filled in nor lifted
    rng = np.random.default_rng(7)
    h, w = 80, 120
    img = rng.random((h, w, 3)).astype(np.float32)
    alpha = np.zeros((h, w, 1), np.float32)
    alpha[20:60, 40:80] = 1.0  # an opaque object
    shadow = np.ones((h, w, 1), np.float32)
    shadow[50:70, 20:100] = 0.4  # its cast shadow, partly under it
    shadow[25:35, 45:75] = 0.95  # faint darkening high under the object
    raw = {"image": img, "alpha": alpha, "shadow": shadow, "bg_delta": np.zeros_like(img)}
    out = assemble(raw)
    np.testing.assert_array_equal(out["shadow"][20:60, 40:80], shadow[20:60, 40:80])
    np.testing.assert_array_equal(out["shadow"][60:70, 20:100], shadow[60:70, 20:100])
