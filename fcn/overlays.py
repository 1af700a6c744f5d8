"""Overlays users browse in runs/: class masks painted over images with the dataset's palette."""

import cv2
import numpy as np

from fcn import data

GREEN = (0, 255, 0)
DEFAULT_ALPHA = 0.5


def softmax(logits, axis=-1):
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def overlay(image, mask, color=GREEN, alpha=DEFAULT_ALPHA):
    """Blend `color` into the RGB image (H, W, 3) where mask (H, W) is true; uint8 out."""
    out = image.copy()
    blend = (1.0 - alpha) * image[mask].astype(np.float32) + alpha * np.asarray(color, np.float32)
    out[mask] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return out


def paint(image, mask, spec, alpha=DEFAULT_ALPHA):
    """Each class of mask (H, W) blended in its palette colour (classes without one stay as
    they are); for KITTI road: green road, as in the reference system."""
    out = image
    for index, color in enumerate(spec.palette):
        if color is not None:
            out = overlay(out, mask == index, color, alpha)
    return out.copy() if out is image else out


def predict_probs(sess, probs_tensor, image_input, keep_prob, images):
    """uint8 (B, h, w, 3) at the network size -> class probabilities (B, h, w, C) float32, fed
    straight to the network input (no resizing)."""
    feed = {image_input: data.to_input(images)}
    if keep_prob is not None:
        feed[keep_prob] = 1.0
    return sess.run(probs_tensor, feed)


def to_original_size(prob, height, width):
    """Bilinear resize of a (h, w[, C]) probability map to the source image's (height, width)."""
    if prob.shape[:2] == (height, width):
        return prob
    return cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)


def road_overlay(image, road_prob, threshold=0.5, alpha=DEFAULT_ALPHA):
    """The reference overlay: green where the full-resolution road probability >= threshold.

    `>=` is how the metrics count a pixel as road, so overlays and scores agree.
    """
    prob = to_original_size(road_prob, *image.shape[:2])
    return overlay(image, prob >= threshold, GREEN, alpha)
