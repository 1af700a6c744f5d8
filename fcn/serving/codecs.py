"""What goes over the wire: image bodies in, TF Serving's REST JSON in and out, PNGs out.

Images arrive as PNG, JPEG, BMP or TIFF bytes and are decoded by fcn.data.decode_image (the
reader `infer` uses, so a served image has the pixels `infer` reads from the same file).

TF Serving's predict request (https://www.tensorflow.org/tfx/serving/api_rest), either
    {"signature_name": S, "instances": [X, ...]}   row format   -> {"predictions": [...]}
    {"signature_name": S, "inputs": [X, ...]}      columnar     -> {"outputs": ...}
("inputs" may also be {"images": [X, ...]} or one X), each X an image: {"b64": "<PNG/JPEG
bytes, base64>"}, a nested list (H, W, 3) of 0..255 (uint8 RGB), or either under the input's
name, {"images": ...}. The signature says what comes back, as TF Serving names outputs:
    serving_default   mask: (H, W) class ids           (one output: the bare values)
    probabilities     mask and probabilities (H, W, C) (two: a dict per image / per output)
"""

import base64
import binascii
import json
import struct

import cv2
import numpy as np

from fcn import data
from fcn.errors import UserError

INPUT_NAME = "images"
MASK, PROBS = "mask", "probabilities"
SIGNATURES = {"serving_default": (MASK,), "probabilities": (MASK, PROBS)}
DEFAULT_SIGNATURE = "serving_default"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, ...): their segment gives the size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
PROB_DECIMALS = 6  # probabilities in JSON: float32 holds about 7 significant digits


class RequestError(Exception):
    """A request the server refuses; `status` is its HTTP code, the message one line."""

    status = 400


class TooLarge(RequestError):
    status = 413


def declared_size(encoded):
    """(H, W) a PNG or JPEG header declares, before decoding anything; None for other formats
    (TIFF, BMP) or a header that says nothing (checked after decoding instead)."""
    head = bytes(encoded[:24])
    if head[:8] == _PNG_SIGNATURE and len(head) == 24:
        width, height = struct.unpack(">II", head[16:24])
        return height, width
    if head[:2] != b"\xff\xd8":
        return None
    at, view = 2, memoryview(encoded)
    while at + 9 < len(view):  # segments: FF marker, 2-byte length, payload
        if view[at] != 0xFF:
            return None
        marker = view[at + 1]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", bytes(view[at + 5 : at + 9]))
            return height, width
        at += 2 + struct.unpack(">H", bytes(view[at + 2 : at + 4]))[0]
    return None


def _check_pixels(size, max_pixels, name):
    if size is not None and size[0] * size[1] > max_pixels:
        raise TooLarge(
            f"{name} is {size[1]}x{size[0]} = {size[0] * size[1]} pixels, over --max-pixels "
            f"{max_pixels}; send a smaller image"
        )


def decode_image(encoded, max_pixels, name="the image"):
    """PNG/JPEG/BMP/TIFF bytes -> uint8 RGB (H, W, 3); RequestError (400) for bytes that are
    no image, TooLarge (413) for one over max_pixels (from its header where it has one)."""
    if not encoded:
        raise RequestError(f"{name} is empty; send PNG, JPEG or TIFF bytes")
    _check_pixels(declared_size(encoded), max_pixels, name)
    try:
        image = data.decode_image(encoded, name)
    except UserError as e:
        raise RequestError(str(e)) from None
    _check_pixels(image.shape[:2], max_pixels, name)
    return image


