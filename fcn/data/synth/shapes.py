"""Synthetic foreground blobs among look-alike clutter, with 0/255 masks in the folder layout.

Every surface takes its texture from one bank (noise blends, stripes, dots, speckle, in random
colours), so texture alone never tells foreground from background. Structure does: foreground
objects are solid compact blobs (ellipses, random polygons, stars), shaded by one light and
casting a soft shadow; the background is a base texture under large straight-edged patches, and
distractors of the same textures are thin structures (rings, strokes, arcs) that may cross the
blobs (occlusion: those pixels are background).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fcn.data.synth import _common as C
from fcn.data.synth import _folder

KIND_CODE = 5
# Strength of the solid-body cues: brightness change across a blob towards the light, the
# darkening at its rim (a share of the brightness) and the rim's width (a share of the radius).
# At 0.45 / 0.55 / 0.08 a 16-filter U-Net at 96x96 plateaued at foreground IoU ~0.81 in its
# 10 minutes, missing 31 of 91 validation objects whose texture matched the patch under them.
_SHADE, _RIM, _RIM_WIDTH = 0.6, 0.65, 0.1
_LONGS, _ASPECTS = (128, 224), (1.0, 0.75, 1.333, 0.5625)


def generate(out, count, test_count, seed, sizes=None):
    return _folder.generate("shapes", KIND_CODE, render, _pick, out, count, test_count, seed, sizes)


def _pick(rng, sizes, i):
    return C.pick_size(rng, sizes, i, _LONGS, _ASPECTS)


def render(rng, height, width):
    """(image uint8 (H, W, 3) RGB, foreground mask bool (H, W))."""
    img = _texture(rng, height, width)
    grain = np.full((height, width), rng.uniform(0.02, 0.1), np.float32)
    mask = np.zeros((height, width), np.uint8)
    side = min(height, width)
    for _ in range(int(rng.integers(1, 5))):  # straight-edged background patches
        c = rng.uniform((0, 0), (width, height))
        half = rng.uniform(0.15, 0.6, 2) * (width, height)
        a = rng.uniform(0, math.pi) if rng.random() < 0.5 else 0.0
        _paste(rng, img, [_box(c, half, a)])
    strokes = [_distractor(rng, height, width) for _ in range(int(rng.integers(2, 7)))]
    under = int(rng.integers(0, len(strokes) + 1))
    for polys, thick in strokes[:under]:
        _paste(rng, img, polys, thick)
    light = rng.uniform(0, 2 * math.pi)
    ld = np.array([math.cos(light), math.sin(light)])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        r = rng.uniform(0.12, 0.28) * side
        c = rng.uniform((r * 0.5, r * 0.5), (width - r * 0.5, height - r * 0.5))
        blob = _blob(rng, c, r)
        # A soft shadow away from the light, then the blob shaded brighter towards it.
        shadow = np.zeros((height, width), np.float32)
        C.fill([shadow], [blob - ld * r * 0.15], [1])
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(r * 0.06, 0.5))
        img *= (1 - rng.uniform(0.3, 0.5) * shadow)[..., None]
        inside = np.zeros((height, width), np.uint8)
        C.fill([inside], [blob], [1])
        tex = _texture(rng, height, width)
        # Shading towards the light and a darkened rim (a solid body's silhouette): local cues
        # that the flat clutter never has, as cells' membranes in microscopy.
        shade = 1 + _SHADE * (((xx - c[0]) * -ld[0] + (yy - c[1]) * -ld[1]) / r)
        rim = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), max(r * _RIM_WIDTH, 0.7))
        tex *= (np.clip(shade, 1 - _SHADE, 1 + _SHADE) * (1 - _RIM + _RIM * rim))[..., None]
        sel = inside.astype(bool)
        img[sel] = tex[sel]
        mask |= inside
    for polys, thick in strokes[under:]:  # over the blobs: these pixels are background
        covered = _paste(rng, img, polys, thick)
        mask[covered] = 0
    image = C.camera_response(rng, img, grain, noise_cell=2.0)
    return image, mask.astype(bool)


def _box(c, half, a):
    ca, sa = math.cos(a), math.sin(a)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    return c + corners @ np.array([[ca, sa], [-sa, ca]])


def _blob(rng, c, r):
    kind = rng.random()
    if kind < 0.4:
        return C.ellipse_poly(c[0], c[1], r, r * rng.uniform(0.55, 1.0), rng.uniform(0, 3), n=40)
    if kind < 0.75:  # a random star-convex polygon with smooth-ish radii
        k = int(rng.integers(5, 10))
        t = np.sort(rng.uniform(0, 2 * math.pi, k))
        rad = r * rng.uniform(0.65, 1.1, k)
    else:  # a star
        k = int(rng.integers(4, 8))
        t = np.linspace(0, 2 * math.pi, 2 * k, endpoint=False) + rng.uniform(0, 3)
        rad = r * np.where(np.arange(2 * k) % 2 == 0, 1.0, rng.uniform(0.45, 0.65))
    return np.stack([c[0] + rad * np.cos(t), c[1] + rad * np.sin(t)], -1)


def _distractor(rng, height, width):
    """(polygons to stroke, thickness px): a ring, an arc or a zig-zag stroke."""
    side = min(height, width)
    c = rng.uniform((0, 0), (width, height))
    thick = max(1, round(rng.uniform(0.012, 0.04) * side))
    kind = rng.random()
    if kind < 0.35:
        r = rng.uniform(0.08, 0.3) * side
        ring = C.ellipse_poly(c[0], c[1], r, r * rng.uniform(0.5, 1), rng.uniform(0, 3), n=40)
        return [np.vstack([ring, ring[:1]])], thick
    if kind < 0.65:
        r = rng.uniform(0.1, 0.4) * side
        t = np.linspace(0, rng.uniform(1.5, 4.5), 24) + rng.uniform(0, 6)
        return [np.stack([c[0] + r * np.cos(t), c[1] + r * np.sin(t)], -1)], thick
    pts = c + np.cumsum(rng.normal(0, 0.15 * side, (int(rng.integers(3, 7)), 2)), 0)
    return [pts], thick


def _paste(rng, img, polys, thick=0):
    """Paint a fresh bank texture into the polygons (filled) or along them (thick > 0); return
    the covered pixels (H, W) bool."""
    height, width = img.shape[:2]
    cover = np.zeros((height, width), np.uint8)
    pts = [np.round(np.clip(p, -1e5, 1e5) * (1 << C.SHIFT)).astype(np.int32) for p in polys]
    if thick:
        cv2.polylines(cover, pts, False, 1, thick, cv2.LINE_8, C.SHIFT)
    else:
        cv2.fillPoly(cover, pts, 1, cv2.LINE_8, C.SHIFT)
    sel = cover.astype(bool)
    img[sel] = _texture(rng, height, width)[sel]
    return sel


def _texture(rng, height, width):
    """(H, W, 3) float32: one draw from the texture bank in two random colours."""
    a = rng.uniform(20, 235, 3).astype(np.float32)
    b = np.clip(a + rng.normal(0, 60, 3), 0, 255).astype(np.float32)
    kind = int(rng.integers(4))
    if kind == 0:  # smooth blend
        t = C.smooth_noise(rng, height, width, rng.uniform(3, 20)) * 0.5 + 0.5
    elif kind == 1:  # stripes
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ang, period = rng.uniform(0, math.pi), rng.uniform(3, 12)
        t = 0.5 + 0.5 * np.sin((xx * math.cos(ang) + yy * math.sin(ang)) * (2 * math.pi / period))
    elif kind == 2:  # dots
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        period = rng.uniform(4, 10)
        t = (np.hypot((xx % period) - period / 2, (yy % period) - period / 2) < period / 3.5) * 1.0
    else:  # speckle
        t = (C.smooth_noise(rng, height, width, 1.5) > 0.3) * 1.0
    t = np.clip(t, 0, 1).astype(np.float32)[..., None]
    return a + (b - a) * t
