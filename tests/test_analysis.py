"""Per-sample error analysis (fcn.evaluation.analysis), the class legend (fcn.inference.overlays),
DenseCRF
for any number of classes (fcn.inference.crf) and the mean IoU over ground-truth classes
(fcn.evaluation.metrics), on hand-made 3-class arrays with hand-worked numbers. No TensorFlow."""

import dataclasses
import math

import cv2
import numpy as np
import pytest

from fcn import data
from fcn.data import task
from fcn.evaluation import analysis, metrics, plots
from fcn.inference import crf, overlays

approx = pytest.approx
V = data.IGNORE_LABEL
RED, BLUE = (255, 0, 0), (0, 0, 255)
# A 3-class street toy: background unpainted, car red, person blue.
TOY = dataclasses.replace(
    data.KITTI_ROAD,
    name="toy3",
    class_names=("bg", "car", "person"),
    task="multiclass",
    positive_class=0,
    palette=(None, RED, BLUE),
    colors=(((0, 0, 0), 0), ((255, 0, 0), 1), ((0, 0, 255), 2), ((255, 255, 255), V)),
    stratify="",
    benchmark="",
)


# --------------------------------------------------------------------------------------------
# Per-sample scores, loss and metadata
# --------------------------------------------------------------------------------------------


def test_multiclass_sample_scores_by_hand():
    label = np.array([[0, 0, 1, 1], [2, 2, V, 0]], np.uint8)
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 0]], np.uint8)
    # Confusion (rows true, void left out): bg -> bg 2, car 1; car -> car 2; person -> person 1,
    # bg 1. Column sums: bg 3, car 3, person 1.
    # IoU bg 2 / (3 + 3 - 2) = 1/2, car 2 / (2 + 3 - 2) = 2/3, person 1 / (2 + 1 - 1) = 1/2;
    # mean (1/2 + 2/3 + 1/2) / 3 = 5/9; pixel accuracy 5 of 7 labelled pixels.
    s = analysis.sample_scores(pred, label, TOY)
    assert s == {
        "mean_iou": approx(5 / 9),
        "pixel_accuracy": approx(5 / 7),
        "iou_bg": approx(1 / 2),
        "iou_car": approx(2 / 3),
        "iou_person": approx(1 / 2),
    }
    # Classes in neither ground truth nor prediction are left out of the image's mean.
    only_bg = analysis.sample_scores(np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), TOY)
    assert only_bg["mean_iou"] == 1.0 and math.isnan(only_bg["iou_car"])


def test_binary_sample_scores_are_the_positive_class():
    label = np.array([[1, 1, 0, V]], np.uint8)
    pred = np.array([[1, 0, 1, 1]], np.uint8)
    # road: TP 1, FN 1, FP 1 (the void pixel is not counted): IoU 1/3, P 1/2, R 1/2, F1 1/2.
    s = analysis.sample_scores(pred, label, data.KITTI_ROAD)
    assert s == {"iou": approx(1 / 3), "f1": approx(1 / 2), "precision": 0.5, "recall": 0.5}
    assert task.headline(data.KITTI_ROAD) == "iou" and task.headline(TOY) == "mean_iou"


def test_cross_entropy_over_labelled_pixels_by_hand():
    probs = np.array([[[0.5, 0.25, 0.25], [0.25, 0.25, 0.5], [0.0, 1.0, 0.0]]], np.float32)
    label = np.array([[0, 1, V]], np.uint8)
    # -ln 0.5 and -ln 0.25 = ln 2 and 2 ln 2; the void pixel is not counted: mean 1.5 ln 2.
    assert analysis.cross_entropy(probs, label) == approx(1.5 * math.log(2), rel=1e-6)
    # Person, person, bg: p = 0.25, 0.5 and 0, the last clipped at 1e-7 (no infinite loss):
    # (2 ln 2 + ln 2 - ln 1e-7) / 3.
    assert analysis.cross_entropy(probs, np.array([[2, 2, 0]], np.uint8)) == approx(
        (3 * math.log(2) - math.log(1e-7)) / 3, rel=1e-6
    )
    assert math.isnan(analysis.cross_entropy(probs, np.full((1, 3), V, np.uint8)))


def test_image_metadata_by_hand():
    image = np.full((2, 4, 3), 51, np.uint8)  # grey level 51: brightness 0.2
    label = np.array([[0, 1, 1, 2], [V, V, 1, 0]], np.uint8)  # 6 labelled: bg 2, car 3, person 1
    meta = analysis.image_metadata(image, label, TOY, {"instances_car": 2})
    assert meta == {
        "grayscale": True,
        "brightness": approx(0.2),
        "width": 4,
        "height": 2,
        "bg_fraction": approx(2 / 6),
        "car_fraction": approx(3 / 6),
        "person_fraction": approx(1 / 6),
        "instances_car": 2,
    }
    colour = image.copy()
    colour[..., 2] = 60  # a blue cast of 9 levels: not grey
    assert analysis.is_grayscale(colour) is False
    # Binary datasets: the positive class's fraction and its 8-connected regions only.
    road = np.array([[1, 1, 0, 1], [V, V, 0, 1]], np.uint8)
    assert analysis.class_fractions(road, data.KITTI_ROAD) == {
        "road_fraction": approx(4 / 6),
        "n_road_regions": 2,
    }


