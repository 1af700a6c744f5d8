"""Label formats -> uint8 class ids (IGNORE_LABEL where unlabelled); one-hot for Udacity."""

import numpy as np

from fcn.data.descriptors import IGNORE_LABEL, KITTI_ROAD
from fcn.errors import UserError


def decode_label(rgb, spec=KITTI_ROAD, path="label"):
    """Colour-coded label (H, W, 3) -> class indices (H, W) uint8, void = IGNORE_LABEL."""
    key = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    out = np.full(key.shape, IGNORE_LABEL, np.uint8)
    known = np.zeros(key.shape, bool)
    for (r, g, b), index in spec.colors:
        hit = key == ((r << 16) | (g << 8) | b)
        out[hit] = index
        known |= hit
    bad = key.size - int(known.sum())
    if bad:
        colours = ", ".join(f"{c}" for c, _ in spec.colors)
        raise UserError(
            f"label {path} has {100.0 * bad / key.size:.2f}% pixels with colours outside the "
            f"{spec.name} code ({colours}); fix or re-export the label"
        )
    return out


def one_hot(labels, num_classes):
    """(B, h, w) indices -> (B, h, w, C) float32; void pixels (255) become all-zero rows.

    Only the Udacity interface (helper.gen_batch_function, main.optimize) uses one-hot labels.
    """
    eye = np.concatenate(
        [np.eye(num_classes, dtype=np.float32), np.zeros((1, num_classes), np.float32)]
    )
    idx = np.where(labels < num_classes, labels, num_classes)
    return eye[idx]
