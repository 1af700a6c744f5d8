"""Synthetic driving scenes in the KITTI road benchmark layout, with exact road labels.

Each scene comes from a small world model: flat ground, a pinhole camera 1.65 m above it (as in
KITTI) and a road whose centre bends sideways as a parabola in depth. Every ground pixel is mapped
back to road coordinates in metres, so asphalt, kerbs, lane marks and shadows are decided per pixel
in the world, and buildings, trees and cars are world boxes projected by the same camera and drawn
far to near. Labels therefore match the picture exactly, occlusions included, and a seed always
gives byte-identical files.

Road coordinates: x is metres sideways from the road centre (positive to the right), z metres of
depth ahead of the camera, y metres above the ground.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import operator
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from fcn.data.synth._common import check_int
from fcn.errors import UserError

CATEGORIES = ("um", "umm", "uu")
KITTI_SIZES = ((375, 1242), (376, 1241), (370, 1226), (370, 1224))  # (H, W) of real KITTI frames

_NOT_ROAD, _ROAD, _VOID = 0, 1, 255
# KITTI's gt colour code in BGR for cv2: magenta road, red not road, black void (not evaluated).
_GT_BGR = {_ROAD: (255, 0, 255), _NOT_ROAD: (0, 0, 255), _VOID: (0, 0, 0)}
_MIN_SIDE = 16  # smaller frames leave no room for sky, road and a void border
_MAX_WORKERS = 4  # threads writing scenes; more hardly helps
_SPLIT_TRAIN, _SPLIT_TEST = 0, 1  # enter the per-image seed, so test_count never changes training

_CAM_HEIGHT = 1.65  # m, KITTI's camera height above the road
_NEAR = 4.0  # m; objects start this far ahead so their projections stay of sane size
_SHADOW_RANGE = 70.0  # m; farther shadows would alias into pixel noise
_KERB = 0.15  # m, kerb stone width between asphalt and sidewalk
_VOID_BORDER = 0.006  # fraction of the height left unevaluated along each image edge
_SHIFT = 4  # fractional bits of the polygon vertices handed to cv2, for sub-pixel edges

# Ground materials: indices into a per-scene palette. Only asphalt (lane marks included) is road.
_GRASS, _SIDEWALK, _KERBSTONE, _GRAVEL, _ASPHALT = range(5)
# Relative texture strength per material (multiplies unit noise); grass is rough, kerbs smooth.
_GROUND_GRAIN = (0.20, 0.05, 0.04, 0.14, 0.07)
_GROUND_PATCHES = (0.22, 0.05, 0.03, 0.12, 0.07)  # large-scale blotches (repairs, dry grass)
_TREE_GRAIN, _WALL_GRAIN, _CAR_GRAIN, _SKY_GRAIN = 0.25, 0.04, 0.03, 0.01

_WALL_COLOURS = (
    (196, 182, 160),
    (170, 170, 168),
    (150, 82, 66),
    (224, 220, 206),
    (205, 190, 140),
    (130, 120, 110),
    (180, 196, 200),
)
_CAR_COLOURS = (
    (30, 30, 34),
    (210, 212, 214),
    (150, 152, 156),
    (140, 24, 22),
    (25, 45, 110),
    (60, 70, 60),
    (235, 235, 230),
)
_GLASS = (40, 48, 58)
_MARK_WHITE, _MARK_YELLOW = (232, 232, 226), (226, 190, 60)


@dataclasses.dataclass(frozen=True)
class _Camera:
    height: int
    width: int
    focal: float  # px
    horizon: float  # image row of the horizon
    centre: float  # image column a straight road would vanish at (camera yaw)
    cam_x: float  # m, the camera's sideways position in road coordinates
    bend: float  # 1/m; the road centre drifts bend * z**2 metres sideways at depth z

    def project(self, x, z, y=0.0):
        """Road coordinates (metres) to image points: (..., 2) float array of (column, row)."""
        x, z, y = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, z, y)))
        col = self.centre + self.focal * (x + self.bend * z * z - self.cam_x) / z
        row = self.horizon + self.focal * (_CAM_HEIGHT - y) / z
        return np.stack([col, row], axis=-1)


@dataclasses.dataclass(frozen=True)
class _Mark:
    x: float  # m from the road centre
    width: float  # m
    rgb: tuple
    paint: float  # opacity; worn marks are faint
    dash: tuple | None  # (period, length, phase) in metres of depth, or None for a solid line
    edge: bool  # edge lines stop at a junction, centre lines run through it


@dataclasses.dataclass(frozen=True)
class _Plan:
    half_width: float  # m, road centre to asphalt edge
    marks: tuple
    ego: tuple  # (x_min, x_max) of the ego lane, m
    cam_x: float
    sides: tuple  # per side (-1 left, +1 right): (material, width in m) of the verge
    junction: tuple | None  # (side, z_near, z_far) of a side road
    far: float  # m; beyond it the road disappears behind distant trees and houses
    bend: float


def generate_dataset(
    out_dir, count=60, test_count=12, seed=0, sizes=KITTI_SIZES, lane_files=True
) -> dict:
    """Write out_dir/data_road/{training,testing}/... and return a summary dict
    {"train": n_train, "test": n_test, "root": str(path to data_road)}.

    Training images are named <cat>_<id:06d>.png with categories um, umm, uu in turn and ids
    counting per category; gt_image_2 holds <cat>_road_<id>.png in KITTI's colours and, with
    lane_files, <cat>_lane_<id>.png for um only, as the benchmark ships them. Frame sizes cycle
    through sizes. Files are written into a hidden sibling folder that is renamed into place at
    the end, so an interrupted run leaves no half-written data_road behind.
    """
    count = check_int("count", count, 1)
    test_count = check_int("test_count", test_count, 0)
    seed = check_int("seed", seed, 0)
    sizes = _check_sizes(sizes)
    out = Path(out_dir)
    root = out / "data_road"
    if root.exists():
        raise UserError(f"{root} already exists: pick another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".data_road-", dir=out))
    try:
        _write_split(tmp / "training", count, seed, _SPLIT_TRAIN, sizes, lane_files)
        _write_split(tmp / "testing", test_count, seed, _SPLIT_TEST, sizes, lane_files)
        tmp.chmod(0o755)  # mkdtemp makes it private to us
        try:
            tmp.rename(root)
        except OSError as err:  # another run created it meanwhile
            raise UserError(f"{root} already exists: pick another --out or delete it") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"train": count, "test": test_count, "root": str(root)}


def render_scene(rng, height, width) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (image uint8 HxWx3 RGB, label uint8 HxW with 0=not road, 1=road, 255=void).

    The category (um, umm or uu) is drawn from rng too.
    """
    if min(height, width) < _MIN_SIDE:
        raise ValueError(
            f"scenes need at least {_MIN_SIDE}x{_MIN_SIDE} pixels, got {height}x{width}"
        )
    category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    image, label, _ = _render(rng, int(height), int(width), category)
    return image, label


