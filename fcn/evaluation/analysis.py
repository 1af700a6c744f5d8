"""Per-sample error analysis: what each evaluated image scores, what it looks like, and which
kinds of image score worse. Pure NumPy (plus cv2 for pictures and scipy for rank correlation);
no TensorFlow, so every piece is testable on hand-made arrays. The plots of these rows and the
confusion image are in fcn.evaluation.plots.

One row per image (a dict, written as RUN/eval/per_image.csv):
- scores: binary datasets the positive class's iou, f1, precision, recall; multiclass ones
  mean_iou (over the classes present in the image's ground truth or prediction),
  pixel_accuracy and iou_<class> per class; always loss, the mean cross-entropy over labelled
  pixels of the full-size probabilities.
- metadata: grayscale, brightness (mean grey level, 0..1), width, height, the ground truth's
  pixel share of each class (<class>_fraction of the labelled pixels; binary datasets list the
  positive class only, the other is 1 minus it, and n_<class>_regions, its connected regions),
  then whatever the dataset adds (`data.example_metadata`, e.g. COCO's instances_<category>).
"""

import io
import math

import cv2
import numpy as np

from fcn.evaluation import metrics

# Error pictures. Binary: the positive class's true positives, false positives and false
# negatives (true negatives and void are left as they are). Multiclass: every labelled pixel is
# correct or the wrong class; void pixels (not scored) are greyed so nobody reads them as right.
TP_COLOR, FP_COLOR, FN_COLOR = (0, 255, 0), (255, 0, 0), (0, 0, 255)
CORRECT_COLOR, WRONG_COLOR, IGNORED_COLOR = (0, 255, 0), (255, 0, 0), (128, 128, 128)
ERROR_ALPHA = 0.5
CAPTION_HEIGHT = 22  # px of the black caption bar above each gallery image
# Mean channel spread (max - min of R, G, B, in levels) below which an image counts as grey;
# 1 level absorbs JPEG chroma noise in frames that were grey before compression.
GREY_SPREAD = 1.0
# Probabilities are clipped here before the log: one confidently wrong pixel costs
# -log(1e-7) = 16.1, not infinity.
MIN_PROB = 1e-7
LOSS = "loss"
MIN_CORRELATION_ROWS = 3  # Spearman's rho of fewer points says nothing


# --------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------


def sample_scores(pred, label, spec):
    """Scores of one image from its decided classes pred (H, W) and label (H, W), void
    (spec.ignore_label) left out; NaN where undefined (fcn.evaluation.metrics' 0/0 convention)."""
    cm = metrics.confusion_matrix(pred, label, spec.num_classes, spec.ignore_label)
    m = metrics.segmentation_metrics(cm, list(spec.class_names))
    if spec.task == "binary":
        positive = m["classes"][spec.positive_name]
        return {k: positive[k] for k in ("iou", "f1", "precision", "recall")}
    # segmentation_metrics' mean skips classes absent from both label and prediction (NaN IoU).
    out = {"mean_iou": m["mean_iou"], "pixel_accuracy": m["pixel_accuracy"]}
    out.update({f"iou_{name}": s["iou"] for name, s in m["classes"].items()})
    return out


def cross_entropy(probs, label, ignore_label=metrics.IGNORE_LABEL):
    """Mean -log p(true class) over labelled pixels of probs (H, W, C) and label (H, W); NaN
    when no pixel is labelled."""
    probs, label = np.asarray(probs), np.asarray(label)
    if probs.shape[:2] != label.shape:
        raise ValueError(f"probs {probs.shape} and label {label.shape} differ in size")
    valid = label != ignore_label
    classes = label[valid].astype(np.int64)
    if classes.size == 0:
        return float("nan")
    if classes.max() >= probs.shape[-1]:
        raise ValueError(f"label has class {classes.max()} but probs has {probs.shape[-1]}")
    p = probs[valid][np.arange(classes.size), classes]
    return float(np.mean(-np.log(np.clip(p.astype(np.float64), MIN_PROB, 1.0))))


