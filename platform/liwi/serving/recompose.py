"""``POST /v1/recompose``: a layers ZIP plus an ops list (``liwi.edits``) → the finished PNG.

The ZIP is what ``format=zip`` answers or ``liwi predict`` writes (zipped); the ops are the
versioned JSON of ``docs/editing.md``. Every problem is a 422 with one line: bad layers
(``bad_layers``) or bad ops (``bad_ops``, the :class:`~liwi.edits.EditError` message).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from liwi.serving.requests import ApiError, load_json
from liwi.serving.settings import ServeAppArgs

# What an ``insert`` op would need: a layers folder on the server's disk. Over HTTP that
# would read server paths, so the API refuses it; ``liwi edit`` runs it locally.
NO_INSERT = "insert reads a layers folder on the server and is not served; use `liwi edit`"


def recompose_png(layers_zip: bytes | None, ops_text: str | None, max_pixels: int) -> bytes:
    """Apply ``ops_text`` to the stack in ``layers_zip`` and encode the composite as PNG."""
    from liwi.edits import EditError, EditList, apply_edits, read_layers_zip
    from liwi.imageio import encode_png

    if not layers_zip:
        raise ApiError(422, "bad_layers", "layers: the form needs a file field 'layers' (a ZIP)")
    if ops_text is None or not ops_text.strip():
        raise ApiError(422, "bad_ops", "ops: the form needs a field 'ops' (the ops JSON)")
    try:
        edits = EditList.parse(load_json(ops_text, "ops", "bad_ops"))
    except EditError as exc:
        raise ApiError(422, "bad_ops", str(exc)) from None
    try:
        stack = read_layers_zip(layers_zip, "layers", max_pixels)
    except EditError as exc:
        raise ApiError(422, "bad_layers", str(exc)) from None

    def no_insert(_source: str):
        raise EditError(NO_INSERT)

    try:
        edited = apply_edits(stack, edits, load_stack=no_insert)
    except EditError as exc:
        raise ApiError(422, "bad_ops", str(exc)) from None
    return encode_png(edited.composite())


# The request body of POST /v1/recompose (read by the route itself, like decompose's).
RECOMPOSE_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["layers", "ops"],
                "properties": {
                    "layers": {
                        "type": "string",
                        "format": "binary",
                        "description": "A layers ZIP (format=zip answer or liwi predict folder).",
                    },
                    "ops": {
                        "type": "string",
                        "description": 'Ops JSON, e.g. {"version": 1, "ops": [{"op": "remove", '
                        '"object": 0}]}.',
                    },
                },
            }
        }
    },
}


async def read_form(
    request: Request, settings: ServeAppArgs, files: tuple[str, ...], texts: tuple[str, ...]
) -> dict[str, Any]:
    """A small multipart form: ``files`` as bytes, ``texts`` as str (a file part is read
    as UTF-8 text too); None when absent. 415 for other content types, 422 when malformed."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content type {media or 'none'!r}: send multipart/form-data",
        )
    try:
        form = await request.form(max_files=4, max_fields=16, max_part_size=settings.max_body_bytes)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed multipart of any kind
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        raise ApiError(422, "bad_form", f"multipart body: {detail}") from None
    out: dict[str, Any] = {}
    try:
        for name in files + texts:
            value = form.get(name)
            if value is not None and not isinstance(value, str):
                value = await value.read()
                if name in texts:
                    value = value.decode("utf-8", errors="replace")
            elif isinstance(value, str) and name in files:
                value = value.encode()
            out[name] = value
    finally:
        await form.close()
    return out
