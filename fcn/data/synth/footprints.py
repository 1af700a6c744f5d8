"""Synthetic aerial tiles (top-down) with building footprint masks, in the folder layout.

Ground is grass and soil blended by smooth noise; straight roads, paved lots (grey like many
roofs) and cars on them; buildings are rectangles, L- and T-shapes at any rotation with flat
(parapet, roof boxes) or gabled (two halves lit differently) roofs of varied colour, each casting
a shadow away from the sun; trees come last and may overhang roofs. The mask is the visible roof:
pixels under an overhanging crown are background, as the picture shows. BIG_SHARE of the tiles
hold a warehouse-sized roof (BIG_HALF) that the tile may not contain: a 128-pixel crop of it is
roof from edge to edge, which a model must have seen to find such roofs in large scenes.

The pieces (ground, road, lot, building, tree) draw into `Layers` and touch only the window of
pixels their polygons reach, so large scenes (fcn.data.synth.footprint_scenes) reuse them at a
cost that grows with what is drawn, not with the scene's size.
"""

from __future__ import annotations

import collections
import math

import numpy as np

from fcn.data.synth import _common as C
from fcn.data.synth import _folder, footprint_scenes

KIND_CODE = 3
_LONGS, _ASPECTS = (128, 256), (1.0, 1.0, 0.75, 1.333)
_ROOFS = (
    (150, 150, 152), (120, 118, 115), (170, 80, 60), (140, 60, 45), (80, 80, 88),
    (200, 198, 190), (110, 90, 70), (90, 120, 130), (185, 170, 150),
)  # fmt: skip
# The canvases every piece draws into: img (H, W, 3) float32 RGB, grain (H, W) float32, label
# (H, W) the building mask (uint8 0/1; scenes: int32 building ids), taken (H, W) uint8 where
# no new building may go.
Layers = collections.namedtuple("Layers", "img grain label taken")
_GRASS_GRAIN, _ROAD_GRAIN, _ROOF_GRAIN, _TREE_GRAIN = 0.22, 0.08, 0.05, 0.4
BIG_SHARE = 0.2
BIG_HALF = ((100, 170), (45, 90))  # half length, half width in pixels (200..340 x 90..180 px)


def generate(
    out, count, test_count, seed, sizes=None, scenes=footprint_scenes.SCENE_COUNT,
    scene_side=footprint_scenes.SCENE_SIDE,
):  # fmt: skip
    """The tiles, and `scenes` large georeferenced scenes of scene_side^2 pixels in scenes/
    (fcn.data.synth.footprint_scenes; 0: none)."""

    scenes = C.check_int("scenes", scenes, 0)
    side = C.check_int("scene_side", scene_side, footprint_scenes.MIN_SIDE)

    def write_scenes(root):
        footprint_scenes.write(root, scenes, seed, side)

    return _folder.generate(
        "footprints", KIND_CODE, render, _pick, out, count, test_count, seed, sizes,
        write_scenes if scenes else None,
    )  # fmt: skip


def _pick(rng, sizes, i):
    return C.pick_size(rng, sizes, i, _LONGS, _ASPECTS)


