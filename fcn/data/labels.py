"""Label formats -> uint8 class ids (IGNORE_LABEL where unlabelled); one-hot for Udacity.

A label value the dataset does not define becomes IGNORE_LABEL and is reported once per file in
one line (spec.unknown == 'ignore'), or makes the pair unusable (KITTI, spec.unknown == 'error').
"""

import numpy as np
from PIL import Image, UnidentifiedImageError

from fcn.data.descriptors import IGNORE_LABEL, KITTI_ROAD
from fcn.data.images import read_image
from fcn.errors import UserError

_SHOWN_VALUES = 5  # unknown label values named in a warning


def decode_label(rgb, spec=KITTI_ROAD, path="label", warn=print):
    """Colour-coded label (H, W, 3) -> class indices (H, W) uint8, void = IGNORE_LABEL."""
    key = _rgb_key(rgb)
    out = np.full(key.shape, IGNORE_LABEL, np.uint8)
    known = np.zeros(key.shape, bool)
    for (r, g, b), index in spec.colors:
        hit = key == ((r << 16) | (g << 8) | b)
        out[hit] = index
        known |= hit
    bad = key.size - int(known.sum())
    if bad and spec.unknown == "error":
        colours = ", ".join(f"{c}" for c, _ in spec.colors)
        raise UserError(
            f"label {path} has {100.0 * bad / key.size:.2f}% pixels with colours outside the "
            f"{spec.name} code ({colours}); fix or re-export the label"
        )
    if bad:
        values = [_rgb_of(int(k)) for k in np.unique(key[~known])]
        _warn_unknown(warn, path, bad, key.size, "colours", values, spec)
    return out


def decode_ids(values, spec, path="label", warn=print):
    """Single-channel label (H, W) of stored ids -> class indices (H, W) uint8 via
    spec.id_map; ids outside it -> IGNORE_LABEL (reported) or an error (spec.unknown)."""
    if values.dtype != np.uint8:
        raise UserError(
            f"label {path} holds {values.dtype} values; store the class ids as 8-bit (0..255)"
        )
    lut = np.full(256, IGNORE_LABEL, np.uint8)
    defined = np.zeros(256, bool)
    for stored, index in spec.id_map:
        lut[stored] = index
        defined[stored] = True
    bad_mask = ~defined[values]
    bad = int(bad_mask.sum())
    if bad and spec.unknown == "error":
        raise UserError(
            f"label {path} has {100.0 * bad / values.size:.2f}% pixels with values outside the "
            f"{spec.name} ids; fix or re-export the label"
        )
    if bad:
        shown = [int(v) for v in np.unique(values[bad_mask])]
        _warn_unknown(warn, path, bad, values.size, "values", shown, spec)
    return lut[values]


def read_label_image(path, spec, warn=print):
    """A label image file (spec.label_format 'color' or 'index') -> class ids (H, W) uint8 at
    its own size.

    'index' labels are read as stored: a palette PNG gives its indices (Mapillary: the index is
    the class, the colour is only for viewing), a grey one its values. An RGB file is decoded
    by spec.colors when the dataset has colours (a re-saved Mapillary label); without them an
    RGB file whose channels are equal is read as one channel."""
    if spec.label_format == "color":
        return decode_label(read_image(path, warn=None), spec, path, warn)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            arr = np.asarray(img)
    except (OSError, UnidentifiedImageError, ValueError):
        raise UserError(f"cannot read label {path}: missing, truncated or not an image") from None
    if mode == "1":
        arr = arr.astype(np.uint8)  # bilevel PNG: 0/1
    elif mode in ("LA", "PA"):
        arr = arr[..., 0]
    elif mode in ("RGB", "RGBA"):
        rgb = arr[..., :3]
        if spec.colors:
            return decode_label(rgb, spec, path, warn)
        if not (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
        ):
            raise UserError(
                f"label {path} is a colour image but {spec.name} labels hold one class id per "
                "pixel; save it single-channel (or give colours in labelmap.json)"
            )
        arr = rgb[..., 0]
    elif mode not in ("P", "L"):
        raise UserError(f"label {path} has image mode {mode}; store class ids as 8-bit grey")
    return decode_ids(np.ascontiguousarray(arr), spec, path, warn)


def _warn_unknown(warn, path, bad, total, what, values, spec):
    if not warn:
        return
    shown = ", ".join(str(v) for v in values[:_SHOWN_VALUES])
    more = f", ... {len(values) - _SHOWN_VALUES} more" if len(values) > _SHOWN_VALUES else ""
    warn(
        f"warning: {path}: {bad} pixels ({100.0 * bad / total:.1f}%) with {what} not in the "
        f"{spec.name} classes ({shown}{more}) -> ignore"
    )


def _rgb_key(rgb):
    return (
        (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    )


def _rgb_of(key):
    return (key >> 16, (key >> 8) & 255, key & 255)


def one_hot(labels, num_classes):
    """(B, h, w) indices -> (B, h, w, C) float32; void pixels (255) become all-zero rows.

    Only the Udacity interface (helper.gen_batch_function, main.optimize) uses one-hot labels.
    """
    eye = np.concatenate(
        [np.eye(num_classes, dtype=np.float32), np.zeros((1, num_classes), np.float32)]
    )
    idx = np.where(labels < num_classes, labels, num_classes)
    return eye[idx]
