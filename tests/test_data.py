"""KITTI pairing and label decoding on real frames, the split, batches, augmentation."""

import os
import shutil

import cv2
import numpy as np
import pytest

from fcn import data
from fcn.data import augment
from fcn.errors import UserError


def test_real_kitti_labels_decode_to_road_not_road_and_void(kitti_sample):
    pairs = data.list_pairs(kitti_sample)
    # The lane files beside the road files are skipped: two road pairs only.
    assert [(e.name, os.path.basename(e.label_path)) for e in pairs] == [
        ("um_000000", "um_road_000000.png"),
        ("um_000001", "um_road_000001.png"),
    ]
    rgb = data.read_image(pairs[0].label_path)
    label = data.decode_label(rgb)
    assert set(np.unique(label)) <= {0, 1, data.IGNORE_LABEL}
    magenta = np.all(rgb == (255, 0, 255), axis=-1)
    black = np.all(rgb == 0, axis=-1)
    np.testing.assert_array_equal(label == 1, magenta)
    np.testing.assert_array_equal(label == data.IGNORE_LABEL, black)
    assert magenta.any() and black.any()


def test_labels_are_resized_with_nearest_neighbour(kitti_sample):
    ex = data.list_pairs(kitti_sample)[0]
    image, label = data.load_example(ex, (64, 224))
    assert image.shape == (64, 224, 3) and image.dtype == np.uint8
    assert label.shape == (64, 224)
    # Linear interpolation would create values between classes (e.g. 128 between 1 and 255).
    assert set(np.unique(label)) <= {0, 1, 255}


