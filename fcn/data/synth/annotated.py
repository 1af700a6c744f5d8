"""Hand-labelled formats: scenes of people, cars and dogs drawn as annotation tools record them
(polygons, rectangles, circles, lines, linestrips, points and masks), written as

    voc:         VOC2012/{JPEGImages,SegmentationClass,SegmentationClassAug,ImageSets/Segmentation}
    labelme:     labelme/<stem>.json (+ <stem>.jpg beside, or embedded imageData), labels.txt, test/
    labelstudio: labelstudio/export.json (polygonlabels and brushlabels RLE), images/, test/

The class masks are the LabelMe rasterisation of the shapes (fcn.data.datasets.labelme), so the
pictures show exactly what each format's labels say.
"""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np

from fcn.data.datasets import labelme as labelme_reader
from fcn.data.datasets import labelstudio as labelstudio_reader
from fcn.data.datasets import voc as voc_reader
from fcn.data.synth import _common as C

KIND_CODES = {"voc": 6, "labelme": 7, "labelstudio": 8}
CLASSES = ("person", "car", "dog")
VOC_IDS = tuple(voc_reader.CLASSES.index(c) for c in CLASSES)  # 15, 7, 12
_LONGS, _ASPECTS = (96, 160), (0.75, 1.0, 1.333)
# Each class's colour range: textures differ by class so the small models can learn them.
_TONES = ((200, 60, 60), (60, 60, 200), (60, 170, 60))
_LABELME_KINDS = ("polygon", "rectangle", "circle", "line", "linestrip", "point", "mask")


def _shape(rng, kind, label, height, width):
    """One LabelMe shape dict of this kind inside an H x W image."""
    side = min(height, width)
    c = rng.uniform((0.2 * width, 0.2 * height), (0.8 * width, 0.8 * height))
    r = rng.uniform(0.12, 0.25) * side
    if kind == "polygon":
        t = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(4, 8))))
        pts = np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], -1)
    elif kind == "rectangle":
        pts = np.stack([c - r, c + r * rng.uniform(0.5, 1.0, 2)])
    elif kind == "circle":
        pts = np.stack([c, c + (r, 0)])
    elif kind in ("line", "linestrip"):
        n = 2 if kind == "line" else 4
        pts = c + np.cumsum(rng.normal(0, 0.3 * side, (n, 2)), 0) - (0.1 * side, 0)
    elif kind == "point":
        pts = c[None]
    else:  # mask: a blob in its box
        x0, y0 = np.floor(c - r).astype(int)
        n = int(2 * r)
        yy, xx = np.mgrid[0:n, 0:n]
        blob = ((xx - n / 2) ** 2 + (yy - n / 2) ** 2 * 1.6) < (n / 2) ** 2
        ok, png = cv2.imencode(".png", blob.astype(np.uint8) * 255)
        return {
            "label": label,
            "points": [[float(x0), float(y0)], [float(x0 + n - 1), float(y0 + n - 1)]],
            "shape_type": "mask",
            "mask": base64.b64encode(png.tobytes()).decode(),
            "group_id": None,
            "flags": {},
        }
    pts = np.clip(pts, 0, (width - 1, height - 1))
    return {
        "label": label,
        "points": np.round(pts, 2).tolist(),
        "shape_type": kind,
        "group_id": None,
        "flags": {},
    }


def render(rng, height, width, kinds=_LABELME_KINDS):
    """(image (H, W, 3) uint8, LabelMe shapes, class mask (H, W) uint8: 0 background, k the
    k-th of CLASSES)."""
    img = np.empty((height, width, 3), np.float32)
    img[:] = rng.uniform(90, 150, 3)
    img += C.smooth_noise(rng, height, width, 8)[..., None] * 20
    shapes = []
    for _ in range(int(rng.integers(2, 4))):
        label = CLASSES[int(rng.integers(len(CLASSES)))]
        shapes.append(_shape(rng, kinds[int(rng.integers(len(kinds)))], label, height, width))
    values = {name: i + 1 for i, name in enumerate(CLASSES)}
    mask = labelme_reader.shapes_to_label(height, width, shapes, values, warn=None)
    for k, tone in enumerate(_TONES, start=1):
        sel = mask == k
        img[sel] = np.asarray(tone, np.float32) + rng.normal(0, 12, (int(sel.sum()), 3))
    grain = np.full((height, width), 0.05, np.float32)
    return C.camera_response(rng, img, grain), shapes, mask


def _images(kind, seed, count, test_count, sizes, kinds=_LABELME_KINDS):
    """(split, i, image, shapes, mask) for every training then test image."""
    for split, n in ((C.SPLIT_TRAIN, count), (C.SPLIT_TEST, test_count)):
        for i in range(n):
            rng = C.image_rng(KIND_CODES[kind], seed, split, i)
            height, width = C.pick_size(rng, sizes, i, _LONGS, _ASPECTS, tiny_share=0)
            yield (split, i, *render(rng, height, width, kinds))


