"""The evaluate command end to end on a tiny trained run, the --prob-dir mode on hand-made maps
with hand-worked KITTI scores, submission files, error analysis pieces, TensorBoard images."""

import csv
import dataclasses
import json
import math
import os
import shutil

import cv2
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import cli, data, names, runs
from fcn.data import task
from fcn.evaluation import analysis, plots, reports, scoring
from fcn.evaluation.kitti import bev, devkit
from fcn.inference.predictor import Predictor
from fcn.training import tboard

approx = pytest.approx
V = data.IGNORE_LABEL
MAGENTA, RED, BLACK = (255, 0, 255), (255, 0, 0), (0, 0, 0)  # KITTI gt: road, not road, void
# A camera 1.65 m above a flat road, sized for the ~90 x 300 synthetic frames: the road from
# 6 to 46 m ahead projects to rows v = 30 + 150 * 1.65 / z, 35..71, so the BEV sees the image.
CALIB_TEXT = """\
P2: 150 0 150 0 0 150 30 0 0 0 1 0
R0_rect: 1 0 0 0 1 0 0 0 1
Tr_cam_to_road: 1 0 0 0 0 1 0 -1.65 0 0 1 0
"""


def _no_nan(text):
    """json.loads that fails on NaN / Infinity, which are not JSON."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def _in_unit_or_null(x):
    return x is None or 0.0 <= x <= 1.0


# --------------------------------------------------------------------------------------------
# The model mode
# --------------------------------------------------------------------------------------------


def test_evaluate_run_writes_every_report(trained_run, capsys):
    assert cli.main(["evaluate", "--run", trained_run, "--worst", "1"]) == 0
    out_dir = os.path.join(trained_run, "eval")
    for name in ("metrics.json", "per_image.csv", "summary.md", "iou_vs_metadata.png"):
        assert os.path.getsize(os.path.join(out_dir, name)) > 0, name
    with open(os.path.join(out_dir, "metrics.json")) as f:
        m = _no_nan(f.read())
    assert set(m["kitti"]) == {"um_road", "umm_road", "uu_road", "urban_road"}
    for scores in m["kitti"].values():
        assert set(scores) == {"MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh"}
        assert all(_in_unit_or_null(v) for v in scores.values())
    assert m["kitti"]["urban_road"]["MaxF"] is not None  # the split has road pixels
    assert set(m["classes"]) == {"not_road", "road"}
    for scores in m["classes"].values():
        assert set(scores) == {"iou", "precision", "recall", "f1"}
        assert all(_in_unit_or_null(v) for v in scores.values())
    assert _in_unit_or_null(m["mean_iou"]) and _in_unit_or_null(m["pixel_accuracy"])
    split = json.load(open(os.path.join(trained_run, "split.json")))
    assert m["num_images"] == len(split["val"]) == 2 and m["split"] == "val"

    with open(os.path.join(out_dir, "per_image.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == split["val"]
    assert list(rows[0]) == list(reports.CSV_COLUMNS)
    for r in rows:
        for key in ("iou", "f1", "precision", "recall", "road_fraction", "brightness"):
            assert r[key] == "" or 0.0 <= float(r[key]) <= 1.0
        assert int(r["n_road_regions"]) >= 1 and r["grayscale"] in ("0", "1")

    # The gallery holds the worst image, captioned, at its original size (+ the caption bar).
    (worst,) = os.listdir(os.path.join(out_dir, "worst"))
    ranked = sorted(rows, key=lambda r: float(r["iou"]))
    assert worst == f"01_{ranked[0]['name']}.png"
    picture = cv2.imread(os.path.join(out_dir, "worst", worst))
    pairs = {ex.name: ex for ex in data.list_pairs(m["data_dir"])}
    source = cv2.imread(pairs[ranked[0]["name"]].image_path)
    assert picture.shape[1] == source.shape[1] and picture.shape[0] > source.shape[0]
    summary = open(os.path.join(out_dir, "summary.md")).read()
    assert "urban_road" in summary and f"(worst/{worst})" in summary

    printed = capsys.readouterr().out
    assert "urban_road" in printed and "MaxF" in printed and "mean IoU" in printed


def test_an_export_scores_like_its_run(trained_run, tmp_path):
    # The export carries the run's split and its graph computes the same probabilities, so
    # evaluating the export must reproduce the run's metrics (to float rounding).
    assert cli.main(["evaluate", "--run", trained_run]) == 0
    from_run = json.load(open(os.path.join(trained_run, "eval", "metrics.json")))
    exported = str(tmp_path / "export")
    assert cli.main(["export", "--run", trained_run, "--out", exported]) == 0
    assert cli.main(["evaluate", "--run", exported]) == 0
    from_export = json.load(open(os.path.join(exported, "eval", "metrics.json")))
    assert from_export["num_images"] == from_run["num_images"] == 2
    for cat, scores in from_run["kitti"].items():
        for key, value in scores.items():
            other = from_export["kitti"][cat][key]
            assert (value is None and other is None) or abs(value - other) < 1e-3, (cat, key)
    assert abs(from_export["mean_iou"] - from_run["mean_iou"]) < 1e-3


def test_evaluate_all_images_at_another_threshold(trained_run):
    assert cli.main(["evaluate", "--run", trained_run, "--split", "all", "--threshold", "0.3"]) == 0
    with open(os.path.join(trained_run, "eval", "per_image.csv")) as f:
        assert len(list(csv.DictReader(f))) == 12  # the synth fixture's training pairs
    m = json.load(open(os.path.join(trained_run, "eval", "metrics.json")))
    assert m["threshold"] == 0.3 and m["num_images"] == 12
    assert sum(m["images_per_category"].values()) == 12


def test_submission_maps_and_bev_agree_with_prob_dir_scoring(trained_run, synth_data, tmp_path):
    # A data folder whose test images are the run's validation images, so the submission maps
    # have gt: scoring them with --prob-dir must give the model mode's KITTI numbers exactly
    # (both score the same 8-bit maps at the original resolution).
    root = tmp_path / "data"
    shutil.copytree(synth_data, root)
    test_dir = root / "data_road" / "testing" / "image_2"
    shutil.rmtree(test_dir)
    test_dir.mkdir()
    gt_dir, calib_dir = tmp_path / "gt", root / "data_road" / "testing" / "calib"
    gt_dir.mkdir()
    calib_dir.mkdir()
    val = json.load(open(os.path.join(trained_run, "split.json")))["val"]
    pairs = {ex.name: ex for ex in data.list_pairs(str(root))}
    for name in val:
        shutil.copy(pairs[name].image_path, test_dir)
        shutil.copy(pairs[name].label_path, gt_dir)
        (calib_dir / f"{name}.txt").write_text(CALIB_TEXT)

    # --bev with a calibration file missing: one error, nothing written.
    os.remove(calib_dir / f"{val[0]}.txt")
    argv = ["evaluate", "--run", trained_run, "--data-dir", str(root), "--submit", "--bev"]
    assert cli.main(argv) == 2
    assert not os.path.exists(os.path.join(trained_run, "submission"))
    (calib_dir / f"{val[0]}.txt").write_text(CALIB_TEXT)

    assert cli.main(argv) == 0
    model_mode = json.load(open(os.path.join(trained_run, "eval", "metrics.json")))
    sub = os.path.join(trained_run, "submission")
    want = sorted(n.replace("_", "_road_", 1) + ".png" for n in val)
    assert sorted(f for f in os.listdir(sub) if f.endswith(".png")) == want
    for name in val:
        filename = name.replace("_", "_road_", 1) + ".png"
        q = cv2.imread(os.path.join(sub, filename), cv2.IMREAD_UNCHANGED)
        source = cv2.imread(pairs[name].image_path)
        assert q.dtype == np.uint8 and q.shape == source.shape[:2]  # grey, original size
        top = cv2.imread(os.path.join(sub, "bev", filename), cv2.IMREAD_UNCHANGED)
        assert top.dtype == np.uint8 and top.shape == bev.BEV_SHAPE
        calib = bev.read_calib(calib_dir / f"{name}.txt")
        np.testing.assert_array_equal(top, bev.perspective_to_bev_devkit(q, calib))
        # Rows 35..71 of the 90-row frame are seen: the BEV is not all border.
        assert top.any()

    out = tmp_path / "scores.json"
    assert (
        cli.main(["evaluate", "--prob-dir", sub, "--gt-dir", str(gt_dir), "--out", str(out)]) == 0
    )
    files_mode = _no_nan(out.read_text())
    assert files_mode["kitti"] == model_mode["kitti"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--run", "{tmp}/no_such_run"], "no_such_run does not exist"),
        (["--run", "{tmp}"], "config.json does not exist"),
        (["--prob-dir", "{tmp}"], "--gt-dir"),
        (["--run", "{tmp}", "--prob-dir", "{tmp}"], "not both"),
        (["--prob-dir", "{tmp}", "--gt-dir", "{tmp}/none"], "--gt-dir"),
        (["--prob-dir", "{tmp}", "--gt-dir", "{tmp}"], "no ground truth"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert cli.main(["evaluate"] + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


# --------------------------------------------------------------------------------------------
# The --prob-dir mode, by hand
# --------------------------------------------------------------------------------------------


def _write_rgb(path, pixels):
    cv2.imwrite(str(path), cv2.cvtColor(np.array([pixels], np.uint8), cv2.COLOR_RGB2BGR))


def test_prob_dir_kitti_scores_by_hand(tmp_path, capsys):
    gt, probs = tmp_path / "gt", tmp_path / "probs"
    gt.mkdir()
    probs.mkdir()
    # um: road, road, not road, not road, void with 8-bit probabilities 200, 100, 150, 0, 255.
    _write_rgb(gt / "um_road_000000.png", [MAGENTA, MAGENTA, RED, RED, BLACK])
    cv2.imwrite(str(probs / "um_road_000000.png"), np.array([[200, 100, 150, 0, 255]], np.uint8))
    # uu: road, not road, as a 16-bit map 65535, 0 (quantised to 255, 0): a perfect answer.
    _write_rgb(gt / "uu_road_000000.png", [MAGENTA, RED])
    cv2.imwrite(str(probs / "uu_road_000000.png"), np.array([[65535, 0]], np.uint16))
    # KITTI's lane labels in the gt folder and maps without gt are not scored.
    _write_rgb(gt / "um_lane_000000.png", [MAGENTA])
    cv2.imwrite(str(probs / "umm_road_000009.png"), np.array([[7]], np.uint8))

    out = tmp_path / "m.json"
    argv = ["evaluate", "--prob-dir", str(probs), "--gt-dir", str(gt), "--out", str(out)]
    assert cli.main(argv) == 0
    m = _no_nan(out.read_text())
    # um, at threshold i/255 a pixel is road when its value >= i (valid pixels only):
    #   i = 0:        TP 2 FP 2  P 1/2 R 1    F 2/3
    #   i = 1..100:   TP 2 FP 1  P 2/3 R 1    F 4/5   <- MaxF, lowest such threshold 1/255
    #   i = 101..150: TP 1 FP 1  P 1/2 R 1/2  F 1/2
    #   i = 151..200: TP 1 FP 0  P 1   R 1/2  F 2/3
    #   i > 200:      TP 0 (dropped)
    # AvgPrec: recall levels 0..0.5 (6 of them) reach P 1, levels 0.6..1.0 (5) only R = 1 with
    # max P 2/3: (6 + 5 * 2/3) / 11 = 28/33.
    um = m["kitti"]["um_road"]
    assert um["MaxF"] == approx(4 / 5) and um["AvgPrec"] == approx(28 / 33)
    assert um["PRE"] == approx(2 / 3) and um["REC"] == 1.0
    assert um["FPR"] == approx(1 / 2) and um["FNR"] == 0.0 and um["BestThresh"] == approx(1 / 255)
    assert m["kitti"]["uu_road"]["MaxF"] == approx(1.0) and m["kitti"]["uu_road"]["FPR"] == 0.0
    assert set(m["kitti"]["umm_road"].values()) == {None}  # no umm gt: undefined, null
    # urban pools both: 3 road (200, 100, 255) and 3 not road (150, 0, 0) pixels:
    #   i = 0: TP 3 FP 3 F 2/3; i = 1..100: TP 3 FP 1, P 3/4 R 1, F 6/7 <- MaxF;
    #   i = 101..150: TP 2 FP 1; i = 151..200: TP 2 FP 0, P 1 R 2/3; i = 201..255: TP 1 FP 0.
    # AvgPrec: levels 0..0.6 (7; 0.6 <= 2/3) reach P 1, levels 0.7..1.0 (4) only 3/4: 10/11.
    urban = m["kitti"]["urban_road"]
    assert urban["MaxF"] == approx(6 / 7) and urban["AvgPrec"] == approx(10 / 11)
    assert urban["PRE"] == approx(3 / 4) and urban["FPR"] == approx(1 / 3)
    assert urban["BestThresh"] == approx(1 / 255)
    # Classes at threshold 0.5 (value >= 128): road 200 TP, 100 FN, 255 TP; not road 150 FP,
    # 0 and 0 TN. road IoU = 2 / (2 + 1 + 1), not_road IoU = 2 / (2 + 1 + 1), accuracy 4 / 6.
    assert m["classes"]["road"]["iou"] == approx(1 / 2)
    assert m["classes"]["not_road"]["iou"] == approx(1 / 2)
    assert m["classes"]["road"]["precision"] == approx(2 / 3)
    assert m["pixel_accuracy"] == approx(4 / 6) and m["num_images"] == 2
    assert "urban_road" in capsys.readouterr().out

    os.remove(probs / "uu_road_000000.png")
    assert cli.main(argv) == 2
    assert "uu_road_000000.png" in capsys.readouterr().err


def test_prob_dir_size_mismatch_names_the_file(tmp_path, capsys):
    _write_rgb(tmp_path / "um_road_000001.png", [MAGENTA, RED])
    probs = tmp_path / "p"
    probs.mkdir()
    cv2.imwrite(str(probs / "um_road_000001.png"), np.zeros((1, 3), np.uint8))
    assert cli.main(["evaluate", "--prob-dir", str(probs), "--gt-dir", str(tmp_path)]) == 2
    assert "um_road_000001.png is 3x1" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Error analysis pieces
# --------------------------------------------------------------------------------------------


def test_error_overlay_colours_by_hand():
    image = np.full((1, 5, 3), 100, np.uint8)
    pred = np.array([[1, 1, 0, 0, 1]], bool)
    truth = np.array([[1, 0, 1, 0, V]], np.uint8)  # TP, FP, FN, TN, void
    out = analysis.error_overlay(image, pred.astype(np.uint8), truth, data.KITTI_ROAD, alpha=0.5)
    # 0.5 * 100 + 0.5 * 255 = 177.5 -> 178, 0.5 * 100 = 50
    assert out[0].tolist() == [
        [50, 178, 50],  # true positive: green
        [178, 50, 50],  # false positive: red
        [50, 50, 178],  # false negative: blue
        [100, 100, 100],  # true negative: untouched
        [100, 100, 100],  # void: untouched whatever is predicted
    ]


def _road_metadata(image, road_true):
    """The KITTI road fields of per_image.csv, from fcn.evaluation.analysis's pieces."""
    fractions = analysis.class_fractions(road_true, data.KITTI_ROAD)
    return {
        "road_fraction": fractions["road_fraction"],
        "n_road_regions": fractions["n_road_regions"],
        "brightness": analysis.brightness(image),
        "grayscale": int(analysis.is_grayscale(image)),
    }