def render(rng, height, width):
    """(image uint8 (H, W, 3) RGB, building mask bool (H, W))."""
    px = rng.uniform(0.35, 0.7)  # metres per pixel
    layers = Layers(
        np.empty((height, width, 3), np.float32),
        np.full((height, width), _GRASS_GRAIN, np.float32),
        np.zeros((height, width), np.uint8),
        np.zeros((height, width), np.uint8),
    )
    ground(rng, layers.img, max(height, width) / 5)
    angle = rng.uniform(0, math.pi)  # the street grid's direction
    d = np.array([math.cos(angle), math.sin(angle)])
    n = np.array([-d[1], d[0]])
    diag = math.hypot(height, width)
    centre = np.array([width / 2, height / 2])
    asphalt = np.float32([rng.uniform(70, 120)] * 3)
    big = rng.random() < BIG_SHARE
    for _ in range(int(rng.integers(0, 2) if big else rng.integers(1, 4))):  # roads
        axis, across = (d, n) if rng.random() < 0.6 else (n, d)
        half = rng.uniform(3, 6) / px
        mid = centre + across * rng.uniform(-0.45, 0.45) * diag
        road(rng, layers, mid, axis, across, half, diag, px, asphalt)
    if rng.random() < 0.5:  # a paved lot, grey like flat roofs
        lot(rng, layers, centre + rng.uniform(-0.4, 0.4, 2) * (width, height), d, px)
    sun = rng.uniform(0, 2 * math.pi)
    sun_dir = np.array([math.cos(sun), math.sin(sun)])
    shade = np.float32(rng.uniform(0.4, 0.6))
    for _ in range(20 if big else 0):  # the large roof first, while there is room
        half = (rng.uniform(*BIG_HALF[0]), rng.uniform(*BIG_HALF[1]))
        if building(rng, layers, px, d, n, sun_dir, shade, half):
            break
    target, placed = int(rng.integers(2, 13)), 0
    for _ in range(4 * target):  # a site that overlaps a road or a house is tried again
        placed += building(rng, layers, px, d, n, sun_dir, shade)
        if placed == target:
            break
    for _ in range(int(rng.integers(0, 18))):
        tree(rng, layers, px, sun_dir, shade)
    image = C.camera_response(rng, layers.img, layers.grain, noise_cell=2.0)
    return image, layers.label.astype(bool)


def ground(rng, img, cell):
    """Grass and dry soil blended by a smooth field varying over about cell pixels."""
    height, width = img.shape[:2]
    grass = np.float32((rng.uniform(60, 110), rng.uniform(95, 145), rng.uniform(40, 75)))
    soil = np.float32((rng.uniform(120, 165), rng.uniform(105, 140), rng.uniform(75, 105)))
    blend = np.clip(C.smooth_noise(rng, height, width, cell) * 0.5 + 0.5, 0, 1)
    img[:] = grass + (soil - grass) * blend[..., None]


def road(rng, layers, mid, axis, across, half, length, px, asphalt, cars=None):
    """A straight road through mid along axis (across: the unit normal; half width and length
    in pixels) and cars on it (cars: how many, None draws 0..3)."""
    strip = [mid - axis * length + across * half, mid + axis * length + across * half]
    strip += [mid + axis * length - across * half, mid - axis * length - across * half]
    C.fill([layers.img, layers.grain, layers.taken], [np.array(strip)], [asphalt, _ROAD_GRAIN, 1])
    for _ in range(int(rng.integers(0, 4)) if cars is None else cars):
        c = mid + axis * rng.uniform(-0.5, 0.5) * length + across * rng.uniform(-0.5, 0.5) * half
        car = _rect(c, axis, 2.2 / px, 0.9 / px)
        colour = np.float32(_ROOFS[int(rng.integers(len(_ROOFS)))]) * np.float32(1.1)
        _fill_local(layers, [car], ("img", "grain"), [colour, 0.03])


def lot(rng, layers, c, d, px):
    """A paved lot centred at c, grey like flat roofs."""
    rect = _rect(c, d, rng.uniform(10, 30) / px, rng.uniform(8, 20) / px)
    grey = np.float32([rng.uniform(110, 170)] * 3)
    _fill_local(layers, [rect], ("img", "grain"), [grey, 0.06])


def _fill_local(layers, polys, names, values):
    """C.fill of the named layers, in the window the polygons reach."""
    win = C.window(layers.img.shape, polys)
    if win is not None:
        rows, cols, origin = win
        canvases = [getattr(layers, name)[rows, cols] for name in names]
        C.fill(canvases, polys, values, origin)


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


