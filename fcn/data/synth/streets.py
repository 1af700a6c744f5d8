"""Synthetic street scenes with 7 classes, written in the Mapillary Vistas and Cityscapes layouts.

A small world model, as for the KITTI scenes: flat ground, a pinhole camera 1.3-1.8 m above it
looking down a straight street. Per pixel the camera ray is intersected with the ground, the two
building facade planes (x = const, broken into houses of random length and height, with gaps of
hedge) and an optional far wall; the nearest hit decides class and surface. Trees, parked and
driving cars, people and poles (unlabeled, so ignored) are world boxes projected by the same
camera and painted far to near, so they occlude each other and the background exactly.
Coordinates: x metres sideways from the street centre, z metres ahead, y metres up.
"""

from __future__ import annotations

import json

import numpy as np

from fcn.data.synth import _common as C

KIND_CODE = 2
# Class index = position; the last one is "unlabeled" (evaluate false, so ignored by readers).
ROAD, SIDEWALK, BUILDING, VEGETATION, SKY, CAR, PERSON, UNLABELED = range(8)
CLASS_NAMES = ("road", "sidewalk", "building", "vegetation", "sky", "car", "person")
MAPILLARY_LABELS = (
    ("construction--flat--road", "Road", (128, 64, 128)),
    ("construction--flat--sidewalk", "Sidewalk", (244, 35, 232)),
    ("construction--structure--building", "Building", (70, 70, 70)),
    ("nature--vegetation", "Vegetation", (107, 142, 35)),
    ("nature--sky", "Sky", (70, 130, 180)),
    ("object--vehicle--car", "Car", (0, 0, 142)),
    ("human--person", "Person", (220, 20, 60)),
    ("void--unlabeled", "Unlabeled", (0, 0, 0)),
)
# Cityscapes label ids (not train ids) of the same classes, in class-index order.
CITYSCAPES_IDS = (7, 8, 11, 21, 23, 26, 24, 0)
CITIES = {C.SPLIT_TRAIN: "synthtown", C.SPLIT_VAL: "synthville", C.SPLIT_TEST: "synthburg"}
_MAP_SPLITS = {C.SPLIT_TRAIN: "training", C.SPLIT_VAL: "validation", C.SPLIT_TEST: "testing"}
_CS_SPLITS = {C.SPLIT_TRAIN: "train", C.SPLIT_VAL: "val", C.SPLIT_TEST: "test"}

_LONGS, _ASPECTS = (160, 256), (0.5, 0.5625, 0.625, 0.75, 1.0)
# Texture strength per class: vegetation is rough and leafy, sky smooth, paint and glass smooth.
_GRAIN = {ROAD: 0.09, SIDEWALK: 0.07, BUILDING: 0.06, VEGETATION: 0.38, SKY: 0.015}
_CAR_GRAIN, _PERSON_GRAIN, _POLE_GRAIN = 0.03, 0.10, 0.03
_WALLS = (
    (196, 182, 160), (170, 170, 168), (150, 82, 66), (224, 220, 206), (205, 190, 140),
    (130, 120, 110), (180, 196, 200), (120, 112, 100), (160, 120, 90),
)  # fmt: skip
_CARS = (
    (30, 30, 34), (210, 212, 214), (150, 152, 156), (140, 24, 22), (25, 45, 110),
    (60, 70, 60), (235, 235, 230), (90, 90, 96), (200, 160, 40),
)  # fmt: skip
_CLOTHES = (
    (30, 30, 40), (60, 60, 70), (120, 30, 30), (40, 60, 120), (200, 200, 190), (90, 80, 60),
    (150, 120, 80), (70, 110, 70), (180, 60, 90), (110, 110, 115),
)  # fmt: skip
_SKIN = ((230, 190, 160), (190, 140, 110), (140, 95, 70), (90, 60, 45))


