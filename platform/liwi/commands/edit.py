"""``liwi edit LAYERS_DIR --ops ops.json --out edited.png``: edit a decomposition, re-compose.

Reads the folder ``liwi predict`` writes, applies the versioned ops file
(``docs/editing.md``; ``liwi.edits``) and writes the finished image; ``--psd`` also writes
the edited stack as a layered PSD, ``--layers-out`` as a layers folder again.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("layers", metavar="LAYERS_DIR", help="a folder written by `liwi predict`")
    p.add_argument("--ops", required=True, help="ops JSON file ('-' = standard input)")
    p.add_argument("--out", required=True, help="the edited, re-composed image (.png / .jpg)")
    p.add_argument("--psd", default=None, help="also write the edited stack as a PSD here")
    p.add_argument("--layers-out", default=None, help="also write the edited layers folder")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from liwi.edits import EditError, EditList, apply_edits, read_layers_folder
    from liwi.imageio import encode_jpeg, encode_png
    from liwi.layer_export import to_psd, write_folder

    try:
        text = sys.stdin.read() if args.ops == "-" else Path(args.ops).read_text()
        edits = EditList.parse(text)
        stack = apply_edits(read_layers_folder(args.layers), edits)
    except (OSError, EditError) as exc:
        print(f"liwi edit: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image = stack.composite()
    jpeg = out.suffix.lower() in (".jpg", ".jpeg")
    out.write_bytes(encode_jpeg(image) if jpeg else encode_png(image))
    if args.psd:
        Path(args.psd).write_bytes(to_psd(stack))
    if args.layers_out:
        write_folder(stack, args.layers_out)
    print(f"{args.layers} + {len(edits.ops)} ops → {out}")
    return 0
