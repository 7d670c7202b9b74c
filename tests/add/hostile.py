"""The hostile image lake of issue 15, shared by the loop and the Ray tests of the ADD job."""

from __future__ import annotations

from pathlib import Path

from liwi.lake import BROKEN_LINK, LINK_OUTSIDE
from liwi.sample_photos import procedural_photo


def make_hostile_lake(root: Path, outside: Path) -> dict[str, str]:
    """The lake of issue 15; returns the expected problem per file name ("" = fine)."""
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    for s in range(2):
        (root / f"photo_{s}.jpg").write_bytes(procedural_photo(s, 96, 1))
    (root / "sub" / "copy.jpg").write_bytes((root / "photo_0.jpg").read_bytes())
    (root / "sub" / "loop").symlink_to("..")
    (root / "broken.png").symlink_to(root / "gone.png")
    (outside / "private.png").write_bytes(procedural_photo(5, 96, 1))
    (root / "leak.png").symlink_to(outside / "private.png")
    return {
        "photo_0.jpg": "",
        "photo_1.jpg": "",
        "copy.jpg": "duplicate",
        "broken.png": BROKEN_LINK,
        "leak.png": LINK_OUTSIDE,
    }