def building(rng, layers, px, d, n, sun_dir, shade, half=None, ident=1):
    """Try one building on a free site: True when drawn. px: metres per pixel of its sizes;
    half: (half length, half width) in pixels instead of drawn ones; ident: its label value."""
    a = rng.normal(0, 0.15) if rng.random() < 0.8 else rng.uniform(0, math.pi)  # mostly on grid
    axis = d * math.cos(a) + n * math.sin(a)
    height, width = layers.label.shape
    c = rng.uniform((0, 0), (width, height))
    hl, hs = (rng.uniform(4, 14) / px, rng.uniform(3, 8) / px) if half is None else half
    parts = [_rect(c, axis, hl, hs)]
    shape = rng.random()
    across = np.array([-axis[1], axis[0]])
    if shape < 0.3:  # L: a wing at one end
        wing = rng.uniform(2.5, 6) / px
        parts.append(_rect(c + axis * (hl - wing) + across * (hs + wing), across, wing + hs, wing))
    elif shape < 0.4:  # T: a wing in the middle
        wing = rng.uniform(2.5, 5) / px
        parts.append(_rect(c + across * (hs + wing), across, wing + hs, wing))
    gap = max(1, round(2 / px))  # keep a gap of a few metres to roads and other houses
    outline = _rect(c, axis, hl + gap, hs + gap)
    # Everything drawn below lies within the outline, the parts or their longest shadow.
    reach = parts + [outline] + [p + sun_dir * 6 / px for p in parts]
    win = C.window(layers.label.shape, reach)
    if win is None:
        return False
    rows, cols, origin = win
    img, grain, label, taken = (layer[rows, cols] for layer in layers)
    footprint = np.zeros(label.shape, np.uint8)
    C.fill([footprint], parts, [1], origin)
    if not footprint.any() or (taken[footprint.astype(bool)]).any():
        return False
    taken_new = np.zeros_like(footprint)
    C.fill([taken_new], [outline] + [p for p in parts[1:]], [1], origin)
    taken |= taken_new
    roof = np.float32(_ROOFS[int(rng.integers(len(_ROOFS)))]) * np.float32(rng.uniform(0.85, 1.1))
    storeys = rng.uniform(3, 12) / px
    shadow = [p + sun_dir * storeys * 0.5 for p in parts]
    mask_shadow = np.zeros(label.shape, np.uint8)
    C.fill([mask_shadow], shadow, [1], origin)
    dark = mask_shadow.astype(bool) & ~footprint.astype(bool)
    img[dark] *= shade
    C.fill([img, grain, label], parts, [roof, _ROOF_GRAIN, ident], origin)
    if rng.random() < 0.55 and shape >= 0.3:  # gable: the half facing the sun is brighter
        lit = 1.15 if np.dot(across, sun_dir) < 0 else 0.75
        half = _rect(c - across * hs / 2, axis, hl, hs / 2)
        C.fill([img], [half], [roof * np.float32(lit)], origin)
        ridge = _rect(c, axis, hl, 0.5)
        C.fill([img], [ridge], [roof * np.float32(0.6)], origin)
    else:  # flat: a parapet edge and a few roof boxes
        inner = np.zeros(label.shape, np.uint8)
        C.fill([inner], [_rect(c, axis, hl - 1, hs - 1)], [1], origin)
        edge = footprint.astype(bool) & ~inner.astype(bool)
        img[edge] *= np.float32(0.75)
        for _ in range(int(rng.integers(0, 4))):
            box = c + axis * rng.uniform(-0.6, 0.6) * hl + across * rng.uniform(-0.6, 0.6) * hs
            C.fill([img], [_rect(box, axis, 1.0 / px, 0.8 / px)], [roof * np.float32(1.25)], origin)
    return True


def tree(rng, layers, px, sun_dir, shade):
    """A crown (possibly over a roof, which it hides from the label) and its shadow."""
    height, width = layers.label.shape
    c = rng.uniform((0, 0), (width, height))
    r = rng.uniform(1.5, 4.5) / px
    crown = C.ellipse_poly(c[0], c[1], r, r * rng.uniform(0.85, 1.15), rng.uniform(0, 3), n=16)
    crown = (crown - c) * rng.uniform(0.85, 1.1, (16, 1)) + c
    cast = crown + sun_dir * r * 0.8
    leaf = np.float32((rng.uniform(25, 80), rng.uniform(60, 120), rng.uniform(20, 55)))
    win = C.window(layers.label.shape, [crown, cast])
    if win is None:
        return
    rows, cols, origin = win
    img, grain, label = layers.img[rows, cols], layers.grain[rows, cols], layers.label[rows, cols]
    mask = np.zeros(label.shape, np.uint8)
    C.fill([mask], [cast], [1], origin)
    img[mask.astype(bool)] *= shade
    C.fill([img, grain, label], [crown], [leaf, _TREE_GRAIN, 0], origin)