def test_image_metadata_by_hand():
    # Road in two separate blobs, 4 of 6 valid pixels; the grey value 51 is brightness 0.2.
    truth = np.array([[1, 1, 0, 1], [V, V, 0, 1]], np.uint8)
    grey = np.full((2, 4, 3), 51, np.uint8)
    meta = _road_metadata(grey, truth)
    assert meta == {
        "road_fraction": approx(4 / 6),
        "n_road_regions": 2,
        "brightness": approx(0.2),
        "grayscale": 1,
    }
    colour = grey.copy()
    colour[..., 0] = 60  # a red cast of 9 levels everywhere
    assert _road_metadata(colour, truth)["grayscale"] == 0
    assert math.isnan(_road_metadata(grey, np.full((2, 4), V, np.uint8))["road_fraction"])


def test_worst_keeps_the_lowest_defined_ious():
    worst = scoring.Worst(2)
    for name, iou in [("a", 0.9), ("b", 0.2), ("c", float("nan")), ("d", 0.5), ("e", 0.2)]:
        if worst.wants(iou):
            worst.add(iou, name, np.zeros((1, 1, 3), np.uint8))
    # NaN (no road anywhere) is never "worst"; on a tie the first seen stays.
    assert [(n, i) for n, i, _ in worst.ranked()] == [("b", 0.2), ("e", 0.2)]
    assert not scoring.Worst(0).wants(0.0)


