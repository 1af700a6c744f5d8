"""A dataset's task, in one place: how probabilities become classes, which score is the headline
and which outputs the positive class has. Binary datasets (KITTI road, 0/255 masks) threshold
the positive class's probability; multi-class ones take the argmax.

Every decision outside the graph goes through `decide`; the graph's twin is
fcn.inference.prediction.decide, tested to agree.
"""

import numpy as np

BINARY = "binary"
MULTICLASS = "multiclass"
# Training's selection score (config.best_metric 'auto') and evaluate's headline, by task.
_SELECTION = {BINARY: "val_iou", MULTICLASS: "val_mean_iou"}
_HEADLINE = {BINARY: "iou", MULTICLASS: "mean_iou"}


def is_binary(spec):
    return spec.task == BINARY


def decide(probs, spec, threshold):
    """(..., C) probabilities -> (...) uint8 class ids: binary datasets threshold the positive
    class (never argmax, so scores equal what the saved masks show), others take the argmax."""
    if is_binary(spec):
        pos = spec.positive_class
        return np.where(probs[..., pos] >= threshold, pos, 1 - pos).astype(np.uint8)
    return probs.argmax(-1).astype(np.uint8)


def refine_then_decide(image, probs, spec, threshold, refine):
    """(probs, mask) after `refine(image, probs)` (DenseCRF), decided again as the model
    decides: what evaluate --crf scores is what infer --crf writes."""
    probs = refine(image, probs)
    return probs, decide(probs, spec, threshold)


def positive_probs(probs, spec):
    """(H, W) probability of the positive class for binary datasets, else None."""
    return probs[..., spec.positive_class] if is_binary(spec) else None


def selection_metric(spec):
    """The validation score that picks the best checkpoint when config.best_metric is auto."""
    return _SELECTION[BINARY if is_binary(spec) else MULTICLASS]


def headline(spec):
    """The per-image / per-split score the gallery ranks by and the summary leads with."""
    return _HEADLINE[BINARY if is_binary(spec) else MULTICLASS]


def headline_label(spec):
    return f"{spec.positive_name} IoU" if is_binary(spec) else "mean IoU"