def generate(out, count, test_count, seed, sizes=None, val_count=None):
    """Write out/mapillary and out/cityscapes (the same scenes); return the summary dict."""
    val_count = max(1, count // 5) if val_count is None else val_count
    val_count = C.check_int("val_count", val_count, 0)
    counts = {C.SPLIT_TRAIN: count, C.SPLIT_VAL: val_count, C.SPLIT_TEST: test_count}
    with C.staged(out, ("mapillary", "cityscapes")) as tmp:
        mapillary, cityscapes = tmp / "mapillary", tmp / "cityscapes"
        _write_config(mapillary)
        C.parallel_map(
            _write_scene,
            [
                (mapillary, cityscapes, split, i, seed, sizes)
                for split, n in counts.items()
                for i in range(n)
            ],
        )
    roots = {"mapillary": str(out / "mapillary"), "cityscapes": str(out / "cityscapes")}
    return {"train": count, "val": val_count, "test": test_count, "roots": roots}


def _write_config(mapillary):
    labels = [
        {"name": n, "readable": r, "color": list(c), "instances": False, "evaluate": True}
        for n, r, c in MAPILLARY_LABELS
    ]
    labels[UNLABELED]["evaluate"] = False
    mapillary.mkdir(parents=True)
    (mapillary / "config_v1.2.json").write_text(json.dumps({"labels": labels}, indent=1))


def _write_scene(mapillary, cityscapes, split, i, seed, sizes):
    rng = C.image_rng(KIND_CODE, seed, split, i)
    height, width = C.pick_size(rng, sizes, i, _LONGS, _ASPECTS)
    image, label = render(rng, height, width)
    key = f"synth_{_MAP_SPLITS[split]}_{i:06d}"
    images = mapillary / _MAP_SPLITS[split] / "images"
    images.mkdir(parents=True, exist_ok=True)
    C.write_jpeg(images / f"{key}.jpg", image)
    city = CITIES[split]
    stem = f"{city}_{i // 100:06d}_{i % 100:06d}"
    left = cityscapes / "leftImg8bit" / _CS_SPLITS[split] / city
    left.mkdir(parents=True, exist_ok=True)
    C.write_png(left / f"{stem}_leftImg8bit.png", image)
    if split == C.SPLIT_TEST:
        return
    labels = mapillary / _MAP_SPLITS[split] / "v1.2" / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    C.write_palette_png(labels / f"{key}.png", label, [c for _, _, c in MAPILLARY_LABELS])
    gt = cityscapes / "gtFine" / _CS_SPLITS[split] / city
    gt.mkdir(parents=True, exist_ok=True)
    ids = np.asarray(CITYSCAPES_IDS, np.uint8)[label]
    C.write_png(gt / f"{stem}_gtFine_labelIds.png", ids)
    people_cars = (CITYSCAPES_IDS[6], CITYSCAPES_IDS[5])  # instances (evaluate's iIoU)
    C.write_png(gt / f"{stem}_gtFine_instanceIds.png", C.instance_ids(ids, people_cars))


def render(rng, height, width):
    """One scene: (image uint8 (H, W, 3) RGB, label uint8 (H, W) class index 0..7)."""
    cam_h = rng.uniform(1.3, 1.8)
    focal = width * rng.uniform(0.55, 0.85)
    horizon = height * rng.uniform(0.36, 0.52)
    centre = width * (0.5 + rng.normal(0, 0.06))
    road = rng.uniform(3.0, 7.0)  # half width of the asphalt, m
    walk = road + rng.uniform(1.5, 4.0)  # outer edge of the sidewalks
    cam_x = rng.uniform(-0.5, 0.5) * road
    facades = [(-1, -(walk + rng.uniform(0, 1.5))), (1, walk + rng.uniform(0, 1.5))]

    rows = (np.arange(height, dtype=np.float32) + 0.5 - horizon)[:, None] / focal  # v (H, 1)
    cols = (np.arange(width, dtype=np.float32) + 0.5 - centre)[None, :] / focal  # u (1, W)
    depth = np.full((height, width), np.inf, np.float32)
    label = np.full((height, width), SKY, np.uint8)
    img = np.zeros((height, width, 3), np.float32)
    grain = np.full((height, width), _GRAIN[SKY], np.float32)
    sun = rng.choice((-1, 1))  # the facade on this side is lit, the other in shade

    _sky(rng, img, horizon)
    with np.errstate(divide="ignore", invalid="ignore"):
        zg = np.where(rows > 0, cam_h / rows, np.inf) * np.ones_like(cols)  # (H, W) ground depth
        xg = cols * zg + cam_x
        _ground(rng, img, label, grain, depth, zg, xg, road, walk, facades, sun)
        for side, x_face in facades:
            _facade(rng, img, label, grain, depth, rows, cols, cam_h, cam_x, side, x_face, sun)
        if rng.random() < 0.4:
            _far_wall(rng, img, label, grain, depth, rows, cam_h)

    cam = (focal, horizon, centre, cam_h, cam_x)
    items = _objects(rng, cam, road, walk, facades, height, width)
    for _, draw in sorted(items, key=lambda t: -t[0]):  # far to near
        draw(img, label, grain)
    image = C.camera_response(rng, img, grain)
    return image, label


def _sky(rng, img, horizon):
    height, width = img.shape[:2]
    overcast = rng.random() < 0.35
    high = (185, 188, 194) if overcast else (rng.uniform(50, 120), rng.uniform(110, 165), 225)
    low = (225, 226, 230) if overcast else (200, 215, 232)
    t = np.clip((np.arange(height, dtype=np.float32)[:, None, None] + 0.5) / max(horizon, 1), 0, 1)
    img[:] = (1 - t) * np.float32(high) + t * np.float32(low)
    clouds = np.clip(C.smooth_noise(rng, height, width, max(width / 12, 2)), 0, None)
    img += (clouds * np.float32(rng.uniform(10, 45)))[..., None] * (1 - t)


def _ground(rng, img, label, grain, depth, zg, xg, road, walk, facades, sun):
    ground = np.isfinite(zg)
    ax = np.abs(xg)
    cls = np.where(ax <= road, ROAD, np.where(ax <= walk, SIDEWALK, VEGETATION)).astype(np.uint8)
    grey = rng.uniform(65, 115)
    asphalt = np.float32((grey * 0.97, grey, grey * 1.04))
    pave = rng.uniform(130, 185) * np.float32(
        (1.05, 1.0, 0.92) if rng.random() < 0.7 else (1.12, 0.88, 0.82)
    )
    grass = np.float32((rng.uniform(55, 110), rng.uniform(95, 150), rng.uniform(35, 75)))
    colour = np.stack([asphalt, pave, np.zeros(3, np.float32), grass])[np.minimum(cls, 3)]
    # Lane marks (road) and paving joints and kerb stones (sidewalk), laid out in metres.
    zf = np.where(ground, zg, 0)
    fade = np.clip(1.5 - zf / 40, 0, 1)[..., None]
    mark = (np.abs(xg) < 0.08) & ((zf % 9.0) < 3.0) | (np.abs(ax - (road - 0.35)) < 0.07)
    colour = np.where(
        (mark & (cls == ROAD))[..., None], np.float32(225) * fade + colour * (1 - fade), colour
    )
    kerb = (cls == SIDEWALK) & (ax - road < 0.2)
    colour[kerb] = np.float32(rng.uniform(170, 210))
    u, v = xg / 0.5, zf / 0.5
    joint = (cls == SIDEWALK) & (((u - np.floor(u)) < 0.08) | ((v - np.floor(v)) < 0.08))
    colour[joint] *= 1 - 0.2 * fade[joint]
    # Shadow of the shaded side's houses: a band of street along that facade.
    x_shade = facades[0][1] if sun > 0 else facades[1][1]
    reach = rng.uniform(0, road + 4)
    shade = np.abs(xg - x_shade) < reach
    colour[shade] *= np.float32(rng.uniform(0.5, 0.75))
    img[ground] = colour[ground]
    label[ground] = cls[ground]
    grain[ground] = np.take(
        np.float32([_GRAIN[ROAD], _GRAIN[SIDEWALK], 0, _GRAIN[VEGETATION]]), cls
    )[ground]
    depth[ground] = zg[ground]


def _facade(rng, img, label, grain, depth, rows, cols, cam_h, cam_x, side, x_face, sun):
    """Houses along the plane x = x_face: random lengths, heights and colours, window grids."""
    dx = x_face - cam_x
    zf = np.where(cols * dx > 0, dx / cols, np.inf) * np.ones_like(rows)  # (H, W)
    yf = cam_h - rows * zf
    n = 40
    bounds = np.cumsum(rng.uniform(6, 25, n)) - rng.uniform(0, 20)
    house = np.clip(np.searchsorted(bounds, np.where(np.isfinite(zf), zf, 0)), 0, n - 1)
    gap = rng.random(n) < 0.22
    tall = np.where(gap, rng.uniform(1.2, 4.0, n), rng.uniform(5, 28, n))
    hit = np.isfinite(zf) & (zf > 0.3) & (yf >= 0) & (yf <= tall[house]) & (zf < depth)
    walls = np.float32(_WALLS)[rng.integers(len(_WALLS), size=n)] * rng.uniform(
        0.8, 1.1, (n, 1)
    ).astype(np.float32)
    hedge = np.float32((rng.uniform(40, 90), rng.uniform(80, 130), rng.uniform(30, 60)))
    colour = walls[house]
    # Windows: a grid in (depth, height) metres per house; ground floor shop windows are wider.
    wz, wy = rng.uniform(2.5, 4.0, n)[house], rng.uniform(2.8, 3.5, n)[house]
    pz = (zf - bounds[house]) / wz
    py = yf / wy
    frac_z, frac_y = pz - np.floor(pz), py - np.floor(py)
    window = (frac_z > 0.25) & (frac_z < 0.75) & (frac_y > 0.3) & (frac_y < 0.8) & (py > 0.9)
    window &= yf < tall[house] - 0.8
    glass = np.float32((rng.uniform(40, 90), rng.uniform(50, 95), rng.uniform(60, 110)))
    colour = np.where(window[..., None], glass, colour)
    colour *= np.float32(1.0 if side == sun else rng.uniform(0.55, 0.8))
    colour = np.where(gap[house][..., None], hedge, colour)
    cls = np.where(gap[house], VEGETATION, BUILDING).astype(np.uint8)
    img[hit] = colour[hit]
    label[hit] = cls[hit]
    grain[hit] = np.where(gap[house], _GRAIN[VEGETATION], _GRAIN[BUILDING])[hit]
    depth[hit] = zf[hit]


def _far_wall(rng, img, label, grain, depth, rows, cam_h):
    z = rng.uniform(40, 120)
    y = cam_h - rows * z  # (H, 1)
    hit = (y >= 0) & (y <= rng.uniform(8, 30)) & (z < depth)
    colour = np.float32(_WALLS[int(rng.integers(len(_WALLS)))]) * np.float32(rng.uniform(0.7, 1.0))
    img[hit] = colour
    label[hit] = BUILDING
    grain[hit] = _GRAIN[BUILDING]
    depth[hit] = z


def _objects(rng, cam, road, walk, facades, height, width):
    """[(depth, draw(img, label, grain))] for trees, poles, cars and people."""
    items = []
    z_max = 60.0
    for side, _ in facades:
        x_tree = side * (walk - rng.uniform(0.5, 1.2))
        z = rng.uniform(4, 20)
        while z < z_max and rng.random() < 0.85:
            if rng.random() < 0.6:
                items.append((z, _tree(rng, cam, x_tree, z)))
            elif rng.random() < 0.5:
                items.append((z, _pole(rng, cam, side * (road + 0.5), z)))
            z += rng.uniform(6, 18)
    for _ in range(int(rng.integers(1, 7))):  # cars: parked along the kerbs or driving
        if rng.random() < 0.5:
            x = rng.choice((-1, 1)) * (road - 1.2)
        else:
            x = rng.uniform(-road + 1.5, road - 1.5)
        items.append((z := rng.uniform(4, 50), _car(rng, cam, x, z)))
    for _ in range(int(rng.integers(2, 11))):  # people on the sidewalks, a few crossing
        if rng.random() < 0.8:
            x = rng.choice((-1, 1)) * rng.uniform(road + 0.4, walk - 0.3)
        else:
            x = rng.uniform(-road, road)
        z = min(3 + rng.exponential(8), 35)  # most near enough to show limbs
        items.append((z, _person(rng, cam, x, z)))
    return items


def _project(cam, x, z, y):
    focal, horizon, centre, cam_h, cam_x = cam
    x, z, y = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in (x, z, y)))
    return np.stack([centre + focal * (x - cam_x) / z, horizon + focal * (cam_h - y) / z], -1)