def _instance_image(value, max_pixels, name):
    if isinstance(value, dict) and set(value) == {INPUT_NAME}:
        value = value[INPUT_NAME]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            keys = ", ".join(sorted(value)) or "none"
            raise RequestError(f'{name} has keys {keys}; send {{"b64": "<base64 image>"}}')
        try:
            encoded = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"{name}'s b64 is not valid base64") from None
        return decode_image(encoded, max_pixels, name)
    if isinstance(value, list):
        try:
            array = np.asarray(value)
        except ValueError:
            raise RequestError(f"{name} is a ragged list; send (H, W, 3) values 0..255") from None
        if array.ndim != 3 or array.shape[2] != 3 or not np.issubdtype(array.dtype, np.number):
            raise RequestError(f"{name} has shape {array.shape}; send (H, W, 3) values 0..255")
        _check_pixels(array.shape[:2], max_pixels, name)
        if array.size and (array.min() < 0 or array.max() > 255 or np.any(array % 1)):
            raise RequestError(f"{name} holds values outside the integers 0..255 (uint8 RGB)")
        return array.astype(np.uint8)
    raise RequestError(
        f'{name} is a JSON {type(value).__name__}, not an image; send {{"b64": "<base64 image>"}}'
    )


def parse_predict(body, max_pixels, max_images):
    """A TF Serving predict request body -> (images, signature name, columnar?)."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as e:
        raise RequestError(f"the body is not JSON ({str(e)[:80]})") from None
    if not isinstance(payload, dict):
        raise RequestError('the body must be a JSON object with "instances" or "inputs"')
    signature = payload.get("signature_name") or DEFAULT_SIGNATURE
    if signature not in SIGNATURES:
        raise RequestError(f"unknown signature_name {signature!r}; use one of {list(SIGNATURES)}")
    if ("instances" in payload) == ("inputs" in payload):
        raise RequestError('the body must have exactly one of "instances" and "inputs"')
    columnar = "inputs" in payload
    values = payload["inputs"] if columnar else payload["instances"]
    if columnar and isinstance(values, dict) and set(values) == {INPUT_NAME}:
        values = values[INPUT_NAME]
    if columnar and (isinstance(values, dict) or _is_pixels(values)):
        values = [values]  # one image, TF Serving's columnar form without a batch dimension
    if not isinstance(values, list) or not values:
        raise RequestError('"instances" / "inputs" must be a non-empty list of images')
    if len(values) > max_images:
        raise TooLarge(f"{len(values)} images in one request, over --queue {max_images}")
    key = "inputs" if columnar else "instances"
    images = [_instance_image(v, max_pixels, f"{key}[{i}]") for i, v in enumerate(values)]
    return images, signature, columnar


def _is_pixels(values):
    """True for one (H, W, 3) nested list rather than a list of images."""
    return isinstance(values, list) and bool(values) and isinstance(values[0], list)


def _outputs(probs, mask, names):
    out = {MASK: mask.tolist()}
    if PROBS in names:
        out[PROBS] = np.round(probs.astype(np.float64), PROB_DECIMALS).tolist()
    return out


def predict_response(results, signature, columnar):
    """[(probs (H, W, C), mask (H, W))] -> TF Serving's response JSON (bytes)."""
    names = SIGNATURES[signature]
    rows = [_outputs(probs, mask, names) for probs, mask in results]
    if columnar:
        cols = {n: [r[n] for r in rows] for n in names}
        payload = {"outputs": cols[MASK] if len(names) == 1 else cols}
    else:
        payload = {"predictions": [r[MASK] if len(names) == 1 else r for r in rows]}
    return json.dumps(payload, separators=(",", ":")).encode()


def encode_png(array):
    """uint8 (H, W) or RGB (H, W, 3) -> PNG bytes, as fcn.runs.write_image writes them."""
    if array.ndim == 3:
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError(f"cannot encode a PNG of shape {array.shape}")
    return buf.tobytes()


def class_shares(mask, spec):
    """[{id, name, color, share}] per class: its fraction of the mask's pixels."""
    counts = np.bincount(mask.ravel(), minlength=len(spec.class_names))
    total = max(1, int(mask.size))
    return [
        dict(id=i, name=name, color=None if color is None else list(color), share=c / total)
        for i, (name, color, c) in enumerate(
            zip(spec.class_names, spec.palette, counts.tolist(), strict=False)
        )
    ]
