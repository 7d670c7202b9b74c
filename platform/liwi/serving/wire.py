"""How a LayerStack travels from the model replica to the ingress: cropped and 8-bit.

Every response format is 8-bit (PNG, PSD), so quantising on the model side loses nothing
the client would see. Layers travel cropped to their boxes (:mod:`liwi.layer_pack`), so
a 3-layer 512×512 stack moves a fraction of its ~19 MB float32 size through the object
store, and the ingress encodes the crops as they are, without another pass over pixels.
"""

from __future__ import annotations

from liwi.layer_pack import PackedStack, pack, unpack
from liwi.layers import LayerStack


def pack_stack(stack: LayerStack) -> PackedStack:
    """A picklable, cropped uint8 form of ``stack`` (rounded like the PNG encoder)."""
    return pack(stack)


def unpack_stack(packed: PackedStack) -> LayerStack:
    """The full-size LayerStack back (float32 in [0, 1]); inverse of :func:`pack_stack`
    up to 1/255."""
    return unpack(packed)
