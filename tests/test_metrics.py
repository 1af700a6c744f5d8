"""fcn.evaluation.metrics against numbers worked out by hand, and the KITTI devkit's definitions."""

import math
import warnings

import cv2
import numpy as np
import pytest

from fcn.errors import UserError
from fcn.evaluation import metrics as m
from fcn.evaluation.kitti import devkit

V = m.IGNORE_LABEL
approx = pytest.approx

# Binary 2x3 example. Pixels (true, pred): (1,1) (1,0) (0,0) / (0,1) void (1,1)
_LABEL = np.array([[1, 1, 0], [0, V, 1]])
_PRED = np.array([[1, 0, 0], [1, 1, 1]])


def test_confusion_matrix_binary_excludes_void():
    cm = m.confusion_matrix(_PRED, _LABEL, 2)
    # rows = true, cols = pred: t0: p0 once, p1 once; t1: p0 once, p1 twice; the void is not seen
    np.testing.assert_array_equal(cm, [[1, 1], [1, 2]])
    assert cm.dtype == np.int64
    # Whatever is predicted on a void pixel, even an out-of-range class, changes nothing.
    pred = _PRED.copy()
    pred[1, 1] = 7
    np.testing.assert_array_equal(m.confusion_matrix(pred, _LABEL, 2), cm)
    # Without an ignore label the 255 is an out-of-range class.
    with pytest.raises(ValueError, match="label has class 255"):
        m.confusion_matrix(_PRED, _LABEL, 2, ignore_label=None)


def test_segmentation_metrics_binary_by_hand():
    r = m.segmentation_metrics(m.confusion_matrix(_PRED, _LABEL, 2), ["not_road", "road"])
    assert r["pixel_accuracy"] == approx(3 / 5)  # 3 of 5 valid pixels right
    road, other = r["classes"]["road"], r["classes"]["not_road"]
    # road: tp 2, support 3, predicted 3
    assert road["iou"] == approx(2 / 4)  # 2 / (3 + 3 - 2)
    assert road["precision"] == approx(2 / 3)
    assert road["recall"] == approx(2 / 3)
    assert road["f1"] == approx(4 / 6)  # 2 tp / (support + predicted)
    # not_road: tp 1, support 2, predicted 2
    assert other["iou"] == approx(1 / 3)
    assert other["precision"] == approx(1 / 2)
    assert other["recall"] == approx(1 / 2)
    assert other["f1"] == approx(2 / 4)
    assert r["mean_iou"] == approx((1 / 2 + 1 / 3) / 2)  # = 5/12


def test_segmentation_metrics_three_classes_by_hand():
    label = np.array([[0, 1, 2], [2, 2, 1]])
    pred = np.array([[0, 2, 2], [2, 1, 1]])
    cm = m.confusion_matrix(pred, label, 3)
    # (true, pred): (0,0) (1,2) (2,2) / (2,2) (2,1) (1,1)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [0, 1, 2]])
    r = m.segmentation_metrics(cm)
    c0, c1, c2 = (r["classes"][f"class_{i}"] for i in range(3))
    assert (c0["iou"], c0["precision"], c0["recall"], c0["f1"]) == (1.0, 1.0, 1.0, 1.0)
    # class 1: tp 1, support 2, predicted 2 -> iou 1/3, p = r = f1 = 1/2
    assert c1["iou"] == approx(1 / 3)
    assert (c1["precision"], c1["recall"], c1["f1"]) == approx((1 / 2, 1 / 2, 1 / 2))
    # class 2: tp 2, support 3, predicted 3 -> iou 2/4, p = r = f1 = 2/3
    assert c2["iou"] == approx(1 / 2)
    assert (c2["precision"], c2["recall"], c2["f1"]) == approx((2 / 3, 2 / 3, 2 / 3))
    assert r["pixel_accuracy"] == approx(4 / 6)
    assert r["mean_iou"] == approx((1 + 1 / 3 + 1 / 2) / 3)  # = 11/18


