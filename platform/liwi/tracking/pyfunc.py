"""The MLflow pyfunc face of the model: :class:`LiwiPyfuncModel` wraps the Predictor.

We deliberately do not use ``mlflow.pytorch``: MLflow 3's default ``pt2`` export fixes the
batch size (and image size) of the input example, while the predictor takes any batch and
any size. The class is made on first use (so mlflow is not imported with this module) and
named ``liwi.tracking.LiwiPyfuncModel``, the name pickles of logged models refer to; the
Predictor is imported inside ``load_context`` (the predictor imports the registry, never
this module).
"""

from __future__ import annotations

import numpy as np

from liwi.tracking.store import CHECKPOINT_ARTIFACT

_CLASS: list[type] = []  # the class, once made


def pyfunc_class() -> type:
    """``LiwiPyfuncModel``, created on first use."""
    if _CLASS:
        return _CLASS[0]
    import mlflow.pyfunc

    class LiwiPyfuncModel(mlflow.pyfunc.PythonModel):
        """pyfunc face of :class:`liwi.predictor.Predictor` (for ``mlflow.pyfunc.load_model``).

        ``predict`` takes N×H×W×3 float images and returns, per image, the composited
        foreground (RGBA), the background (RGB) and the total shadow attenuation (H×W×C).
        """

        def load_context(self, context) -> None:
            from liwi.predictor import Predictor

            self.predictor = Predictor.from_uri(context.artifacts[CHECKPOINT_ARTIFACT])

        def predict(self, context, model_input, params=None):
            images = np.asarray(model_input, dtype=np.float32)
            if images.ndim == 3:
                images = images[None]
            out = []
            for image in images:
                stack = self.predictor.decompose(image)
                out.append(
                    {
                        "background": stack.background,
                        "foreground": stack.foreground(),
                        "attenuation": stack.total_attenuation(),
                    }
                )
            return out

    LiwiPyfuncModel.__module__ = "liwi.tracking"  # resolved by liwi.tracking.__getattr__
    LiwiPyfuncModel.__qualname__ = "LiwiPyfuncModel"
    _CLASS.append(LiwiPyfuncModel)
    return LiwiPyfuncModel