def _check_sizes(sizes):
    try:
        sizes = tuple((operator.index(h), operator.index(w)) for h, w in sizes)
    except (TypeError, ValueError):
        raise UserError(f"sizes must be (height, width) pairs, got {sizes!r}") from None
    if not sizes or min(min(s) for s in sizes) < _MIN_SIDE:
        raise UserError(f"sizes must be non-empty (height, width) pairs of at least {_MIN_SIDE}")
    return sizes


def _write_split(folder, n, seed, split, sizes, lane_files):
    (folder / "image_2").mkdir(parents=True)
    if split == _SPLIT_TRAIN:
        (folder / "gt_image_2").mkdir()
    # Scenes are independent and numpy, cv2 and PNG encoding release the GIL: use the cores.
    workers = min(_MAX_WORKERS, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = [
            pool.submit(_write_scene, folder, i, seed, split, sizes, lane_files) for i in range(n)
        ]
        for job in jobs:
            job.result()  # re-raises the first failure


def _write_scene(folder, i, seed, split, sizes, lane_files):
    category, index = CATEGORIES[i % len(CATEGORIES)], i // len(CATEGORIES)
    height, width = sizes[i % len(sizes)]
    # One generator per image: the output never depends on the order scenes are made in.
    rng = np.random.default_rng([seed, split, i])
    image, label, ego = _render(rng, height, width, category)
    name = f"{index:06d}.png"
    _write_png(folder / "image_2" / f"{category}_{name}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if split == _SPLIT_TRAIN:
        _write_png(folder / "gt_image_2" / f"{category}_road_{name}", _gt_bgr(label))
        if lane_files and category == "um":
            _write_png(folder / "gt_image_2" / f"{category}_lane_{name}", _gt_bgr(ego))


def _write_png(path, bgr):
    # Noisy scenes hardly compress: favour speed. Skipping PNG row filters (OpenCV >= 4.10) halves
    # the time and even makes smaller files here.
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        params += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    if not cv2.imwrite(str(path), bgr, params):
        raise OSError(f"could not write {path}")


def _gt_bgr(label):
    lut = np.zeros((256, 3), np.uint8)
    for value, bgr in _GT_BGR.items():
        lut[value] = bgr
    return lut[label]


def _render(rng, height, width, category):
    """(image RGB uint8, road label uint8, ego-lane label uint8) of one scene."""
    plan = _plan(rng, category)
    cam = _camera(rng, height, width, plan)
    # A sharp bend would swing the far road out of the frame; let it vanish behind trees sooner.
    far = min(plan.far, 0.3 * width / (cam.focal * abs(plan.bend) + 1e-9))
    plan = dataclasses.replace(plan, far=max(far, 30.0))
    draws, shadows = _objects(rng, cam, plan)
    img = np.empty((height, width, 3), np.float32)  # RGB, 0..255 before the camera response
    label = np.zeros((height, width), np.uint8)
    grain = np.full((height, width), _SKY_GRAIN, np.float32)  # texture strength per pixel
    top = math.floor(cam.horizon + 0.5)  # first row whose centre lies below the horizon
    _paint_sky(rng, cam, img[:top])
    x = _paint_ground(rng, cam, plan, shadows, img[top:], label[top:], grain[top:])
    _paint_skyline(rng, cam, plan, img, label, grain)
    for draw in draws:
        draw(img, label, grain)
    image = _camera_response(rng, img, grain)
    _mark_void(cam, plan, label)
    lo, hi = plan.ego
    ego = np.where(label == _ROAD, _NOT_ROAD, label)
    ego[top:][(label[top:] == _ROAD) & (x >= lo) & (x <= hi)] = _ROAD
    return image, label, ego


def _plan(rng, category):
    """Road layout in metres: width, lanes and marks, verges, junction, bend and visible length."""
    marks = []
    if category == "umm":  # several marked lanes on a wide urban road
        half = rng.uniform(5.5, 8.0)
        bounds = np.linspace(-half, half, int(rng.integers(3, 5)) + 1)
        dash = (rng.uniform(9, 15), rng.uniform(3, 6), rng.uniform(0, 15))
        marks += [_centre_mark(rng, b, dash, _MARK_WHITE) for b in bounds[1:-1]]
        lane = int(rng.integers(len(bounds) - 1))
        ego = (bounds[lane], bounds[lane + 1])
    elif category == "um":  # two marked lanes; we drive in the right one
        half = rng.uniform(3.8, 5.2)
        middle = rng.uniform(-0.3, 0.3)
        dash = (rng.uniform(9, 15), rng.uniform(3, 6), rng.uniform(0, 15))
        if rng.random() < 0.2:
            dash = None
        colour = _MARK_YELLOW if rng.random() < 0.1 else _MARK_WHITE
        marks.append(_centre_mark(rng, middle, dash, colour))
        ego = (middle, half)
    else:  # unmarked
        half = rng.uniform(3.2, 4.6)
        ego = (-half, half)
    if category != "uu" and rng.random() < 0.6:
        width, paint = rng.uniform(0.12, 0.2), rng.uniform(0.6, 1.0)
        marks += [_Mark(s * (half - 0.3), width, _MARK_WHITE, paint, None, True) for s in (-1, 1)]
    cam_x = 0.5 * (ego[0] + ego[1]) + rng.normal(0, 0.08 * (ego[1] - ego[0]))
    if category == "uu":
        cam_x = rng.uniform(-0.2, 0.4) * half
    sidewalk_odds = 0.5 if category == "uu" else 0.85
    sides = []
    for _ in range(2):
        u = rng.random()
        if u < sidewalk_odds:
            sides.append((_SIDEWALK, rng.uniform(1.5, 4.0)))
        elif u < (1 + sidewalk_odds) / 2:
            sides.append((_GRAVEL, rng.uniform(0.5, 1.5)))
        else:
            sides.append((_GRASS, 0.0))
    junction = None
    if rng.random() < (0.15 if category == "um" else 0.4):
        near = rng.uniform(12, 35)
        junction = (int(rng.choice([-1, 1])), near, near + rng.uniform(6, 10))
    return _Plan(
        half_width=half,
        marks=tuple(marks),
        ego=(float(ego[0]), float(ego[1])),
        cam_x=float(cam_x),
        sides=tuple(sides),
        junction=junction,
        far=rng.uniform(60, 160),
        bend=float(np.clip(rng.normal(0, 0.0015), -0.004, 0.004)),
    )


def _centre_mark(rng, x, dash, rgb):
    return _Mark(float(x), rng.uniform(0.12, 0.18), rgb, rng.uniform(0.55, 1.0), dash, False)


def _camera(rng, height, width, plan):
    return _Camera(
        height=height,
        width=width,
        focal=width * rng.uniform(0.55, 0.62),  # KITTI: about 720 px on 1242 columns
        horizon=height * rng.uniform(0.36, 0.5),
        centre=width * (0.5 + rng.normal(0, 0.04)),
        cam_x=plan.cam_x,
        bend=plan.bend,
    )


def _paint_sky(rng, cam, sky):
    """Fill the rows above the horizon: blue or overcast gradient with soft clouds."""
    rows, width = sky.shape[:2]
    overcast = rng.random() < 0.35
    high = (190, 192, 196) if overcast else (rng.uniform(60, 120), rng.uniform(120, 165), 225)
    low = (228, 228, 230) if overcast else (205, 218, 232)
    t = (np.arange(rows, dtype=np.float32)[:, None, None] + 0.5) / max(cam.horizon, 1.0)
    clouds = np.clip(_smooth_noise(rng, rows, width, max(width // 40, 2)), 0, None)
    sky[:] = (1 - t) * np.float32(high) + t * np.float32(low)
    sky += (clouds * np.float32(rng.uniform(0, 25)))[..., None] * (1 - t)


def _paint_ground(rng, cam, plan, shadows, img, label, grain):
    """Paint the rows below the horizon (the views passed in); return road x per pixel, (h, W)."""
    h, width = label.shape
    rows = np.arange(cam.height - h, cam.height, dtype=np.float32) + 0.5
    z = (cam.focal * _CAM_HEIGHT / (rows - cam.horizon))[:, None]  # (h, 1) depth per row, m
    cols = np.arange(width, dtype=np.float32)[None, :] + 0.5
    x = (cols - cam.centre) * z / cam.focal - cam.bend * z * z + cam.cam_x  # (h, W) m
    x = x.astype(np.float32)
    mat = _materials(plan, x, z)
    np.take(_ground_palette(rng), mat, axis=0, out=img)
    # Blotches fade out with distance, where they would only alias into streaks.
    fade = np.clip(2 - z / 40, 0, 1)
    light = 1 + np.take(np.float32(_GROUND_PATCHES), mat) * fade * _world_noise(rng, x, z, 1.2, 1.2)
    light *= _paving(mat, x, z, cam)
    light *= _shade(rng, cam, x, z, shadows)
    img *= light[..., None]
    for mark in plan.marks:
        _paint_mark(img, cam, plan, mark)
    label[:] = np.where((mat == _ASPHALT) & (z <= plan.far), _ROAD, _NOT_ROAD)
    grain[:] = np.take(np.float32(_GROUND_GRAIN), mat)
    return x


def _materials(plan, x, z):
    """(h, W) ground material per pixel from road coordinates."""
    half = plan.half_width
    mat = np.full(x.shape, _GRASS, np.uint8)
    for side, (kind, width) in zip((-1, 1), plan.sides, strict=True):
        out = side * x - half  # m beyond the asphalt edge on this side
        if kind == _SIDEWALK:
            mat[(out > 0) & (out <= _KERB)] = _KERBSTONE
            mat[(out > _KERB) & (out <= width)] = _SIDEWALK
        elif kind == _GRAVEL:
            mat[(out > 0) & (out <= width)] = _GRAVEL
    if plan.junction:
        side, near, far = plan.junction
        out = side * x - half
        walk = 2.5  # m of sidewalk along each kerb of the side road
        beside = ((z > near - walk) & (z <= near)) | ((z >= far) & (z < far + walk))
        mat[(out > plan.sides[(side + 1) // 2][1]) & beside] = _SIDEWALK
        mat[(out > 0) & (z > near) & (z < far)] = _ASPHALT
    mat[(np.abs(x) <= half) & (z <= plan.far)] = _ASPHALT
    return mat


def _ground_palette(rng):
    """(5, 3) RGB per ground material: asphalt is a darker, cooler grey than the sidewalk."""
    grey = rng.uniform(70, 120)
    walk = rng.uniform(135, 185)
    warm = (1.05, 1.0, 0.92) if rng.random() < 0.7 else (1.12, 0.9, 0.84)  # beige or red paving
    grass = (rng.uniform(55, 100), rng.uniform(100, 150), rng.uniform(35, 70))
    if rng.random() < 0.2:  # dry summer grass
        grass = (rng.uniform(120, 150), rng.uniform(125, 150), rng.uniform(70, 90))
    gravel = rng.uniform(115, 150)
    palette = [
        grass,
        [walk * w for w in warm],
        [rng.uniform(175, 215)] * 3,
        (gravel, gravel * 0.94, gravel * 0.82),
        (grey * rng.uniform(0.96, 1.0), grey, grey * rng.uniform(1.0, 1.06)),
    ]
    return np.asarray(palette, np.float32)


def _paving(mat, x, z, cam):
    """(h, W) light factor darkening sidewalk joints (0.6 m tiles), fading as tiles shrink."""
    per_tile = np.float32(1 / 0.6)
    fade = np.clip(1 - (z / cam.focal) * per_tile / 0.3, 0, 1)  # (h, 1)
    u, v = x * per_tile, z * per_tile
    joint = ((u - np.floor(u)) < 0.07) | ((v - np.floor(v)) < 0.07)
    return 1 - (0.18 * fade) * (joint & (mat == _SIDEWALK))


def _paint_mark(ground, cam, plan, mark):
    """Blend one lane line into the ground, as dash or 3 m segment polygons."""
    near = 1.0  # m; nearer marks lie below the image anyway
    first_row = cam.height - ground.shape[0]  # ground is a view of the image from this row down
    if mark.dash:
        period, length, phase = mark.dash
        starts = np.arange(near - phase, plan.far, period)
    else:
        length = 3.0
        starts = np.arange(near, plan.far, length)
    alpha = np.zeros(ground.shape[:2], np.float32)
    for z0 in starts:
        z0, z1 = max(z0, near), min(z0 + length, plan.far)
        if z1 <= z0:
            continue
        if mark.edge and plan.junction and z1 > plan.junction[1] and z0 < plan.junction[2]:
            continue  # edge lines stop where the side road joins
        zs = np.linspace(z0, z1, 4)
        sides = (mark.x - mark.width / 2, mark.x + mark.width / 2)
        poly = np.concatenate([cam.project(sides[0], zs), cam.project(sides[1], zs[::-1])])
        poly[:, 1] -= first_row
        # Thinner than a pixel far away: fade rather than flicker.
        cover = min(1.0, mark.width * cam.focal / (0.5 * (z0 + z1)))
        _polys(alpha, [poly], mark.paint * cover)
    where = np.nonzero(alpha)
    a = alpha[where][:, None]
    ground[where] += a * (np.float32(mark.rgb) - ground[where])


def _shade(rng, cam, x, z, shadows):
    """(h, W) light factor of the ground: soft shadows of trees and houses, dark under cars."""
    shade = np.ones(x.shape, np.float32)
    if rng.random() < 0.7:
        field = _world_noise(rng, x, z, rng.uniform(0.8, 2.0), rng.uniform(0.4, 1.0))
        level = rng.uniform(0.3, 1.2)
        soft = np.clip((field - level) / 0.3 + 0.5, 0, 1) * (z < _SHADOW_RANGE)
        shade -= rng.uniform(0.3, 0.55) * soft
    first_row = cam.height - x.shape[0]
    for poly in shadows:
        _polys(shade, [poly - (0, first_row)], 0.45)
    return shade


def _paint_skyline(rng, cam, plan, img, label, grain):
    """Distant trees and houses standing at the far end of the road, hiding what lies beyond."""
    width = cam.width
    scale = cam.focal / plan.far  # px per metre at that distance
    hills = _smooth_noise(rng, 1, width, max(width // 10, 2))[0]
    crowns = _smooth_noise(rng, 1, width, max(width // 60, 2))[0]
    tall = np.clip(rng.uniform(7, 12) * (1 + 0.25 * hills + 0.08 * crowns) * scale, 2, None)
    colour = np.empty((width, 3), np.float32)
    colour[:] = (rng.uniform(30, 60), rng.uniform(65, 100), rng.uniform(25, 45))
    strength = np.full(width, 0.6 * _TREE_GRAIN, np.float32)  # crowns blur together far away
    edge = 0
    while edge < width:  # blocks of houses between stretches of trees
        run = int(rng.uniform(0.03, 0.15) * width) + 1
        if rng.random() < 0.45:
            tall[edge : edge + run] = rng.uniform(5, 22) * scale
            colour[edge : edge + run] = _WALL_COLOURS[int(rng.integers(len(_WALL_COLOURS)))]
            strength[edge : edge + run] = _WALL_GRAIN
        edge += run
    haze = np.float32(rng.uniform(0.1, 0.4) * plan.far / 160)  # far things fade into the sky
    colour = (1 - haze) * colour + haze * np.float32((210, 218, 228))
    base = cam.horizon + cam.focal * _CAM_HEIGHT / plan.far  # row where they meet the ground
    first = max(math.floor(cam.horizon - tall.max()), 0)
    last = min(math.ceil(base), cam.height)
    rows = np.arange(first, last, dtype=np.float32)[:, None] + 0.5
    band = (rows >= cam.horizon - tall) & (rows < base)  # (rows, W)
    colour = np.broadcast_to(colour, (last - first, width, 3))
    strength = np.broadcast_to(strength, band.shape)
    np.copyto(img[first:last], colour, where=band[..., None])
    np.copyto(label[first:last], _NOT_ROAD, where=band)
    np.copyto(grain[first:last], strength, where=band)


def _objects(rng, cam, plan):
    """Drawing closures for houses, trees, poles and cars in far-to-near order, and car shadows."""
    half = plan.half_width
    verge = [half + width for _, width in plan.sides]  # m from the centre to the verge's outer edge
    houses, others = [], []
    for s, side in enumerate((-1, 1)):
        blocked = None
        if plan.junction and plan.junction[0] == side:
            blocked = (plan.junction[1] - 4, plan.junction[2] + 4)
        if rng.random() < (0.75 if plan.marks else 0.4):
            houses += _houses(rng, cam, plan, side, verge[s], blocked)
        if rng.random() < 0.6:
            setback, step = rng.uniform(0.5, 3.0), rng.uniform(7, 16)
            for z in np.arange(rng.uniform(_NEAR + 1, 15), plan.far, step):
                if blocked is None or not blocked[0] < z < blocked[1]:
                    others.append((z, _tree(rng, cam, side * (verge[s] + setback), z)))
        if plan.sides[s][0] == _SIDEWALK and rng.random() < 0.5:
            x = side * (half + _KERB + 0.4)
            for z in np.arange(rng.uniform(_NEAR + 2, 20), plan.far, rng.uniform(18, 35)):
                if blocked is None or not blocked[0] < z < blocked[1]:
                    others.append((z, _pole(rng, cam, x, z)))
    cars = _cars(rng, cam, plan)
    others += [(z, draw) for z, draw, _ in cars]
    houses.sort(key=lambda item: -item[0])
    others.sort(key=lambda item: -item[0])
    # Houses stand behind everything else seen from the road, so they go first.
    return [draw for _, draw in houses + others], [shadow for _, _, shadow in cars]


def _houses(rng, cam, plan, side, verge, blocked):
    items = []
    setback = rng.uniform(0.5, 6.0)
    z = rng.uniform(_NEAR, 15)
    while z < min(plan.far, 150):
        length = rng.uniform(10, 30)
        if blocked and z < blocked[1] and z + length > blocked[0]:
            if z < blocked[0] - 5:  # a shorter house still fits before the side road
                items.append((z, _house(rng, cam, side, verge + setback, z, blocked[0])))
            z = blocked[1]
            continue
        items.append((z, _house(rng, cam, side, verge + setback, z, z + length)))
        z += length + (rng.uniform(1, 8) if rng.random() < 0.5 else 0.0)
    return items


def _house(rng, cam, side, lateral, z0, z1):
    """A house front along the road from depth z0 to z1, with its near gable end and windows."""
    x = side * lateral
    tall = rng.uniform(6, 20)
    deep = rng.uniform(8, 15)
    wall = np.float32(_WALL_COLOURS[int(rng.integers(len(_WALL_COLOURS)))]) * rng.uniform(0.75, 1.1)
    zs = np.linspace(z0, z1, 8)  # the front follows the bending road
    front = np.concatenate([cam.project(x, zs, 0), cam.project(x, zs[::-1], tall)])
    end = cam.project([x, x + side * deep, x + side * deep, x], z0, [0, 0, tall, tall])
    zz, yy = np.meshgrid(
        np.arange(z0 + 1.0, z1 - 1.4, rng.uniform(2.5, 4.0)), np.arange(1.0, tall - 1.5, 3.0)
    )
    zz, yy = zz.ravel(), yy.ravel()
    corners = [(zz, yy), (zz + 1.2, yy), (zz + 1.2, yy + 1.4), (zz, yy + 1.4)]
    windows = np.stack([cam.project(x, cz, cy) for cz, cy in corners], axis=1)  # (n, 4, 2)
    glass = np.float32(_GLASS) * rng.uniform(0.7, 1.6)
    visible = cam.focal * 1.2 / z1 >= 1.5  # windows thinner than pixels would only alias

    def draw(img, label, grain):
        _fill(img, label, grain, [end], wall * 0.8, _WALL_GRAIN)
        _fill(img, label, grain, [front], wall, _WALL_GRAIN)
        if len(windows) and visible:
            _fill(img, label, grain, list(windows), glass, _WALL_GRAIN)

    return draw


def _tree(rng, cam, x, z):
    crown_y, radius = rng.uniform(3.5, 6.5), rng.uniform(1.5, 3.5)
    angles = np.linspace(0, 2 * np.pi, 18, endpoint=False)
    px = radius * (1 + 0.15 * rng.standard_normal(angles.size)) * cam.focal / z
    crown = cam.project(x, z, crown_y) + np.stack([px * np.cos(angles), px * np.sin(angles)], -1)
    trunk = cam.project([x - 0.15, x + 0.15, x + 0.15, x - 0.15], z, [0, 0, crown_y, crown_y])
    leaves = np.float32((rng.uniform(30, 70), rng.uniform(60, 105), rng.uniform(25, 50)))

    def draw(img, label, grain):
        _fill(img, label, grain, [trunk], (70, 55, 40), _WALL_GRAIN)
        _fill(img, label, grain, [crown], leaves, _TREE_GRAIN)

    return draw


def _pole(rng, cam, x, z):
    tall = rng.uniform(5, 8)
    quad = cam.project([x - 0.08, x + 0.08, x + 0.08, x - 0.08], z, [0, 0, tall, tall])
    grey = np.float32([rng.uniform(90, 160)] * 3)

    def draw(img, label, grain):
        _fill(img, label, grain, [quad], grey, _WALL_GRAIN)

    return draw


def _cars(rng, cam, plan):
    """(depth, draw, ground shadow) of cars in the lanes and parked at the kerbs; none is road."""
    half = plan.half_width
    lo, hi = plan.ego
    lanes = [plan.ego] + [(-half, lo)] * (lo > -half + 2) + [(hi, half)] * (hi < half - 2)
    slots = []
    for _ in range(int(rng.integers(0, 3))):
        a, b = lanes[int(rng.integers(len(lanes)))]
        slots.append((0.5 * (a + b) + rng.normal(0, 0.2), rng.uniform(12, 60)))
    if not plan.marks or rng.random() < 0.6:  # parked, partly on the asphalt
        for _ in range(int(rng.integers(0, 4))):
            side = 1 if rng.random() < 0.7 else -1
            slots.append((side * (half - rng.uniform(0.6, 1.2)), rng.uniform(_NEAR + 2, 45)))
    items, taken = [], []
    for x, z in slots:
        if any(abs(x - tx) < 2.2 and abs(z - tz) < 6 for tx, tz in taken):
            continue  # one car per spot
        taken.append((x, z))
        items.append((z, *_car(rng, cam, x, z)))
    return items


def _car(rng, cam, xc, z0):
    """A car seen from behind, rear face at depth z0: (draw, ground shadow polygon)."""
    w, length, tall = rng.uniform(1.65, 1.9), rng.uniform(3.9, 4.8), rng.uniform(1.35, 1.6)
    body = np.float32(_CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))]) * rng.uniform(0.8, 1.1)
    glass, tyre, lamp = np.float32(_GLASS), (20, 20, 22), (170, 20, 20)
    left, right, far = xc - w / 2, xc + w / 2, z0 + length
    belt = 0.62 * tall  # where the windows begin

    def box(xs, z, ys):  # quad of 4 corners; a scalar x or z is shared by all of them
        return cam.project(xs, z, ys)

    low, high = [0.2, 0.2, belt, belt], [belt, belt, tall, tall]
    faces = [(box([left, right, right, left], z0, low), body)]
    faces.append((box([left + 0.1, right - 0.1, right - 0.15, left + 0.15], z0, high), body * 0.9))
    pane = [belt + 0.06] * 2 + [tall - 0.08] * 2
    faces.append((box([left + 0.22, right - 0.22, right - 0.28, left + 0.28], z0, pane), glass))
    for a in (left + 0.05, right - 0.35):
        faces.append(
            (box([a, a + 0.3, a + 0.3, a], z0, [0.45 * tall] * 2 + [0.55 * tall] * 2), lamp)
        )
    tyres = [
        box([a, a + 0.25, a + 0.25, a], z0 + 0.6, [0, 0, 0.35, 0.35])
        for a in (left + 0.05, right - 0.3)
    ]
    flank = []
    if left > cam.cam_x or right < cam.cam_x:  # the camera sees one side of it
        xs = left if left > cam.cam_x else right
        flank.append((box(xs, [z0, far, far, z0], low), body * 0.8))
        flank.append((box(xs, [z0 + 0.6, far - 0.5, far - 0.7, z0 + 0.9], high), glass))
        for zw in (z0 + 0.8, far - 0.8):
            tyres.append(box(xs, [zw - 0.33, zw + 0.33, zw + 0.33, zw - 0.33], [0, 0, 0.6, 0.6]))
    shadow = box(
        [left - 0.15, right + 0.15, right + 0.15, left - 0.15], [z0 - 0.2] * 2 + [far] * 2, 0
    )

    def draw(img, label, grain):
        for poly, rgb in flank:
            _fill(img, label, grain, [poly], rgb, _CAR_GRAIN)
        _fill(img, label, grain, tyres, tyre, _CAR_GRAIN)
        for poly, rgb in faces:
            _fill(img, label, grain, [poly], rgb, _CAR_GRAIN)

    return draw, shadow


def _fill(img, label, grain, polys, rgb, strength):
    """Paint polygons (a list of (n, 2) image points) as an opaque object that is not road."""
    pts = _fixed(polys)
    cv2.fillPoly(img, pts, tuple(float(c) for c in rgb), cv2.LINE_8, _SHIFT)
    cv2.fillPoly(label, pts, _NOT_ROAD, cv2.LINE_8, _SHIFT)
    cv2.fillPoly(grain, pts, float(strength), cv2.LINE_8, _SHIFT)


def _polys(canvas, polys, value):
    cv2.fillPoly(canvas, _fixed(polys), float(value), cv2.LINE_8, _SHIFT)


def _fixed(polys):
    # Clip far-off-screen vertices so fixed-point coordinates never overflow int32.
    return [np.round(np.clip(p, -1e5, 1e5) * (1 << _SHIFT)).astype(np.int32) for p in polys]


def _camera_response(rng, img, grain):
    """Surface texture and sensor noise, lens blur, then lighting: gain, gamma, contrast, cast."""
    height, width = grain.shape
    # One white noise field serves as fine texture (scaled by grain) and sensor noise.
    white = rng.random((height, width), dtype=np.float32) - np.float32(0.5)
    medium = _smooth_noise(rng, height, width, 4)
    img *= (1 + grain * (2 * white + 0.8 * medium))[..., None]
    img += (white * np.float32(rng.uniform(3, 12)))[..., None]
    image = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.0))
    # Lighting as one lookup table per channel (much cheaper than float maths per pixel).
    level = (np.arange(256, dtype=np.float64)[:, None] + 0.5) / 256
    gain = rng.uniform(0.65, 1.3) * (1 + rng.normal(0, 0.05, 3))
    curve = (level ** rng.uniform(0.8, 1.25) * gain - 0.5) * rng.uniform(0.8, 1.2) + 0.5
    lut = np.clip(curve * 255 + 0.5, 0, 255).astype(np.uint8)  # (256, 3)
    return cv2.LUT(image, lut[None])


def _mark_void(cam, plan, label):
    """KITTI leaves some pixels unevaluated: here a thin image border and the far road tip."""
    band = max(1, round(_VOID_BORDER * cam.height))
    label[:band] = label[-band:] = _VOID
    label[:, :band] = label[:, -band:] = _VOID
    tip = np.clip(cam.project(0.0, plan.far), -1e5, 1e5)
    axes = (
        np.clip(1.2 * plan.half_width * cam.focal / plan.far, 0.01 * cam.width, 0.05 * cam.width),
        max(0.015 * cam.height, 1.0),
    )
    one = 1 << _SHIFT
    centre = (round(tip[0] * one), round(tip[1] * one))
    cv2.ellipse(
        label,
        centre,
        (round(axes[0] * one), round(axes[1] * one)),
        0,
        0,
        360,
        _VOID,
        -1,
        cv2.LINE_8,
        _SHIFT,
    )


def _smooth_noise(rng, height, width, cell):
    """(height, width) float32 noise of roughly unit size, varying over about cell pixels."""
    small = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _world_noise(rng, x, z, cell_x, cell_z, size=64):
    """Smooth unit-std noise laid on the ground in cells of cell_x by cell_z metres, at (x, z).

    Drawn in world units, its blotches shrink with distance like real shadows and repairs.
    """
    spectrum = np.fft.rfft2(rng.standard_normal((size, size)))
    ky, kx = np.meshgrid(np.fft.fftfreq(size), np.fft.rfftfreq(size), indexing="ij")
    field = np.fft.irfft2(spectrum * np.exp(-((np.hypot(ky, kx) * 12) ** 2)), s=(size, size))
    tile = (field / field.std()).astype(np.float32)  # periodic, so wrapping is seamless
    u = x * np.float32(1 / cell_x)
    u -= np.floor(u * np.float32(1 / size)) * size  # cv2.remap needs small coordinates
    v = z * np.float32(1 / cell_z)
    v = np.broadcast_to(v - np.floor(v / size) * size, x.shape).astype(np.float32)
    return cv2.remap(tile, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
