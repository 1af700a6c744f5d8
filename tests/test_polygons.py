"""Predicted regions as polygons (fcn.geo.polygons) on a hand-drawn mask, and the SpaceNet
building metric (fcn.evaluation.polygons) on squares worked out by hand."""

import json

import numpy as np
import pytest
from rasterio.transform import from_origin
from shapely.geometry import Polygon, box, shape

from fcn import data
from fcn.errors import UserError
from fcn.evaluation import polygons as metric
from fcn.geo import polygons

GRID = from_origin(500000.0, 4000000.0, 0.3, 0.3)  # 0.3 m pixels: 0.09 m2 each


def _drawn():
    """10 x 12 mask (1 = building) and probs (10, 12, 2): A, 3 x 4 at rows 1-3, columns 1-4
    (12 px, p 0.8); B, 5 x 5 at rows 4-8, columns 6-10 with a 1-pixel hole at (6, 8) (24 px: 14
    of p 0.6 in rows 4-6, 15 less the hole, and 10 of p 0.9 in rows 7-8 -> mean (8.4 + 9) / 24
    = 0.725); C, one pixel at (0, 0),
    touching A only by a corner (a region of its own: 4-connected)."""
    mask = np.zeros((10, 12), np.uint8)
    road = np.zeros((10, 12), np.float32)
    mask[1:4, 1:5], road[1:4, 1:5] = 1, 0.8
    mask[4:9, 6:11], road[4:7, 6:11], road[7:9, 6:11] = 1, 0.6, 0.9
    mask[6, 8], road[6, 8] = 0, 0.0
    mask[0, 0], road[0, 0] = 1, 0.7
    return mask, np.stack([1 - road, road], axis=-1)


def _regions(cuts, min_area=0, simplify=0.0):
    mask, probs = _drawn()
    regions = polygons.Regions((1,), data.KITTI_ROAD.class_names, min_area, simplify)
    edges = [0, *cuts, len(mask)]
    for top, bottom in zip(edges[:-1], edges[1:], strict=True):
        regions.add(top, mask[top:bottom], np.ones((bottom - top, 12), bool), probs[top:bottom])
    return regions


@pytest.mark.parametrize("cuts", [(), (6,), (2, 5, 7)])
def test_regions_of_a_hand_drawn_mask_whatever_the_strips(cuts):
    # (6,): the strip border cuts B through its hole; (2, 5, 7) cuts A and B twice each.
    features = _regions(cuts).features()
    props = [f["properties"] for f in features]
    assert [(p["pixels"], p["mean_prob"]) for p in props] == [(24, 0.725), (12, 0.8), (1, 0.7)]
    assert all(p["class"] == "road" and p["class_id"] == 1 for p in props)
    b, a, c = (shape(f["geometry"]) for f in features)
    assert b.area == 24 and len(b.interiors) == 1 and b.equals(box(6, 4, 11, 9) - box(8, 6, 9, 7))
    assert a.equals(box(1, 1, 5, 4)) and c.equals(box(0, 0, 1, 1))


def test_min_area_simplify_and_the_crs():
    features = _regions((6,), min_area=2).features(GRID)
    assert [f["properties"]["pixels"] for f in features] == [24, 12]
    b = shape(features[0]["geometry"])
    # 24 px of 0.09 m2; x = 500000 + 0.3 col, y = 4000000 - 0.3 row.
    assert features[0]["properties"]["area"] == pytest.approx(2.16)
    assert b.area == pytest.approx(2.16)
    assert b.bounds == pytest.approx((500001.8, 3999997.3, 500003.3, 3999998.8))
    # A rectangle has nothing to simplify; with a 1-pixel tolerance B keeps its outline and
    # its 1-pixel hole loses the corner (9, 6) (0.71 px from the diagonal): a triangle of 0.5.
    simple = _regions((6,), simplify=1.0).features()
    assert shape(simple[1]["geometry"]).equals(box(1, 1, 5, 4))
    hole = Polygon(box(6, 4, 11, 9).exterior.coords, [[(8, 6), (9, 7), (8, 7)]])
    assert shape(simple[0]["geometry"]).equals(hole) and hole.area == 24.5
    from rasterio.crs import CRS

    collection = polygons.geojson(features, CRS.from_epsg(32633))
    assert collection["crs"] == {
        "type": "name",
        "properties": {"name": "urn:ogc:def:crs:EPSG::32633"},
    }