def test_class_prediction_thresholds_binary_models():
    probs = np.array([[[0.7, 0.3], [0.55, 0.45]]], np.float32)  # (1, 2, 2): road is class 1
    spec = data.KITTI_ROAD
    # argmax would say not road twice; at threshold 0.4 the second pixel is road.
    np.testing.assert_array_equal(task.decide(probs, spec, 0.4), [[0, 1]])
    np.testing.assert_array_equal(task.decide(probs, spec, 0.5), [[0, 0]])


def test_json_safe_writes_null_for_nan():
    obj = {"a": float("nan"), "b": [np.float32(0.5), float("inf")], "c": {"d": np.int64(3)}}
    assert runs.json_safe(obj) == {"a": None, "b": [0.5, None], "c": {"d": 3}}
    json.dumps(runs.json_safe(obj), allow_nan=False)


# --------------------------------------------------------------------------------------------
# TensorBoard images
# --------------------------------------------------------------------------------------------


def test_image_summary_decodes_to_the_same_pixels():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    summary = tboard.image_summary("val/overlays", [rgb, grey])
    assert isinstance(summary, tf.Summary)
    assert [v.tag for v in summary.value] == ["val/overlays/image/0", "val/overlays/image/1"]
    first, second = (v.image for v in summary.value)
    assert (first.height, first.width, first.colorspace) == (5, 7, 3)
    assert (second.height, second.width, second.colorspace) == (4, 3, 1)
    # Decoded the way TensorBoard does it: a PNG decoder, channels as stored.
    with tf.Graph().as_default(), tf.Session() as sess:
        encoded = tf.placeholder(tf.string, [])
        decoded = tf.image.decode_png(encoded)
        back_rgb = sess.run(decoded, {encoded: first.encoded_image_string})
        back_grey = sess.run(decoded, {encoded: second.encoded_image_string})
    np.testing.assert_array_equal(back_rgb, rgb)  # RGB order kept, not cv2's BGR
    np.testing.assert_array_equal(back_grey[..., 0], grey)
    with pytest.raises(ValueError, match="uint8"):
        tboard.image_summary("x", [rgb.astype(np.float32)])