def is_grayscale(image):
    """True when R, G and B agree (mean spread under GREY_SPREAD levels)."""
    spread = image.max(axis=2).astype(np.int16) - image.min(axis=2)
    return bool(spread.mean() < GREY_SPREAD)


def brightness(image):
    """Mean grey level of an RGB uint8 image, 0..1."""
    return float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean()) / 255.0


def region_count(mask):
    """8-connected regions of a boolean (H, W) mask."""
    return int(cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1)


def class_fractions(label, spec):
    """{<class>_fraction: share of the labelled pixels} (NaN with none labelled); binary
    datasets: the positive class only, and n_<class>_regions."""
    valid = label != spec.ignore_label
    total = int(np.count_nonzero(valid))
    counts = np.bincount(label[valid].ravel(), minlength=spec.num_classes)
    wanted = [spec.positive_class] if spec.task == "binary" else range(spec.num_classes)
    out = {
        f"{spec.class_names[c]}_fraction": float(counts[c]) / total if total else float("nan")
        for c in wanted
    }
    if spec.task == "binary":
        out[f"n_{spec.positive_name}_regions"] = region_count(label == spec.positive_class)
    return out


def image_metadata(image, label, spec, extra=None):
    """The facts an analyst sorts images by (see the module docstring); extra: the dataset's
    own ({} or data.example_metadata's dict), added last."""
    out = {
        "grayscale": is_grayscale(image),
        "brightness": brightness(image),
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
    }
    out.update(class_fractions(label, spec))
    out.update(extra or {})
    return out


def sample_row(name, category, image, probs, pred, label, spec, extra=None):
    """The per_image.csv row of one image: name, category, scores, loss, metadata."""
    row = {"name": name, "category": category}
    row.update(sample_scores(pred, label, spec))
    row[LOSS] = cross_entropy(probs, label, spec.ignore_label)
    row.update(image_metadata(image, label, spec, extra))
    return row


# --------------------------------------------------------------------------------------------
# Error pictures
# --------------------------------------------------------------------------------------------


def blend(image, mask, color, alpha=ERROR_ALPHA):
    """`color` blended into the RGB image where mask (H, W) is true; uint8 out."""
    out = image.copy()
    mixed = (1.0 - alpha) * image[mask].astype(np.float32) + alpha * np.asarray(color, np.float32)
    out[mask] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out


def error_overlay(image, pred, label, spec, alpha=ERROR_ALPHA):
    """RGB (H, W, 3) coloured by error kind (error_keys(spec) lists the colours)."""
    void = label == spec.ignore_label
    if spec.task == "binary":
        pos = spec.positive_class
        predicted, truth = pred == pos, label == pos
        out = blend(image, predicted & truth, TP_COLOR, alpha)
        out = blend(out, predicted & ~truth & ~void, FP_COLOR, alpha)
        return blend(out, ~predicted & truth, FN_COLOR, alpha)
    correct = (pred == label) & ~void
    out = blend(image, correct, CORRECT_COLOR, alpha)
    out = blend(out, ~correct & ~void, WRONG_COLOR, alpha)
    return blend(out, void, IGNORED_COLOR, alpha)


def error_keys(spec):
    """[(word, RGB)] explaining error_overlay's colours."""
    if spec.task == "binary":
        return [("TP", TP_COLOR), ("FP", FP_COLOR), ("FN", FN_COLOR)]
    return [("correct", CORRECT_COLOR), ("wrong class", WRONG_COLOR), ("ignored", IGNORED_COLOR)]


def caption(image, text, keys):
    """The image under a black bar holding `text` and the colour key [(word, RGB)], so a
    gallery file explains itself; the font shrinks to fit narrow images."""
    pieces = [(text + "  ", (255, 255, 255))] + [(f"{w} ", c) for w, c in keys]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    width = sum(cv2.getTextSize(t, font, scale, 1)[0][0] for t, _ in pieces)
    scale *= min(1.0, (image.shape[1] - 8) / width)
    bar = np.zeros((CAPTION_HEIGHT, image.shape[1], 3), np.uint8)
    x = 4
    for t, colour in pieces:
        cv2.putText(bar, t, (x, 16), font, scale, colour, 1, cv2.LINE_AA)
        x += cv2.getTextSize(t, font, scale, 1)[0][0]
    return np.concatenate([bar, image])


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def columns(rows):
    """Every key of the rows, in first-seen order (images may add dataset metadata keys)."""
    seen = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _cell(value):
    """A CSV cell: booleans 0/1, floats with 6 decimals, undefined (NaN, missing) empty."""
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.6f}" if math.isfinite(value) else ""
    return "" if value is None else value