def test_segmentation_metrics_nan_conventions():
    # Class 2 never appears: cm = [[2, 0, 0], [1, 1, 0], [0, 0, 0]]
    cm = m.confusion_matrix(np.array([[0, 1], [0, 0]]), np.array([[0, 1], [1, 0]]), 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 RuntimeWarning leaks out
        r = m.segmentation_metrics(cm)
        empty = m.segmentation_metrics(np.zeros((2, 2), np.int64))
    absent = r["classes"]["class_2"]
    assert all(math.isnan(absent[k]) for k in ("iou", "precision", "recall", "f1"))
    # class 0: tp 2, support 2, predicted 3 -> 2/3; class 1: tp 1, support 2, predicted 1 -> 1/2
    assert r["mean_iou"] == approx((2 / 3 + 1 / 2) / 2)  # class 2 skipped, not counted as 0
    assert math.isnan(empty["pixel_accuracy"]) and math.isnan(empty["mean_iou"])

    # Support but never predicted: iou = recall = f1 = 0, precision 0/0 = NaN.
    missed = m.segmentation_metrics(m.confusion_matrix([0, 0], [0, 1], 2))["classes"]["class_1"]
    assert (missed["iou"], missed["recall"], missed["f1"]) == (0.0, 0.0, 0.0)
    assert math.isnan(missed["precision"])


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        m.confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 2)
    with pytest.raises(ValueError, match="pred has class 2"):
        m.confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="label has class -1"):
        m.confusion_matrix(np.array([0, 1]), np.array([-1, 1]), 2)
    with pytest.raises(ValueError, match="integers"):
        m.confusion_matrix(np.array([0.0, 1.0]), np.array([0, 1]), 2)
    with pytest.raises(ValueError, match="class names"):
        m.segmentation_metrics(np.eye(2, dtype=int), ["only_one"])


def test_confusion_accumulator_sums_batches():
    acc = m.ConfusionAccumulator(2)
    acc.update(_PRED[0], _LABEL[0])  # first row: [[1, 0], [1, 1]]
    acc.update(_PRED[1:], _LABEL[1:])  # second row as a (1, 3) batch: [[0, 1], [0, 1]]
    np.testing.assert_array_equal(acc.matrix, [[1, 1], [1, 2]])
    assert acc.metrics(["not_road", "road"])["classes"]["road"]["iou"] == approx(1 / 2)
    acc.matrix[0, 0] = 99  # a copy: the accumulator is untouched
    assert acc.matrix[0, 0] == 1
    acc.reset()
    assert acc.matrix.sum() == 0


def test_binary_scores_thresholds():
    prob = np.array([[0.9, 0.5, 0.2], [0.49, 0.7, 0.1]])
    label = np.array([[1, 1, 0], [1, V, 0]])  # the 0.7 sits on a void pixel
    # t = 0.5: road = p >= 0.5, so the 0.5 counts and the 0.49 does not.
    # tp: 0.9, 0.5; fn: 0.49; tn: 0.2, 0.1; fp: none
    s = m.binary_scores(prob, label, 0.5)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (2, 0, 1, 2)
    assert s["iou"] == approx(2 / 3)  # 2 / (2 + 0 + 1)
    assert (s["precision"], s["recall"]) == approx((1.0, 2 / 3))
    assert s["f1"] == approx(4 / 5)  # 2*2 / (2*2 + 0 + 1)
    # t = 0.15: the 0.49 becomes a tp and the 0.2 a fp
    s = m.binary_scores(prob, label, 0.15)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (3, 1, 0, 1)
    assert (s["iou"], s["precision"], s["recall"]) == approx((3 / 4, 3 / 4, 1.0))
    assert s["f1"] == approx(6 / 7)
    # t = 0.95: nothing predicted -> precision 0/0 = NaN, the rest 0
    s = m.binary_scores(prob, label, 0.95)
    assert (s["tp"], s["fp"], s["fn"], s["tn"]) == (0, 0, 3, 2)
    assert math.isnan(s["precision"]) and (s["iou"], s["recall"], s["f1"]) == (0, 0, 0)


def test_binary_scores_rejects_logits_and_bad_labels():
    with pytest.raises(ValueError, match="logits"):
        m.binary_scores(np.array([2.5, -1.0]), np.array([1, 0]))
    with pytest.raises(ValueError, match="logits"):
        m.binary_scores(np.array([np.nan, 0.5]), np.array([1, 0]))
    with pytest.raises(ValueError, match="label must be"):
        m.binary_scores(np.array([0.5, 0.5]), np.array([1, 2]))
    # A logit on a void pixel is never looked at.
    assert m.binary_scores(np.array([7.0, 0.9]), np.array([V, 1]))["tp"] == 1


# --------------------------------------------------------------------------------------------
# KITTI road devkit
# --------------------------------------------------------------------------------------------


def test_kitti_gt_from_rgb_matches_devkit_reading(tmp_path):
    rgb = np.array([[[255, 0, 255], [255, 0, 0], [0, 0, 0]]], np.uint8)  # magenta, red, black
    road, valid = devkit.kitti_gt_from_rgb(rgb)
    np.testing.assert_array_equal(road, [[True, False, False]])
    np.testing.assert_array_equal(valid, [[True, True, False]])
    # The devkit's getGroundTruth: cv2.imread(path, -1) (BGR), road = [..., 0], valid = [..., 2]
    path = str(tmp_path / "um_road_000000.png")
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    full_gt = cv2.imread(path, -1)
    np.testing.assert_array_equal(road, full_gt[:, :, 0] > 0)
    np.testing.assert_array_equal(valid, full_gt[:, :, 2] > 0)


