"""The footprint scenes (synth), the folder reader's polygons/, evaluate's SpaceNet figures and
the footprints demo's decision over its three targets. Tiny scenes, hand-worked counts."""

import json
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from fcn import data, recipes
from fcn.data.datasets import folder
from fcn.data.synth import footprint_scenes
from fcn.data.synth import footprints as synth_footprints
from fcn.errors import UserError
from fcn.evaluation import polygon_scores, reports, scoring

rasterio = pytest.importorskip("rasterio")
from rasterio import features  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fp")
    footprint_scenes.write(root, 1, seed=0, side=512)
    return root / footprint_scenes.SCENES_DIR


def test_scene_is_a_tiled_deflate_utm_geotiff_whose_mask_is_its_polygons(scenes):
    image = scenes / "images" / "scene_000.tif"
    with rasterio.open(image) as src:
        assert (src.count, src.height, src.width, src.dtypes[0]) == (3, 512, 512, "uint8")
        assert src.crs.to_epsg() == 32633
        assert tuple(src.transform)[:6] == (0.3, 0.0, 500000.0, 0.0, -0.3, 5000000.0)
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
    with rasterio.open(scenes / "labels" / "scene_000.tif") as src:
        mask, transform = src.read(1), src.transform
    assert set(np.unique(mask).tolist()) == {0, 255}
    collection = json.loads((scenes / "polygons" / "scene_000.geojson").read_text())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    shapes = [f["geometry"] for f in collection["features"]]
    ids = [f["properties"]["building"] for f in collection["features"]]
    assert len(ids) == len(set(ids)) > 3  # one feature per building
    drawn = features.rasterize(shapes, out_shape=mask.shape, transform=transform)
    assert np.array_equal(drawn * 255, mask)  # the polygons are the mask, pixel for pixel
    pixels = sum(f["properties"]["pixels"] for f in collection["features"])
    assert pixels == (mask > 0).sum()


def test_scene_buildings_have_tile_sizes_and_some_exceed_a_tile(scenes):
    with rasterio.open(scenes / "labels" / "scene_000.tif") as src:
        transform = src.transform
    collection = json.loads((scenes / "polygons" / "scene_000.geojson").read_text())
    ids = features.rasterize(
        [(f["geometry"], f["properties"]["building"]) for f in collection["features"]],
        out_shape=(512, 512), transform=transform, dtype="int32",
    )  # fmt: skip
    sizes = np.bincount(ids.ravel())[1:]
    big = footprint_scenes.BIG_BUILDINGS
    spans = []
    for ident in range(1, big + 1):
        ys, xs = np.nonzero(ids == ident)
        if len(xs):
            spans.append(max(np.ptp(xs), np.ptp(ys)) + 1)
    assert spans and max(spans) > 192  # longer than a 192-pixel tile
    # The others at the tiles' sizes: 4..14 m by 3..8 m at 0.35..0.7 m a pixel.
    small = sizes[big:][sizes[big:] > 0]
    assert 100 < np.median(small) < 2500


def _write_folder(root, stems, polygons=None):
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for stem in stems:
        cv2.imwrite(str(root / "images" / f"{stem}.png"), np.zeros((16, 16, 3), np.uint8))
        cv2.imwrite(str(root / "labels" / f"{stem}.png"), np.zeros((16, 16), np.uint8))
    if polygons is not None:
        (root / "polygons").mkdir(exist_ok=True)
        for stem, text in polygons.items():
            (root / "polygons" / f"{stem}.geojson").write_text(text)


