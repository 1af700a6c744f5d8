"""Segmentation metrics in plain NumPy (the KITTI devkit's own are in fcn.evaluation.kitti.devkit).

- Hard-decision metrics (`confusion_matrix`, `segmentation_metrics`, `binary_scores`,
  `ConfusionAccumulator`): per-class IoU, precision, recall and F1 (= Dice) from class indices,
  with void pixels (`IGNORE_LABEL`) left out.

0/0 convention everywhere: a ratio whose numerator and denominator are both zero is NaN
(undefined), never a silent 0 or 1. Results are Python floats and ints.
"""

import numpy as np

IGNORE_LABEL = 255  # void pixels; the same value as fcn.data.IGNORE_LABEL


def _ratio(num, den):
    """num / den as a float, NaN when den == 0 (num is then 0 too for every count used here)."""
    return float(num) / float(den) if den else float("nan")


# --------------------------------------------------------------------------------------------
# Hard-decision metrics
# --------------------------------------------------------------------------------------------


def confusion_matrix(pred, label, num_classes, ignore_label=IGNORE_LABEL) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: rows = true class, columns = predicted class.

    pred and label are integer (or bool) arrays of the same shape, any shape. Pixels whose label
    is `ignore_label` are left out (None: no pixel is). Raises ValueError on a shape mismatch, a
    non-integer array, or a class outside 0..num_classes-1 in a counted pixel.
    """
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred has shape {pred.shape} but label has shape {label.shape}")
    for name, a in (("pred", pred), ("label", label)):
        if a.dtype != bool and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must hold class indices (integers), got dtype {a.dtype}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    pred, label = pred.ravel().astype(np.int64), label.ravel().astype(np.int64)
    if ignore_label is not None:
        valid = label != ignore_label
        pred, label = pred[valid], label[valid]
    for name, a in (("label", label), ("pred", pred)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            bad = a[(a < 0) | (a >= num_classes)][0]
            raise ValueError(
                f"{name} has class {bad}, outside 0..{num_classes - 1} "
                f"(ignore_label={ignore_label})"
            )
    flat = np.bincount(label * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def segmentation_metrics(cm, class_names=None) -> dict:
    """Pixel accuracy, mean IoU and per-class IoU / precision / recall / F1 of a confusion matrix.

    Returns {"pixel_accuracy", "mean_iou", "classes": {name: {"iou", "precision", "recall",
    "f1"}}}, with class_names defaulting to "class_0", "class_1", ...

    Per class, with tp = cm[c, c], support = row sum, predicted = column sum:
      iou = tp / (support + predicted - tp)   NaN when the class is absent from both label and
                                              prediction; mean_iou skips those (nanmean).
      precision = tp / predicted              NaN when nothing was predicted as the class.
      recall = tp / support                   NaN when the class has no pixel in the label.
      f1 = 2 tp / (support + predicted)       the Dice coefficient; NaN exactly when iou is.
    A class with support but no predictions has iou = recall = f1 = 0 and precision NaN.
    pixel_accuracy = trace / total, NaN for an empty matrix (and then mean_iou is NaN too).
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    if (cm < 0).any():
        raise ValueError("confusion matrix has negative counts")
    n = cm.shape[0]
    if class_names is None:
        class_names = [f"class_{i}" for i in range(n)]
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for a {n}-class confusion matrix")
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    classes, ious = {}, []
    for c, name in enumerate(class_names):
        iou = _ratio(tp[c], support[c] + predicted[c] - tp[c])
        ious.append(iou)
        classes[name] = {
            "iou": iou,
            "precision": _ratio(tp[c], predicted[c]),
            "recall": _ratio(tp[c], support[c]),
            "f1": _ratio(2 * tp[c], support[c] + predicted[c]),
        }
    ious = np.array(ious)
    mean_iou = float(np.mean(ious[~np.isnan(ious)])) if (~np.isnan(ious)).any() else float("nan")
    return {
        "pixel_accuracy": _ratio(np.trace(cm), cm.sum()),
        "mean_iou": mean_iou,
        "classes": classes,
    }


def binary_scores(prob, label, threshold=0.5, ignore_label=IGNORE_LABEL) -> dict:
    """Scores of a binary road model at one threshold: road where prob >= threshold.

    prob: road probabilities in [0, 1]; label: 1 = road, 0 = not road, ignore_label = void (left
    out). Returns {"iou", "precision", "recall", "f1", "tp", "fp", "fn", "tn"} over valid pixels,
    with the 0/0 = NaN convention of `segmentation_metrics` (f1 is Dice). The scores always come
    from the thresholded mask, never from soft probabilities, so they equal what the saved masks
    would score. Raises ValueError on a shape mismatch, a label outside {0, 1, ignore_label}, or
    a probability outside [0, 1] (logits passed by mistake) or NaN.
    """
    prob, label = np.asarray(prob), np.asarray(label)
    if prob.shape != label.shape:
        raise ValueError(f"prob has shape {prob.shape} but label has shape {label.shape}")
    label = label.astype(np.int64)
    valid = label != ignore_label if ignore_label is not None else np.ones(label.shape, bool)
    prob, label = prob[valid], label[valid]
    if label.size and not np.isin(label, (0, 1)).all():
        raise ValueError(f"label must be 0, 1 or {ignore_label}, got {np.unique(label)}")
    if not np.all((prob >= 0) & (prob <= 1)):  # NaN fails both comparisons
        raise ValueError("prob must hold probabilities in [0, 1]; got values outside (logits?)")
    road_pred, road_true = prob >= threshold, label == 1
    tp = int(np.count_nonzero(road_pred & road_true))
    fp = int(np.count_nonzero(road_pred & ~road_true))
    fn = int(np.count_nonzero(~road_pred & road_true))
    tn = int(np.count_nonzero(~road_pred & ~road_true))
    return {
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def class_shares(cm) -> list:
    """Each class's share of the ground-truth pixels (row sums / total); NaN for an empty
    matrix."""
    cm = np.asarray(cm)
    support = cm.sum(axis=1)
    return [_ratio(s, support.sum()) for s in support]


def present_mean_iou(cm) -> tuple:
    """(mean IoU over the classes that occur in the ground truth, how many do).

    `segmentation_metrics`' mean_iou also averages classes that were only predicted (IoU 0),
    which on data holding a few of a model's classes (7 of Cityscapes' 19) measures the data's
    coverage as much as the model; this mean leaves them out. NaN when no class occurs.
    """
    cm = np.asarray(cm)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    present = support > 0
    if not present.any():
        return float("nan"), 0
    ious = tp[present] / (support[present] + predicted[present] - tp[present])
    return float(np.mean(ious)), int(present.sum())


class ConfusionAccumulator:
    """Sums confusion matrices over a dataset, batch by batch, so metrics are over all pixels
    (not an average of per-image scores)."""

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL):
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.reset()

    def reset(self):
        self._cm = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred, label):
        """Add a batch (any shape; pred and label alike) of class indices."""
        self._cm += confusion_matrix(pred, label, self.num_classes, self.ignore_label)

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the accumulated (num_classes, num_classes) int64 matrix."""
        return self._cm.copy()

    def metrics(self, class_names=None) -> dict:
        return segmentation_metrics(self._cm, class_names)


# --------------------------------------------------------------------------------------------
# KITTI road devkit (perspective space)
# --------------------------------------------------------------------------------------------
