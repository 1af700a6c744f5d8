"""The KITTI road benchmark's own pixel evaluation, in plain NumPy.

The devkit's perspective-space evaluation (`KittiRoadEvaluator`, `evaluate_kitti_road`): a sweep
over 256 thresholds of the road probability, giving MaxF, AvgPrec and the working point at MaxF,
with the exact definitions of the devkit's `helper.py` (`evalExp`, `pxEval_maximizeFMeasure`,
`calcEvalMeasures`) and `evaluateRoad.py`. Scores are fractions in 0..1; the devkit prints them
times 100. 0/0 is NaN, as in fcn.evaluation.metrics.
"""

import os

import cv2
import numpy as np

from fcn.errors import UserError
from fcn.evaluation.metrics import _ratio

# The devkit's sweep: thresh = np.array(range(0, 256)) / 255.0; a pixel is road at threshold t
# when its probability is >= t.
KITTI_THRESHOLDS = np.arange(256) / 255.0
KITTI_CATEGORIES = ("um", "umm", "uu")  # urban marked, urban multiple marked, urban unmarked
_KITTI_EPS = 1e-10  # the devkit's guard in precision and F; kept so MaxF matches it to the bit
# np.arange(0, 1.1, 0.1), not a rounded list: its 0.30000000000000004, 0.6000000000000001 and
# 0.7000000000000001 decide whether a recall of exactly 0.3, 0.6 or 0.7 reaches that level.
_VOC_RECALL_LEVELS = np.arange(0, 1.1, 0.1)


