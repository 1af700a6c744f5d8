"""Bird's-eye view (BEV) of perspective road maps, for KITTI road benchmark submissions.

Conventions of the KITTI road devkit (BirdsEyeView.py, transform2BEV.py):
- Road coordinates come from the camera by Tr_cam_to_road; the road is the plane y_road = 0,
  x to the right and z forward (metres).
- The BEV grid covers x in BEV_X_RANGE and z in BEV_Z_RANGE at BEV_RES metres per pixel:
  800 rows x 400 columns. Cell centres: column c at x = -10 + (c + 0.5) * 0.05, row r at
  z = 46 - (r + 0.5) * 0.05, so row 0 is the far edge (46 m) at the top of the image, the last
  row is 6 m in front of the camera, and column 0 is the left edge (x = -10 m).
- Perspective pixel (u, v) = projection of road point (x, 0, z) by
  P2 @ R0_rect (as 4x4) @ inverse(Tr_cam_to_road as 4x4).
"""

import os

import cv2
import numpy as np

from fcn.errors import UserError

BEV_X_RANGE = (-10.0, 10.0)  # metres, left to right
BEV_Z_RANGE = (6.0, 46.0)  # metres ahead of the camera
BEV_RES = 0.05  # metres per BEV pixel
# (rows, columns) = (800, 400); rounded like the devkit's BevParams.
BEV_SHAPE = (
    round((BEV_Z_RANGE[1] - BEV_Z_RANGE[0]) / BEV_RES),
    round((BEV_X_RANGE[1] - BEV_X_RANGE[0]) / BEV_RES),
)

_CALIB_SHAPES = {"P2": (3, 4), "R0_rect": (3, 3), "Tr_cam_to_road": (3, 4)}


def read_calib(path) -> dict:
    """{"P2": (3, 4), "R0_rect": (3, 3), "Tr_cam_to_road": (3, 4)} float64 from a KITTI road
    calib file (calib/<cat>_<id>.txt: lines "key: numbers"; other keys, blank lines and
    '#' comments are skipped). Raises UserError naming the file and the key at fault."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UserError(f"cannot read calibration file {path}: {e.strerror}") from None
    raw = {}
    for line in lines:
        key, sep, values = line.partition(":")
        if sep and not key.lstrip().startswith("#"):
            raw[key.strip()] = values
    calib = {}
    for key, shape in _CALIB_SHAPES.items():
        if key not in raw:
            raise UserError(
                f"calibration file {path} has no '{key}:' line; KITTI road calib files need "
                f"{', '.join(_CALIB_SHAPES)}"
            )
        try:
            values = np.array(raw[key].split(), np.float64)
        except ValueError:
            values = None
        if values is None or values.size != shape[0] * shape[1]:
            raise UserError(
                f"calibration file {path}: '{key}' must be {shape[0] * shape[1]} numbers, got "
                f"{raw[key].strip()[:60]!r}"
            )
        calib[key] = values.reshape(shape)
    return calib


def _road_plane_to_image(calib) -> np.ndarray:
    """(3, 3): road-plane point (x, z, 1) -> homogeneous perspective pixel (the devkit's Tr33)."""
    r0 = np.eye(4)
    r0[:3, :3] = np.asarray(calib["R0_rect"], np.float64).reshape(3, 3)
    cam_to_road = np.eye(4)
    cam_to_road[:3, :] = np.asarray(calib["Tr_cam_to_road"], np.float64).reshape(3, 4)
    p2 = np.asarray(calib["P2"], np.float64).reshape(3, 4)
    road_to_image = (p2 @ r0) @ np.linalg.inv(cam_to_road)  # (3, 4) on (x, y, z, 1)
    return road_to_image[:, [0, 2, 3]]  # y_road = 0 drops the y column


def road_to_image_homography(calib) -> np.ndarray:
    """(3, 3) homography: BEV pixel (column, row, 1) -> perspective pixel (u, v, 1), up to scale.

    Both in 0-based pixel-centre coordinates (OpenCV's). calib as from `read_calib`.
    """
    x0, z1, res = BEV_X_RANGE[0], BEV_Z_RANGE[1], BEV_RES
    bev_to_road = np.array(
        [
            [res, 0.0, x0 + res / 2],  # x = -10 + (c + 0.5) * res
            [0.0, -res, z1 - res / 2],  # z = 46 - (r + 0.5) * res: row 0 is the far edge
            [0.0, 0.0, 1.0],
        ]
    )
    return _road_plane_to_image(calib) @ bev_to_road


def perspective_to_bev(prob, calib, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
    """(H, W) perspective map -> (800, 400) float32 BEV map; BEV cells that see no image are 0.

    Values are resampled, not rescaled (a 0/1 mask stays 0/1 with cv2.INTER_NEAREST).

    Differs from the devkit's transform2BEV.py in the sampling only: the devkit takes
    image[floor(v) - 1, floor(u) - 1] (it treats the projected pixel as 1-based), which is
    nearest neighbour at (u - 1.5, v - 1.5) here, so its BEV sits about 1.5 perspective pixels
    off ours (up to ~2.5 m in z at the far edge). Use `perspective_to_bev_devkit` to reproduce
    the devkit's output exactly.
    """
    src = np.asarray(prob)
    if src.ndim != 2:
        raise ValueError(f"expected an (H, W) map, got shape {src.shape}")
    rows, cols = BEV_SHAPE
    return cv2.warpPerspective(
        src.astype(np.float32),
        road_to_image_homography(calib),
        (cols, rows),
        flags=interpolation | cv2.WARP_INVERSE_MAP,  # the homography maps BEV -> image
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def perspective_to_bev_devkit(image, calib) -> np.ndarray:
    """The devkit's BirdsEyeView.compute, reproduced: (H, W[, C]) -> (800, 400[, C]), same dtype.

    Each BEV cell centre (computed in float32, as the devkit does) is projected to (u, v); cells
    with 1 <= u <= W and 1 <= v <= H take image[int(v) - 1, int(u) - 1], the others are 0.
    """
    image = np.asarray(image)
    h, w = image.shape[:2]
    res = BEV_RES
    x = np.arange(BEV_X_RANGE[0] + res / 2, BEV_X_RANGE[1], res)  # (400,) left to right
    z = np.arange(BEV_Z_RANGE[1] - res / 2, BEV_Z_RANGE[0], -res)  # (800,) far to near
    xx, zz = np.meshgrid(x.astype(np.float32), z.astype(np.float32))  # (800, 400) each
    road = np.stack([xx.ravel(), zz.ravel(), np.ones(xx.size, np.float32)])  # (3, 800*400)
    uvw = _road_plane_to_image(calib) @ road
    u, v = uvw[0] / uvw[2], uvw[1] / uvw[2]
    inside = (v >= 1) & (u >= 1) & (v <= h) & (u <= w)
    out = np.zeros((xx.size,) + image.shape[2:], image.dtype)
    out[inside] = image[v[inside].astype(np.int64) - 1, u[inside].astype(np.int64) - 1]
    return out.reshape(xx.shape + image.shape[2:])


def calib_path_for(calib_dir, image_stem) -> str:
    """calib/<cat>_<id>.txt for an image or label stem ("um_000012" or "um_road_000012")."""
    parts = image_stem.split("_")
    stem = f"{parts[0]}_{parts[-1]}" if len(parts) == 3 else image_stem
    return os.path.join(calib_dir, stem + ".txt")
