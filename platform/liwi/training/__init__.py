"""Reusable training pieces: data (rows → tensors), one optimisation step, a local loop.

The Ray Train job wraps :mod:`liwi.training.data` and :mod:`liwi.training.step`; the
local loop in :mod:`liwi.training.local` is the single-process version used to train the
shipped default model.
"""
