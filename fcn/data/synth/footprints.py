"""Synthetic aerial tiles (top-down) with building footprint masks, in the folder layout.

Ground is grass and soil blended by smooth noise; straight roads, paved lots (grey like many
roofs) and cars on them; buildings are rectangles, L- and T-shapes at any rotation with flat
(parapet, roof boxes) or gabled (two halves lit differently) roofs of varied colour, each casting
a shadow away from the sun; trees come last and may overhang roofs. The mask is the visible roof:
pixels under an overhanging crown are background, as the picture shows.
"""

from __future__ import annotations

import math

import numpy as np

from fcn.data.synth import _common as C
from fcn.data.synth import _folder

KIND_CODE = 3
_LONGS, _ASPECTS = (128, 256), (1.0, 1.0, 0.75, 1.333)
_ROOFS = (
    (150, 150, 152), (120, 118, 115), (170, 80, 60), (140, 60, 45), (80, 80, 88),
    (200, 198, 190), (110, 90, 70), (90, 120, 130), (185, 170, 150),
)  # fmt: skip
_GRASS_GRAIN, _ROAD_GRAIN, _ROOF_GRAIN, _TREE_GRAIN = 0.22, 0.08, 0.05, 0.4


def generate(out, count, test_count, seed, sizes=None):
    return _folder.generate(
        "footprints", KIND_CODE, render, _pick, out, count, test_count, seed, sizes
    )


def _pick(rng, sizes, i):
    return C.pick_size(rng, sizes, i, _LONGS, _ASPECTS)


def render(rng, height, width):
    """(image uint8 (H, W, 3) RGB, building mask bool (H, W))."""
    px = rng.uniform(0.35, 0.7)  # metres per pixel
    img = np.empty((height, width, 3), np.float32)
    grain = np.full((height, width), _GRASS_GRAIN, np.float32)
    label = np.zeros((height, width), np.uint8)
    taken = np.zeros((height, width), np.uint8)  # where no new building may go
    # Ground: grass and dry soil blended by a smooth field.
    grass = np.float32((rng.uniform(60, 110), rng.uniform(95, 145), rng.uniform(40, 75)))
    soil = np.float32((rng.uniform(120, 165), rng.uniform(105, 140), rng.uniform(75, 105)))
    blend = np.clip(C.smooth_noise(rng, height, width, max(height, width) / 5) * 0.5 + 0.5, 0, 1)
    img[:] = grass + (soil - grass) * blend[..., None]
    angle = rng.uniform(0, math.pi)  # the street grid's direction
    d = np.array([math.cos(angle), math.sin(angle)])
    n = np.array([-d[1], d[0]])
    diag = math.hypot(height, width)
    centre = np.array([width / 2, height / 2])
    asphalt = np.float32([rng.uniform(70, 120)] * 3)
    for _ in range(int(rng.integers(1, 4))):  # roads, along or across the grid
        axis, across = (d, n) if rng.random() < 0.6 else (n, d)
        half = rng.uniform(3, 6) / px
        mid = centre + across * rng.uniform(-0.45, 0.45) * diag
        road = [mid - axis * diag + across * half, mid + axis * diag + across * half]
        road += [mid + axis * diag - across * half, mid - axis * diag - across * half]
        C.fill([img, grain, taken], [np.array(road)], [asphalt, _ROAD_GRAIN, 1])
        for _ in range(int(rng.integers(0, 4))):  # cars on it
            c = mid + axis * rng.uniform(-0.5, 0.5) * diag + across * rng.uniform(-0.5, 0.5) * half
            car = _rect(c, axis, 2.2 / px, 0.9 / px)
            colour = np.float32(_ROOFS[int(rng.integers(len(_ROOFS)))]) * np.float32(1.1)
            C.fill([img, grain], [car], [colour, 0.03])
    if rng.random() < 0.5:  # a paved lot, grey like flat roofs
        c = centre + rng.uniform(-0.4, 0.4, 2) * (width, height)
        lot = _rect(c, d, rng.uniform(10, 30) / px, rng.uniform(8, 20) / px)
        C.fill([img, grain], [lot], [np.float32([rng.uniform(110, 170)] * 3), 0.06])
    sun = rng.uniform(0, 2 * math.pi)
    sun_dir = np.array([math.cos(sun), math.sin(sun)])
    shade = np.float32(rng.uniform(0.4, 0.6))
    target, placed = int(rng.integers(2, 13)), 0
    for _ in range(4 * target):  # a site that overlaps a road or a house is tried again
        placed += _building(rng, img, grain, label, taken, px, d, n, sun_dir, shade, height, width)
        if placed == target:
            break
    for _ in range(int(rng.integers(0, 18))):
        _tree(rng, img, grain, label, px, sun_dir, shade, height, width)
    image = C.camera_response(rng, img, grain, noise_cell=2.0)
    return image, label.astype(bool)