def generate_voc(out, count, test_count, seed, sizes=None, val_count=None):
    """VOC2012/ with train.txt, val.txt (val_count, default count // 5, at least 1), test.txt;
    each object's 3-px border is void (255) as in VOC; SegmentationClassAug/ and train_aug.txt
    repeat the training labels without the border (SBD's style)."""
    val_count = max(1, count // 5) if val_count is None else val_count
    ids = {C.SPLIT_TRAIN: [], C.SPLIT_VAL: [], C.SPLIT_TEST: []}
    palette = voc_reader.color_map()
    with C.staged(out, ("VOC2012",)) as tmp:
        root = tmp / "VOC2012"
        for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug"):
            (root / sub).mkdir(parents=True)
        (root / voc_reader.LISTS).mkdir(parents=True)
        for split, i, image, _, mask in _images("voc", seed, count, test_count, sizes):
            stem = f"2026_{split}{i:05d}"
            C.write_jpeg(root / "JPEGImages" / f"{stem}.jpg", image)
            if split == C.SPLIT_TEST:
                ids[split].append(stem)
                continue
            ids[C.SPLIT_VAL if i < val_count else split].append(stem)
            index = np.zeros(mask.shape, np.uint8)
            for k, voc_id in enumerate(VOC_IDS, start=1):
                index[mask == k] = voc_id
            kernel = np.ones((3, 3), np.uint8)
            edge = cv2.dilate(index, kernel) != cv2.erode(index, kernel)
            C.write_png(root / "SegmentationClassAug" / f"{stem}.png", index)
            C.write_palette_png(
                root / "SegmentationClass" / f"{stem}.png", np.where(edge, 255, index), palette
            )
        lists = {"train": C.SPLIT_TRAIN, "val": C.SPLIT_VAL, "test": C.SPLIT_TEST}
        for name, split in lists.items():
            (root / voc_reader.LISTS / f"{name}.txt").write_text(
                "".join(f"{s}\n" for s in ids[split])
            )
        aug = "".join(f"{s}\n" for s in ids[C.SPLIT_TRAIN])
        (root / voc_reader.LISTS / "train_aug.txt").write_text(aug)
    return {
        "train": len(ids[C.SPLIT_TRAIN]),
        "val": len(ids[C.SPLIT_VAL]),
        "test": test_count,
        "roots": {"voc": str(out / "VOC2012")},
    }


def _labels_txt(path):
    path.write_text("\n".join(["__ignore__", "_background_", *CLASSES]) + "\n")


def generate_labelme(out, count, test_count, seed, sizes=None):
    """labelme/: every third file embeds its image as imageData (no image beside it)."""
    with C.staged(out, ("labelme",)) as tmp:
        root = tmp / "labelme"
        (root / "test").mkdir(parents=True)
        _labels_txt(root / "labels.txt")
        for split, i, image, shapes, _ in _images("labelme", seed, count, test_count, sizes):
            stem = f"labelme_{i:06d}"
            if split == C.SPLIT_TEST:
                C.write_jpeg(root / "test" / f"{stem}.jpg", image)
                continue
            embedded = None
            if i % 3 == 2:
                ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                embedded = base64.b64encode(jpg.tobytes()).decode()
            else:
                C.write_jpeg(root / f"{stem}.jpg", image)
            doc = {
                "version": "5.5.0",
                "flags": {},
                "shapes": shapes,
                "imagePath": f"{stem}.jpg",
                "imageData": embedded,
                "imageHeight": int(image.shape[0]),
                "imageWidth": int(image.shape[1]),
            }
            (root / f"{stem}.json").write_text(json.dumps(doc))
    return {"train": count, "test": test_count, "roots": {"labelme": str(out / "labelme")}}


def generate_labelstudio(out, count, test_count, seed, sizes=None):
    """labelstudio/export.json: polygons as polygonlabels (percent of the image), every other
    shape kind as a brushlabels RLE of its LabelMe mask; images under images/."""
    tasks = []
    kinds = ("polygon", "polygon", "circle", "rectangle", "mask")
    with C.staged(out, ("labelstudio",)) as tmp:
        root = tmp / "labelstudio"
        (root / "images").mkdir(parents=True)
        (root / "test").mkdir()
        for split, i, image, shapes, _ in _images(
            "labelstudio", seed, count, test_count, sizes, kinds
        ):
            stem = f"labelstudio_{i:06d}"
            if split == C.SPLIT_TEST:
                C.write_jpeg(root / "test" / f"{stem}.jpg", image)
                continue
            C.write_jpeg(root / "images" / f"{stem}.jpg", image)
            h, w = image.shape[:2]
            results = [labelstudio_reader.result_of(s, h, w) for s in shapes]
            tasks.append(
                {
                    "id": i + 1,
                    "data": {"image": f"/data/upload/1/{stem}.jpg"},
                    "annotations": [{"id": i + 1, "result": results}],
                }
            )
        (root / "export.json").write_text(json.dumps(tasks))
    return {"train": count, "test": test_count, "roots": {"labelstudio": str(out / "labelstudio")}}