def _shadow(cam, x0, x1, z0, z1):
    poly = _project(cam, [x0, x1, x1, x0], [z0, z0, z1, z1], 0.0)

    def draw(img, label, grain):
        mask = np.zeros(img.shape[:2], np.uint8)
        C.fill([mask], [poly], [1])
        img[mask.astype(bool)] *= np.float32(0.55)

    return draw


def _tree(rng, cam, x, z):
    trunk_h, r = rng.uniform(1.8, 3.5), rng.uniform(1.2, 2.8)
    trunk = _project(cam, [x - 0.15, x + 0.15, x + 0.15, x - 0.15], z, [0, 0, trunk_h, trunk_h])
    cx, cy = _project(cam, x, z, trunk_h + 0.7 * r)
    scale = cam[0] / z
    crown = C.ellipse_poly(cx, cy, r * scale, r * scale * rng.uniform(0.8, 1.2), n=20)
    # A ragged outline: each vertex pushed in or out.
    crown = (crown - (cx, cy)) * rng.uniform(0.8, 1.1, (20, 1)) + (cx, cy)
    leaf = np.float32((rng.uniform(30, 90), rng.uniform(70, 140), rng.uniform(20, 60)))
    bark = np.float32((rng.uniform(60, 100), rng.uniform(45, 70), 40))

    def draw(img, label, grain):
        C.fill([img, label, grain], [trunk], [bark, VEGETATION, 0.15])
        C.fill([img, label, grain], [crown], [leaf, VEGETATION, _GRAIN[VEGETATION]])

    return draw


