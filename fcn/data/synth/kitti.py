"""Synthetic driving scenes in the KITTI road benchmark layout, with exact road labels.

Each scene comes from a small world model: flat ground, a pinhole camera 1.65 m above it (as in
KITTI) and a road whose centre bends sideways as a parabola in depth. Every ground pixel is mapped
back to road coordinates in metres, so asphalt, kerbs, lane marks and shadows are decided per pixel
in the world, and buildings, trees and cars are world boxes projected by the same camera and drawn
far to near. Labels therefore match the picture exactly, occlusions included, and a seed always
gives byte-identical files.

This module writes the dataset and renders a scene in order (layout, objects, sky, ground,
skyline, objects drawn, camera response, void); the pieces live in fcn.data.synth.kitti_scene.

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
from fcn.data.synth.kitti_scene.ground import paint_ground, paint_sky, paint_skyline
from fcn.data.synth.kitti_scene.layout import place_camera, road_plan
from fcn.data.synth.kitti_scene.objects import scene_objects
from fcn.data.synth.kitti_scene.world import NOT_ROAD, ROAD, SHIFT, SKY_GRAIN, VOID, smooth_noise
from fcn.errors import UserError

CATEGORIES = ("um", "umm", "uu")
KITTI_SIZES = ((375, 1242), (376, 1241), (370, 1226), (370, 1224))  # (H, W) of real KITTI frames

# KITTI's gt colour code in BGR for cv2: magenta road, red not road, black void (not evaluated).
_GT_BGR = {ROAD: (255, 0, 255), NOT_ROAD: (0, 0, 255), VOID: (0, 0, 0)}
_MIN_SIDE = 16  # smaller frames leave no room for sky, road and a void border
_MAX_WORKERS = 4  # threads writing scenes; more hardly helps
_SPLIT_TRAIN, _SPLIT_TEST = 0, 1  # enter the per-image seed, so test_count never changes training
_VOID_BORDER = 0.006  # fraction of the height left unevaluated along each image edge


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
    plan = road_plan(rng, category)
    cam = place_camera(rng, height, width, plan)
    # A sharp bend would swing the far road out of the frame; let it vanish behind trees sooner.
    far = min(plan.far, 0.3 * width / (cam.focal * abs(plan.bend) + 1e-9))
    plan = dataclasses.replace(plan, far=max(far, 30.0))
    draws, shadows = scene_objects(rng, cam, plan)
    img = np.empty((height, width, 3), np.float32)  # RGB, 0..255 before the camera response
    label = np.zeros((height, width), np.uint8)
    grain = np.full((height, width), SKY_GRAIN, np.float32)  # texture strength per pixel
    top = math.floor(cam.horizon + 0.5)  # first row whose centre lies below the horizon
    paint_sky(rng, cam, img[:top])
    x = paint_ground(rng, cam, plan, shadows, img[top:], label[top:], grain[top:])
    paint_skyline(rng, cam, plan, img, label, grain)
    for draw in draws:
        draw(img, label, grain)
    image = _camera_response(rng, img, grain)
    _mark_void(cam, plan, label)
    lo, hi = plan.ego
    ego = np.where(label == ROAD, NOT_ROAD, label)
    ego[top:][(label[top:] == ROAD) & (x >= lo) & (x <= hi)] = ROAD
    return image, label, ego


def _camera_response(rng, img, grain):
    """Surface texture and sensor noise, lens blur, then lighting: gain, gamma, contrast, cast."""
    height, width = grain.shape
    # One white noise field serves as fine texture (scaled by grain) and sensor noise.
    white = rng.random((height, width), dtype=np.float32) - np.float32(0.5)
    medium = smooth_noise(rng, height, width, 4)
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
    label[:band] = label[-band:] = VOID
    label[:, :band] = label[:, -band:] = VOID
    tip = np.clip(cam.project(0.0, plan.far), -1e5, 1e5)
    axes = (
        np.clip(1.2 * plan.half_width * cam.focal / plan.far, 0.01 * cam.width, 0.05 * cam.width),
        max(0.015 * cam.height, 1.0),
    )
    one = 1 << SHIFT
    centre = (round(tip[0] * one), round(tip[1] * one))
    cv2.ellipse(
        label,
        centre,
        (round(axes[0] * one), round(axes[1] * one)),
        0,
        0,
        360,
        VOID,
        -1,
        cv2.LINE_8,
        SHIFT,
    )