def test_sample_row_orders_scores_loss_then_metadata():
    image = np.zeros((1, 2, 3), np.uint8)
    probs = np.array([[[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]]], np.float32)
    label = pred = np.array([[0, 1]], np.uint8)
    row = analysis.sample_row("a", "cat", image, probs, pred, label, TOY)
    assert list(row)[:8] == [
        "name",
        "category",
        "mean_iou",
        "pixel_accuracy",
        "iou_bg",
        "iou_car",
        "iou_person",
        "loss",
    ]
    assert row["loss"] == approx(-math.log(0.8), rel=1e-6)


# --------------------------------------------------------------------------------------------
# Pictures: error colours, captions, legends, the confusion image
# --------------------------------------------------------------------------------------------


def test_multiclass_error_colours_at_known_pixels():
    image = np.full((1, 4, 3), 100, np.uint8)
    label = np.array([[0, 1, V, 2]], np.uint8)
    pred = np.array([[0, 2, 1, 2]], np.uint8)
    out = analysis.error_overlay(image, pred, label, TOY, alpha=0.5)
    # 0.5 * 100 + 0.5 * 255 = 177.5 -> 178; 0.5 * 100 + 0.5 * 128 = 114.
    assert out[0].tolist() == [
        [50, 178, 50],  # correct: green
        [178, 50, 50],  # wrong class: red
        [114, 114, 114],  # ignored (void in the ground truth): grey, whatever is predicted
        [50, 178, 50],
    ]
    assert [w for w, _ in analysis.error_keys(TOY)] == ["correct", "wrong class", "ignored"]


def test_caption_bar_holds_the_key_in_its_colours():
    picture = analysis.caption(np.zeros((5, 300, 3), np.uint8), "x", analysis.error_keys(TOY))
    assert picture.shape == (analysis.CAPTION_HEIGHT + 5, 300, 3)
    bar = picture[: analysis.CAPTION_HEIGHT].reshape(-1, 3)
    # The key words are drawn in their colours (anti-aliased: the pure colour occurs too).
    for colour in (analysis.CORRECT_COLOR, analysis.WRONG_COLOR, analysis.IGNORED_COLOR):
        assert (bar == colour).all(axis=1).any(), colour


def test_legend_lists_the_classes_present_with_their_swatches():
    image = np.full((6, 120, 3), 100, np.uint8)
    mask = np.zeros((6, 120), np.uint8)
    mask[:, :10] = 1  # car only: the legend has one entry
    shown = overlays.paint_with_legend(image, mask, TOY, alpha=0.5)
    assert shown.shape == (6 + overlays.LEGEND_ROW, 120, 3)
    np.testing.assert_array_equal(shown[:6], overlays.paint(image, mask, TOY, 0.5))
    # The swatch: LEGEND_SWATCH square, LEGEND_PAD from the left, centred in the row.
    top = 6 + (overlays.LEGEND_ROW - overlays.LEGEND_SWATCH) // 2
    x = overlays.LEGEND_PAD
    swatch = shown[top : top + overlays.LEGEND_SWATCH, x : x + overlays.LEGEND_SWATCH]
    assert (swatch == RED).all()
    strip = shown[6:].reshape(-1, 3)
    assert not (strip == BLUE).all(axis=1).any()  # person is not in the image: not listed
    assert overlays.legend_entries(TOY) == [("car", RED), ("person", BLUE)]  # bg: unpainted
    both = overlays.paint_with_legend(image, mask, TOY, legend="all")
    assert (both[6:].reshape(-1, 3) == BLUE).all(axis=1).any()
    # Binary datasets keep today's overlay: no legend unless asked for.
    road = overlays.paint_with_legend(image, mask, data.KITTI_ROAD)
    assert road.shape == image.shape


def test_legend_wraps_to_rows_on_narrow_images():
    entries = [("a_long_class_name", RED)] * 3
    strip = overlays.legend_strip(60, entries)
    assert strip.shape == (3 * overlays.LEGEND_ROW, 60, 3)  # one entry per row
    assert overlays.legend_strip(60, []).shape == (0, 60, 3)


