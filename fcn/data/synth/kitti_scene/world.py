"""The KITTI scene's world model, shared by every other piece: road coordinates, the pinhole
camera, the road plan's types, label values, ground materials, colours and texture strengths, and
the drawing primitives (fixed-point polygon fills, noise fields).

Road coordinates: x is metres sideways from the road centre (positive to the right), z metres of
depth ahead of the camera, y metres above the ground.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

NOT_ROAD, ROAD, VOID = 0, 1, 255  # label values; void is not evaluated

CAM_HEIGHT = 1.65  # m, KITTI's camera height above the road
NEAR = 4.0  # m; objects start this far ahead so their projections stay of sane size
SHADOW_RANGE = 70.0  # m; farther shadows would alias into pixel noise
KERB = 0.15  # m, kerb stone width between asphalt and sidewalk
SHIFT = 4  # fractional bits of the polygon vertices handed to cv2, for sub-pixel edges

# Ground materials: indices into a per-scene palette. Only asphalt (lane marks included) is road.
GRASS, SIDEWALK, KERBSTONE, GRAVEL, ASPHALT = range(5)
# Relative texture strength per material (multiplies unit noise); grass is rough, kerbs smooth.
GROUND_GRAIN = (0.20, 0.05, 0.04, 0.14, 0.07)
GROUND_PATCHES = (0.22, 0.05, 0.03, 0.12, 0.07)  # large-scale blotches (repairs, dry grass)
TREE_GRAIN, WALL_GRAIN, CAR_GRAIN, SKY_GRAIN = 0.25, 0.04, 0.03, 0.01

WALL_COLOURS = (
    (196, 182, 160),
    (170, 170, 168),
    (150, 82, 66),
    (224, 220, 206),
    (205, 190, 140),
    (130, 120, 110),
    (180, 196, 200),
)
CAR_COLOURS = (
    (30, 30, 34),
    (210, 212, 214),
    (150, 152, 156),
    (140, 24, 22),
    (25, 45, 110),
    (60, 70, 60),
    (235, 235, 230),
)
GLASS = (40, 48, 58)
MARK_WHITE, MARK_YELLOW = (232, 232, 226), (226, 190, 60)


@dataclasses.dataclass(frozen=True)
class Camera:
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
        row = self.horizon + self.focal * (CAM_HEIGHT - y) / z
        return np.stack([col, row], axis=-1)


@dataclasses.dataclass(frozen=True)
class Mark:
    x: float  # m from the road centre
    width: float  # m
    rgb: tuple
    paint: float  # opacity; worn marks are faint
    dash: tuple | None  # (period, length, phase) in metres of depth, or None for a solid line
    edge: bool  # edge lines stop at a junction, centre lines run through it


@dataclasses.dataclass(frozen=True)
class Plan:
    half_width: float  # m, road centre to asphalt edge
    marks: tuple
    ego: tuple  # (x_min, x_max) of the ego lane, m
    cam_x: float
    sides: tuple  # per side (-1 left, +1 right): (material, width in m) of the verge
    junction: tuple | None  # (side, z_near, z_far) of a side road
    far: float  # m; beyond it the road disappears behind distant trees and houses
    bend: float


def fill(img, label, grain, polys, rgb, strength):
    """Paint polygons (a list of (n, 2) image points) as an opaque object that is not road."""
    pts = _fixed(polys)
    cv2.fillPoly(img, pts, tuple(float(c) for c in rgb), cv2.LINE_8, SHIFT)
    cv2.fillPoly(label, pts, NOT_ROAD, cv2.LINE_8, SHIFT)
    cv2.fillPoly(grain, pts, float(strength), cv2.LINE_8, SHIFT)


def fill_value(canvas, polys, value):
    """Set polygons (a list of (n, 2) image points) of a one-channel canvas to value."""
    cv2.fillPoly(canvas, _fixed(polys), float(value), cv2.LINE_8, SHIFT)


def _fixed(polys):
    # Clip far-off-screen vertices so fixed-point coordinates never overflow int32.
    return [np.round(np.clip(p, -1e5, 1e5) * (1 << SHIFT)).astype(np.int32) for p in polys]


def smooth_noise(rng, height, width, cell):
    """(height, width) float32 noise of roughly unit size, varying over about cell pixels."""
    small = rng.standard_normal((height // cell + 2, width // cell + 2)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def world_noise(rng, x, z, cell_x, cell_z, size=64):
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