def test_kitti_perfect_prediction():
    road = np.array([[1, 1, 0], [0, 1, 0]], bool)
    valid = np.ones_like(road)
    ev = devkit.KittiRoadEvaluator()
    ev.update(road.astype(np.float32), road, valid)
    r = ev.result()
    # The devkit's 1e-10 guards keep MaxF and AvgPrec a hair below 1.
    assert r["MaxF"] == approx(1.0, abs=1e-9)
    assert r["AvgPrec"] == approx(1.0, abs=1e-9)
    assert (r["PRE"], r["REC"], r["FPR"], r["FNR"]) == (1.0, 1.0, 0.0, 0.0)
    # At threshold 0 every pixel is road; from 1/255 on the prediction is exact.
    assert r["BestThresh"] == approx(1 / 255)


# Two images by hand, one uint8 and one float.
# Image A: values 255, 200, 100 on road; 50, 200 off road; a 255 on a void pixel.
_A = (
    np.array([[255, 200, 100], [50, 200, 255]], np.uint8),
    np.array([[1, 1, 1], [0, 0, 0]], bool),
    np.array([[1, 1, 1], [1, 1, 0]], bool),
)
# Image B: floats that quantise to 150 (0.588 * 255 = 149.94) on road, 100 (99.96) and 10 (10.2)
# off road; the bottom row is void.
_B = (
    np.array([[0.588, 0.392, 0.04], [0.9, 0.9, 0.9]]),
    np.array([[1, 0, 0], [0, 0, 0]], bool),
    np.array([[1, 1, 1], [0, 0, 0]], bool),
)


def test_kitti_two_images_by_hand():
    ev = devkit.KittiRoadEvaluator()
    ev.update(*_A)
    ev.update(*_B)
    # Pooled: road {255, 200, 100, 150} (4), non-road {50, 200, 100, 10} (4).
    # Road at threshold index i when value >= i:
    #   i    0..10:  TP 4 FP 4  P 1/2  R 1    F 2/3
    #   i   11..50:  TP 4 FP 3  P 4/7  R 1    F 8/11
    #   i  51..100:  TP 4 FP 2  P 2/3  R 1    F 4/5   <- MaxF, first at i = 51 -> 51/255 = 0.2
    #   i 101..150:  TP 3 FP 1  P 3/4  R 3/4  F 3/4
    #   i 151..200:  TP 2 FP 1  P 2/3  R 1/2  F 4/7
    #   i 201..255:  TP 1 FP 0  P 1    R 1/4  F 2/5
    # AvgPrec, max P at recall >= level: levels 0, .1, .2 -> 1; .3 .. .7 -> 3/4; .8, .9, 1 -> 2/3
    #   = (3 * 1 + 5 * 3/4 + 3 * 2/3) / 11 = 8.75 / 11 = 35/44
    assert (ev.pos_num, ev.neg_num) == (4, 4)
    r = ev.result()
    assert r["MaxF"] == approx(4 / 5)
    assert r["BestThresh"] == approx(51 / 255)
    assert r["PRE"] == approx(2 / 3)
    assert r["REC"] == 1.0
    assert r["FPR"] == approx(2 / 4)  # FP 2 of the 4 non-road pixels
    assert r["FNR"] == 0.0
    assert r["AvgPrec"] == approx(35 / 44)


def test_kitti_avgprec_uses_the_devkits_recall_levels():
    # 10 road pixels (3 sure, 7 at 0) and 7 non-road at 0:
    #   i = 0: TP 10 FP 7 -> P 10/17, R 1;   i >= 1: TP 3 FP 0 -> P 1, R 3/10
    # np.arange(0, 1.1, 0.1)[3] is 0.30000000000000004 > 3/10, so P = 1 counts for the levels
    # 0, .1, .2 only: AvgPrec = (3 * 1 + 8 * 10/17) / 11 (a rounded 0.3 would give 4 and 7).
    prob = np.array([255] * 3 + [0] * 7 + [0] * 7, np.uint8)[None]
    road = np.array([1] * 10 + [0] * 7, bool)[None]
    ev = devkit.KittiRoadEvaluator()
    ev.update(prob, road, np.ones_like(road))
    assert ev.result()["AvgPrec"] == approx((3 + 8 * 10 / 17) / 11)


def _devkit_loop_counts(prob, gt_road, gt_valid):
    """evalExp the slow way: the devkit's float32 map, one pass per threshold."""
    q = devkit.probability_to_uint8(prob)
    p = np.clip(q.astype("f4") / np.iinfo(q.dtype).max, 0.0, 1.0)  # as evaluateRoad.py reads
    pos, neg = gt_road & gt_valid, ~gt_road & gt_valid
    fn = np.array([np.sum(pos & (p < t)) for t in devkit.KITTI_THRESHOLDS])
    fp = np.array([np.sum(neg & (p >= t)) for t in devkit.KITTI_THRESHOLDS])
    return fn, fp, int(pos.sum()), int(neg.sum())