def _pole(rng, cam, x, z):
    tall = rng.uniform(3.5, 6.0)
    pole = _project(cam, [x - 0.07, x + 0.07, x + 0.07, x - 0.07], z, [0, 0, tall, tall])
    sign = _project(cam, [x - 0.35, x + 0.35, x + 0.35, x - 0.35], z, [tall - 0.7] * 2 + [tall] * 2)
    grey = np.float32([rng.uniform(70, 140)] * 3)
    plate = np.float32(((200, 30, 30), (30, 60, 170), (230, 230, 230))[int(rng.integers(3))])

    def draw(img, label, grain):
        C.fill([img, label, grain], [pole], [grey, UNLABELED, _POLE_GRAIN])
        C.fill([img, label, grain], [sign], [plate, UNLABELED, _POLE_GRAIN])

    return draw


def _car(rng, cam, xc, z0):
    """A car seen from behind (or its side where the camera is off its axis)."""
    w, length, tall = rng.uniform(1.65, 1.9), rng.uniform(3.9, 4.8), rng.uniform(1.35, 1.6)
    body = np.float32(_CARS[int(rng.integers(len(_CARS)))]) * np.float32(rng.uniform(0.8, 1.1))
    glass = np.float32((40, 48, 58))
    left, right, far = xc - w / 2, xc + w / 2, z0 + length
    belt = 0.62 * tall
    low, high = [0.25, 0.25, belt, belt], [belt, belt, tall, tall]
    faces = [(_project(cam, [left, right, right, left], z0, low), body)]
    cab = [left + 0.1, right - 0.1, right - 0.2, left + 0.2]
    faces.append((_project(cam, cab, z0 + 0.3, high), body * np.float32(0.9)))
    pane = [belt + 0.06] * 2 + [tall - 0.08] * 2
    faces.append(
        (_project(cam, [left + 0.25, right - 0.25, right - 0.3, left + 0.3], z0 + 0.3, pane), glass)
    )
    for a in (left + 0.05, right - 0.35):
        lamp = _project(cam, [a, a + 0.3, a + 0.3, a], z0, [0.6 * belt] * 2 + [0.85 * belt] * 2)
        faces.append((lamp, np.float32((170, 25, 20))))
    tyres = [
        _project(cam, [a, a + 0.25, a + 0.25, a], z0 + 0.4, [0, 0, 0.4, 0.4])
        for a in (left + 0.05, right - 0.3)
    ]
    flank = []
    cam_x = cam[4]
    if left > cam_x or right < cam_x:
        xs = left if left > cam_x else right
        flank.append((_project(cam, xs, [z0, far, far, z0], low), body * np.float32(0.8)))
        flank.append((_project(cam, xs, [z0 + 0.6, far - 0.5, far - 0.9, z0 + 0.9], high), glass))
        for zw in (z0 + 0.8, far - 0.8):
            tyres.append(
                _project(cam, xs, [zw - 0.33, zw + 0.33, zw + 0.33, zw - 0.33], [0, 0, 0.6, 0.6])
            )
    shadow = _shadow(cam, left - 0.2, right + 0.2, z0 - 0.2, far)

    def draw(img, label, grain):
        shadow(img, label, grain)
        for poly, rgb in flank:
            C.fill([img, label, grain], [poly], [rgb, CAR, _CAR_GRAIN])
        C.fill([img, label, grain], tyres, [(22, 22, 24), CAR, _CAR_GRAIN])
        for poly, rgb in faces:
            C.fill([img, label, grain], [poly], [rgb, CAR, _CAR_GRAIN])

    return draw


