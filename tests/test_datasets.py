"""Every dataset reader (fcn.data.datasets) on tiny 8x12 fixtures written here: pairing, the
official validation split, label formats, unknown values, COCO masks and metadata, and the
spec's JSON round trip."""

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from fcn import data
from fcn.errors import UserError

H, W = 8, 12
IGN = data.IGNORE_LABEL


def _image(path, grey=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = np.random.default_rng(len(path))
    pixels = rng.integers(0, 255, (H, W) if grey else (H, W, 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)


def _png(path, array, mode=None, palette=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.fromarray(np.asarray(array, np.uint8), mode)
    if palette is not None:
        img.putpalette(palette + [0] * (768 - len(palette)))
    img.save(path)


def _collect():
    lines = []
    return lines, lines.append


# --- Mapillary ------------------------------------------------------------------------------

MAPILLARY_LABELS = [
    {"name": "construction--flat--road", "color": [128, 64, 128], "evaluate": True},
    {"name": "nature--sky", "color": [70, 130, 180], "evaluate": True},
    {"name": "void--unlabeled", "color": [0, 0, 0], "evaluate": False},
    {"name": "object--vehicle--car", "color": [0, 0, 142], "evaluate": True},
]


def _mapillary_label():
    """Stored indices: rows 0-1 road (0), 2-3 sky (1), 4-5 unlabeled (2, not evaluated),
    rows 6-7 car (3) except the last 3 pixels: 5, an index the config does not have."""
    idx = np.zeros((H, W), np.uint8)
    idx[2:4], idx[4:6], idx[6:] = 1, 2, 3
    idx[7, 9:] = 5
    return idx


# Renumbered: road 0, sky 1, car 2; unlabeled and 5 -> ignore.
MAPILLARY_EXPECTED = np.repeat(np.array([0, 0, 1, 1, IGN, IGN, 2, 2], np.uint8)[:, None], W, 1)
MAPILLARY_EXPECTED[7, 9:] = IGN


@pytest.fixture
def mapillary(tmp_path):
    d = tmp_path / "vistas"
    d.mkdir()
    (d / "config_v1.2.json").write_text(json.dumps({"labels": MAPILLARY_LABELS}))
    # Palette colours that are NOT the class colours: only reading the index gets it right.
    palette = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    _image(str(d / "training/images/a.jpg"))
    _png(str(d / "training/v1.2/labels/a.png"), _mapillary_label(), "P", palette)
    _image(str(d / "training/images/b.jpg"))
    _png(str(d / "training/v1.2/labels/b.png"), _mapillary_label(), "L")
    # The other layout (validation/labels) and an RGB label someone re-saved: decoded by colour.
    _image(str(d / "validation/images/c.jpg"))
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:4] = (128, 64, 128)
    rgb[4:] = (0, 0, 142)
    rgb[0, 0] = (0, 0, 0)  # unlabeled -> ignore, no warning
    _png(str(d / "validation/labels/c.png"), rgb)
    _image(str(d / "testing/images/t.jpg"))
    return str(d)


def test_mapillary_spec_drops_unevaluated_classes(mapillary):
    spec = data.resolve_spec("mapillary", mapillary)
    assert spec.class_names == ("construction--flat--road", "nature--sky", "object--vehicle--car")
    assert spec.palette == ((128, 64, 128), (70, 130, 180), (0, 0, 142))
    assert spec.id_map == ((0, 0), (1, 1), (2, IGN), (3, 2))
    assert (spec.task, spec.positive_class, spec.unknown) == ("multiclass", 0, "ignore")
    assert spec.train_labels == "training/v1.2/labels" and spec.val_labels == "validation/labels"


def test_mapillary_reads_palette_indices_and_grey_ids_with_official_val(mapillary):
    spec = data.resolve_spec("mapillary", mapillary)
    train, val = data.list_splits(mapillary, spec)
    assert [e.name for e in train] == ["a", "b"] and [e.name for e in val] == ["c"]
    assert [e.name for e in data.list_pairs(mapillary, spec)] == ["a", "b", "c"]
    assert [e.name for e in data.list_test_images(mapillary, spec)] == ["t"]
    for ex in train:  # palette PNG (a) and mode L (b) hold the same indices
        lines, warn = _collect()
        np.testing.assert_array_equal(data.read_label(ex, spec, warn), MAPILLARY_EXPECTED)
        # Index 5 is unknown: 3 of 96 pixels, one line per file.
        assert lines == [
            f"warning: {ex.label_path}: 3 pixels (3.1%) with values not in the mapillary "
            "classes (5) -> ignore"
        ]
    lines, warn = _collect()
    label = data.read_label(val[0], spec, warn)
    assert lines == [] and label[0, 0] == IGN and label[0, 1] == 0 and (label[4:] == 2).all()
    assert int((label == 0).sum()) == 4 * W - 1


def test_mapillary_without_config_names_the_file(tmp_path):
    with pytest.raises(UserError, match="config_v1.2.json does not exist"):
        data.resolve_spec("mapillary", str(tmp_path))


# --- Cityscapes -----------------------------------------------------------------------------


@pytest.fixture
def cityscapes(tmp_path):
    d = tmp_path / "cityscapes"
    ids = np.zeros((H, W), np.uint8)  # 0 unlabeled -> ignore
    ids[:3] = 7  # road -> 0
    ids[3:5] = 26  # car -> 13
    ids[5] = 33  # bicycle -> 18
    ids[6, :4] = 250  # no Cityscapes id: ignore with a warning
    for split, city, stem in (("train", "aachen", "aachen_000000_000019"),
                              ("val", "frankfurt", "frankfurt_000000_000294")):  # fmt: skip
        _image(str(d / f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"))
        _png(str(d / f"gtFine/{split}/{city}/{stem}_gtFine_labelIds.png"), ids)
        # The colour file beside it is not a label of ours.
        _png(str(d / f"gtFine/{split}/{city}/{stem}_gtFine_color.png"), np.zeros((H, W, 3)))
    _image(str(d / "leftImg8bit/test/berlin/berlin_000000_000019_leftImg8bit.png"))
    return str(d)


def test_cityscapes_maps_label_ids_to_train_ids(cityscapes):
    spec = data.resolve_spec("cityscapes", cityscapes)
    assert spec == data.get_spec("cityscapes") and spec.num_classes == 19
    assert spec.class_names[13] == "car" and spec.palette[13] == (0, 0, 142)
    train, val = data.list_splits(cityscapes, spec)
    assert [(e.name, e.category) for e in train] == [("aachen_000000_000019", "aachen")]
    assert [e.name for e in val] == ["frankfurt_000000_000294"]
    assert val[0].label_path.endswith("frankfurt_000000_000294_gtFine_labelIds.png")
    assert [e.name for e in data.list_test_images(cityscapes, spec)] == ["berlin_000000_000019"]
    lines, warn = _collect()
    label = data.read_label(train[0], spec, warn)
    expected = np.full((H, W), IGN, np.uint8)
    expected[:3], expected[3:5], expected[5] = 0, 13, 18
    np.testing.assert_array_equal(label, expected)
    assert lines == [
        f"warning: {train[0].label_path}: 4 pixels (4.2%) with values not in the cityscapes "
        "classes (250) -> ignore"
    ]


# --- folder ---------------------------------------------------------------------------------


def _folder(tmp_path, labelmap, labels, exts=(".jpg", ".png")):
    d = tmp_path / "mine"
    for i, label in enumerate(labels):
        _image(str(d / "images" / f"s{i}{exts[i % len(exts)]}"))
        _png(str(d / "labels" / f"s{i}.png"), label)
    if labelmap is not None:
        (d / "labelmap.json").write_text(json.dumps(labelmap))
    return str(d)


def test_folder_without_labelmap_reads_binary_masks_of_mixed_extensions(tmp_path):
    mask255 = np.zeros((H, W), np.uint8)
    mask255[:, 6:] = 255
    mask01 = (mask255 // 255).astype(np.uint8)
    grey_rgb = np.repeat(mask255[..., None], 3, axis=2)  # an RGB file with R = G = B
    d = _folder(tmp_path, None, [mask255, mask01, grey_rgb])
    _image(os.path.join(d, "test", "u.png"))
    spec = data.resolve_spec("folder", d)
    assert spec == data.get_spec("folder")
    assert (spec.class_names, spec.task, spec.palette[0]) == (("background", "foreground"),
                                                              "binary", None)  # fmt: skip
    train, val = data.list_splits(d, spec)
    assert val is None
    assert [os.path.basename(e.image_path) for e in train] == ["s0.jpg", "s1.png", "s2.jpg"]
    expected = (mask255 // 255).astype(np.uint8)
    for ex in train:
        lines, warn = _collect()
        np.testing.assert_array_equal(data.read_label(ex, spec, warn), expected)
        assert lines == []
    assert [e.name for e in data.list_test_images(d, spec)] == ["u"]


def test_folder_labelmap_colours_with_ignore_and_an_unknown_colour(tmp_path):
    labelmap = {
        "classes": [
            {"name": "background", "color": [0, 0, 0]},
            {"name": "building", "color": [255, 255, 255]},
        ],
        "ignore": [[255, 0, 255]],
    }
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:4] = 255
    rgb[7] = (255, 0, 255)
    rgb[6, :2] = (10, 20, 30)  # not in the map: 2 of 96 pixels
    d = _folder(tmp_path, labelmap, [rgb])
    spec = data.resolve_spec("folder", d)
    assert (spec.label_format, spec.task, spec.palette) == ("color", "binary", (None, (255,) * 3))
    (ex,) = data.list_pairs(d, spec)
    lines, warn = _collect()
    label = data.read_label(ex, spec, warn)
    expected = np.zeros((H, W), np.uint8)
    expected[:4], expected[7], expected[6, :2] = 1, IGN, IGN
    np.testing.assert_array_equal(label, expected)
    assert lines == [
        f"warning: {ex.label_path}: 2 pixels (2.1%) with colours not in the folder classes "
        "((10, 20, 30)) -> ignore"
    ]


def test_folder_labelmap_ids_make_a_multiclass_task(tmp_path):
    labelmap = {
        "classes": [{"name": "background", "id": 0}, {"name": "road", "id": 7},
                    {"name": "car", "id": 255}],
        "ignore": [128],
    }  # fmt: skip
    ids = np.zeros((H, W), np.uint8)
    ids[:2], ids[2:4], ids[4] = 7, 255, 128
    d = _folder(tmp_path, labelmap, [ids])
    spec = data.resolve_spec("folder", d)
    assert (spec.task, spec.class_names) == ("multiclass", ("background", "road", "car"))
    assert spec.id_map == ((0, 0), (7, 1), (128, IGN), (255, 2))
    (ex,) = data.list_pairs(d, spec)
    expected = np.zeros((H, W), np.uint8)
    expected[:2], expected[2:4], expected[4] = 1, 2, IGN
    np.testing.assert_array_equal(data.read_label(ex, spec, warn=None), expected)


def test_folder_labelmap_mixing_colours_and_ids_is_named(tmp_path):
    labelmap = {"classes": [{"name": "a", "id": 0}, {"name": "b", "color": [1, 2, 3]}]}
    d = _folder(tmp_path, labelmap, [np.zeros((H, W))])
    with pytest.raises(UserError, match="labelmap.json mixes colours and ids"):
        data.resolve_spec("folder", d)


# --- COCO -----------------------------------------------------------------------------------

CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 6, "name": "bus", "supercategory": "vehicle"},
]


def _box(x0, y0, x1, y1):
    """Polygon of the pixels x0..x1-1, y0..y1-1 (pycocotools' rasterisation)."""
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _ann(i, image_id, cat, seg, crowd=0):
    return dict(id=i, image_id=image_id, category_id=cat, segmentation=seg, iscrowd=crowd,
                area=1.0, bbox=[0, 0, 1, 1])  # fmt: skip


@pytest.fixture
def coco(tmp_path):
    d = tmp_path / "coco"
    train = {
        "images": [
            {"id": 1, "file_name": "000001.jpg", "height": H, "width": W},
            {"id": 2, "file_name": "000002.jpg", "height": H, "width": W},
        ],
        "annotations": [
            _ann(10, 1, 1, _box(0, 0, 4, 4)),  # person, rows 0-3, cols 0-3
            _ann(11, 1, 3, _box(2, 2, 6, 6)),  # car, later: wins the overlap rows 2-3 cols 2-3
            _ann(12, 1, 6, _box(6, 0, 9, 8)),  # bus: not a chosen class -> background
            # Crowd of people: column 10 (column-major RLE: 80 zeros, 8 ones, 8 zeros).
            _ann(13, 1, 1, {"counts": [80, 8, 8], "size": [H, W]}, crowd=1),
            _ann(14, 2, 6, _box(0, 0, 12, 8)),  # image 2: only a bus
        ],
        "categories": CATEGORIES,
    }
    val = {
        "images": [{"id": 7, "file_name": "000007.jpg", "height": H, "width": W}],
        "annotations": [_ann(20, 7, 2, _box(0, 0, 1, 1))],
        "categories": CATEGORIES,
    }
    os.makedirs(d / "annotations")
    (d / "annotations/instances_train2017.json").write_text(json.dumps(train))
    (d / "annotations/instances_val2017.json").write_text(json.dumps(val))
    _image(str(d / "train2017/000001.jpg"))
    _image(str(d / "train2017/000002.jpg"), grey=True)  # a 1-channel JPEG, as COCO has
    _image(str(d / "val2017/000007.jpg"))
    return str(d)


def test_coco_person_car_masks_overlap_and_crowd(coco, capsys):
    spec = data.resolve_spec("coco", coco)  # "" = person,car
    assert spec.class_names == ("background", "person", "car")
    assert spec.category_ids == (0, 1, 3) and spec.palette[0] is None
    train, val = data.list_splits(coco, spec)
    assert [(e.name, e.ref) for e in train] == [("000001", 1), ("000002", 2)]
    assert [(e.name, e.ref) for e in val] == [("000007", 7)]
    expected = np.zeros((H, W), np.uint8)
    expected[0:4, 0:4] = 1
    expected[2:6, 2:6] = 2
    expected[:, 10] = IGN
    np.testing.assert_array_equal(data.read_label(train[0], spec), expected)
    # Image 2 holds only a bus: all background; its grey JPEG loads as RGB without a warning.
    image, label = data.load_example(train[1], (16, 24), spec)
    assert image.shape == (16, 24, 3) and (image[..., 0] == image[..., 2]).all()
    assert label.shape == (16, 24) and (label == 0).all()
    assert capsys.readouterr().out == ""


def test_coco_supercategory_and_unknown_class(coco):
    spec = data.resolve_spec("coco", coco, "vehicle")
    assert spec.class_names == ("background", "bicycle", "car", "bus")
    assert spec.category_ids == (0, 2, 3, 6) and spec.task == "multiclass"
    train, val = data.list_splits(coco, spec)
    label = data.read_label(train[0], spec)
    # bus: cols 6-8 x 8 rows = 24 pixels; car: 4 x 4 = 16; the person is background now.
    assert [int((label == c).sum()) for c in (0, 1, 2, 3)] == [96 - 24 - 16, 0, 16, 24]
    assert (label[:, 10] == 0).all()  # a crowd of people (not chosen) stays background
    assert data.read_label(val[0], spec)[0, 0] == 1
    binary = data.resolve_spec("coco", coco, "person")
    assert (binary.task, binary.positive_name) == ("binary", "person")
    with pytest.raises(UserError, match=r"'horse' is no category .*bicycle, bus, car, person"):
        data.resolve_spec("coco", coco, "person,horse")


def test_coco_metadata_counts_instances_of_every_category(coco):
    spec = data.resolve_spec("coco", coco)
    train, _ = data.list_splits(coco, spec)
    # Image 1: one person (the crowd is no instance), one car, one bus.
    assert data.example_metadata(train[0], spec) == {
        "instances_person": 1, "instances_bicycle": 0, "instances_car": 1, "instances_bus": 1,
    }  # fmt: skip
    assert data.example_metadata(train[1], spec)["instances_bus"] == 1
    assert data.example_metadata(train[0], data.KITTI_ROAD) == {}


def test_coco_image_of_another_size_than_its_annotation_is_named(coco):
    spec = data.resolve_spec("coco", coco)
    train, _ = data.list_splits(coco, spec)
    cv2.imwrite(train[0].image_path, np.zeros((H, W + 1, 3), np.uint8))
    with pytest.raises(
        UserError, match=r"is 13x8 but its label .*instances_train2017.json is 12x8"
    ):
        data.load_example(train[0], (16, 24), spec)


# --- all readers ----------------------------------------------------------------------------


def test_static_specs_need_no_data_dir():
    assert data.resolve_spec("kitti_road") is data.KITTI_ROAD
    assert data.resolve_spec("cityscapes").num_classes == 19
    assert data.resolve_spec("folder").num_classes == 2
    assert data.resolve_spec("voc").num_classes == 21  # VOC was the unknown example here
    with pytest.raises(UserError, match="unknown dataset 'ade20k'; choose one of"):
        data.resolve_spec("ade20k")


@pytest.mark.parametrize("name", sorted(data.DATASETS))
def test_spec_round_trips_through_json(name, mapillary, cityscapes, coco, tmp_path):
    from fcn.data import synth

    data_dir = {"mapillary": mapillary, "cityscapes": cityscapes, "coco": coco}.get(name)
    if name in ("labelme", "labelstudio"):  # their classes live in their files
        summary = synth.generate(name, tmp_path, count=2, test_count=0, sizes=((30, 40),))
        (data_dir,) = summary["roots"].values()
    spec = data.resolve_spec(name, data_dir)
    again = data.DatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    # A spec restored from a run reads labels like the resolved one.
    if data_dir:
        ex = data.list_pairs(data_dir, spec)[0]
        np.testing.assert_array_equal(
            data.read_label(ex, again, warn=None), data.read_label(ex, spec, warn=None)
        )


def test_restore_reads_the_runs_dataset_json_and_the_exports_spec(tmp_path, coco):
    from fcn import config as cfg
    from fcn import names
    from fcn.inference import export, restore

    spec = data.resolve_spec("coco", coco, "vehicle")
    config = cfg.Config(dataset="coco")
    assert restore.run_spec(str(tmp_path), cfg.Config()) is data.KITTI_ROAD  # no dataset.json
    (tmp_path / names.DATASET_FILE).write_text(json.dumps(spec.to_dict()))
    assert restore.run_spec(str(tmp_path), config) == spec
    assert restore.export_spec({"dataset_spec": spec.to_dict()}, config) == spec
    # An export carries the whole spec, and restore rebuilds it from there.
    meta = export._metadata(str(tmp_path), "model-5", config, spec, None)
    assert restore.export_spec(json.loads(json.dumps(meta)), config) == spec


def test_a_validation_only_folder_lists_for_evaluate_and_hints_the_right_kind(cityscapes):
    """Users often download only Cityscapes' val archives: evaluate (need_train=False) lists
    them; training still needs train/ and its hint names the synth kind that writes the layout."""
    import shutil

    spec = data.get_spec("cityscapes")
    for sub in ("leftImg8bit/train", "gtFine/train"):
        shutil.rmtree(os.path.join(cityscapes, sub))
    assert [e.name for e in data.list_pairs(cityscapes, spec, need_train=False)] == [
        "frankfurt_000000_000294"
    ]
    with pytest.raises(UserError, match=r"leftImg8bit/train does not exist.*--kind streets"):
        data.list_splits(cityscapes, spec)
    with pytest.raises(UserError, match=r"--kind kitti"):
        data.list_pairs(os.path.join(cityscapes, "nowhere"))
