"""fcn.synth: KITTI's folder layout, byte-exact determinism, and labels that match the picture."""

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fcn.data import synth
from fcn.errors import UserError

SIZES = ((60, 200), (61, 203))
MAGENTA, RED, BLACK = (255, 0, 255), (255, 0, 0), (0, 0, 0)


def _rgb(path):
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgr is not None and bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
    return bgr[..., ::-1]


def _files(root):
    """{relative path: bytes} of every file under root."""
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    summary = synth.generate_dataset(out, count=7, test_count=4, seed=3, sizes=SIZES)
    return out, summary


def test_layout_names_and_counts(dataset):
    out, summary = dataset
    root = out / "data_road"
    assert summary == {"train": 7, "test": 4, "root": str(root)}
    assert os.listdir(out) == ["data_road"]  # the temporary folder was renamed, none left over
    # Round-robin um, umm, uu with ids per category: 7 images are um 0-2, umm 0-1, uu 0-1.
    train = ["um_000000", "um_000001", "um_000002", "umm_000000", "umm_000001"]
    train += ["uu_000000", "uu_000001"]
    assert sorted(os.listdir(root / "training" / "image_2")) == [f"{n}.png" for n in train]
    road = [n.replace("_", "_road_") + ".png" for n in train]
    lane = [n.replace("_", "_lane_") + ".png" for n in train if n.startswith("um_")]
    assert sorted(os.listdir(root / "training" / "gt_image_2")) == sorted(road + lane)
    test = ["um_000000.png", "um_000001.png", "umm_000000.png", "uu_000000.png"]
    assert sorted(os.listdir(root / "testing")) == ["image_2"]  # no ground truth for testing
    assert sorted(os.listdir(root / "testing" / "image_2")) == test


def test_sizes_cycle_and_gt_matches_image(dataset):
    out, _ = dataset
    training = out / "data_road" / "training"
    # Generation order is um0, umm0, uu0, um1, ...: image i has SIZES[i % 2].
    order = ["um_000000", "umm_000000", "uu_000000", "um_000001", "umm_000001", "uu_000001"]
    for i, name in enumerate(order):
        image = _rgb(training / "image_2" / f"{name}.png")
        gt = _rgb(training / "gt_image_2" / f"{name.replace('_', '_road_')}.png")
        assert image.shape[:2] == gt.shape[:2] == SIZES[i % 2]
    testing = out / "data_road" / "testing" / "image_2"
    assert _rgb(testing / "umm_000000.png").shape[:2] == SIZES[1]


def test_gt_uses_only_kitti_colours(dataset):
    out, _ = dataset
    gts = out / "data_road" / "training" / "gt_image_2"
    for name in os.listdir(gts):
        gt = _rgb(gts / name)
        colours = {tuple(c) for c in np.unique(gt.reshape(-1, 3), axis=0)}
        assert colours == {MAGENTA, RED, BLACK}, name
        assert (gt[0] == BLACK).all() and (gt[:, -1] == BLACK).all()  # void border
    for name in os.listdir(gts):
        if "_lane_" in name:  # the ego lane is part of the road
            lane = (_rgb(gts / name) == MAGENTA).all(-1)
            road = (_rgb(gts / name.replace("_lane_", "_road_")) == MAGENTA).all(-1)
            assert lane.any() and (road | ~lane).all() and lane.sum() < road.sum()


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    kwargs = {"count": 4, "test_count": 2, "sizes": SIZES}
    first = synth.generate_dataset(tmp_path / "a", seed=5, **kwargs)["root"]
    again = synth.generate_dataset(tmp_path / "b", seed=5, **kwargs)["root"]
    other = synth.generate_dataset(tmp_path / "c", seed=6, **kwargs)["root"]
    assert _files(first) == _files(again)
    a, c = _files(first), _files(other)
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a if "image_2/" in k and "gt_" not in k)
    # The test split has its own stream: adding test images leaves training untouched.
    fewer = synth.generate_dataset(tmp_path / "d", seed=5, count=4, test_count=0, sizes=SIZES)
    trained = {k: v for k, v in _files(first).items() if k.startswith("training")}
    assert _files(fewer["root"]) == trained


def test_render_scene_labels_look_like_kitti():
    rng = np.random.default_rng(0)
    road_share, road_chroma, green_chroma = [], [], []
    for _ in range(12):
        image, label = synth.render_scene(rng, 90, 300)
        assert image.shape == (90, 300, 3) and image.dtype == np.uint8
        assert label.shape == (90, 300) and label.dtype == np.uint8
        assert set(np.unique(label).tolist()) <= {0, 1, 255}
        road = label == 1
        road_share.append(road.mean())
        assert 0.03 < road.mean() < 0.75
        assert not road[: int(0.35 * 90)].any()  # the horizon is at 36-50 % of the height
        void = label == 255
        assert 0.005 < void.mean() < 0.08  # a thin border and the far road tip
        assert void[0].all() and void[-1].all() and void[:, 0].all() and void[:, -1].all()
        # Asphalt is grey, vegetation green: compare max - min over RGB.
        rgb = image.astype(int)
        chroma = rgb.max(-1) - rgb.min(-1)
        green = (label == 0) & (rgb[..., 1] > rgb[..., 0] + 15) & (rgb[..., 1] > rgb[..., 2] + 15)
        road_chroma.append(chroma[road].mean())
        if green.sum() > 50:
            green_chroma.append(chroma[green].mean())
    assert 0.15 < np.mean(road_share) < 0.5
    assert np.mean(road_chroma) < 25
    assert len(green_chroma) >= 6 and np.mean(green_chroma) > np.mean(road_chroma) + 15


def test_refuses_to_overwrite_data_road(tmp_path):
    (tmp_path / "data_road").mkdir()
    with pytest.raises(UserError, match="data_road already exists") as err:
        synth.generate_dataset(tmp_path, count=1, sizes=SIZES)
    assert "\n" not in str(err.value) and "--out" in str(err.value)
    assert os.listdir(tmp_path) == ["data_road"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"count": -3},
        {"count": 2.5},
        {"count": "4"},
        {"test_count": -1},
        {"seed": -1},
        {"sizes": ()},
        {"sizes": ((8, 200),)},
        {"sizes": (60, 200)},
    ],
)
def test_bad_arguments_are_user_errors(tmp_path, kwargs):
    with pytest.raises(UserError):
        synth.generate_dataset(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(synth.kitti, "_render", broken)  # the KITTI module renders
    with pytest.raises(RuntimeError, match="disk on fire"):
        synth.generate_dataset(tmp_path, count=3, sizes=SIZES)
    assert os.listdir(tmp_path) == []