def probability_to_uint8(prob) -> np.ndarray:
    """Road probabilities -> the 8-bit values a probability PNG holds: rint(clip(p, 0, 1) * 255).

    The devkit only ever sees 8-bit maps (evaluateRoad.py reads them with cv2.imread(path, 0)), so
    the evaluator quantises float input with this; write submission PNGs with it too and the
    in-memory scores equal the devkit's on those files. uint8 passes through; bool -> 0 / 255.
    """
    prob = np.asarray(prob)
    if prob.dtype == np.uint8:
        return prob
    if prob.dtype == bool:
        return prob.astype(np.uint8) * np.uint8(255)
    if not np.issubdtype(prob.dtype, np.floating):
        raise ValueError(
            f"road probability must be float in [0, 1] or uint8 0..255, got dtype {prob.dtype}"
        )
    if np.isnan(prob).any():
        raise ValueError("road probability has NaN values")
    return np.rint(np.clip(prob.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def kitti_gt_from_rgb(gt_rgb):
    """KITTI gt_image_2 label as RGB uint8 (H, W, 3) -> (gt_road, gt_valid), both bool (H, W).

    The devkit's getGroundTruth reads the PNG with cv2 (BGR) and takes road = plane 0 > 0 (blue)
    and valid = plane 2 > 0 (red). In RGB order that is road = B = [..., 2], valid = R = [..., 0]:
    magenta (255, 0, 255) is road, red (255, 0, 0) not road, black (0, 0, 0) void.
    """
    gt_rgb = np.asarray(gt_rgb)
    if gt_rgb.ndim != 3 or gt_rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB label image (H, W, 3), got shape {gt_rgb.shape}")
    return gt_rgb[..., 2] > 0, gt_rgb[..., 0] > 0


def kitti_pixel_counts(prob, gt_road, gt_valid):
    """One image's counts for every devkit threshold (the devkit's evalExp with validArea).

    prob: (H, W) road probability, float in [0, 1] or uint8 (see `probability_to_uint8`);
    gt_road, gt_valid: (H, W) bool. Returns (fn, fp, pos_num, neg_num): fn[i] / fp[i] are the
    false negatives / positives at threshold KITTI_THRESHOLDS[i] (int64 arrays of 256), pos_num
    / neg_num the valid road / non-road pixel counts. Pixels outside gt_valid count nowhere.
    """
    q = probability_to_uint8(prob)
    gt_road, gt_valid = np.asarray(gt_road) > 0, np.asarray(gt_valid) > 0
    if q.ndim != 2 or gt_road.shape != q.shape or gt_valid.shape != q.shape:
        raise ValueError(
            f"prob, gt_road and gt_valid must be the same (H, W), got {q.shape}, "
            f"{gt_road.shape}, {gt_valid.shape}"
        )
    # The devkit compares float32(q) / 255 with the float64 thresholds i / 255.0. float32(q / 255)
    # is never below q / 255.0: k / 255 repeats the byte k in binary, so the bit after a 24-bit
    # mantissa is always a 1 with more 1s behind it and float32 rounding goes up. Its test
    # "prob >= thresh[i]" is therefore exactly q >= i, and a per-value histogram with cumulative
    # sums replaces its np.histogram over the threshold edges.
    pos_hist = np.bincount(q[gt_road & gt_valid], minlength=256)  # (256,) road pixels per value
    neg_hist = np.bincount(q[~gt_road & gt_valid], minlength=256)
    fn = np.concatenate(([0], np.cumsum(pos_hist)[:-1]))  # road with q < i
    fp = np.cumsum(neg_hist[::-1])[::-1]  # non-road with q >= i
    return fn.astype(np.int64), fp.astype(np.int64), int(pos_hist.sum()), int(neg_hist.sum())


def kitti_scores(fn, fp, pos_num, neg_num) -> dict:
    """Devkit scores from per-threshold totals (pxEval_maximizeFMeasure + calcEvalMeasures).

    Returns {"MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh"} as fractions in 0..1
    (the devkit prints them x100; PRE..FNR are its *_wp values at the MaxF working point):
      precision = TP / (TP + FP + 1e-10), recall = TP / pos_num; thresholds where both are 0
      (TP = 0) are dropped; F = 2 P R / (P + R + 1e-10) (beta = 1); MaxF = max F, at the lowest
      threshold on a tie (argmax); AvgPrec = Pascal VOC 11-point interpolated precision: mean
      over r in np.arange(0, 1.1, 0.1) of max precision at recall >= r.
    Because of the 1e-10 guards a perfect prediction scores MaxF = AvgPrec = 1 - O(1e-10).
    With no road pixel at all every score is NaN (the devkit would crash). The devkit computes
    the working point in float32; here it is float64 (differences below 1e-6).
    """
    fn, fp = np.asarray(fn, np.float64), np.asarray(fp, np.float64)
    nan = float("nan")
    if pos_num == 0:
        return dict.fromkeys(("MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh"), nan)
    tp, tn = pos_num - fn, neg_num - fp
    if (tp < 0).any() or (tn < 0).any():
        raise ValueError("inconsistent KITTI counts: more misses than pixels")
    recall = tp / float(pos_num)
    precision = tp / (tp + fp + _KITTI_EPS)
    keep = ~((recall == 0) & (precision == 0))
    # TP only falls as the threshold rises, so the dropped thresholds are a suffix and an index
    # into the kept ones is also an index into the totals (the devkit relies on this silently).
    recall, precision = recall[keep], precision[keep]
    # recall[0] == 1 (every pixel is road at threshold 0), so no recall level is ever empty.
    # Summed left to right like the devkit's loop, so AvgPrec matches it to the last bit.
    avg_prec = sum(precision[recall >= level].max() for level in _VOC_RECALL_LEVELS)
    avg_prec /= len(_VOC_RECALL_LEVELS)
    f = 2.0 * precision * recall / (precision + recall + _KITTI_EPS)
    best = int(np.argmax(f))
    tp_b, fp_b, fn_b = tp[best], fp[best], fn[best]
    return {
        "MaxF": float(f[best]),
        "AvgPrec": float(avg_prec),
        "PRE": _ratio(tp_b, tp_b + fp_b),
        "REC": _ratio(tp_b, pos_num),
        "FPR": _ratio(fp_b, neg_num),
        "FNR": _ratio(fn_b, pos_num),
        "BestThresh": float(KITTI_THRESHOLDS[best]),
    }


class KittiRoadEvaluator:
    """Pools the devkit's per-threshold counts over the images of one category, like
    evaluateRoad.py: FN / FP summed per threshold, plus the total road / non-road pixels."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.fn = np.zeros(256, np.int64)  # (256,) false negatives per threshold
        self.fp = np.zeros(256, np.int64)  # (256,) false positives per threshold
        self.pos_num = 0  # valid road pixels (the devkit's totalPosNum)
        self.neg_num = 0  # valid non-road pixels (totalNegNum)
        self.num_images = 0

    def update(self, prob, gt_road, gt_valid):
        """Add one image: prob (H, W) float in [0, 1] or uint8 0..255, gt masks bool (H, W)."""
        self._add(kitti_pixel_counts(prob, gt_road, gt_valid))

    def _add(self, counts):
        fn, fp, pos_num, neg_num = counts
        self.fn += fn
        self.fp += fp
        self.pos_num += pos_num
        self.neg_num += neg_num
        self.num_images += 1

    def result(self) -> dict:
        """{"MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh"}, fractions in 0..1."""
        if self.num_images == 0:
            raise ValueError("KittiRoadEvaluator.result() before any update()")
        return kitti_scores(self.fn, self.fp, self.pos_num, self.neg_num)


def _kitti_category(category):
    cat = str(category).removesuffix("_road")
    if cat not in KITTI_CATEGORIES:
        raise ValueError(
            f"unknown KITTI road category {category!r}; expected one of "
            f"{', '.join(KITTI_CATEGORIES)} (optionally with '_road')"
        )
    return cat


def evaluate_kitti_road(items) -> dict:
    """Devkit scores per category over (category, prob, gt_road, gt_valid) items.

    category is "um", "umm" or "uu" (or "um_road", ...). Returns {"um_road": scores, ...,
    "urban_road": scores} for the categories that have images, in that order, where urban_road
    pools every pixel of every image (the benchmark's URBAN_ROAD); scores as `kitti_scores`.
    An empty iterable gives {}.
    """
    evaluators = {cat: KittiRoadEvaluator() for cat in KITTI_CATEGORIES}
    urban = KittiRoadEvaluator()
    for category, prob, gt_road, gt_valid in items:
        evaluator = evaluators[_kitti_category(category)]
        counts = kitti_pixel_counts(prob, gt_road, gt_valid)
        evaluator._add(counts)
        urban._add(counts)
    out = {f"{cat}_road": ev.result() for cat, ev in evaluators.items() if ev.num_images}
    if urban.num_images:
        out["urban_road"] = urban.result()
    return out


def read_probability_png(path) -> np.ndarray:
    """(H, W) float32 road probability in [0, 1] from an 8-bit (/255) or 16-bit (/65535) PNG.

    A grey image saved as 3 or 4 identical colour channels is accepted. 8-bit values are converted
    exactly as the devkit does (float32(v) / 255). Note that the devkit itself reads every
    probability PNG as 8-bit (cv2.imread(path, 0) keeps a 16-bit PNG's high byte), so KITTI
    submissions should be 8-bit. Raises UserError naming the file when it cannot be used.
    """
    img = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"cannot read probability map {path}: missing, unreadable or not an image")
    if img.ndim == 3:
        colour = img[..., :3]
        if img.shape[2] != 1 and (img.shape[2] not in (3, 4) or (colour != colour[..., :1]).any()):
            raise UserError(
                f"probability map {path} has {img.shape[2]} differing channels; save the road "
                "probability as a single-channel (grey) PNG"
            )
        img = img[..., 0]
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255)
    if img.dtype == np.uint16:
        return (img.astype(np.float64) / 65535.0).astype(np.float32)
    raise UserError(
        f"probability map {path} has sample type {img.dtype}; save it as an 8- or 16-bit PNG"
    )
