"""fcn.bev on a synthetic camera whose projections can be worked out by hand."""

import numpy as np
import pytest

from fcn.errors import UserError
from fcn.evaluation.kitti import bev

# Camera 1.65 m above a flat road, looking along z: focal 700 px, principal point (600, 170),
# a 40 px stereo offset in P2 (KITTI's P2[0, 3] = f * baseline), no rectification, a
# KITTI-sized 375 x 1242 image.
F, CX, CY, B, H_CAM = 700.0, 600.0, 170.0, 40.0, 1.65
IMAGE_H, IMAGE_W = 375, 1242
P2 = np.array([[F, 0, CX, B], [0, F, CY, 0], [0, 0, 1, 0]])
# Road frame = camera axes (x right, y down, z forward), origin on the road under the camera:
# y_road = y_cam - 1.65, so road points (y_road = 0) have y_cam = 1.65.
FLAT = {
    "P2": P2,
    "R0_rect": np.eye(3),
    "Tr_cam_to_road": np.hstack([np.eye(3), [[0], [-H_CAM], [0]]]),
}


def _bev_pixel(x, z):
    """BEV (column, row) of road point (x, z): cell c is centred on x = -10 + (c + 0.5) * 0.05,
    row r on z = 46 - (r + 0.5) * 0.05."""
    return (x + 10) / 0.05 - 0.5, (46 - z) / 0.05 - 0.5


def _apply(h, col, row):
    u, v, w = h @ [col, row, 1.0]
    return u / w, v / w


def test_grid_size():
    assert bev.BEV_SHAPE == (800, 400)  # 40 m of z by 20 m of x at 5 cm


def test_homography_flat_road_by_hand():
    h = bev.road_to_image_homography(FLAT)
    # Road point (x, 0, z) is camera point (x, 1.65, z):
    #   u = cx + (f x + b) / z,  v = cy + f * 1.65 / z
    # (2, 20):  u = 600 + (1400 + 40) / 20 = 672,  v = 170 + 1155 / 20 = 227.75
    assert _apply(h, *_bev_pixel(2.0, 20.0)) == pytest.approx((672.0, 227.75))
    # (-5, 10): u = 600 + (-3500 + 40) / 10 = 254, v = 170 + 1155 / 10 = 285.5
    assert _apply(h, *_bev_pixel(-5.0, 10.0)) == pytest.approx((254.0, 285.5))
    # BEV pixel (0, 0) is the far left cell, centred on (-9.975, 45.975).
    far_left = (CX + (F * -9.975 + B) / 45.975, CY + F * H_CAM / 45.975)
    assert _apply(h, 0, 0) == pytest.approx(far_left)


def test_homography_pitched_camera_by_hand():
    # Camera pitched down by a (cos a = 0.96, sin a = 0.28). Its axes in the road frame are the
    # columns of R, and it sits at t = (0, -1.65, 0), so Tr_cam_to_road = [R | t]. A road point
    # (x, 0, z) is, in camera coordinates, R^T (x, 1.65, z):
    #   X = x,  Y = 1.65 cos a - z sin a,  Z = 1.65 sin a + z cos a
    c, s = 0.96, 0.28
    rot = np.array([[1, 0, 0], [0, c, s], [0, -s, c]])
    pitched = dict(FLAT, Tr_cam_to_road=np.hstack([rot, [[0], [-H_CAM], [0]]]))
    h = bev.road_to_image_homography(pitched)
    for x, z in [(2.0, 20.0), (-7.5, 8.0), (0.0, 40.0)]:
        cam_x, cam_y, cam_z = x, H_CAM * c - z * s, H_CAM * s + z * c
        want = (CX + (F * cam_x + B) / cam_z, CY + F * cam_y / cam_z)
        assert _apply(h, *_bev_pixel(x, z)) == pytest.approx(want)


def _centres():
    cols, rows = np.meshgrid(np.arange(400), np.arange(800))
    return -10 + (cols + 0.5) * 0.05, 46 - (rows + 0.5) * 0.05  # x, z of every cell, (800, 400)


