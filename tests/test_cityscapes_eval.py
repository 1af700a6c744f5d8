"""Cityscapes' four figures (fcn.evaluation.cityscapes) on a 3x4 image worked out by hand, and
against cityscapesScripts' own evalPixelLevelSemanticLabeling where it is installed."""

import math

import cv2
import numpy as np
import pytest

from fcn import data
from fcn.evaluation import cityscapes, scoring

IGN = data.IGNORE_LABEL
SPEC = data.get_spec("cityscapes")
ROAD, SIDEWALK, POLE, PERSON, RIDER, CAR, TRUCK = 0, 1, 5, 11, 12, 13, 14
S_CAR, S_PERSON = cityscapes.AVG_CLASS_SIZE["car"], cityscapes.AVG_CLASS_SIZE["person"]

# ground truth (train ids) and its instanceIds: car A (26001, 1 px), car B (26002, 3 px),
# person (24001, 2 px)
GT = np.array([[ROAD] * 4, [CAR] * 4, [PERSON, PERSON, SIDEWALK, IGN]], np.uint8)
INSTANCES = np.array([[7, 7, 7, 7], [26001, 26002, 26002, 26002], [24001, 24001, 8, 0]], np.int32)
PRED = np.array(
    [[ROAD, ROAD, ROAD, CAR], [CAR, CAR, TRUCK, ROAD], [PERSON, RIDER, SIDEWALK, POLE]], np.uint8
)


def _scores(instances):
    scores = scoring.DatasetScores(SPEC)
    scores.add("", None, PRED, GT, instances=instances)
    return scores.result()["cityscapes"]


def test_four_figures_by_hand():
    cs = _scores(INSTANCES)
    iou = {n: v["iou"] for n, v in cs["classes"].items()}
    # road: TP 3, FN 1 (-> car), FP 1 (car -> road); car: TP 2, FN 2, FP 1; person: TP 1, FN 1
    assert iou["road"] == pytest.approx(3 / 5) and iou["sidewalk"] == 1
    assert iou["car"] == pytest.approx(2 / 5) and iou["truck"] == 0
    assert iou["person"] == pytest.approx(1 / 2) and iou["rider"] == 0
    assert math.isnan(iou["pole"])  # predicted only on ignore: no figure
    assert cs["iou_class"] == pytest.approx((0.6 + 1 + 0.4 + 0 + 0.5 + 0) / 6)
    cat = {n: v["iou"] for n, v in cs["categories"].items()}
    # flat: TP 4 (road, sidewalk), FN 1, FP 1; human: person/rider both human; vehicle: TP 3
    assert cat["flat"] == pytest.approx(4 / 6) and cat["human"] == 1
    assert cat["vehicle"] == pytest.approx(3 / 5) and math.isnan(cat["nature"])
    assert cs["iou_category"] == pytest.approx((4 / 6 + 1 + 3 / 5) / 3)
    # iIoU: each instance weighted by the class's average size / its size. car: A 1 of 1,
    # B 1 of 3 -> TP S(1 + 1/3), FN S(2/3), FP 1 (road -> car)
    iiou = {n: v["iiou"] for n, v in cs["classes"].items()}
    car = (4 / 3 * S_CAR) / (4 / 3 * S_CAR + 2 / 3 * S_CAR + 1)
    assert iiou["car"] == pytest.approx(car) and iiou["truck"] == 0  # FP 1, no instance
    assert iiou["person"] == pytest.approx(0.5) and iiou["rider"] == 0
    assert iiou["road"] is None and math.isnan(iiou["bus"])
    assert cs["iiou_class"] == pytest.approx((car + 0 + 0.5 + 0) / 4)
    vehicle = (5 / 3 * S_CAR) / (2 * S_CAR + 1)  # B's truck pixel is a vehicle TP
    assert cs["categories"]["vehicle"]["iiou"] == pytest.approx(vehicle)
    assert cs["categories"]["human"]["iiou"] == pytest.approx(1.0)
    assert cs["iiou_category"] == pytest.approx((vehicle + 1) / 2)
    assert S_PERSON > 0 and cs["instances"] == "instanceIds"


def test_instance_figures_are_missing_without_instance_ids():
    cs = _scores(None)
    assert cs["iiou_class"] is None and cs["iiou_category"] is None
    assert cs["classes"]["car"]["iiou"] is None and "missing: 1 image(s)" in cs["instances"]
    assert cs["iou_class"] == pytest.approx(2.5 / 6)


def test_against_cityscapes_scripts(tmp_path, monkeypatch):
    # cityscapesScripts 2.2.4 calls np.in1d, which numpy 2.4 (our pin) removed: lend it isin.
    if not hasattr(np, "in1d"):
        monkeypatch.setattr(np, "in1d", lambda a, b: np.isin(np.ravel(a), b), raising=False)
    ev = pytest.importorskip(
        "cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling",
        reason="cityscapesscripts is not installed (optional: pip install cityscapesscripts)",
    )
    from PIL import Image

    label_ids = np.array(cityscapes._label_ids(SPEC))
    gt_ids = np.where(GT == IGN, 0, label_ids[np.minimum(GT, 18)]).astype(np.uint8)
    gt = tmp_path / "a_000000_000000_gtFine_labelIds.png"
    Image.fromarray(gt_ids).save(gt)
    inst = str(gt).replace("labelIds", "instanceIds")
    cv2.imwrite(inst, INSTANCES.astype(np.uint16))  # 16-bit, as Cityscapes ships them
    np.testing.assert_array_equal(cityscapes.read_instances(str(gt)), INSTANCES)
    pred = tmp_path / "pred.png"
    Image.fromarray(label_ids[PRED].astype(np.uint8)).save(pred)
    args = ev.args
    args.evalInstLevelScore, args.evalPixelAccuracy, args.quiet = True, False, True
    args.JSONOutput, args.exportFile = False, str(tmp_path / "out.json")
    official = ev.evaluateImgLists([str(pred)], [str(gt)], args)
    ours = _scores(INSTANCES)
    assert ours["iou_class"] == pytest.approx(official["averageScoreClasses"])
    assert ours["iiou_class"] == pytest.approx(official["averageScoreInstClasses"])
    assert ours["iou_category"] == pytest.approx(official["averageScoreCategories"])
    assert ours["iiou_category"] == pytest.approx(official["averageScoreInstCategories"])