def test_spacenet_f1_of_squares_by_hand():
    truths = [box(0, 0, 10, 10), box(20, 0, 30, 10), box(40, 0, 50, 10)]
    proposals = [
        box(2, 0, 12, 10),  # T1: 80 / 120 = 2/3 >= 0.5: TP
        box(25, 0, 35, 10),  # T2: 50 / 150 = 1/3: FP, and T2 is missed (FN)
        box(40, 0, 50, 10),  # T3 exactly: TP
        box(100, 0, 110, 10),  # nothing: FP
    ]
    s = metric.f1_scores(proposals, truths)
    # P = 2/4, R = 2/3, F1 = 2 (1/2)(2/3) / (1/2 + 2/3) = 4/7; mean IoU (2/3 + 1) / 2 = 5/6.
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 1)
    assert s["precision"] == 0.5 and s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(4 / 7) and s["mean_iou"] == pytest.approx(5 / 6)
    assert metric.match(proposals, truths) == [(0, 0, pytest.approx(2 / 3)), (2, 2, 1.0)]


def test_one_to_one_in_score_order_and_empty_sets():
    # Two proposals on one truth: the exact one (IoU 1) and one shifted by 1 (90 / 110). The
    # higher score matches first; the other is a false positive either way.
    truths = [box(0, 0, 10, 10)]
    proposals = [box(0, 0, 10, 10), box(1, 0, 11, 10)]
    assert metric.match(proposals, truths) == [(0, 0, 1.0)]
    assert metric.match(proposals, truths, scores=[0.5, 0.9]) == [(1, 0, pytest.approx(9 / 11))]
    assert metric.f1_scores(proposals, truths)["fp"] == 1
    nothing = metric.f1_scores([], truths)
    assert (nothing["fn"], nothing["precision"], nothing["recall"], nothing["f1"]) == (1, 0, 0, 0)
    assert metric.f1_scores(proposals, [])["fp"] == 2


def test_read_features_round_trip_and_a_bad_file(tmp_path):
    path = tmp_path / "p.geojson"
    features = _regions(()).features(GRID)
    from rasterio.crs import CRS

    polygons.write_geojson(str(path), features, CRS.from_epsg(32633))
    geoms, scores, crs = metric.read_features(str(path))
    assert [g.area for g in geoms] == pytest.approx([2.16, 1.08, 0.09])
    assert scores == [0.725, 0.8, 0.7] and crs == "urn:ogc:def:crs:EPSG::32633"
    assert metric.f1_scores(geoms, geoms, scores=scores)["f1"] == 1.0
    (tmp_path / "bad.geojson").write_text(json.dumps({"type": "Feature"}))
    with pytest.raises(UserError, match=r"cannot read polygons .*bad.geojson \(KeyError"):
        metric.read_features(str(tmp_path / "bad.geojson"))


def test_polygons_in_another_crs_are_reprojected():
    # A 10 m square in UTM 33N, to WGS84 and back: the same square (to a millimetre), and
    # matched to itself at IoU ~1 once both are in one CRS.
    square = box(500000, 4000000, 500010, 4000010)
    lonlat = metric.reproject([square], "urn:ogc:def:crs:EPSG::32633", "EPSG:4326")[0]
    assert lonlat.bounds[0] == pytest.approx(15.0, abs=1e-6)  # zone 33's central meridian
    (back,) = metric.reproject([lonlat], "EPSG:4326", "EPSG:32633")
    assert back.symmetric_difference(square).area < 1e-3
    assert metric.reproject([square], "EPSG:32633", "EPSG:32633")[0] is square
    assert metric.f1_scores([back], [square])["tp"] == 1
    with pytest.raises(UserError, match="unknown CRS .*name it as EPSG:n"):
        metric.reproject([square], "EPSG:999999", "EPSG:4326")
