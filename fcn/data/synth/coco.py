"""Synthetic scenes of people, cars and buses in the COCO instances layout.

A side-on street: ground below a horizon, sky or walls above, clutter (houses, trees, posts).
Objects stand on the ground; their pixel size grows with how far below the horizon they stand,
and they are painted far to near into an instance-id map, so occlusion is exact. Each visible
instance becomes COCO polygons (cv2.findContours of its mask; the instance is what those polygons
rasterise to, with holes filled, so annotations are listed far to near and a nearer one painted
later wins), area and bbox from that mask. Some far groups of people are one crowd annotation
(iscrowd=1, RLE). About 15 % of images are stored as 1-channel grayscale JPEGs.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np

from fcn.data.synth import _common as C

KIND_CODE = 4
PERSON, CAR, BUS = 1, 3, 6  # real COCO category ids
CATEGORIES = (
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 4, "name": "motorcycle", "supercategory": "vehicle"},
    {"id": 5, "name": "airplane", "supercategory": "vehicle"},
    {"id": 6, "name": "bus", "supercategory": "vehicle"},
    {"id": 7, "name": "train", "supercategory": "vehicle"},
    {"id": 8, "name": "truck", "supercategory": "vehicle"},
    {"id": 9, "name": "boat", "supercategory": "vehicle"},
)
_SPLITS = {C.SPLIT_TRAIN: "train2017", C.SPLIT_VAL: "val2017"}
_LONGS, _ASPECTS = (160, 256), (0.5625, 0.75, 1.0, 1.333, 0.75)
_GRAY_SHARE = 0.15
_CLOTHES = (
    (30, 30, 40), (60, 60, 70), (120, 30, 30), (40, 60, 120), (200, 200, 190), (90, 80, 60),
    (150, 120, 80), (70, 110, 70), (180, 60, 90), (110, 110, 115),
)  # fmt: skip
_SKIN = ((230, 190, 160), (190, 140, 110), (140, 95, 70), (90, 60, 45))
_PAINT = (
    (30, 30, 34), (210, 212, 214), (150, 152, 156), (140, 24, 22), (25, 45, 110),
    (60, 70, 60), (235, 235, 230), (200, 160, 40),
)  # fmt: skip
_BUS_PAINT = ((230, 190, 30), (200, 40, 35), (235, 235, 230), (40, 90, 170), (60, 140, 80))


def generate(out, count, test_count, seed, sizes=None, val_count=None):
    """Write out/coco: annotations/instances_{train,val}2017.json, train2017/, val2017/.

    test_count is accepted for a uniform interface; COCO's test images are not written (the
    reader has no test split), so the summary reports 0.
    """
    val_count = max(1, count // 5) if val_count is None else val_count
    val_count = C.check_int("val_count", val_count, 0)
    next_image, next_ann = 1, 1
    with C.staged(out, ("coco",)) as tmp:
        root = tmp / "coco"
        (root / "annotations").mkdir(parents=True)
        for split, n in ((C.SPLIT_TRAIN, count), (C.SPLIT_VAL, val_count)):
            folder = root / _SPLITS[split]
            folder.mkdir()
            images, anns = [], []
            jobs = [(folder, next_image + i, split, i, seed, sizes) for i in range(n)]
            for height, width, found in C.parallel_map(_write_image, jobs):
                name = _file_name(next_image)
                images.append(
                    {"id": next_image, "file_name": name, "height": height, "width": width}
                )
                for ann in found:
                    anns.append({"id": next_ann, "image_id": next_image, **ann})
                    next_ann += 1
                next_image += 1
            doc = {
                "info": {"description": "fcn synthetic COCO-layout scenes", "version": "1.0"},
                "licenses": [],
                "images": images,
                "annotations": anns,
                "categories": list(CATEGORIES),
            }
            path = root / "annotations" / f"instances_{_SPLITS[split]}.json"
            path.write_text(json.dumps(doc, separators=(",", ":")))
    return {"train": count, "val": val_count, "test": 0, "roots": {"coco": str(out / "coco")}}


def _file_name(image_id):
    return f"{image_id:012d}.jpg"


def _write_image(folder, image_id, split, i, seed, sizes):
    """Render image i of a split, write it as <image_id>.jpg; (height, width, its instances'
    annotations without ids)."""
    rng = C.image_rng(KIND_CODE, seed, split, i)
    height, width = C.pick_size(rng, sizes, i, _LONGS, _ASPECTS)
    image, instances = render(rng, height, width)
    C.write_jpeg(folder / _file_name(image_id), image)
    found = (annotation(mask, category, crowd) for category, crowd, mask in instances)
    return height, width, [ann for ann in found if ann is not None]


def annotation(mask, category, crowd):
    """COCO fields {category_id, segmentation, area, bbox, iscrowd} of one instance mask (H, W)
    bool, or None when nothing of it is left to outline. Polygons: the external contours with at
    least 3 points, as flat [x0, y0, x1, y1, ...] lists; area and bbox are those of the mask the
    polygons rasterise to (cv2.fillPoly), which is the instance."""
    if crowd:
        seg = _rle(mask)
        canonical = mask
    else:
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        contours = [c for c in contours if len(c) >= 3]
        if not contours:
            return None
        canonical = np.zeros(mask.shape, np.uint8)
        cv2.fillPoly(canonical, contours, 1)
        canonical = canonical.astype(bool)
        seg = [c.reshape(-1).astype(float).tolist() for c in contours]
    ys, xs = np.nonzero(canonical)
    if len(xs) == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    bbox = [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]
    return {
        "category_id": int(category),
        "segmentation": seg,
        "area": float(canonical.sum()),
        "bbox": bbox,
        "iscrowd": int(crowd),
    }


def _rle(mask):
    try:
        from pycocotools import mask as mask_utils
    except ImportError:  # uncompressed RLE: run lengths in column-major order, from a 0 run
        flat = np.asfortranarray(mask).reshape(-1, order="F").astype(np.int8)
        change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
        counts = np.diff(np.concatenate([[0], change])).tolist()
        return {"size": list(mask.shape), "counts": counts}
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def render(rng, height, width):
    """(image uint8 RGB (H, W, 3) or grayscale (H, W), [(category id, iscrowd, mask bool)]),
    instances listed far to near."""
    horizon = height * rng.uniform(0.25, 0.55)
    img = np.empty((height, width, 3), np.float32)
    grain = np.empty((height, width), np.float32)
    ids = np.zeros((height, width), np.int32)
    _background(rng, img, grain, horizon)
    span = height - horizon
    objects = []  # (foot row, category, crowd, draw)
    n_people = int(rng.integers(0, 7))
    n_cars = int(rng.integers(0, 4))
    n_buses = int(rng.integers(0, 2)) if rng.random() < 0.4 else 0
    if n_people + n_cars == 0:
        n_people = 1
    for category, n in ((PERSON, n_people), (CAR, n_cars), (BUS, n_buses)):
        for _ in range(n):
            foot = horizon + span * rng.uniform(0.1, 1.05)
            scale = (foot - horizon) / span * height * rng.uniform(0.3, 0.55)  # px per 1.7 m
            x = rng.uniform(-0.1, 1.1) * width
            objects.append((foot, category, False, _painter(rng, category, x, foot, scale)))
    if rng.random() < 0.2:  # a far crowd: several small overlapping people, one annotation
        foot = horizon + span * rng.uniform(0.08, 0.25)
        scale = (foot - horizon) / span * height * 0.6
        x0 = rng.uniform(0, 0.7) * width
        people = [
            _person(rng, x0 + k * scale * rng.uniform(0.15, 0.3), foot + rng.normal(0, 1), scale)
            for k in range(int(rng.integers(5, 12)))
        ]
        objects.append((foot - 0.01, PERSON, True, lambda *a, ps=people: [p(*a) for p in ps]))
    objects.sort(key=lambda o: o[0])
    for k, (_, _, _, draw) in enumerate(objects, start=1):
        draw(img, grain, ids, k)
    image = C.camera_response(rng, img, grain, noise_cell=2.5)
    instances = [(cat, crowd, ids == k) for k, (_, cat, crowd, _) in enumerate(objects, start=1)]
    if rng.random() < _GRAY_SHARE:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image, instances


def _background(rng, img, grain, horizon):
    height, width = grain.shape
    top = math.floor(horizon)
    sky = rng.random() < 0.5
    upper = (
        np.float32((rng.uniform(80, 140), rng.uniform(130, 170), 220))
        if sky
        else np.float32(rng.uniform(90, 200, 3))
    )
    ground = np.float32(rng.uniform(70, 170, 3)) * np.float32((1.0, 0.97, 0.92))
    img[:top] = upper
    img[top:] = ground
    grain[:top] = 0.02 if sky else 0.08
    grain[top:] = rng.uniform(0.06, 0.2)
    for _ in range(int(rng.integers(1, 6))):  # houses, hedges and posts behind everything
        x = rng.uniform(0, width)
        w = rng.uniform(0.05, 0.35) * width
        h = rng.uniform(0.1, 0.6) * max(horizon, 4)
        colour = np.float32(rng.uniform(40, 220, 3))
        box = np.array(
            [[x, horizon + 2 - h], [x + w, horizon + 2 - h], [x + w, horizon + 2], [x, horizon + 2]]
        )
        C.fill([img, grain], [box], [colour, rng.uniform(0.04, 0.35)])
    # Uneven light over the whole backdrop: (H, W, 1) gain around 1.
    img *= (1 + 0.12 * C.smooth_noise(rng, height, width, max(width / 6, 2)))[..., None]


def _painter(rng, category, x, foot, scale):
    if category == PERSON:
        return _person(rng, x, foot, scale)
    if category == CAR:
        return _vehicle(rng, x, foot, scale * 0.85, length=2.6, tall=0.85, bus=False)
    return _vehicle(rng, x, foot, scale * 0.85, length=6.5, tall=1.9, bus=True)


def _person(rng, x, foot, scale):
    """A standing or walking person, scale px tall; draw(img, grain, ids, k)."""
    s = scale
    half = s * rng.uniform(0.1, 0.14)
    hip, neck = foot - 0.5 * s, foot - 0.83 * s
    stride = s * rng.uniform(0, 0.12)
    shirt = np.float32(_CLOTHES[int(rng.integers(len(_CLOTHES)))])
    trousers = np.float32(_CLOTHES[int(rng.integers(len(_CLOTHES)))]) * np.float32(0.8)
    skin = np.float32(_SKIN[int(rng.integers(len(_SKIN)))])
    legs = [
        np.array(
            [
                [x - half, hip],
                [x - 0.01 * s, hip],
                [x - 0.01 * s - stride, foot],
                [x - half - stride, foot],
            ]
        ),
        np.array(
            [
                [x + 0.01 * s, hip],
                [x + half, hip],
                [x + half + stride, foot],
                [x + 0.01 * s + stride, foot],
            ]
        ),
    ]
    torso = np.array(
        [[x - half * 1.1, neck], [x + half * 1.1, neck], [x + half, hip], [x - half, hip]]
    )
    swing = rng.uniform(-0.1, 0.1) * s
    arms = [
        np.array(
            [
                [x + d * half * 1.05, neck],
                [x + d * half * 1.5, neck],
                [x + d * half * 1.4 + swing, hip + 0.05 * s],
                [x + d * half * 1.05 + swing, hip + 0.05 * s],
            ]
        )
        for d in (-1, 1)
    ]
    head = C.ellipse_poly(x, neck - 0.08 * s, 0.065 * s, 0.085 * s, n=14)

    def draw(img, grain, ids, k):
        C.fill([img, grain, ids], legs, [trousers, 0.1, k])
        C.fill([img, grain, ids], [torso, *arms], [shirt, 0.1, k])
        C.fill([img, grain, ids], [head], [skin, 0.05, k])

    return draw


def _vehicle(rng, x, foot, scale, length, tall, bus):
    """A car or bus seen from the side: body, cabin or window band, wheels; draw(...)."""
    unit = scale / 1.7 * 1.0  # px per metre (a person is 1.7 m)
    ln, h = length * 1.7 * unit * rng.uniform(0.9, 1.1), tall * 1.7 * unit * rng.uniform(0.9, 1.1)
    direction = 1 if rng.random() < 0.5 else -1
    x0 = x - ln / 2
    wheel = 0.2 * h if not bus else 0.13 * h
    paints = _BUS_PAINT if bus else _PAINT
    body = np.float32(paints[int(rng.integers(len(paints)))]) * np.float32(rng.uniform(0.85, 1.1))
    glass = np.float32((45, 52, 62))
    base = foot - wheel
    if bus:
        shell = [np.array([[x0, foot - h], [x0 + ln, foot - h], [x0 + ln, base], [x0, base]])]
        windows = [
            np.array(
                [
                    [a, foot - 0.9 * h],
                    [a + ln * 0.09, foot - 0.9 * h],
                    [a + ln * 0.09, foot - 0.6 * h],
                    [a, foot - 0.6 * h],
                ]
            )
            for a in np.arange(x0 + ln * 0.04, x0 + ln * 0.95, ln * 0.115)
        ]
    else:
        low = foot - 0.55 * h
        front = x0 + ln if direction > 0 else x0
        back = x0 if direction > 0 else x0 + ln
        shell = [
            np.array([[x0, low], [x0 + ln, low], [x0 + ln, base], [x0, base]]),
            np.array(
                [
                    [back + direction * 0.12 * ln, low],
                    [back + direction * 0.3 * ln, foot - h],
                    [front - direction * 0.35 * ln, foot - h],
                    [front - direction * 0.18 * ln, low],
                ]
            ),
        ]
        windows = [
            np.array(
                [
                    [back + direction * 0.18 * ln, low - 0.05 * h],
                    [back + direction * 0.32 * ln, foot - 0.92 * h],
                    [front - direction * 0.37 * ln, foot - 0.92 * h],
                    [front - direction * 0.24 * ln, low - 0.05 * h],
                ]
            )
        ]
    wheels = [
        C.ellipse_poly(cx, foot - wheel, wheel, wheel, n=16)
        for cx in (x0 + 0.2 * ln, x0 + 0.8 * ln)
    ]

    def draw(img, grain, ids, k):
        shadow = np.array(
            [
                [x0, foot - 1],
                [x0 + ln, foot - 1],
                [x0 + ln + 0.1 * ln, foot + 0.03 * h],
                [x0 - 0.05 * ln, foot + 0.03 * h],
            ]
        )
        mask = np.zeros(grain.shape, np.uint8)
        C.fill([mask], [shadow], [1])
        img[mask.astype(bool)] *= np.float32(0.5)
        C.fill([img, grain, ids], shell, [body, 0.03, k])
        C.fill([img, grain, ids], windows, [glass, 0.02, k])
        C.fill([img, grain, ids], wheels, [(22, 22, 24), 0.05, k])

    return draw
