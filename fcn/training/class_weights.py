"""Per-class loss weights from the training labels' class frequencies (pure NumPy, no TensorFlow,
so the statistics can be computed and printed before a graph exists).

Labels are uint8 class ids (N, H, W) with an ignore label (255) that is never counted. Methods:
  none     all ones.
  inverse  total / (C * pixels_c): scikit-learn's class_weight='balanced'; a class holding 1/C
           of the pixels gets weight 1.
  median   median frequency balancing (Eigen & Fergus 2015): freq_c = pixels_c / image_pixels_c,
           the class's share of the images it appears in; w_c = median_c(freq) / freq_c.
  enet     Paszke et al. 2016 (ENet): w_c = 1 / ln(1.02 + p_c), p_c = pixels_c / total; bounded
           to [1.42, 50.5], so a rare class is boosted without exploding.
A class with no labelled pixel gets weight 0 (except with none): it adds nothing to any loss
term, and its frequency 0 would otherwise give an infinite (inverse, median) or the largest
(enet) weight to a class the network never sees.
"""

import numpy as np

from fcn.errors import UserError

METHODS = ("none", "inverse", "median", "enet")
# --class-weights choices: 'auto' is resolved per loss by `resolve`.
CHOICES = ("auto",) + METHODS
# Losses that are defined only with weights, and the one that takes none
# (fcn.training.losses.LOSSES).
WEIGHTED_LOSSES = ("weighted_ce",)
UNWEIGHTED_LOSSES = ("ce",)
# ENet's constant c in 1 / ln(c + p): weights lie in [1 / ln(2.02), 1 / ln(1.02)] = [1.42, 50.5].
_ENET_C = 1.02
_STAT_KEYS = ("pixels", "image_pixels", "images")


def pixel_stats(labels, num_classes, ignore_label=255):
    """Class statistics of a label set: labels uint8 (N, H, W), or any iterable of (H, W)
    arrays (images of different sizes). Returns a dict of
      pixels       (C,) int64: labelled pixels of class c,
      image_pixels (C,) int64: all labelled pixels of the images in which c appears,
      images       (C,) int64: images in which c appears,
      total        int: labelled pixels (ignore_label left out).
    A value outside 0..C-1 that is not ignore_label is a UserError.
    """
    if isinstance(labels, np.ndarray) and labels.ndim == 2:
        labels = labels[None]
    stats = _empty(num_classes)
    for index, label in enumerate(labels):
        label = np.asarray(label)
        # One pass per image: uint8 ids into 256 bins (ints of a wider type: as many bins as the
        # largest id needs).
        counts = np.bincount(label.ravel(), minlength=max(256, num_classes)).astype(np.int64)
        if 0 <= ignore_label < len(counts):
            counts[ignore_label] = 0
        stray = np.flatnonzero(counts[num_classes:])
        if len(stray):
            raise UserError(
                f"training label {index} holds class id {stray[0] + num_classes}, outside "
                f"0..{num_classes - 1} and not the ignore label {ignore_label}; check the label "
                "files or --classes"
            )
        counts = counts[:num_classes]  # (C,)
        present = counts > 0
        stats["pixels"] += counts
        stats["image_pixels"] += present * counts.sum()
        stats["images"] += present
    stats["total"] = int(stats["pixels"].sum())
    return stats


def accumulate(stats_a, stats_b):
    """The statistics of two label sets together (e.g. counted in chunks)."""
    out = {key: stats_a[key] + stats_b[key] for key in _STAT_KEYS}
    out["total"] = int(stats_a["total"] + stats_b["total"])
    return out


def compute(stats, method):
    """Per-class weights np.float32 (C,) by method (see the module docstring)."""
    if method not in METHODS:
        raise UserError(f"--class-weights {method!r} is not one of {list(METHODS)}")
    pixels = np.asarray(stats["pixels"], np.float64)  # (C,)
    num_classes = len(pixels)
    if method == "none":
        return np.ones(num_classes, np.float32)
    total = float(stats["total"])
    if total <= 0:
        raise UserError(
            f"--class-weights {method}: the training labels hold no labelled pixel (all are the "
            "ignore label); check the label files"
        )
    present = pixels > 0
    weights = np.zeros(num_classes, np.float64)
    if method == "inverse":
        weights[present] = total / (num_classes * pixels[present])
    elif method == "median":
        image_pixels = np.asarray(stats["image_pixels"], np.float64)
        freq = pixels[present] / image_pixels[present]
        weights[present] = np.median(freq) / freq
    else:  # enet
        weights[present] = 1.0 / np.log(_ENET_C + pixels[present] / total)
    return weights.astype(np.float32)


def resolve(method, loss):
    """The weighting a run uses: 'auto' -> 'median' for a weighted loss (weighted_ce), 'none'
    otherwise. A weighted loss without weights, or plain ce with weights, is a UserError."""
    if method not in CHOICES:
        raise UserError(f"--class-weights {method!r} is not one of {list(CHOICES)}")
    if method == "auto":
        return "median" if loss in WEIGHTED_LOSSES else "none"
    if loss in WEIGHTED_LOSSES and method == "none":
        raise UserError(f"--loss {loss} needs --class-weights inverse, median or enet")
    if loss in UNWEIGHTED_LOSSES and method != "none":
        # Weighted cross-entropy has its own name, so that 'ce' always means the reference loss.
        raise UserError(
            f"--loss {loss} takes no class weights (--class-weights {method}); use --loss "
            "weighted_ce, or --class-weights none"
        )
    return method


def describe(stats, weights, class_names):
    """A short table for the training log: one line per class with its share of the labelled
    pixels (%) and its loss weight, after a header line."""
    pixels = np.asarray(stats["pixels"], np.float64)
    if not len(pixels) == len(weights) == len(class_names):
        raise ValueError(
            f"{len(pixels)} classes counted, {len(weights)} weights, {len(class_names)} names"
        )
    total = max(float(stats["total"]), 1.0)
    width = max([len("class")] + [len(str(name)) for name in class_names])
    lines = [f"{'class':<{width}}  {'pixels':>8}  {'weight':>8}"]
    for name, count, weight in zip(class_names, pixels, weights, strict=True):
        lines.append(f"{str(name):<{width}}  {100.0 * count / total:7.2f}%  {weight:8.3f}")
    return lines


def _empty(num_classes):
    stats = {key: np.zeros(num_classes, np.int64) for key in _STAT_KEYS}
    stats["total"] = 0
    return stats