def test_confusion_image_is_a_png_of_the_expected_size():
    cm = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 2]])
    png = plots.confusion_png(cm, ["bg", "car", "person"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    # (3 + 0.4 * 3) inches at 100 dpi.
    assert picture.shape[:2] == plots.confusion_image_size(3) == (420, 420)
    with pytest.raises(ValueError, match="2 class names"):
        plots.confusion_png(cm, ["bg", "car"])


def test_present_mean_iou_leaves_out_classes_without_ground_truth():
    # car (row 1) never occurs in the ground truth but was predicted once: IoU 0.
    cm = np.array([[3, 1, 0], [0, 0, 0], [0, 0, 2]])
    # IoU bg 3 / (4 + 3 - 3) = 3/4, car 0 / 1 = 0, person 2 / 2 = 1.
    assert metrics.segmentation_metrics(cm)["mean_iou"] == approx((3 / 4 + 0 + 1) / 3)
    assert metrics.present_mean_iou(cm) == (approx((3 / 4 + 1) / 2), 2)
    assert metrics.class_shares(cm) == [approx(4 / 6), 0.0, approx(2 / 6)]
    assert math.isnan(metrics.present_mean_iou(np.zeros((2, 2)))[0])


# --------------------------------------------------------------------------------------------
# The table, what scores worse, plots
# --------------------------------------------------------------------------------------------


def _rows():
    # Grey images score worse; brightness rises with the score except one swap.
    return [
        {"name": "a", "mean_iou": 0.40, "grayscale": True, "brightness": 0.1, "width": 8},
        {"name": "b", "mean_iou": 0.42, "grayscale": True, "brightness": 0.3, "width": 8},
        {"name": "c", "mean_iou": 0.60, "grayscale": False, "brightness": 0.2, "width": 8},
        {"name": "d", "mean_iou": 0.66, "grayscale": False, "brightness": 0.4, "width": 8},
        {"name": "e", "mean_iou": float("nan"), "grayscale": False, "brightness": 0.9, "width": 8},
    ]


def test_what_scores_worse_on_a_constructed_table():
    groups, correlations = analysis.what_scores_worse(
        _rows(), "mean_iou", ["grayscale", "brightness", "width"]
    )
    # Grey: (0.40 + 0.42) / 2 = 0.41; colour (0.60 + 0.66) / 2 = 0.63 (e has no score).
    (g,) = groups
    assert g["field"] == "grayscale" and g["gap"] == approx(0.22)
    assert g["groups"] == [(True, approx(0.41), 2), (False, approx(0.63), 2)]
    # brightness ranks 1, 3, 2, 4 against scores 1, 2, 3, 4: d^2 = 0 + 1 + 1 + 0 = 2,
    # rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8; width is constant: skipped.
    assert correlations == [{"field": "brightness", "rho": approx(0.8), "n": 4}]
    lines = analysis.worse_markdown(groups, correlations, "mean IoU")
    assert (
        lines[0] == "- grayscale images: mean IoU 0.410 (2 images) vs 0.630 for colour images (2)"
    )
    assert lines[1].startswith("- brightness: Spearman rho +0.80 over 4 images")


def test_correlations_are_sorted_by_strength():
    rows = [{"s": s, "x": x, "y": y} for s, x, y in [(1, 1, 4), (2, 3, 3), (3, 2, 2), (4, 4, 1)]]
    _, correlations = analysis.what_scores_worse(rows, "s", ["x", "y"])
    assert [(c["field"], c["rho"]) for c in correlations] == [("y", -1.0), ("x", approx(0.8))]


def test_csv_cells_and_columns():
    rows = [{"name": "a", "grayscale": True, "iou": float("nan")}, {"name": "b", "extra": 2}]
    text = analysis.csv_bytes(rows).decode()
    assert text == "name,grayscale,iou,extra\na,1,,\nb,,,2\n"


def test_plots_for_varying_fields_only():
    pngs = plots.metadata_plots(_rows(), ["mean_iou"], ["grayscale", "brightness", "width"])
    assert sorted(pngs) == ["mean_iou_vs_brightness.png", "mean_iou_vs_grayscale.png"]
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in pngs.values())
    assert plots.plot_name("iou", "instances_traffic light") == "iou_vs_instances_traffic_light.png"


# --------------------------------------------------------------------------------------------
# DenseCRF for any number of classes
# --------------------------------------------------------------------------------------------


def test_crf_on_three_classes_keeps_shape_sums_to_one_and_cleans_noise():
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 (optional extra) not installed")
    # Three vertical bands (black, grey, white); each band's class at 0.5, the others 0.25,
    # except a few noisy pixels that lean to a neighbour's class.
    image = np.zeros((24, 36, 3), np.uint8)
    image[:, 12:24], image[:, 24:] = 128, 255
    truth = np.repeat(np.repeat(np.arange(3), 12)[None], 24, axis=0)
    probs = np.full((24, 36, 3), 0.25, np.float32)
    np.put_along_axis(probs, truth[..., None], 0.5, axis=-1)
    for y, x, wrong in [(5, 3, 1), (10, 17, 2), (18, 30, 0)]:
        probs[y, x] = 0.3
        probs[y, x, wrong] = 0.4
    refined = crf.refine(image, probs)
    assert refined.shape == probs.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(refined.argmax(-1), truth)
    with pytest.raises(ValueError, match="at the image size"):
        crf.refine(image, probs[:10])
