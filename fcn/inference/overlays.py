"""Overlays users browse in runs/: class masks painted over images with the dataset's palette."""

import cv2
import numpy as np

from fcn import data

GREEN = (0, 255, 0)
DEFAULT_ALPHA = 0.5
# Which classes a legend lists: those in the mask (a 19-class key under a 3-class street scene
# hides the colours that matter among ones that do not occur), all of them (a video's strip
# keeps one size from frame to frame), or none (binary datasets: green road needs no key).
LEGENDS = ("present", "all", "none")

# The legend strip under an overlay: rows of [swatch] name, white on black, wrapped to the width.
LEGEND_ROW = 20  # px per row
LEGEND_SWATCH = 12  # px side of a class's colour square
LEGEND_PAD = 6  # px around and between entries
_FONT, _FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.45


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


def legend_entries(spec, mask=None):
    """[(class name, RGB)] of the painted classes (palette not None), in class order; with a
    mask (H, W) only the classes it holds."""
    present = None if mask is None else set(np.unique(mask).tolist())
    return [
        (name, tuple(color))
        for index, (name, color) in enumerate(zip(spec.class_names, spec.palette, strict=True))
        if color is not None and (present is None or index in present)
    ]


def _layout(width, entries):
    """[(row, x)] of each entry: left to right, a new row when the next one would not fit."""
    places, row, x = [], 0, LEGEND_PAD
    for name, _ in entries:
        size = LEGEND_SWATCH + 4 + cv2.getTextSize(name, _FONT, _FONT_SCALE, 1)[0][0]
        if x > LEGEND_PAD and x + size > width - LEGEND_PAD:
            row, x = row + 1, LEGEND_PAD
        places.append((row, x))
        x += size + 2 * LEGEND_PAD
    return places


def legend_strip(width, entries):
    """uint8 (rows * LEGEND_ROW, width, 3): a colour swatch and the name of each (name, RGB)
    entry; (0, width, 3) for no entries."""
    places = _layout(width, entries)
    rows = places[-1][0] + 1 if places else 0
    strip = np.zeros((rows * LEGEND_ROW, width, 3), np.uint8)
    for (name, color), (row, x) in zip(entries, places, strict=True):
        top = row * LEGEND_ROW + (LEGEND_ROW - LEGEND_SWATCH) // 2
        color = tuple(int(c) for c in color)
        cv2.rectangle(strip, (x, top), (x + LEGEND_SWATCH - 1, top + LEGEND_SWATCH - 1), color, -1)
        baseline = row * LEGEND_ROW + LEGEND_ROW - 6
        cv2.putText(
            strip,
            name,
            (x + LEGEND_SWATCH + 4, baseline),
            _FONT,
            _FONT_SCALE,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return strip


def with_legend(image, entries):
    """The RGB image (H, W, 3) above the legend strip of entries [(name, RGB)]."""
    return np.concatenate([image, legend_strip(image.shape[1], entries)])


def default_legend(spec):
    """'present' for multiclass datasets, 'none' for binary ones (KITTI keeps its green road)."""
    return "none" if spec.task == "binary" else "present"


def paint_with_legend(image, mask, spec, alpha=DEFAULT_ALPHA, legend=None):
    """`paint`, then a legend strip below: legend one of LEGENDS, None = default_legend(spec).
    With 'none' (or no painted class to list) the result has the image's size."""
    legend = default_legend(spec) if legend is None else legend
    if legend not in LEGENDS:
        raise ValueError(f"legend must be one of {LEGENDS}, got {legend!r}")
    shown = paint(image, mask, spec, alpha)
    if legend == "none":
        return shown
    return with_legend(shown, legend_entries(spec, mask if legend == "present" else None))


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
