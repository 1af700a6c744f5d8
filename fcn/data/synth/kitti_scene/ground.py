"""The KITTI scene's background, painted per pixel in road coordinates: the sky, the ground
(materials, paving joints, lane marks, shadows; which pixels are road) and the skyline of distant
trees and houses where the road ends.
"""

from __future__ import annotations

import math

import numpy as np

from fcn.data.synth.kitti_scene.world import (
    ASPHALT,
    CAM_HEIGHT,
    GRASS,
    GRAVEL,
    GROUND_GRAIN,
    GROUND_PATCHES,
    KERB,
    KERBSTONE,
    NOT_ROAD,
    ROAD,
    SHADOW_RANGE,
    SIDEWALK,
    TREE_GRAIN,
    WALL_COLOURS,
    WALL_GRAIN,
    fill_value,
    smooth_noise,
    world_noise,
)


def paint_sky(rng, cam, sky):
    """Fill the rows above the horizon: blue or overcast gradient with soft clouds."""
    rows, width = sky.shape[:2]
    overcast = rng.random() < 0.35
    high = (190, 192, 196) if overcast else (rng.uniform(60, 120), rng.uniform(120, 165), 225)
    low = (228, 228, 230) if overcast else (205, 218, 232)
    t = (np.arange(rows, dtype=np.float32)[:, None, None] + 0.5) / max(cam.horizon, 1.0)
    clouds = np.clip(smooth_noise(rng, rows, width, max(width // 40, 2)), 0, None)
    sky[:] = (1 - t) * np.float32(high) + t * np.float32(low)
    sky += (clouds * np.float32(rng.uniform(0, 25)))[..., None] * (1 - t)


def paint_ground(rng, cam, plan, shadows, img, label, grain):
    """Paint the rows below the horizon (the views passed in); return road x per pixel, (h, W)."""
    h, width = label.shape
    rows = np.arange(cam.height - h, cam.height, dtype=np.float32) + 0.5
    z = (cam.focal * CAM_HEIGHT / (rows - cam.horizon))[:, None]  # (h, 1) depth per row, m
    cols = np.arange(width, dtype=np.float32)[None, :] + 0.5
    x = (cols - cam.centre) * z / cam.focal - cam.bend * z * z + cam.cam_x  # (h, W) m
    x = x.astype(np.float32)
    mat = _materials(plan, x, z)
    np.take(_ground_palette(rng), mat, axis=0, out=img)
    # Blotches fade out with distance, where they would only alias into streaks.
    fade = np.clip(2 - z / 40, 0, 1)
    light = 1 + np.take(np.float32(GROUND_PATCHES), mat) * fade * world_noise(rng, x, z, 1.2, 1.2)
    light *= _paving(mat, x, z, cam)
    light *= _shade(rng, cam, x, z, shadows)
    img *= light[..., None]
    for mark in plan.marks:
        _paint_mark(img, cam, plan, mark)
    label[:] = np.where((mat == ASPHALT) & (z <= plan.far), ROAD, NOT_ROAD)
    grain[:] = np.take(np.float32(GROUND_GRAIN), mat)
    return x


def _materials(plan, x, z):
    """(h, W) ground material per pixel from road coordinates."""
    half = plan.half_width
    mat = np.full(x.shape, GRASS, np.uint8)
    for side, (kind, width) in zip((-1, 1), plan.sides, strict=True):
        out = side * x - half  # m beyond the asphalt edge on this side
        if kind == SIDEWALK:
            mat[(out > 0) & (out <= KERB)] = KERBSTONE
            mat[(out > KERB) & (out <= width)] = SIDEWALK
        elif kind == GRAVEL:
            mat[(out > 0) & (out <= width)] = GRAVEL
    if plan.junction:
        side, near, far = plan.junction
        out = side * x - half
        walk = 2.5  # m of sidewalk along each kerb of the side road
        beside = ((z > near - walk) & (z <= near)) | ((z >= far) & (z < far + walk))
        mat[(out > plan.sides[(side + 1) // 2][1]) & beside] = SIDEWALK
        mat[(out > 0) & (z > near) & (z < far)] = ASPHALT
    mat[(np.abs(x) <= half) & (z <= plan.far)] = ASPHALT
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
    return 1 - (0.18 * fade) * (joint & (mat == SIDEWALK))


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
        fill_value(alpha, [poly], mark.paint * cover)
    where = np.nonzero(alpha)
    a = alpha[where][:, None]
    ground[where] += a * (np.float32(mark.rgb) - ground[where])


def _shade(rng, cam, x, z, shadows):
    """(h, W) light factor of the ground: soft shadows of trees and houses, dark under cars."""
    shade = np.ones(x.shape, np.float32)
    if rng.random() < 0.7:
        field = world_noise(rng, x, z, rng.uniform(0.8, 2.0), rng.uniform(0.4, 1.0))
        level = rng.uniform(0.3, 1.2)
        soft = np.clip((field - level) / 0.3 + 0.5, 0, 1) * (z < SHADOW_RANGE)
        shade -= rng.uniform(0.3, 0.55) * soft
    first_row = cam.height - x.shape[0]
    for poly in shadows:
        fill_value(shade, [poly - (0, first_row)], 0.45)
    return shade


def paint_skyline(rng, cam, plan, img, label, grain):
    """Distant trees and houses standing at the far end of the road, hiding what lies beyond."""
    width = cam.width
    scale = cam.focal / plan.far  # px per metre at that distance
    hills = smooth_noise(rng, 1, width, max(width // 10, 2))[0]
    crowns = smooth_noise(rng, 1, width, max(width // 60, 2))[0]
    tall = np.clip(rng.uniform(7, 12) * (1 + 0.25 * hills + 0.08 * crowns) * scale, 2, None)
    colour = np.empty((width, 3), np.float32)
    colour[:] = (rng.uniform(30, 60), rng.uniform(65, 100), rng.uniform(25, 45))
    strength = np.full(width, 0.6 * TREE_GRAIN, np.float32)  # crowns blur together far away
    edge = 0
    while edge < width:  # blocks of houses between stretches of trees
        run = int(rng.uniform(0.03, 0.15) * width) + 1
        if rng.random() < 0.45:
            tall[edge : edge + run] = rng.uniform(5, 22) * scale
            colour[edge : edge + run] = WALL_COLOURS[int(rng.integers(len(WALL_COLOURS)))]
            strength[edge : edge + run] = WALL_GRAIN
        edge += run
    haze = np.float32(rng.uniform(0.1, 0.4) * plan.far / 160)  # far things fade into the sky
    colour = (1 - haze) * colour + haze * np.float32((210, 218, 228))
    base = cam.horizon + cam.focal * CAM_HEIGHT / plan.far  # row where they meet the ground
    first = max(math.floor(cam.horizon - tall.max()), 0)
    last = min(math.ceil(base), cam.height)
    rows = np.arange(first, last, dtype=np.float32)[:, None] + 0.5
    band = (rows >= cam.horizon - tall) & (rows < base)  # (rows, W)
    colour = np.broadcast_to(colour, (last - first, width, 3))
    strength = np.broadcast_to(strength, band.shape)
    np.copyto(img[first:last], colour, where=band[..., None])
    np.copyto(label[first:last], NOT_ROAD, where=band)
    np.copyto(grain[first:last], strength, where=band)