def _person(rng, cam, x, z):
    tall = rng.uniform(1.5, 1.9)
    half = rng.uniform(0.17, 0.24)
    shirt = np.float32(_CLOTHES[int(rng.integers(len(_CLOTHES)))])
    trousers = np.float32(_CLOTHES[int(rng.integers(len(_CLOTHES)))]) * np.float32(0.8)
    skin = np.float32(_SKIN[int(rng.integers(len(_SKIN)))])
    hip, neck = 0.5 * tall, 0.83 * tall
    stride = rng.uniform(0, 0.12)
    legs = [
        _project(cam, [x - half + s, x - 0.02 + s, x - 0.02, x - half], z, [0, 0, hip, hip])
        for s in (-stride, 0)
    ] + [
        _project(cam, [x + 0.02 + s, x + half + s, x + half, x + 0.02], z, [0, 0, hip, hip])
        for s in (stride, 0)
    ]
    torso = _project(
        cam, [x - half - 0.04, x + half + 0.04, x + half, x - half], z, [hip, hip, neck, neck]
    )
    arms = [
        _project(
            cam,
            [x + s * (half + 0.02), x + s * (half + 0.11), x + s * (half + 0.08), x + s * half],
            z,
            [hip + 0.05] * 2 + [neck] * 2,
        )
        for s in (-1, 1)
    ]
    hx, hy = _project(cam, x, z, neck + 0.11 * tall * 0.5 + 0.02)
    scale = cam[0] / z
    head = C.ellipse_poly(hx, hy, 0.1 * scale, 0.125 * scale, n=12)
    shadow = _shadow(cam, x - 0.3, x + 0.3, z - 0.2, z + 0.5)

    def draw(img, label, grain):
        shadow(img, label, grain)
        C.fill([img, label, grain], legs, [trousers, PERSON, _PERSON_GRAIN])
        C.fill([img, label, grain], [torso, *arms], [shirt, PERSON, _PERSON_GRAIN])
        C.fill([img, label, grain], [head], [skin, PERSON, _PERSON_GRAIN])

    return draw


def class_shares(labels):
    """Share of each of the 8 class indices over a list of label arrays, (8,) float."""
    counts = np.zeros(8, np.int64)
    for lab in labels:
        counts += np.bincount(lab.ravel(), minlength=8)[:8]
    return counts / max(counts.sum(), 1)
