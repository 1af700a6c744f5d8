"""fcn.data.synth.generate for the new kinds: each writes the layout its reader expects, label
files in the right mode, valid COCO JSON, byte-identical output per seed, every class present."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fcn.data import synth
from fcn.data.synth import coco, streets
from fcn.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((48, 80), (64, 64), (40, 72))
# Each kind's options besides sizes: footprints writes one small scene (tests/test_scenes.py
# checks the scenes themselves).
OPTIONS = {"footprints": {"scenes": 1, "scene_side": 384}}


def _files(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """{kind: (out folder, summary)} of small datasets, 6 training images each."""
    result = {}
    for kind in ("streets", "footprints", "coco", "shapes"):
        out = tmp_path_factory.mktemp(kind)
        result[kind] = (
            out,
            synth.generate(
                kind, out, 6, test_count=2, seed=1, sizes=SIZES, **OPTIONS.get(kind, {})
            ),
        )
    return result


def test_streets_writes_both_layouts(made):
    out, summary = made["streets"]
    assert summary == {
        "kind": "streets", "train": 6, "val": 1, "test": 2,
        "roots": {"mapillary": str(out / "mapillary"), "cityscapes": str(out / "cityscapes")},
    }  # fmt: skip
    m = out / "mapillary"
    config = json.loads((m / "config_v1.2.json").read_text())["labels"]
    assert [c["name"] for c in config][:2] == [
        "construction--flat--road",
        "construction--flat--sidewalk",
    ]
    assert [c["evaluate"] for c in config] == [True] * 7 + [False]
    assert config[5]["color"] == [0, 0, 142] and config[7]["color"] == [0, 0, 0]
    for split, n in (("training", 6), ("validation", 1)):
        images = sorted((m / split / "images").glob("*.jpg"))
        labels = sorted((m / split / "v1.2" / "labels").glob("*.png"))
        assert len(images) == len(labels) == n
        assert [p.stem for p in images] == [p.stem for p in labels]
        for img, lab in zip(images, labels, strict=True):
            with Image.open(lab) as pil:
                assert pil.mode == "P"
                index = np.asarray(pil)
                assert pil.getpalette()[5 * 3 : 6 * 3] == [0, 0, 142]
            assert index.max() <= 7
            assert cv2.imread(str(img)).shape[:2] == index.shape
    assert len(list((m / "testing" / "images").glob("*.jpg"))) == 2
    c = out / "cityscapes"
    left = sorted((c / "leftImg8bit" / "train" / "synthtown").glob("*_leftImg8bit.png"))
    gts = sorted((c / "gtFine" / "train" / "synthtown").glob("*_gtFine_labelIds.png"))
    assert len(left) == len(gts) == 6
    assert left[0].name == "synthtown_000000_000000_leftImg8bit.png"
    assert len(list((c / "gtFine" / "val" / "synthville").glob("*_labelIds.png"))) == 1
    assert len(list((c / "leftImg8bit" / "test" / "synthburg").glob("*.png"))) == 2
    # Same scenes in both layouts: Cityscapes ids are the Mapillary indices through the table.
    table = np.array([7, 8, 11, 21, 23, 26, 24, 0], np.uint8)
    for lab_png, gt in zip(
        sorted((m / "training" / "v1.2" / "labels").glob("*.png")), gts, strict=True
    ):
        ids = cv2.imread(str(gt), cv2.IMREAD_UNCHANGED)
        assert ids.ndim == 2 and ids.dtype == np.uint8
        assert (ids == table[np.asarray(Image.open(lab_png))]).all()


@pytest.mark.parametrize("kind", ["footprints", "shapes"])
def test_folder_kinds_write_binary_masks(made, kind):
    out, summary = made[kind]
    root = out / kind
    assert summary == {"kind": kind, "train": 6, "test": 2, "roots": {kind: str(root)}}
    images = sorted((root / "images").iterdir())
    labels = sorted((root / "labels").iterdir())
    assert (
        [p.name for p in images]
        == [p.name for p in labels]
        == [f"{kind}_{i:06d}.png" for i in range(6)]
    )
    assert not (root / "labelmap.json").exists()
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        mask = cv2.imread(str(lab), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 2 and set(np.unique(mask).tolist()) <= {0, 255}
        assert cv2.imread(str(img)).shape[:2] == mask.shape == SIZES[i % 3]
    assert len(list((root / "test").iterdir())) == 2


def test_coco_json_is_valid_and_polygons_rasterise_to_instances(made):
    out, summary = made["coco"]
    root = out / "coco"
    assert summary["roots"] == {"coco": str(root)} and summary["val"] == 1
    ann_ids, image_ids = [], []
    for split, n in (("train2017", 6), ("val2017", 1)):
        doc = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
        assert {c["id"]: c["name"] for c in doc["categories"]}[6] == "bus"
        assert len(doc["images"]) == n
        sizes = {}
        for im in doc["images"]:
            pixels = cv2.imread(str(root / split / im["file_name"]), cv2.IMREAD_UNCHANGED)
            assert pixels.shape[:2] == (im["height"], im["width"])
            sizes[im["id"]] = pixels.shape[:2]
            image_ids.append(im["id"])
        for ann in doc["annotations"]:
            ann_ids.append(ann["id"])
            assert ann["category_id"] in (1, 3, 6)
            shape = sizes[ann["image_id"]]
            if ann["iscrowd"]:
                continue
            mask = np.zeros(shape, np.uint8)
            polys = [np.array(p, np.int32).reshape(-1, 2) for p in ann["segmentation"]]
            assert all(len(p) >= 3 for p in polys)
            cv2.fillPoly(mask, polys, 1)
            ys, xs = np.nonzero(mask)
            assert ann["area"] == mask.sum()
            assert ann["bbox"] == [
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1,
            ]
    assert len(set(ann_ids)) == len(ann_ids) and len(set(image_ids)) == len(image_ids)


def test_coco_crowd_rle_and_gray_images():
    # Hand-made masks: a 2x3 crowd mask and a polygon instance (a 3x2 block at x 1-2, y 0-2).
    crowd = np.array([[0, 1, 1], [0, 1, 0]], bool)
    ann = coco.annotation(crowd, 1, True)
    assert ann["iscrowd"] == 1 and ann["area"] == 3 and ann["bbox"] == [1.0, 0.0, 2.0, 2.0]
    mask_utils = pytest.importorskip("pycocotools.mask")
    rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
    assert (mask_utils.decode(rle) == crowd).all()
    block = np.zeros((4, 4), bool)
    block[0:3, 1:3] = True
    ann = coco.annotation(block, 3, False)
    assert ann["area"] == 6 and ann["bbox"] == [1.0, 0.0, 2.0, 3.0] and ann["iscrowd"] == 0
    assert ann["segmentation"] == [[1.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 0.0]]


def test_coco_has_crowds_and_grayscale_over_many_images(tmp_path):
    summary = synth.generate("coco", tmp_path, 30, seed=0, sizes=((48, 64),), val_count=0)
    root = Path(summary["roots"]["coco"])
    doc = json.loads((root / "annotations" / "instances_train2017.json").read_text())
    anns = doc["annotations"]
    assert {a["category_id"] for a in anns} == {1, 3, 6}
    assert any(a["iscrowd"] for a in anns)
    channels = [
        cv2.imread(str(root / "train2017" / im["file_name"]), cv2.IMREAD_UNCHANGED).ndim
        for im in doc["images"]
    ]
    assert 2 in channels and 3 in channels


@pytest.mark.parametrize("kind", ["streets", "footprints", "coco", "shapes"])
def test_same_seed_same_bytes(made, kind, tmp_path):
    out, _ = made[kind]
    options = dict(test_count=2, sizes=SIZES, **OPTIONS.get(kind, {}))
    again = synth.generate(kind, tmp_path / "a", 6, seed=1, **options)
    for name, root in again["roots"].items():
        assert _files(root) == _files(out / name)
    other = synth.generate(kind, tmp_path / "b", 6, seed=2, **options)
    assert _files(next(iter(other["roots"].values()))) != _files(
        next(iter(again["roots"].values()))
    )


def test_every_class_occurs_with_sane_shares():
    rng = np.random.default_rng(0)
    labels = [streets.render(rng, 96, 160)[1] for _ in range(20)]
    shares = streets.class_shares(labels)
    assert (shares[:7] > 0.005).all() and shares[7] < 0.05  # unlabeled poles stay rare
    assert 0.15 < shares[streets.ROAD] < 0.5 and 0.05 < shares[streets.SKY] < 0.4
    for mod, low, high in ((synth.footprints, 0.04, 0.4), (synth.shapes, 0.05, 0.5)):
        masks = [mod.render(rng, 96, 96)[1] for _ in range(20)]
        assert low < np.mean(masks) < high
        assert sum(m.any() for m in masks) >= 16


def test_default_sizes_vary_and_include_tiny_frames():
    sizes = set()
    tiny = 0
    for i in range(200):
        h, w = synth._common.pick_size(np.random.default_rng(i), None, i, (160, 256), (0.5, 1.0))
        sizes.add((h, w))
        tiny += max(h, w) <= 64
        assert min(h, w) >= synth._common.MIN_SIDE
    assert len(sizes) > 10 and 3 <= tiny <= 25  # about 5 % tiny


def test_bad_kind_option_and_existing_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown synthetic kind"):
        synth.generate("mnist", tmp_path, 1)
    with pytest.raises(UserError, match="no option"):
        synth.generate("shapes", tmp_path, 1, val_count=2)
    (tmp_path / "cityscapes").mkdir()
    with pytest.raises(UserError, match="cityscapes already exists"):
        synth.generate("streets", tmp_path, 1, sizes=SIZES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cityscapes"]  # nothing half-written


def test_cli_writes_a_kind(tmp_path):
    out = tmp_path / "tmp"
    argv = [
        sys.executable,
        "main.py",
        "synth",
        "--kind",
        "shapes",
        "--out",
        str(out),
        "--count",
        "4",
    ]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "4 training" in proc.stdout and str(out / "shapes") in proc.stdout
    assert len(list((out / "shapes" / "images").iterdir())) == 4
    assert len(list((out / "shapes" / "test").iterdir())) == 12


@pytest.mark.parametrize("kind", ["streets", "footprints", "coco"])
def test_worker_processes_write_the_same_bytes_as_one_process(kind, tmp_path, monkeypatch):
    # 70 images: over _common's threshold, so they are rendered by one spawned worker per core;
    # then again in this process. Each image draws from its own generator: same files, and COCO's
    # image and annotation ids in the same order.
    options = {"sizes": ((48, 64),), **({"scenes": 0} if kind == "footprints" else {})}
    synth.generate(kind, tmp_path / "workers", count=70, test_count=2, seed=4, **options)
    monkeypatch.setattr("fcn.data.synth._common._PARALLEL_MIN", 10**9)
    synth.generate(kind, tmp_path / "here", count=70, test_count=2, seed=4, **options)
    a = sorted(p.relative_to(tmp_path / "workers") for p in (tmp_path / "workers").rglob("*"))
    b = sorted(p.relative_to(tmp_path / "here") for p in (tmp_path / "here").rglob("*"))
    assert a == b and len(a) > 70
    for rel in a:
        if (tmp_path / "here" / rel).is_file():
            assert (tmp_path / "workers" / rel).read_bytes() == (
                tmp_path / "here" / rel
            ).read_bytes()