def test_kitti_groups_match_the_metrics_module():
    assert scoring.KITTI_GROUPS == ("um_road", "umm_road", "uu_road", "urban_road")
    assert set(scoring.KITTI_KEYS) == set(devkit.kitti_scores([0], [0], 1, 1))


# --------------------------------------------------------------------------------------------
# Many classes: a fake 3-class model through the evaluation and its reports
# --------------------------------------------------------------------------------------------

RGB_RED, RGB_BLUE, RGB_WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
TOY = dataclasses.replace(
    data.KITTI_ROAD,
    name="toy3",
    class_names=("bg", "car", "person"),
    task="multiclass",
    positive_class=0,
    palette=(None, RGB_RED, RGB_BLUE),
    colors=(((0, 0, 0), 0), (RGB_RED, 1), (RGB_BLUE, 2), (RGB_WHITE, V)),
    stratify="",
    benchmark="",
)


class _ColourModel(Predictor):
    """A Predictor without a network: car (0.8) where red leads blue by 50 levels, person where
    blue leads red by 50, else bg; 0.1 for the other two classes."""

    def _predict_batch(self, batch, threshold):
        rgb = batch.astype(int)
        cls = np.where(rgb[..., 0] - rgb[..., 2] > 50, 1, 0)
        cls = np.where(rgb[..., 2] - rgb[..., 0] > 50, 2, cls)
        probs = np.full(batch.shape[:3] + (3,), 0.1, np.float32)
        np.put_along_axis(probs, cls[..., None], 0.8, axis=-1)
        return probs, cls.astype(np.uint8)