def test_decode_label_reports_the_share_of_bad_colours():
    rgb = np.zeros((2, 4, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)  # 1 of 8 pixels = 12.50%
    with pytest.raises(UserError, match=r"12\.50% pixels"):
        data.decode_label(rgb, path="x.png")


def _folder(tmp_path, names, labels):
    img = tmp_path / "data_road" / "training" / "image_2"
    gt = tmp_path / "data_road" / "training" / "gt_image_2"
    img.mkdir(parents=True)
    gt.mkdir(parents=True)
    pixel = np.zeros((4, 4, 3), np.uint8)
    for n in names:
        cv2.imwrite(str(img / f"{n}.png"), pixel)
    for n in labels:
        cv2.imwrite(str(gt / f"{n}.png"), pixel)
    return str(tmp_path)


def test_image_without_label_is_named(tmp_path):
    root = _folder(tmp_path, ["um_000000", "um_000001"], ["um_road_000000"])
    with pytest.raises(UserError, match="um_000001.png"):
        data.list_pairs(root)


def test_label_without_image_is_named(tmp_path):
    root = _folder(tmp_path, ["um_000000"], ["um_road_000000", "uu_road_000007"])
    with pytest.raises(UserError, match="uu_road_000007"):
        data.list_pairs(root)


def test_missing_data_folder_says_how_to_get_one(tmp_path):
    with pytest.raises(UserError, match="main.py synth"):
        data.list_pairs(str(tmp_path / "nowhere"))


def _examples(counts):
    return [data.Example(f"{c}_{i:06d}", "", "", c) for c, n in counts.items() for i in range(n)]


def test_split_is_seeded_and_stratified():
    examples = _examples({"um": 95, "umm": 96, "uu": 98})  # the real benchmark's counts
    train, val, note = data.split_train_val(examples, 48, seed=3)
    again = data.split_train_val(examples, 48, seed=3)
    other = data.split_train_val(examples, 48, seed=4)
    assert note == "" and len(val) == 48 and len(train) == 289 - 48
    assert [e.name for e in val] == [e.name for e in again[1]]
    assert [e.name for e in val] != [e.name for e in other[1]]
    assert not {e.name for e in val} & {e.name for e in train}
    # 48 * 95/289 = 15.8, 48 * 96/289 = 15.9, 48 * 98/289 = 16.3 -> 16, 16, 16.
    counts = {c: sum(e.category == c for e in val) for c in ("um", "umm", "uu")}
    assert counts == {"um": 16, "umm": 16, "uu": 16}


def test_split_shrinks_with_few_images_and_says_so():
    train, val, note = data.split_train_val(_examples({"um": 6, "uu": 6}), 48)
    # 12 images: at most a fifth (2) go to validation, one from each category.
    assert len(val) == 2 and len(train) == 10
    assert sorted(e.category for e in val) == ["um", "uu"]
    assert "shrunk from 48 to 2" in note
    train, val, _ = data.split_train_val(_examples({"um": 2}), 48)
    assert (len(train), len(val)) == (1, 1)


def test_one_hot_leaves_void_rows_empty():
    labels = np.array([[0, 1, 255]], np.uint8)
    np.testing.assert_array_equal(data.one_hot(labels, 2)[0], [[1, 0], [0, 1], [0, 0]])


def test_flip_moves_image_and_label_together():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    label = rng.integers(0, 2, (5, 7), dtype=np.uint8)
    # Pixel (r, c) and its label travel to (r, W-1-c) together.
    fi, fl = augment.hflip(image, label)
    np.testing.assert_array_equal(fi[2, 6 - 1], image[2, 1])
    np.testing.assert_array_equal(fl[:, ::-1], label)
    np.testing.assert_array_equal(fi[:, ::-1], image)
    # Through the augmenter: a flipped image always comes with a flipped label.
    aug = augment.Augmenter(clahe_prob=0.0, flip_prob=0.5, seed=1)
    kinds = set()
    for _ in range(20):
        ai, al = aug(image, label)
        flipped = np.array_equal(ai, image[:, ::-1])
        assert flipped or np.array_equal(ai, image)
        np.testing.assert_array_equal(al, label[:, ::-1] if flipped else label)
        kinds.add(flipped)
    assert kinds == {True, False}


def test_augmentation_sequence_is_seeded():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    label = np.arange(6, dtype=np.uint8).reshape(2, 3)

    def run(seed):
        aug = augment.Augmenter(0.5, 0.5, seed)
        return [aug(image, label, image + 1)[0].tobytes() for _ in range(16)]

    assert run(7) == run(7) and run(7) != run(8)


def test_clahe_raises_contrast_and_keeps_shape(kitti_sample):
    image = data.read_image(data.list_pairs(kitti_sample)[0].image_path)
    dull = (image // 4 + 96).astype(np.uint8)  # squash contrast into 96..159
    out = augment.clahe(dull, clip=2.0, grid=8)
    assert out.shape == dull.shape and out.dtype == np.uint8
    luma = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).std()  # noqa: E731
    assert luma(out) > 1.3 * luma(dull)


def test_read_image_converts_rgba_grey_and_16_bit(tmp_path, capsys):
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 2] = 200  # BGRA: red channel 200
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    cv2.imwrite(str(tmp_path / "g.png"), np.full((3, 4), 77, np.uint8))
    cv2.imwrite(str(tmp_path / "w.png"), np.full((3, 4, 3), 65535, np.uint16))
    assert data.read_image(str(tmp_path / "a.png"))[0, 0].tolist() == [200, 0, 0]
    assert data.read_image(str(tmp_path / "g.png"))[0, 0].tolist() == [77, 77, 77]
    assert data.read_image(str(tmp_path / "w.png"))[0, 0].tolist() == [255, 255, 255]
    assert "alpha" in capsys.readouterr().out


def test_unreadable_image_is_named(tmp_path):
    bad = tmp_path / "um_000000.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(UserError, match="um_000000.png"):
        data.read_image(str(bad))


def test_epoch_batches_and_prefetch(synth_data, tmp_path):
    shutil.copytree(synth_data, tmp_path / "d")
    pairs = data.list_pairs(str(tmp_path / "d"))
    split = data.load_split(pairs[:5], (32, 96), clahe=(2.0, 8))
    assert split.images.shape == (5, 32, 96, 3) and split.images_clahe.shape == (5, 32, 96, 3)
    rng = np.random.default_rng(0)
    batches = list(data.prefetch(data.epoch_batches(split, 2, augment.Augmenter(), rng)))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    # Labels travel as uint8 class ids (255 ignore), never one-hot.
    assert batches[0][0].dtype == np.float32 and batches[0][1].shape == (2, 32, 96)
    assert batches[0][1].dtype == np.uint8