def test_kitti_histogram_equals_per_threshold_loop():
    rng = np.random.default_rng(0)
    for shape, as_uint8 in (((16, 16), True), ((37, 53), False), ((9, 70), False)):
        prob = rng.random(shape)
        if as_uint8:  # all 256 values, shuffled
            prob = rng.permutation(np.arange(256, dtype=np.uint8)).reshape(shape)
        else:  # exact k/255 values too, where float32 rounding would matter
            prob.flat[::3] = rng.integers(0, 256, prob.flat[::3].shape) / 255.0
        gt_road, gt_valid = rng.random(shape) < 0.4, rng.random(shape) < 0.8
        got = devkit.kitti_pixel_counts(prob, gt_road, gt_valid)
        want = _devkit_loop_counts(prob, gt_road, gt_valid)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        assert got[2:] == want[2:]
    # Why q >= i is the devkit's test: float32(k) / 255 never rounds below k / 255.0.
    assert (np.arange(256).astype("f4") / np.float32(255) >= devkit.KITTI_THRESHOLDS).all()


def test_evaluate_kitti_road_categories_and_urban():
    out = devkit.evaluate_kitti_road([("um", *_A), ("uu_road", *_B)])
    assert list(out) == ["um_road", "uu_road", "urban_road"]  # no umm image: no umm_road
    alone = devkit.KittiRoadEvaluator()
    alone.update(*_A)
    assert out["um_road"] == alone.result()
    assert out["urban_road"]["MaxF"] == approx(4 / 5)  # the pooled two-image example
    assert devkit.evaluate_kitti_road([]) == {}
    with pytest.raises(ValueError, match="um_lane"):
        devkit.evaluate_kitti_road([("um_lane", *_A)])


def test_kitti_edge_cases():
    with pytest.raises(ValueError, match="before any update"):
        devkit.KittiRoadEvaluator().result()
    ev = devkit.KittiRoadEvaluator()
    ev.update(np.zeros((2, 2)), np.zeros((2, 2), bool), np.ones((2, 2), bool))
    assert all(math.isnan(v) for v in ev.result().values())  # no road pixel: undefined
    with pytest.raises(ValueError, match="same"):
        ev.update(np.zeros((2, 2)), np.zeros((2, 3), bool), np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="uint8"):
        ev.update(np.zeros((2, 2), np.int32), np.zeros((2, 2), bool), np.ones((2, 2), bool))


def test_probability_to_uint8():
    np.testing.assert_array_equal(
        devkit.probability_to_uint8(np.array([-0.1, 0.0, 0.5, 0.999, 1.0, 1.2])),
        [0, 0, 128, 255, 255, 255],
    )
    np.testing.assert_array_equal(devkit.probability_to_uint8(np.array([True, False])), [255, 0])


def test_read_probability_png_8_and_16_bit(tmp_path):
    p8, p16 = str(tmp_path / "p8.png"), str(tmp_path / "p16.png")
    cv2.imwrite(p8, np.array([[0, 128, 255]], np.uint8))
    cv2.imwrite(p16, np.array([[0, 32768, 65535]], np.uint16))
    a8, a16 = devkit.read_probability_png(p8), devkit.read_probability_png(tmp_path / "p16.png")
    assert a8.dtype == np.float32 and a8.shape == (1, 3)
    np.testing.assert_allclose(a8, [[0, 128 / 255, 1]], rtol=1e-7)
    np.testing.assert_allclose(a16, [[0, 32768 / 65535, 1]], rtol=1e-7)
    # 8-bit values survive read -> probability_to_uint8 exactly (what the evaluator does).
    every = np.arange(256, dtype=np.uint8)[None]
    cv2.imwrite(p8, every)
    np.testing.assert_array_equal(
        devkit.probability_to_uint8(devkit.read_probability_png(p8)), every
    )


def test_read_probability_png_errors_name_the_file(tmp_path):
    grey_bgr = str(tmp_path / "grey_bgr.png")
    cv2.imwrite(grey_bgr, np.full((2, 2, 3), 200, np.uint8))  # grey saved as colour: accepted
    np.testing.assert_allclose(devkit.read_probability_png(grey_bgr), 200 / 255)
    colour = str(tmp_path / "colour.png")
    cv2.imwrite(colour, np.array([[[0, 0, 255]]], np.uint8))
    with pytest.raises(UserError, match="colour.png.*single-channel"):
        devkit.read_probability_png(colour)
    with pytest.raises(UserError, match="missing.png"):
        devkit.read_probability_png(tmp_path / "missing.png")
    not_png = tmp_path / "not_png.png"
    not_png.write_text("hello")
    with pytest.raises(UserError, match="not_png.png"):
        devkit.read_probability_png(not_png)