def _toy_examples(folder):
    """4 x 6 images: columns 0-2 car, 3-5 bg. a, b colour (b with one blue bg pixel the model
    calls person); c, d grey (the model sees no car); d's last row void."""
    examples = []
    for name in ("a", "b", "c", "d"):
        grey = name in "cd"
        image = np.full((4, 6, 3), 30, np.uint8)
        image[:, :3] = (120, 120, 120) if grey else (200, 30, 30)
        label = np.zeros((4, 6, 3), np.uint8)
        label[:, :3] = RGB_RED
        if name == "b":
            image[0, 5] = (30, 30, 200)
        if name == "d":
            label[3] = RGB_WHITE
        image_path, label_path = folder / f"{name}.png", folder / f"{name}_gt.png"
        cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(label_path), cv2.cvtColor(label, cv2.COLOR_RGB2BGR))
        examples.append(data.Example(name, str(image_path), str(label_path), "toy"))
    return examples


def test_three_class_evaluation_scores_and_reports_by_hand(tmp_path):
    examples = _toy_examples(tmp_path)
    scores, rows, ranked = scoring.score_examples(
        _ColourModel(), examples, TOY, 0.5, worst=2, log=None
    )
    by = {r["name"]: r for r in rows}
    # a: all right. b: bg 11 of 12 right and 1 called person: IoU bg 11/12, car 1, person 0:
    # mean 23/36. c: all bg predicted: bg IoU 12/24, car 0, mean 1/4, accuracy 1/2.
    # d: 18 labelled pixels, bg IoU 9/18, car 0: mean 1/4.
    assert by["a"]["mean_iou"] == 1.0 and math.isnan(by["a"]["iou_person"])
    assert by["b"]["mean_iou"] == approx(23 / 36) and by["b"]["iou_person"] == 0.0
    assert by["c"]["mean_iou"] == approx(1 / 4) and by["c"]["pixel_accuracy"] == approx(1 / 2)
    assert by["d"]["mean_iou"] == approx(1 / 4)
    # loss: a -ln 0.8; c half the pixels -ln 0.1, half -ln 0.8.
    assert by["a"]["loss"] == approx(-math.log(0.8), rel=1e-6)
    assert by["c"]["loss"] == approx((-math.log(0.1) - math.log(0.8)) / 2, rel=1e-6)
    assert by["c"]["grayscale"] is True and by["a"]["grayscale"] is False
    assert by["d"]["car_fraction"] == approx(1 / 2) and by["d"]["height"] == 4
    # The worst two by mean IoU: c and d tie at 1/4, the first seen ranks first.
    assert [(n, s) for n, s, _ in ranked] == [("c", approx(0.25)), ("d", approx(0.25))]
    picture = ranked[0][2]
    top = analysis.CAPTION_HEIGHT
    # Car taken for bg: wrong class, red: 0.5 * 120 + 0.5 * 255 = 187.5 -> 188.
    assert picture[top, 0].tolist() == [188, 60, 60]
    # bg right: green, 0.5 * 30 + 0.5 * 255 = 142.5 -> 143.
    assert picture[top, 5].tolist() == [15, 143, 15]
    # d's void row is greyed: 0.5 * 120 + 0.5 * 128 = 124.
    assert ranked[1][2][top + 3, 0].tolist() == [124, 124, 124]

    result = scores.result()
    result.update(run="r", checkpoint="c", data_dir="d", split="val", threshold=0.5)
    result.update(task="multiclass", crf=False)
    # Pooled: person occurs in no ground truth (predicted once): the headline leaves it out.
    assert result["headline"] == "mean_iou_present" and result["num_classes_present"] == 2
    assert "kitti" not in result and result["class_shares"]["person"] == 0.0
    out = tmp_path / "eval"
    reports.write_reports(str(out), result, rows, ranked, TOY)
    m = _no_nan((out / names.EVAL_METRICS_FILE).read_text())
    assert set(m["classes"]) == {"bg", "car", "person"}
    assert m["mean_iou_present"] > m["mean_iou"]  # person's IoU 0 is left out
    with open(out / names.EVAL_PER_IMAGE_FILE) as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["name"] for r in csv_rows] == ["a", "b", "c", "d"]
    assert csv_rows[2]["grayscale"] == "1" and csv_rows[0]["iou_person"] == ""
    confusion = cv2.imread(str(out / names.EVAL_CONFUSION_IMAGE))
    assert confusion.shape[:2] == plots.confusion_image_size(3)
    # Only grayscale and brightness vary over the four images.
    assert sorted(os.listdir(out / names.EVAL_PLOTS_DIR)) == [
        "loss_vs_brightness.png",
        "loss_vs_grayscale.png",
        "mean_iou_vs_brightness.png",
        "mean_iou_vs_grayscale.png",
    ]
    assert sorted(os.listdir(out / names.EVAL_WORST_DIR)) == ["01_c.png", "02_d.png"]
    assert not (out / "iou_vs_metadata.png").exists()  # a binary datasets' plot
    summary = (out / names.EVAL_SUMMARY_FILE).read_text()
    # Colour images: (1 + 23/36) / 2 = 59/72 = 0.819.
    assert "grayscale images: mean IoU 0.250 (2 images) vs 0.819 for colour images (2)" in summary
    assert "person (not in GT)" in summary and "2 of 3 classes present" in summary
    assert "confusion.png" in summary
    assert "2 of 3 classes present" in reports.format_table(result)
