"""The first stage of the ADD job: read a listed file (retrying transient failures), decode it.

Transient read failures (:func:`liwi.lake.is_transient`: timeouts, dropped connections,
S3 throttling and 5xx, other ``OSError`` s) are retried here with exponential back-off,
at most :data:`READ_ATTEMPTS` times; if they persist the row becomes an error marked
``"read_decode: transient: …"``, which a later run tries again. Permanent failures
(missing or forbidden object, undecodable bytes, a decompression bomb) are recorded once.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from liwi.add.base import PENDING, Batch, Row, RunContext, Stage, StageResources, batch_len

if TYPE_CHECKING:
    from liwi.add.config import DecomposeConfig

INPUT_COLUMNS = ("path", "input_key", "problem", "status", "n")  # a listing page's items
READ_ATTEMPTS = 4  # reads per file before a transient failure becomes an error row
BACKOFF_S = 0.2  # first wait before a retry; doubles per attempt (0.2, 0.4, 0.8 s + jitter)
BACKOFF_MAX_S = 5.0  # cap on one wait, so a throttled worker keeps moving


def read_with_retry(read: Any, path: str, attempts: int = READ_ATTEMPTS) -> bytes:
    """``read(path)``, retried on transient failures with jittered exponential back-off."""
    from liwi.lake import is_transient

    for attempt in range(1, attempts + 1):
        try:
            return read(path)
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempt - 1))
            time.sleep(delay * (0.5 + random.random() / 2))  # jitter: retries don't align
    raise AssertionError("unreachable")


class ReadDecode(Stage):
    """Read the file's bytes from the lake and decode them (one bad file = one error row).

    Already-done inputs never reach this stage (the listing left them out, see
    :func:`liwi.add.inputs.iter_items`; their tally row passes through). A row whose
    ``problem`` the listing already knows (a broken link, a duplicate, …) is not read: it
    becomes an error row with that reason, under an id made from its path.
    """

    name = "read_decode"
    # I/O-bound: a quarter CPU per actor, up to 8 of them while inputs queue
    resources = StageResources(batch_size=8, min_actors=1, max_actors=8, num_cpus=0.25)
    reads = INPUT_COLUMNS
    drops = ("problem",)
    writes = (
        "source_uri",
        "sample_id",
        "status",
        "reasons",
        "width",
        "height",
        "image",
        "image_bytes",
    )

    def __init__(
        self,
        lake_uri: str,
        s3_endpoint: str | None = None,
        max_side: int = 1024,
        max_pixels: int = 64_000_000,
    ) -> None:
        super().__init__()
        self.lake_uri = lake_uri
        self.s3_endpoint = s3_endpoint
        self.max_side = max_side  # longer side after downscaling (layers are made at this size)
        self.max_pixels = max_pixels  # declared size above this is a decompression bomb
        self.lake = None

    @classmethod
    def options(cls, config: DecomposeConfig, run: RunContext) -> dict[str, Any]:
        return {
            "lake_uri": config.input,
            "s3_endpoint": config.s3_endpoint,
            "max_side": config.max_side,
            "max_pixels": config.max_pixels,
        }

    def _setup(self) -> None:
        from liwi.lake import Lake, S3Options

        self.lake = Lake.from_uri(self.lake_uri, s3=S3Options(endpoint_url=self.s3_endpoint))

    def __call__(self, batch: Batch) -> Batch:
        n = batch_len(batch)
        batch = dict(batch)
        batch.setdefault("status", np.asarray([PENDING] * n, dtype=object))
        return super().__call__(batch)

    def process_row(self, row: Row) -> Row:
        from liwi.schema import sample_id_for

        path = str(row["path"])
        row["source_uri"] = self.lake.uri_of(path)
        row["sample_id"] = _path_id(path)  # until the bytes are read
        if row.get("problem"):
            raise RuntimeError(str(row["problem"]))
        from liwi.lake import LakeError

        try:
            data = read_with_retry(self.lake.read_bytes, path)
        except Exception as exc:
            raise LakeError(f"cannot read: {exc}") from exc  # keeps transient-or-not
        row["sample_id"] = sample_id_for(data)
        image, stored = decode_for_layers(data, self.max_side, self.max_pixels)
        row["image"] = image
        row["image_bytes"] = stored
        row["height"], row["width"] = image.shape[:2]
        return row

    def finish_row(self, row: Row) -> Row:
        row.pop("problem", None)
        row.setdefault("input_key", "")
        row.setdefault("n", 1)
        row.setdefault("source_uri", str(row["path"]))
        row.setdefault("sample_id", _path_id(str(row["path"])) if row["path"] else "")
        row.setdefault("reasons", "[]")
        row.setdefault("width", 0)
        row.setdefault("height", 0)
        row.setdefault("image", np.zeros((0, 0, 3), np.uint8))
        row.setdefault("image_bytes", b"")
        return row


def _path_id(path: str) -> str:
    """Id for rows whose bytes could not be read: hash of the path, marked as such."""
    import hashlib

    return "path-" + hashlib.sha256(path.encode()).hexdigest()[:27]


def decode_for_layers(data: bytes, max_side: int, max_pixels: int) -> tuple[np.ndarray, bytes]:
    """Decode to uint8 H×W×3 (downscaled to ``max_side``) plus the bytes to store as ``image``.

    The source bytes are kept when they decode to exactly these pixels everywhere (plain
    RGB JPEG/PNG, no EXIF rotation, no downscaling); otherwise the pixels are re-encoded
    as PNG, so the stored image always matches the layers.
    """
    import io

    from PIL import Image

    from liwi.imageio import encode_png, open_image, pil_to_rgb, to_uint8

    # decode big photos already reduced (JPEG DCT scaling / 8-bit resize) to twice the
    # layers' side, so no full-size copy of a huge image is ever made
    img = open_image(data, max_pixels=max_pixels, work_pixels=4 * max_side * max_side)
    rgb = to_uint8(pil_to_rgb(img))
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        import cv2

        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    with Image.open(io.BytesIO(data)) as raw:
        plain = (
            raw.format in ("JPEG", "PNG")
            and raw.mode == "RGB"
            and raw.getexif().get(0x0112, 1) == 1
            and scale == 1.0
        )
    return rgb, (data if plain else encode_png(rgb))