def test_warp_of_a_row_index_image():
    # Perspective image whose value is its row index: a BEV cell then holds the row v its road
    # point projects to, v = cy + f * 1.65 / z, which encodes its depth z.
    rows_img = np.repeat(np.arange(IMAGE_H, dtype=np.float32)[:, None], IMAGE_W, axis=1)
    out = bev.perspective_to_bev(rows_img, FLAT)
    assert out.shape == (800, 400) and out.dtype == np.float32
    x, z = _centres()
    u, v = CX + (F * x + B) / z, CY + F * H_CAM / z
    inside = (u >= 0) & (u <= IMAGE_W - 1)  # every v (195..362) is inside the image
    # cv2 interpolates at 1/32 pixel steps.
    np.testing.assert_allclose(out[inside], v[inside], atol=1 / 32 + 1e-3)
    assert (out[(u < -1) | (u > IMAGE_W)] == 0).all()  # sees no image
    # Up is far: the top row is 46 m (v = 195.12), the bottom row 6 m (v = 361.70).
    assert out[0, 200] == pytest.approx(CY + F * H_CAM / 45.975, abs=0.04)
    assert out[-1, 200] == pytest.approx(CY + F * H_CAM / 6.025, abs=0.04)
    assert out[-1, 0] == 0  # near left: x = -10 m at 6 m is far left of the image


def test_devkit_exact_sampling():
    # The devkit takes image[int(v) - 1, int(u) - 1] where 1 <= u <= W and 1 <= v <= H.
    rows_img = np.repeat(np.arange(IMAGE_H, dtype=np.uint16)[:, None], IMAGE_W, axis=1)
    cols_img = np.repeat(np.arange(IMAGE_W, dtype=np.uint16)[None], IMAGE_H, axis=0)
    out_v = bev.perspective_to_bev_devkit(rows_img, FLAT)
    out_u = bev.perspective_to_bev_devkit(np.dstack([cols_img, rows_img]), FLAT)[..., 0]
    assert out_v.shape == (800, 400) and out_v.dtype == np.uint16
    x, z = (a.astype(np.float32).astype(np.float64) for a in _centres())  # the devkit's float32
    u, v = CX + (F * x + B) / z, CY + F * H_CAM / z
    inside = (u >= 1) & (u <= IMAGE_W)
    np.testing.assert_array_equal(out_v[inside], np.floor(v[inside]) - 1)
    np.testing.assert_array_equal(out_u[inside], np.floor(u[inside]) - 1)
    assert (out_v[~inside] == 0).all()


CALIB_TEXT = """\
P0: 7.0e+02 0 6.0e+02 0 0 7.0e+02 1.7e+02 0 0 0 1 0
P1: 7.0e+02 0 6.0e+02 -3.8e+02 0 7.0e+02 1.7e+02 0 0 0 1 0
P2: 7.0e+02 0.0 6.0e+02 4.0e+01 0.0 7.0e+02 1.7e+02 0.0 0.0 0.0 1.0 0.0
P3: 7.0e+02 0 6.0e+02 -3.4e+02 0 7.0e+02 1.7e+02 0 0 0 1 0

# comment lines and blank lines are skipped
R0_rect: 1 0 0 0 1 0 0 0 1
Tr_velo_to_cam: 0 -1 0 0 0 0 -1 -0.08 1 0 0 -0.27
Tr_imu_to_velo: 1 0 0 -0.81 0 1 0 0.32 0 0 1 -0.80
Tr_cam_to_road: 1 0 0 0 0 1 0 -1.65 0 0 1 0
"""


def test_read_calib(tmp_path):
    path = tmp_path / "um_000000.txt"
    path.write_text(CALIB_TEXT)
    calib = bev.read_calib(path)
    assert set(calib) == {"P2", "R0_rect", "Tr_cam_to_road"}
    for key, want in FLAT.items():
        np.testing.assert_array_equal(calib[key], want)
    np.testing.assert_allclose(
        bev.road_to_image_homography(calib), bev.road_to_image_homography(FLAT)
    )


def test_read_calib_errors_name_file_and_key(tmp_path):
    path = tmp_path / "uu_000042.txt"
    path.write_text(CALIB_TEXT.replace("Tr_cam_to_road", "Tr_something_else"))
    with pytest.raises(UserError, match="uu_000042.txt.*'Tr_cam_to_road:'"):
        bev.read_calib(path)
    path.write_text(CALIB_TEXT.replace("R0_rect: 1 0 0 0 1 0 0 0 1", "R0_rect: 1 0 0"))
    with pytest.raises(UserError, match="uu_000042.txt.*'R0_rect' must be 9 numbers"):
        bev.read_calib(path)
    path.write_text(CALIB_TEXT.replace("R0_rect: 1 0 0", "R0_rect: 1 zero 0"))
    with pytest.raises(UserError, match="'R0_rect' must be 9 numbers"):
        bev.read_calib(path)
    with pytest.raises(UserError, match="missing.txt"):
        bev.read_calib(tmp_path / "missing.txt")


def test_calib_path_for():
    assert bev.calib_path_for("calib", "um_000012") == "calib/um_000012.txt"
    assert bev.calib_path_for("calib", "umm_road_000012") == "calib/umm_000012.txt"
