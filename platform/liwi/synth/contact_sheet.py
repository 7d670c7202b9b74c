"""Contact sheet PNG: one column per sample; rows image, background, objects, shadow map."""

from __future__ import annotations

import numpy as np

from liwi.imageio import decode_rgb, encode_png, to_uint8
from liwi.layers import LayerStack

ROWS = ("image", "background", "objects", "shadow map")
GAP = 4  # pixels between tiles
LABEL_W = 96  # width of the row-label column


def checkerboard(h: int, w: int, cell: int = 12) -> np.ndarray:
    """Light/dark grey checkerboard (H×W×3) that shows transparency."""
    yy, xx = np.mgrid[0:h, 0:w]
    on = ((yy // cell) + (xx // cell)) % 2 == 0
    return np.where(on[..., None], 0.85, 0.6).astype(np.float32) * np.ones(3, np.float32)


def tiles_of(stack: LayerStack, image: bytes) -> list[np.ndarray]:
    """The four tiles of one sample: flat image, background, objects over a checkerboard,
    total shadow attenuation (white = no shadow; colour shows a tint)."""
    h, w = stack.size
    fg = stack.foreground()
    a = fg[..., 3:4]
    objects = a * fg[..., :3] + (1.0 - a) * checkerboard(h, w)
    return [decode_rgb(image), stack.background, objects, stack.total_attenuation()]


def contact_sheet(samples: list[tuple[LayerStack, bytes]], tile: int = 160) -> bytes:
    """PNG bytes of the sheet for ``(stack, flat image bytes)`` pairs."""
    import cv2
    from PIL import Image, ImageDraw

    if not samples:
        raise ValueError("contact sheet needs at least one sample")
    cols = len(samples)
    width = LABEL_W + cols * (tile + GAP) + GAP
    height = len(ROWS) * (tile + GAP) + GAP
    sheet = np.full((height, width, 3), 255, np.uint8)
    for c, (stack, image) in enumerate(samples):
        for r, t in enumerate(tiles_of(stack, image)):
            t = cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA)
            y, x = GAP + r * (tile + GAP), LABEL_W + GAP + c * (tile + GAP)
            sheet[y : y + tile, x : x + tile] = to_uint8(t)
    img = Image.fromarray(sheet)
    draw = ImageDraw.Draw(img)
    for r, name in enumerate(ROWS):
        draw.text((6, GAP + r * (tile + GAP) + tile // 2 - 6), name, fill=(0, 0, 0))
    return encode_png(np.asarray(img), compress_level=6)
