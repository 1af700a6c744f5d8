"""Reading images: any PNG/JPEG/BMP/TIFF as uint8 RGB, damaged files named in one line."""

import base64
import binascii
import glob
import json
import os

import cv2
import numpy as np

from fcn.errors import UserError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_JPEG_TAIL = 1024  # bytes at the end of a JPEG searched for its end marker


def images_in(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(IMAGE_EXTS))


def read_image(path, warn=print, grey_ok=False):
    """Any PNG/JPEG/BMP/TIFF as uint8 RGB (H, W, 3): RGBA, grey, palette and 16-bit are
    converted, each conversion noted through `warn` (grey_ok: grey -> RGB is routine for the
    dataset, e.g. COCO, and not noted)."""
    if path.lower().endswith(".json"):  # a LabelMe file embedding its image as imageData
        raw = cv2.imdecode(_embedded_image(path), cv2.IMREAD_UNCHANGED)
    else:
        raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0 or _is_cut_off_jpeg(path):
        raise UserError(f"cannot read image {path}: missing, truncated or not an image; replace it")
    return _to_rgb(raw, path, _is_palette_png(path), warn, grey_ok)


def decode_image(encoded, name="image", warn=None, grey_ok=False):
    """read_image for encoded bytes (a PNG/JPEG/BMP/TIFF file's contents, e.g. an HTTP body):
    the same decoder and conversions, so the pixels equal read_image's of that file."""
    buf = np.frombuffer(encoded, np.uint8)
    raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if raw is None or raw.size == 0 or _cut_off_jpeg_bytes(bytes(encoded[:2]), encoded):
        raise UserError(f"cannot decode {name}: truncated or not a PNG/JPEG/BMP/TIFF image")
    return _to_rgb(raw, name, _palette_png_head(bytes(encoded[:26])), warn, grey_ok)


def _to_rgb(raw, name, palette, warn, grey_ok):
    """A decoded image (H, W[, 1|3|4]) uint8/uint16 (BGR order) -> uint8 RGB (H, W, 3)."""
    notes = ["palette -> RGB"] if palette else []
    if raw.dtype == np.uint16:
        raw = (raw >> 8).astype(np.uint8)
        notes.append("16-bit -> 8-bit")
    elif raw.dtype != np.uint8:
        raise UserError(f"image {name} has unsupported sample type {raw.dtype}; save it as 8-bit")
    if raw.ndim == 2:
        rgb = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
        if not grey_ok:
            notes.append("grayscale -> RGB")
    elif raw.shape[2] == 4:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)
        notes.append("alpha channel dropped")
    else:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    if notes and warn:
        warn(f"warning: {name}: {', '.join(notes)}")
    return rgb


def _embedded_image(path):
    """The encoded image bytes (N,) uint8 of a LabelMe file's base64 imageData."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f).get("imageData") or ""
        encoded = base64.b64decode(data)
    except (OSError, ValueError, AttributeError, binascii.Error) as e:
        raise UserError(f"{path} embeds no readable imageData ({type(e).__name__})") from None
    if not encoded:
        raise UserError(f"{path} embeds no imageData and its imagePath image is missing")
    return np.frombuffer(encoded, np.uint8)


def _is_cut_off_jpeg(path):
    """libjpeg decodes a cut-off JPEG with grey filler and only a warning. A whole one ends with
    the EOI marker FF D9 (maybe plus a little padding); entropy-coded data never contains it."""
    with open(path, "rb") as f:
        head = f.read(2)
        if head != _JPEG_SOI:
            return False
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - _JPEG_TAIL))
        return _JPEG_EOI not in f.read()


def _cut_off_jpeg_bytes(head, encoded):
    """_is_cut_off_jpeg for bytes in memory."""
    return head == _JPEG_SOI and _JPEG_EOI not in bytes(encoded[-_JPEG_TAIL:])


def _is_palette_png(path):
    """OpenCV expands palette PNGs silently; the IHDR colour type (byte 25) tells: 3 = palette."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    return _palette_png_head(head)


def _palette_png_head(head):
    return head[:8] == _PNG_SIGNATURE and len(head) == 26 and head[25] == 3
