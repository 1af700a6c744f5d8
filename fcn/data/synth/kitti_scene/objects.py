"""The KITTI scene's objects, world boxes projected by the camera: houses along the road, trees,
poles and cars (in the lanes and parked), each a drawing closure, listed far to near.
"""

from __future__ import annotations

import numpy as np

from fcn.data.synth.kitti_scene.world import (
    CAR_COLOURS,
    CAR_GRAIN,
    GLASS,
    KERB,
    NEAR,
    SIDEWALK,
    TREE_GRAIN,
    WALL_COLOURS,
    WALL_GRAIN,
    fill,
)


def scene_objects(rng, cam, plan):
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
            for z in np.arange(rng.uniform(NEAR + 1, 15), plan.far, step):
                if blocked is None or not blocked[0] < z < blocked[1]:
                    others.append((z, _tree(rng, cam, side * (verge[s] + setback), z)))
        if plan.sides[s][0] == SIDEWALK and rng.random() < 0.5:
            x = side * (half + KERB + 0.4)
            for z in np.arange(rng.uniform(NEAR + 2, 20), plan.far, rng.uniform(18, 35)):
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
    z = rng.uniform(NEAR, 15)
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
    wall = np.float32(WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))]) * rng.uniform(0.75, 1.1)
    zs = np.linspace(z0, z1, 8)  # the front follows the bending road
    front = np.concatenate([cam.project(x, zs, 0), cam.project(x, zs[::-1], tall)])
    end = cam.project([x, x + side * deep, x + side * deep, x], z0, [0, 0, tall, tall])
    zz, yy = np.meshgrid(
        np.arange(z0 + 1.0, z1 - 1.4, rng.uniform(2.5, 4.0)), np.arange(1.0, tall - 1.5, 3.0)
    )
    zz, yy = zz.ravel(), yy.ravel()
    corners = [(zz, yy), (zz + 1.2, yy), (zz + 1.2, yy + 1.4), (zz, yy + 1.4)]
    windows = np.stack([cam.project(x, cz, cy) for cz, cy in corners], axis=1)  # (n, 4, 2)
    glass = np.float32(GLASS) * rng.uniform(0.7, 1.6)
    visible = cam.focal * 1.2 / z1 >= 1.5  # windows thinner than pixels would only alias

    def draw(img, label, grain):
        fill(img, label, grain, [end], wall * 0.8, WALL_GRAIN)
        fill(img, label, grain, [front], wall, WALL_GRAIN)
        if len(windows) and visible:
            fill(img, label, grain, list(windows), glass, WALL_GRAIN)

    return draw


def _tree(rng, cam, x, z):
    crown_y, radius = rng.uniform(3.5, 6.5), rng.uniform(1.5, 3.5)
    angles = np.linspace(0, 2 * np.pi, 18, endpoint=False)
    px = radius * (1 + 0.15 * rng.standard_normal(angles.size)) * cam.focal / z
    crown = cam.project(x, z, crown_y) + np.stack([px * np.cos(angles), px * np.sin(angles)], -1)
    trunk = cam.project([x - 0.15, x + 0.15, x + 0.15, x - 0.15], z, [0, 0, crown_y, crown_y])
    leaves = np.float32((rng.uniform(30, 70), rng.uniform(60, 105), rng.uniform(25, 50)))

    def draw(img, label, grain):
        fill(img, label, grain, [trunk], (70, 55, 40), WALL_GRAIN)
        fill(img, label, grain, [crown], leaves, TREE_GRAIN)

    return draw


def _pole(rng, cam, x, z):
    tall = rng.uniform(5, 8)
    quad = cam.project([x - 0.08, x + 0.08, x + 0.08, x - 0.08], z, [0, 0, tall, tall])
    grey = np.float32([rng.uniform(90, 160)] * 3)

    def draw(img, label, grain):
        fill(img, label, grain, [quad], grey, WALL_GRAIN)

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
            slots.append((side * (half - rng.uniform(0.6, 1.2)), rng.uniform(NEAR + 2, 45)))
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
    body = np.float32(CAR_COLOURS[int(rng.integers(len(CAR_COLOURS)))]) * rng.uniform(0.8, 1.1)
    glass, tyre, lamp = np.float32(GLASS), (20, 20, 22), (170, 20, 20)
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
            fill(img, label, grain, [poly], rgb, CAR_GRAIN)
        fill(img, label, grain, tyres, tyre, CAR_GRAIN)
        for poly, rgb in faces:
            fill(img, label, grain, [poly], rgb, CAR_GRAIN)

    return draw, shadow
