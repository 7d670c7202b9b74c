"""The generator: exact recomposition before degradation, determinism, true alpha."""

import json

import numpy as np
import pytest

from liwi.imageio import decode_rgb
from liwi.schema import row_to_stack, stack_to_row
from liwi.synth.backgrounds import load_photos
from liwi.synth.generator import SampleSpec, generate, spec_from_trace

SPECS = [SampleSpec(7, i, 96, n) for i in range(6) for n in (1, 2)]


@pytest.fixture(scope="module")
def photos():
    return load_photos()


@pytest.fixture(scope="module")
def samples(photos):
    return [generate(spec, photos) for spec in SPECS]


def test_stored_layers_recomposite_to_the_clean_image(samples):
    for s in samples:
        row = stack_to_row(s.stack, sample_id="x", source_uri="mem://x", image=s.image)
        recomposed = row_to_stack(row).composite()  # from the 8-bit PNG layers
        mae = np.abs(recomposed - s.clean).mean()
        assert mae < 1 / 255, f"{s.spec}: recomposition MAE {mae * 255:.3f}/255"


def test_flat_image_is_the_degraded_clean_image(samples):
    maes = []
    for s in samples:
        flat = decode_rgb(s.image)
        mae = np.abs(flat - s.clean).mean()
        assert mae < 12 / 255, f"{s.spec}: degradation too strong ({mae * 255:.1f}/255)"
        maes.append(mae)
    assert max(maes) > 0.5 / 255  # degradations are actually applied


def test_layer_counts_and_stack_order(samples):
    for s in samples:
        assert s.stack.n_layers == 1 + s.spec.n_objects
        bases = [o["base_y"] for o in s.params["objects"]]
        assert bases == sorted(bases)  # back (higher up) to front (lower)


def test_objects_have_true_soft_alpha_and_a_shadow(samples):
    for s in samples:
        for obj, params in zip(s.stack.objects, s.params["objects"], strict=True):
            a = obj.alpha
            core = 0.99 * params["translucency"]  # glass-like objects are never opaque
            assert (a > core).sum() > 20, "object has no solid core"
            assert ((a > 0.02) & (a < core - 0.01)).sum() > 10, "object edge is not soft"
            assert obj.shadow_area > 0.0 or obj.attenuation.min() < 0.9
            # colour is only carried where the object is
            assert np.all(obj.rgba[a == 0, :3] == 0)


def test_hair_strands_make_thin_partial_alpha(photos):
    from liwi.synth import shapes

    rng = np.random.default_rng(0)
    base = shapes.blob(rng, 60, 60)
    padded = np.pad(base, 15)
    hairy = shapes.add_strands(rng, padded, 150, 12.0)
    outside = padded < 0.01
    strands = hairy[outside]
    assert (strands > 0.05).sum() > 100  # strands reach out of the silhouette
    assert np.median(strands[strands > 0.05]) < 0.7  # thin: fractional coverage


def test_same_spec_same_sample_different_index_different_sample(photos):
    a = generate(SampleSpec(3, 5, 64, 2), photos)
    b = generate(SampleSpec(3, 5, 64, 2), photos)
    c = generate(SampleSpec(3, 6, 64, 2), photos)
    assert a.image == b.image and a.params == b.params
    assert np.array_equal(a.clean, b.clean)
    assert a.image != c.image


def test_trace_regenerates_the_sample(samples, photos):
    s = samples[3]
    trace = json.loads(json.dumps(s.trace()))  # as stored in the table
    again = generate(spec_from_trace(trace), photos)
    assert again.image == s.image


def test_trace_without_generator_entry_is_refused():
    with pytest.raises(ValueError, match="no synth.generate"):
        spec_from_trace([{"tool": "segment"}])


def test_missing_background_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no background photos"):
        load_photos(tmp_path)