def _boxes(*boxes, crs=None):
    feats = [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]],
            },
        }
        for x0, y0, x1, y1 in boxes
    ]
    out = {"type": "FeatureCollection", "features": feats}
    if crs:
        out["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(out)


def test_folder_reader_pairs_polygons_and_names_a_file_without_image(tmp_path):
    _write_folder(tmp_path, ["a", "b"], {"a": _boxes(), "b": _boxes()})
    train, val = data.list_splits(str(tmp_path), folder.BINARY)
    assert val is None
    assert [Path(ex.polygons).name for ex in train] == ["a.geojson", "b.geojson"]
    (tmp_path / "polygons" / "c.geojson").write_text(_boxes())
    with pytest.raises(UserError, match=r"polygons/c.geojson has no image of stem 'c'"):
        data.list_splits(str(tmp_path), folder.BINARY)
    (tmp_path / "polygons" / "c.geojson").unlink()
    (tmp_path / "polygons" / "b.geojson").unlink()
    with pytest.raises(UserError, match=r"images/b.png has no b.geojson"):
        data.list_splits(str(tmp_path), folder.BINARY)
    # Without polygons/ the examples carry none, as before.
    _write_folder(tmp_path / "plain", ["a"])
    assert data.list_splits(str(tmp_path / "plain"), folder.BINARY)[0][0].polygons == ""


class _Fixed:
    """A predictor whose decision is a given mask (probabilities one-hot)."""

    def __init__(self, mask):
        self.mask = mask

    def predict_each(self, images, threshold):
        for _ in images:
            probs = np.stack([1.0 - self.mask, self.mask], -1).astype(np.float32)
            yield probs, self.mask.astype(np.uint8)


# Truth: A (0,0)-(4,4), B (8,0)-(12,4), C (0,8)-(4,12). Prediction: A exactly (IoU 1), B two
# pixels right (IoU 8/24 = 1/3 < 0.5: a false positive, and B a miss) and D (8,8)-(12,12) where
# nothing is. TP 1, FP 2, FN 2: precision 1/3, recall 1/3, F1 1/3.
TRUTH = ((0, 0, 4, 4), (8, 0, 12, 4), (0, 8, 4, 12))
PRED = np.zeros((16, 16), np.float32)
PRED[0:4, 0:4] = PRED[0:4, 10:14] = PRED[8:12, 8:12] = 1
HAND = dict(tp=1, fp=2, fn=2, precision=1 / 3, recall=1 / 3, f1=1 / 3, mean_iou=1.0)


def _score(root):
    examples = data.list_pairs(str(root), folder.BINARY)
    scores, _, _ = scoring.score_examples(
        _Fixed(PRED), examples, folder.BINARY, 0.5, worst=0, log=None
    )
    return scores.result()


def _check(result):
    got = result["polygons"]
    assert {k: got[k] for k in HAND} == pytest.approx(HAND)
    assert got["images"] == 1 and got["iou_threshold"] == 0.5


def test_evaluate_scores_pixel_polygons_of_a_plain_image(tmp_path):
    _write_folder(tmp_path, ["a"], {"a": _boxes(*TRUTH)})
    result = _score(tmp_path)
    _check(result)
    assert "F1 0.3333, precision 0.3333, recall 0.3333 (TP 1, FP 2, FN 2" in (
        reports.format_table({**result, "threshold": 0.5, "task": "binary"})
    )


def _write_geotiff(path, mask=False):
    profile = dict(driver="GTiff", height=16, width=16, dtype="uint8", crs="EPSG:32633")
    profile["transform"] = from_origin(500000, 5000000, 0.3, 0.3)
    with rasterio.open(path, "w", count=1 if mask else 3, **profile) as dst:
        dst.write(np.zeros((1 if mask else 3, 16, 16), np.uint8))


def _map(box):
    """A pixel box (x0, y0, x1, y1) in the GeoTIFF's UTM coordinates."""
    x0, y0, x1, y1 = box
    return (500000 + 0.3 * x0, 5000000 - 0.3 * y0, 500000 + 0.3 * x1, 5000000 - 0.3 * y1)


def test_geotiff_scores_in_its_crs_and_truth_in_another_is_reprojected(tmp_path):
    pyproj = pytest.importorskip("pyproj")
    root = tmp_path / "utm"
    for sub in ("images", "labels", "polygons"):
        (root / sub).mkdir(parents=True)
    _write_geotiff(root / "images" / "s.tif")
    _write_geotiff(root / "labels" / "s.tif", mask=True)
    utm = [_map(b) for b in TRUTH]
    (root / "polygons" / "s.geojson").write_text(_boxes(*utm, crs="urn:ogc:def:crs:EPSG::32633"))
    _check(_score(root))
    # The same boxes in longitude/latitude: reprojected to UTM, the same matches.
    to_lonlat = pyproj.Transformer.from_crs(32633, 4326, always_xy=True)
    degrees = []
    for x0, y0, x1, y1 in utm:
        (lon0, lon1), (lat0, lat1) = to_lonlat.transform([x0, x1], [y0, y1])
        degrees.append((lon0, lat0, lon1, lat1))
    (root / "polygons" / "s.geojson").write_text(_boxes(*degrees, crs="EPSG:4326"))
    got = _score(root)["polygons"]
    assert (got["tp"], got["fp"], got["fn"]) == (1, 2, 2) and got["mean_iou"] > 0.99


def test_truth_in_a_crs_for_a_plain_image_and_malformed_geojson_are_one_line_errors(tmp_path):
    _write_folder(tmp_path, ["a"], {"a": _boxes(*TRUTH, crs="EPSG:32633")})
    with pytest.raises(UserError, match=r"polygons .*a.geojson are in EPSG:32633 but image"):
        _score(tmp_path)
    (tmp_path / "polygons" / "a.geojson").write_text('{"type": "FeatureCollection", "feat')
    with pytest.raises(UserError, match=r"cannot read polygons .*a.geojson") as err:
        _score(tmp_path)
    assert "\n" not in str(err.value)


def test_summary_has_the_polygon_section():
    result = {"polygons": polygon_scores.PolygonScores(folder.BINARY).result()}
    (line,) = polygon_scores.lines(result)
    assert line.startswith("buildings as polygons (SpaceNet, one-to-one at IoU >= 0.5, 0 image")
    assert "F1 0.0000" in line and "(TP 0, FP 0, FN 0;" in line


@pytest.mark.parametrize(
    "figures,ok",
    [
        ((0.86, 0.87, 0.81), True),
        ((0.86, 0.87, 0.79), False),  # polygon F1 short
        ((0.86, 0.84, 0.90), False),  # scene IoU short
        ((0.84, 0.90, 0.90), False),  # the tiles' figure short
        ((0.86, None, 0.90), False),  # no scene figure
    ],
)
def test_footprints_demo_needs_all_three_targets(figures, ok):
    passed, text = recipes.decide(recipes.FOOTPRINTS, *figures)
    assert passed is ok
    assert text.startswith(f"validation building IoU {figures[0]:.4f} ")
    assert "scene building IoU (slide)" in text and "scene polygon F1" in text
    assert ("DID NOT reach" in text) is (not ok)
    # A recipe without scenes decides on its figure alone.
    assert recipes.decide(recipes.KITTI_ROAD, 0.91) == (
        True,
        "validation road IoU 0.9100 reached the target 0.90",
    )


def test_scene_flags_default_to_the_writers_values_and_belong_to_footprints(capsys):
    from fcn import cli
    from fcn.commands import demo

    with pytest.raises(SystemExit):
        cli.main(["synth", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    fs = footprint_scenes
    assert f"(default {fs.SCENE_COUNT}," in shown
    assert f"(default {fs.SCENE_SIDE}, at least {fs.MIN_SIDE})" in shown
    args = types.SimpleNamespace(scenes=None, scene_side=512)
    assert demo.scene_options(args, "footprints") == {"scenes": fs.SCENE_COUNT, "scene_side": 512}
    with pytest.raises(UserError, match="--scenes and --scene-side are for footprints, not coco"):
        demo.scene_options(args, "coco")
    assert demo.scene_options(types.SimpleNamespace(scenes=None, scene_side=None), "coco") == {}
    with pytest.raises(UserError, match="scene_side must be at least 384, got 100"):
        synth_footprints.generate("unused", 1, 0, 0, scene_side=100)