def csv_bytes(rows, cols=None):
    import csv

    cols = columns(rows) if cols is None else list(cols)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in cols])
    return buf.getvalue().encode()


def field_kind(values):
    """'boolean', 'category' (strings) or 'numeric' for a column's values (None skipped)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return "boolean"
    if any(isinstance(v, str) for v in present):
        return "category"
    return "numeric"


def finite_number(x):
    """True for an int or float (NumPy's too) that is neither NaN nor infinite."""
    return x is not None and isinstance(x, (int, float, np.number)) and math.isfinite(x)


# --------------------------------------------------------------------------------------------
# What scores worse
# --------------------------------------------------------------------------------------------


def what_scores_worse(rows, score, fields):
    """How `score` varies with each field, strongest first.

    Returns (groups, correlations):
    groups: boolean and category fields, [{"field", "groups": [(value, mean, n)] worst mean
      first, "gap": best mean - worst mean}], largest gap first; fields with one group skipped.
    correlations: numeric fields, [{"field", "rho", "n"}] with Spearman's rho over the images
      where both are defined, largest |rho| first; constant fields and fewer than
      MIN_CORRELATION_ROWS images skipped.
    """
    from scipy import stats

    groups, correlations = [], []
    for field in fields:
        pairs = [(r.get(field), r.get(score)) for r in rows]
        pairs = [(v, s) for v, s in pairs if v is not None and finite_number(s)]
        kind = field_kind([v for v, _ in pairs])
        if kind in ("boolean", "category"):
            by_value = {}
            for v, s in pairs:
                by_value.setdefault(bool(v) if kind == "boolean" else v, []).append(s)
            if len(by_value) < 2:
                continue
            means = sorted(
                ((v, float(np.mean(s)), len(s)) for v, s in by_value.items()), key=lambda g: g[1]
            )
            groups.append({"field": field, "groups": means, "gap": means[-1][1] - means[0][1]})
            continue
        pairs = [(float(v), s) for v, s in pairs if finite_number(v)]
        if len(pairs) < MIN_CORRELATION_ROWS or len({v for v, _ in pairs}) < 2:
            continue
        x, y = zip(*pairs, strict=True)
        if len(set(y)) < 2:
            continue
        rho = float(stats.spearmanr(x, y)[0])
        if math.isfinite(rho):
            correlations.append({"field": field, "rho": rho, "n": len(pairs)})
    groups.sort(key=lambda g: -g["gap"])
    correlations.sort(key=lambda c: -abs(c["rho"]))
    return groups, correlations


def _value_text(field, value):
    if isinstance(value, bool):
        if field == "grayscale":
            return "grayscale images" if value else "colour images"
        return f"{field} = {'yes' if value else 'no'}"
    return f"{field} = {value}"


def worse_markdown(groups, correlations, score_label):
    """Markdown lines of what_scores_worse's findings, e.g. 'grayscale images: mean IoU 0.410
    (3 images) vs 0.630 for colour images (10)'."""
    lines = []
    for g in groups:
        (v0, m0, n0), rest = g["groups"][0], g["groups"][1:]
        others = ", ".join(f"{m:.3f} for {_value_text(g['field'], v)} ({n})" for v, m, n in rest)
        lines.append(
            f"- {_value_text(g['field'], v0)}: {score_label} {m0:.3f} ({n0} images) vs {others}"
        )
    for c in correlations:
        direction = "lower" if c["rho"] < 0 else "higher"
        lines.append(
            f"- {c['field']}: Spearman rho {c['rho']:+.2f} over {c['n']} images "
            f"(larger {c['field']}, {direction} {score_label})"
        )
    return lines or ["- nothing to compare (too few images or no varying field)"]
