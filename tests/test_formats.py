"""The hand-labelled formats' readers on fixtures written here, by hand-worked masks: VOC's
palette, void border and lists; every LabelMe shape kind as labelme draws it; Label Studio's
polygons (percent) and brush RLE (a hand-made bit stream)."""

import base64
import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from fcn import data
from fcn.data.datasets import labelme, labelstudio, voc
from fcn.errors import UserError

IGN = data.IGNORE_LABEL


def _collect():
    lines = []
    return lines, lines.append


# --- VOC ------------------------------------------------------------------------------------


def test_voc_color_map_is_vocs():
    cmap = voc.color_map()
    assert cmap[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert cmap[15] == (192, 128, 128) and cmap[255] == voc.VOID_COLOR == (224, 224, 192)


@pytest.fixture
def voc_dir(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", voc.LISTS):
        (root / sub).mkdir(parents=True)
    index = np.zeros((4, 6), np.uint8)
    index[1:3, 1:4] = 15  # person
    index[0, :] = 255  # the void border
    flat = [c for rgb in voc.color_map() for c in rgb]
    for stem in ("a", "b", "c"):
        cv2.imwrite(str(root / "JPEGImages" / f"{stem}.jpg"), np.zeros((4, 6, 3), np.uint8))
        img = Image.fromarray(index, "P")
        img.putpalette(flat)
        img.save(root / "SegmentationClass" / f"{stem}.png")
        cv2.imwrite(
            str(root / "SegmentationClassAug" / f"{stem}.png"), np.full((4, 6), 7, np.uint8)
        )
    (root / voc.LISTS / "train.txt").write_text("a\nb\n")
    (root / voc.LISTS / "val.txt").write_text("c\n")
    (root / voc.LISTS / "train_aug.txt").write_text("a\nb\nc\n")  # c is val: left out
    return tmp_path


def test_voc_reads_palette_indices_void_and_the_official_lists(voc_dir):
    for data_dir in (voc_dir, voc_dir / "VOCdevkit", voc_dir / "VOCdevkit" / "VOC2012"):
        spec = data.resolve_spec("voc", str(data_dir))
        train, val = data.list_splits(str(data_dir), spec)
        assert [e.name for e in train] == ["a", "b"] and [e.name for e in val] == ["c"]
    assert spec.num_classes == 21 and spec.class_names[15] == "person"
    # A spec saved by a run on VOCdevkit's parent reads the VOC2012 folder itself too.
    outer = data.resolve_spec("voc", str(voc_dir))
    assert outer.root == "VOCdevkit/VOC2012"
    assert [e.name for e in data.list_pairs(str(data_dir), outer)] == ["a", "b", "c"]
    label = data.read_label(train[0], spec)
    expected = np.zeros((4, 6), np.uint8)
    expected[1:3, 1:4], expected[0] = 15, IGN
    np.testing.assert_array_equal(label, expected)
    # An RGB re-save of the label decodes by VOC's colours, void included.
    rgb = np.array(voc.color_map(), np.uint8)[expected]
    cv2.imwrite(train[0].label_path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(data.read_label(train[0], spec), expected)


def test_voc_aug_reads_sbd_labels_less_val_and_missing_files_are_named(voc_dir):
    spec = data.resolve_spec("voc", str(voc_dir), voc_aug=True)
    train, val = data.list_splits(str(voc_dir), spec)
    assert [e.name for e in train] == ["a", "b"] and [e.name for e in val] == ["c"]
    assert (data.read_label(train[0], spec) == 7).all()
    with pytest.raises(UserError, match="--voc-aug adds SBD"):
        data.resolve_spec("folder", str(voc_dir), voc_aug=True)
    os.remove(train[1].image_path)
    with pytest.raises(UserError, match=r"lack JPEGImages/<id>.jpg .* \(e.g. b\)"):
        data.list_splits(str(voc_dir), spec)


# --- LabelMe --------------------------------------------------------------------------------


def _disk(h, w, cx, cy, r):
    """labelme's (PIL's) filled ellipse of radius r at integer centre: dx^2 + dy^2 <= r^2 + r."""
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r + r


def _png64(mask):
    ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    return base64.b64encode(png.tobytes()).decode()


H, W = 12, 14
SHAPE_CASES = {
    # kind: (points, extra, the hand-worked mask)
    "rectangle": ([[4, 3], [1, 1]], {}, lambda m: m.__setitem__((slice(1, 4), slice(1, 5)), 1)),
    "circle": ([[6, 6], [8, 6]], {}, lambda m: m.__setitem__(Ellipsis, _disk(H, W, 6, 6, 2))),
    "point": ([[6, 6]], {}, lambda m: m.__setitem__(Ellipsis, _disk(H, W, 6, 6, 5))),
    # 10 px wide: rows y - 4 .. y + 5
    "line": ([[0, 5], [13, 5]], {}, lambda m: m.__setitem__(slice(1, 11), 1)),
}


def _triangle(m):
    for r in range(1, 6):  # (1,1), (5,1), (1,5): row r holds columns 1 .. 6 - r
        m[r, 1 : 7 - r] = 1


def _linestrip(m):
    m[0:6, 0:12] = 1  # the horizontal stroke at y = 0 (rows -4..5), x 0..6 and the joint
    m[:, 2:12] = 1  # the vertical one at x = 6: columns 2..11


def _pasted(m):
    m[9:11, 9:12] = [[1, 0, 1], [0, 1, 1]]


SMALL = np.array([[1, 0, 1], [0, 1, 1]], bool)
SHAPE_CASES.update(
    polygon=([[1, 1], [5, 1], [1, 5]], {}, _triangle),
    linestrip=([[0, 0], [6, 0], [6, 11]], {}, _linestrip),
    mask=([[9, 9], [11, 10]], {"mask": _png64(SMALL)}, _pasted),
)


@pytest.mark.parametrize("kind", sorted(SHAPE_CASES))
def test_every_labelme_shape_kind_rasterises_as_labelme_does(kind):
    points, extra, fill = SHAPE_CASES[kind]
    expected = np.zeros((H, W), np.uint8)
    fill(expected)
    mask = labelme.shape_mask(H, W, {"shape_type": kind, "points": points, **extra})
    np.testing.assert_array_equal(mask, expected.astype(bool))


def _labelme_file(folder, stem, shapes, embed=None, h=H, w=W):
    doc = {"shapes": shapes, "imagePath": f"{stem}.png", "imageHeight": h, "imageWidth": w}
    if embed is not None:
        ok, png = cv2.imencode(".png", embed)
        doc["imageData"] = base64.b64encode(png.tobytes()).decode()
    else:
        cv2.imwrite(str(folder / f"{stem}.png"), np.zeros((h, w, 3), np.uint8))
    (folder / f"{stem}.json").write_text(json.dumps(doc))


def test_labelme_folder_classes_order_ignore_and_embedded_images(tmp_path, capsys):
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\ncat\ndog\n")
    shapes = [
        {"label": "cat", "points": [[1, 1], [6, 4]], "shape_type": "rectangle"},
        {"label": "dog", "points": [[4, 2], [8, 5]], "shape_type": "rectangle"},  # over the cat
        {"label": "__ignore__", "points": [[0, 10], [1, 11]], "shape_type": "rectangle"},
        {"label": "bird", "points": [[12, 0], [13, 1]], "shape_type": "rectangle"},
    ]
    _labelme_file(tmp_path, "a", shapes)
    picture = np.full((H, W, 3), 77, np.uint8)
    _labelme_file(tmp_path, "b", shapes[:1], embed=picture)
    _labelme_file(tmp_path, "c", [])  # no shapes: skipped
    spec = data.resolve_spec("labelme", str(tmp_path))
    assert spec.class_names == ("background", "cat", "dog") and spec.task == "multiclass"
    train, val = data.list_splits(str(tmp_path), spec)
    assert val is None and [e.name for e in train] == ["a", "b"]
    assert f"{tmp_path / 'c.json'}: no shapes; skipped" in capsys.readouterr().out
    assert train[1].image_path.endswith("b.json")
    assert (data.read_image(train[1].image_path) == 77).all()
    lines, warn = _collect()
    label = data.read_label(train[0], spec, warn)
    expected = np.zeros((H, W), np.uint8)
    expected[1:5, 1:7] = 1
    expected[2:6, 4:9] = 2
    expected[10:12, 0:2] = IGN
    expected[0:2, 12:14] = IGN  # 'bird' is not in labels.txt
    np.testing.assert_array_equal(label, expected)
    assert lines == [f"warning: {train[0].label_path}: labels not in labels.txt (bird) -> ignore"]


def test_labelme_malformed_file_and_missing_labels_txt_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="labels.txt does not exist"):
        data.resolve_spec("labelme", str(tmp_path))
    (tmp_path / "labels.txt").write_text("_background_\nfoo\n")
    (tmp_path / "bad.json").write_text("{not json")
    spec = data.resolve_spec("labelme", str(tmp_path))
    with pytest.raises(UserError, match=r"bad.json is not a LabelMe file"):
        data.list_splits(str(tmp_path), spec)


# --- Label Studio ---------------------------------------------------------------------------

# 1x2 RGBA (8 values): a repeat run of 6 zeros, then a literal run (0, 255). Header: count 8
# (32 bits), word size 8 (7 in 5 bits), four run-length widths of 4 bits (3 = 0011 each).
HAND_RLE_BITS = (
    "00000000000000000000000000001000" + "00111" + "0011" * 4
    + "1" + "00" + "0101" + "00000000"  # repeat, width 0, 6 - 1 = 5, value 0
    + "0" + "00" + "0001" + "00000000" + "11111111"  # literal, 2 - 1 = 1, values 0, 255
)  # fmt: skip


def test_label_studio_rle_decodes_a_hand_made_stream_and_round_trips():
    bits = HAND_RLE_BITS + "0" * (-len(HAND_RLE_BITS) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    np.testing.assert_array_equal(labelstudio.decode_rle(rle), [0, 0, 0, 0, 0, 0, 0, 255])
    values = np.repeat(np.array([0, 255, 3, 0], np.uint8), [70000, 5, 1, 30])
    np.testing.assert_array_equal(labelstudio.decode_rle(labelstudio.encode_rle(values)), values)
    with pytest.raises(ValueError, match="ends early"):
        labelstudio.decode_rle(rle[:8])


def test_label_studio_export_polygons_in_percent_and_brushes(tmp_path, capsys):
    h, w = 10, 20
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((h, w, 3), np.uint8))
    brush = np.zeros((h, w, 4), np.uint8)
    brush[6:9, 2:5, 3] = 255
    size = {"original_width": w, "original_height": h}
    results = [
        # (10%, 10%) .. (50%, 50%) of 20x10: the rectangle x 2..10, y 1..5 (PIL, inclusive)
        {"type": "polygonlabels", **size,
         "value": {"points": [[10, 10], [50, 10], [50, 50], [10, 50]], "polygonlabels": ["cat"]}},
        {"type": "brushlabels", **size,
         "value": {"format": "rle", "rle": labelstudio.encode_rle(brush), "brushlabels": ["dog"]}},
    ]  # fmt: skip
    tasks = [
        {"id": 1, "data": {"image": "/data/upload/3/a.png"}, "annotations": [{"result": results}]},
        {"id": 2, "data": {"image": "/data/upload/3/b.png"}, "annotations": [{"result": []}]},
    ]
    (tmp_path / "export.json").write_text(json.dumps(tasks))
    spec = data.resolve_spec("labelstudio", str(tmp_path))
    assert spec.class_names == ("background", "cat", "dog")
    train, val = data.list_splits(str(tmp_path), spec)
    assert val is None and [e.image_path for e in train] == [str(tmp_path / "images" / "a.png")]
    assert "task 2 (/data/upload/3/b.png) has no regions; skipped" in capsys.readouterr().out
    expected = np.zeros((h, w), np.uint8)
    expected[1:6, 2:11] = 1
    expected[6:9, 2:5] = 2
    np.testing.assert_array_equal(data.read_label(train[0], spec), expected)
    (tmp_path / "export.json").write_text("[{}]")
    with pytest.raises(UserError, match="export.json is not a Label Studio JSON export"):
        data.list_splits(str(tmp_path), spec)


def test_synth_writes_every_format_and_its_reader_reads_it(tmp_path):
    from fcn.data import synth

    sizes = ((30, 40),)
    for kind in ("voc", "labelme", "labelstudio"):
        summary = synth.generate(kind, tmp_path, count=5, test_count=1, seed=0, sizes=sizes)
        (root,) = summary["roots"].values()
        spec = data.resolve_spec(kind, root)
        train, val = data.list_splits(root, spec)
        assert len(train) + len(val or []) == 5 and len(data.list_test_images(root, spec)) == 1
        labels = np.stack([data.read_label(e, spec, warn=None) for e in train])
        assert labels.shape == (len(train), 30, 40) and (labels > 0).any()
        assert data.read_image(train[-1].image_path).shape == (30, 40, 3)
