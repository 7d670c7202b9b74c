"""Synthetic layered data: real-photo backgrounds, objects with true alpha, cast shadows.

Modules, one job each:

* :mod:`~liwi.synth.backgrounds` — load the bundled photos; random crop/flip/colour jitter.
* :mod:`~liwi.synth.textures` — procedural textures and photo patches for object colour.
* :mod:`~liwi.synth.shapes` — object silhouettes with soft, thin or hairy boundaries.
* :mod:`~liwi.synth.objects` — a foreground object (colour + true alpha) standing on the ground.
* :mod:`~liwi.synth.shadows` — cast shadow, penumbra and contact darkening as attenuation maps.
* :mod:`~liwi.synth.degrade` — JPEG, noise and blur applied to the flat image only.
* :mod:`~liwi.synth.generator` — one sample from (seed, index): a LayerStack plus its flat image.
* :mod:`~liwi.synth.contact_sheet` — a PNG people can look at.
* :mod:`~liwi.synth.job` — ``SynthConfig`` and ``run(config)``: lake of images + layer table.
* :mod:`~liwi.synth.procedural` — the one file-free scene generator for tests, demos and
  training: floor/wall, soft-edged objects, their cast shadows, placed at random or by hand.
"""