def _rect(c, axis, half_long, half_short):
    across = np.array([-axis[1], axis[0]])
    return np.array(
        [
            c - axis * half_long - across * half_short,
            c + axis * half_long - across * half_short,
            c + axis * half_long + across * half_short,
            c - axis * half_long + across * half_short,
        ]
    )


def _building(rng, img, grain, label, taken, px, d, n, sun_dir, shade, height, width):
    a = rng.normal(0, 0.15) if rng.random() < 0.8 else rng.uniform(0, math.pi)  # mostly on grid
    axis = d * math.cos(a) + n * math.sin(a)
    c = rng.uniform((0, 0), (width, height))
    hl, hs = rng.uniform(4, 14) / px, rng.uniform(3, 8) / px
    parts = [_rect(c, axis, hl, hs)]
    shape = rng.random()
    across = np.array([-axis[1], axis[0]])
    if shape < 0.3:  # L: a wing at one end
        wing = rng.uniform(2.5, 6) / px
        parts.append(_rect(c + axis * (hl - wing) + across * (hs + wing), across, wing + hs, wing))
    elif shape < 0.4:  # T: a wing in the middle
        wing = rng.uniform(2.5, 5) / px
        parts.append(_rect(c + across * (hs + wing), across, wing + hs, wing))
    footprint = np.zeros(label.shape, np.uint8)
    C.fill([footprint], parts, [1])
    # Keep a gap of a few metres to roads and other houses.
    if not footprint.any() or (taken[footprint.astype(bool)]).any():
        return False
    gap = max(1, round(2 / px))
    taken_new = np.zeros_like(footprint)
    C.fill([taken_new], [_rect(c, axis, hl + gap, hs + gap)] + [p for p in parts[1:]], [1])
    taken |= taken_new
    roof = np.float32(_ROOFS[int(rng.integers(len(_ROOFS)))]) * np.float32(rng.uniform(0.85, 1.1))
    storeys = rng.uniform(3, 12) / px
    shadow = [p + sun_dir * storeys * 0.5 for p in parts]
    mask_shadow = np.zeros(label.shape, np.uint8)
    C.fill([mask_shadow], shadow, [1])
    dark = mask_shadow.astype(bool) & ~footprint.astype(bool)
    img[dark] *= shade
    C.fill([img, grain, label], parts, [roof, _ROOF_GRAIN, 1])
    if rng.random() < 0.55 and shape >= 0.3:  # gable: the half facing the sun is brighter
        lit = 1.15 if np.dot(across, sun_dir) < 0 else 0.75
        half = _rect(c - across * hs / 2, axis, hl, hs / 2)
        C.fill([img], [half], [roof * np.float32(lit)])
        ridge = _rect(c, axis, hl, 0.5)
        C.fill([img], [ridge], [roof * np.float32(0.6)])
    else:  # flat: a parapet edge and a few roof boxes
        inner = np.zeros(label.shape, np.uint8)
        C.fill([inner], [_rect(c, axis, hl - 1, hs - 1)], [1])
        edge = footprint.astype(bool) & ~inner.astype(bool)
        img[edge] *= np.float32(0.75)
        for _ in range(int(rng.integers(0, 4))):
            box = c + axis * rng.uniform(-0.6, 0.6) * hl + across * rng.uniform(-0.6, 0.6) * hs
            C.fill([img], [_rect(box, axis, 1.0 / px, 0.8 / px)], [roof * np.float32(1.25)])
    return True


def _tree(rng, img, grain, label, px, sun_dir, shade, height, width):
    c = rng.uniform((0, 0), (width, height))
    r = rng.uniform(1.5, 4.5) / px
    crown = C.ellipse_poly(c[0], c[1], r, r * rng.uniform(0.85, 1.15), rng.uniform(0, 3), n=16)
    crown = (crown - c) * rng.uniform(0.85, 1.1, (16, 1)) + c
    mask = np.zeros(label.shape, np.uint8)
    C.fill([mask], [crown + sun_dir * r * 0.8], [1])
    img[mask.astype(bool)] *= shade
    leaf = np.float32((rng.uniform(25, 80), rng.uniform(60, 120), rng.uniform(20, 55)))
    C.fill([img, grain, label], [crown], [leaf, _TREE_GRAIN, 0])
