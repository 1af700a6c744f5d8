"""Augmentations move image and label together, never blend labels, and keep the old sequence."""

import cv2
import numpy as np
import pytest

from fcn.config import Config
from fcn.data import augment

IGNORE = 255
# Colour of each class in the region image; the label is the same picture in class ids.
PALETTE = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [220, 220, 40]], np.uint8)
EVERY_TRANSFORM = dict(
    vflip_prob=0.5,
    rotate_prob=0.5,
    shift_scale_prob=0.5,
    brightness_contrast_prob=0.5,
    blur_prob=0.5,
    noise_prob=0.5,
)


class _Fixed:
    """A stand-in generator whose every draw sits at fraction u of its range (u = 1: the top)."""

    def __init__(self, u):
        self.u = u

    def random(self):
        return self.u

    def uniform(self, low, high):
        return low + self.u * (high - low)

    def integers(self, high):
        return 0


def _regions(h=24, w=32):
    """Class regions: left third 0, a top-right block 1, a bottom-right block 2, a square of 3.
    The image is the label recoloured with PALETTE, so each pixel says its own class."""
    label = np.zeros((h, w), np.uint8)
    label[: h // 2, w // 3 :] = 1
    label[h // 2 :, w // 3 :] = 2
    label[h // 4 : h // 2, w // 2 : 3 * w // 4] = 3
    return PALETTE[label], label


def _agree_inside(image, label):
    """Away from class boundaries and from ignore, the image is exactly its label's colour.

    A 5x5 erosion per class keeps pixels whose bilinear footprint lies inside one region; the
    interpolation of a constant colour is that colour exactly (weights sum to 1 in fixed point).
    """
    checked = 0
    for k, colour in enumerate(PALETTE):
        inside = cv2.erode((label == k).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        np.testing.assert_array_equal(image[inside], np.broadcast_to(colour, image[inside].shape))
        checked += inside.sum()
    return checked


def test_vflip_is_exact():
    image, label = _regions()
    fi, fl = augment.vflip(image, label)
    np.testing.assert_array_equal(fi, image[::-1])
    np.testing.assert_array_equal(fl, label[::-1])
    assert fi.flags.c_contiguous and fl.flags.c_contiguous


def test_rotation_by_90_maps_pixels_and_ignores_uncovered_columns():
    # 5x7, centre (x, y) = (3, 2). 90 degrees anticlockwise: (x, y) -> (x', y') =
    # (y - 2 + 3, 3 - x + 2), so out[y', x'] = in[x' - 1, 5 - y'] for x' in 1..5; the
    # destination columns 0 and 6 come from source rows -1 and 5, outside the image.
    label = np.arange(35, dtype=np.uint8).reshape(5, 7)
    image = np.stack([label * 7, label, 255 - label], axis=-1).astype(np.uint8)
    oi, ol = augment.rotate(image, label, _Fixed(1.0), degrees=90)  # angle = +90
    assert ol[0, 1] == label[0, 5] == 5 and ol[1, 2] == label[1, 4] == 11
    assert ol[4, 5] == label[4, 1] == 29
    assert (ol[:, 0] == IGNORE).all() and (ol[:, 6] == IGNORE).all()
    expected = np.array([[label[x - 1, 5 - y] for x in range(1, 6)] for y in range(5)])
    np.testing.assert_array_equal(ol[:, 1:6], expected)
    # The image moved the same way: its green channel is the label.
    np.testing.assert_array_equal(oi[:, 1:6, 1], expected)


def test_shift_moves_both_by_the_same_pixels():
    # shift_limit 0.25 at the top of its range on 8x16: dx = 4, dy = 2; scale 1.
    label = np.arange(128, dtype=np.uint8).reshape(8, 16)
    image = np.stack([label, label + 1, label + 2], axis=-1)
    oi, ol = augment.shift_scale(image, label, _Fixed(1.0), shift_limit=0.25, scale_limit=0.0)
    np.testing.assert_array_equal(ol[2:, 4:], label[:-2, :-4])
    np.testing.assert_array_equal(oi[2:, 4:], image[:-2, :-4])
    assert (ol[:2] == IGNORE).all() and (ol[:, :4] == IGNORE).all()


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "transform",
    [
        lambda i, lab, rng: augment.rotate(i, lab, rng, 30),
        lambda i, lab, rng: augment.shift_scale(i, lab, rng, 0.2, 0.2),
    ],
    ids=["rotate", "shift_scale"],
)
def test_geometric_transforms_keep_image_and_label_in_register(transform, seed):
    image, label = _regions()
    oi, ol = transform(image, label, np.random.default_rng(seed))
    assert oi.dtype == np.uint8 and ol.dtype == np.uint8 and ol.shape == label.shape
    assert _agree_inside(oi, ol) > 100  # most of the 24x32 image is checked, not a corner
    # Class ids stay class ids: nearest neighbour, plus ignore where nothing was mapped.
    assert set(np.unique(ol)) <= set(np.unique(label)) | {IGNORE}


def test_rotation_and_shift_scale_together_are_one_warp():
    # On 8x16, a rotation by 90 degrees then a shift by 0.25 of each side, (+4, +2) px: the
    # composed matrix puts a point where the rotation puts it, moved by (4, 2).
    rot = augment.rotation_matrix(_Fixed(1.0), 90, (8, 16))
    shift = augment.shift_scale_matrix(_Fixed(1.0), 0.25, 0.0, (8, 16))
    both = augment.then(rot, shift)
    x, y = 9.0, 3.0
    rx, ry = rot @ [x, y, 1]
    np.testing.assert_allclose(both @ [x, y, 1], [rx + 4, ry + 2], atol=1e-9)
    # The Augmenter draws as the two transforms do, then warps once with that matrix.
    image, label = _regions()
    aug = augment.Augmenter(0.0, 0.0, seed=4, rotate_prob=1.0, shift_scale_prob=1.0)
    ref = np.random.default_rng(4)
    ref.random(), ref.random()  # horizontal flip's and rotation's decisions
    rot = augment.rotation_matrix(ref, 10.0, label.shape)
    ref.random()  # shift/scale's decision
    shift = augment.shift_scale_matrix(ref, 0.1, 0.1, label.shape)
    oi, ol = aug(image, label)
    ei, el = augment.warp(image, label, augment.then(rot, shift))
    np.testing.assert_array_equal(oi, ei)
    np.testing.assert_array_equal(ol, el)
    assert _agree_inside(oi, ol) > 100


def test_labels_are_never_blended_by_any_transform():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 3, 7, IGNORE], np.uint8), size=(20, 28))
    aug = augment.Augmenter(0.0, 0.5, seed=1, **{k: 1.0 for k in EVERY_TRANSFORM})
    for _ in range(10):
        _, ol = aug(image, label)
        assert set(np.unique(ol)) <= {0, 3, 7, IGNORE}


@pytest.mark.parametrize(
    "transform",
    [
        lambda i, lab, rng: augment.brightness_contrast(i, lab, rng, 0.2, 0.2),
        lambda i, lab, rng: augment.gaussian_blur(i, lab, rng, 1.5),
        lambda i, lab, rng: augment.gaussian_noise(i, lab, rng, 8.0),
    ],
    ids=["brightness_contrast", "blur", "noise"],
)
def test_image_only_transforms_leave_the_label_bit_identical(transform):
    image = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    _, label = _regions(16, 24)
    before = label.copy()
    oi, ol = transform(image, label, np.random.default_rng(5))
    assert ol is label
    np.testing.assert_array_equal(label, before)
    assert oi.shape == image.shape and oi.dtype == np.uint8 and not np.array_equal(oi, image)


def test_brightness_contrast_turns_about_the_mean_and_clips():
    # Half 100, half 200: mean 150. Top of both ranges (b = +0.2, c = +0.2):
    # 100 -> (100 - 150) * 1.2 + 150 + 51 = 141; 200 -> 60 + 150 + 51 = 261 -> clipped 255.
    image = np.full((2, 4, 3), 100, np.uint8)
    image[1] = 200
    label = np.zeros((2, 4), np.uint8)
    out, _ = augment.brightness_contrast(image, label, _Fixed(1.0), 0.2, 0.2)
    assert out[0].tolist() == [[141] * 3] * 4 and out[1].tolist() == [[255] * 3] * 4
    # Bottom (b = -0.2, c = -0.2): 100 -> -50 * 0.8 + 150 - 51 = 59; 200 -> 40 + 99 = 139.
    out, _ = augment.brightness_contrast(image, label, _Fixed(0.0), 0.2, 0.2)
    assert out[0, 0].tolist() == [59] * 3 and out[1, 0].tolist() == [139] * 3
    # Contrast alone keeps the mean: c = +0.2, b = 0 -> 100 -> 90, 200 -> 210.
    out, _ = augment.brightness_contrast(image, label, _Fixed(1.0), 0.0, 0.2)
    assert out[0, 0, 0] == 90 and out[1, 0, 0] == 210


def test_blur_spreads_an_impulse_like_a_gaussian():
    # sigma = max_sigma * (1 - 0) = 1, kernel 7x7. 1D weights g_i = exp(-i^2/2) / 2.50596:
    # g0 = .39905, g1 = .24203, g2 = .05400, g3 = .00443. Column through the impulse (255):
    # 255 g0 g_i = 40.6, 24.6, 5.5, 0.45 (OpenCV's 8-bit fixed point may differ by 1).
    image = np.zeros((21, 21, 3), np.uint8)
    image[10, 10] = 255
    out, _ = augment.gaussian_blur(image, image[..., 0], _Fixed(0.0), 1.0)
    profile = out[10:14, 10, 0].astype(float)
    np.testing.assert_allclose(profile, [40.6, 24.6, 5.5, 0.45], atol=1.0)
    np.testing.assert_array_equal(out[7:10, 10, 0], out[11:14, 10, 0][::-1])  # symmetric


def test_noise_has_the_drawn_std_and_is_reproducible():
    image = np.full((64, 64, 3), 128, np.uint8)  # mid grey: no clipping
    label = np.zeros((64, 64), np.uint8)
    out, _ = augment.gaussian_noise(image, label, np.random.default_rng(3), 8.0)
    # The transform's first draw: std = 8 (1 - u) = 7.31; rounding to integers adds 1/12 to
    # the variance: sqrt(7.31^2 + 1/12) = 7.32.
    std = 8.0 * (1.0 - np.random.default_rng(3).random())
    diff = out.astype(float) - 128
    # In every channel (a scalar std given to cv2.randn on 3 channels would noise only red).
    assert (abs(diff.mean(axis=(0, 1))) < 0.4).all()
    np.testing.assert_allclose(diff.std(axis=(0, 1)), np.hypot(std, 12**-0.5), rtol=0.05)
    again, _ = augment.gaussian_noise(image, label, np.random.default_rng(3), 8.0)
    other, _ = augment.gaussian_noise(image, label, np.random.default_rng(5), 8.0)
    np.testing.assert_array_equal(out, again)
    assert not np.array_equal(out, other)


def test_probability_zero_never_changes_anything():
    image, label = _regions()
    aug = augment.Augmenter(0.0, 0.0, seed=0)
    for _ in range(20):
        oi, ol = aug(image, label, image_clahe=image // 2)
        np.testing.assert_array_equal(oi, image)
        np.testing.assert_array_equal(ol, label)


# Each transform alone, called the way the Augmenter calls it with the Config's default limits.
DIRECT = {
    "vflip_prob": lambda i, lab, rng: augment.vflip(i, lab),
    "rotate_prob": lambda i, lab, rng: augment.rotate(i, lab, rng, 10.0),
    "shift_scale_prob": lambda i, lab, rng: augment.shift_scale(i, lab, rng, 0.1, 0.1),
    "brightness_contrast_prob": lambda i, lab, rng: augment.brightness_contrast(
        i, lab, rng, 0.2, 0.2
    ),
    "blur_prob": lambda i, lab, rng: augment.gaussian_blur(i, lab, rng, 1.5),
    "noise_prob": lambda i, lab, rng: augment.gaussian_noise(i, lab, rng, 8.0),
}


@pytest.mark.parametrize("prob", sorted(DIRECT))
def test_probability_one_always_applies(prob):
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    _, label = _regions()
    aug = augment.Augmenter(0.0, 0.0, seed=2, **{prob: 1.0})
    ref = np.random.default_rng(2)
    for _ in range(8):
        oi, ol = aug(image, label)
        ref.random()  # the horizontal flip's decision (always drawn)
        ref.random()  # this transform's decision: < 1, so it applies; then its parameters
        ei, el = DIRECT[prob](image, label, ref)
        np.testing.assert_array_equal(oi, ei)
        np.testing.assert_array_equal(ol, el)
    assert aug.state() == ref.bit_generator.state


def _legacy_augmenter(clahe_prob, flip_prob, seed):
    """The Augmenter as it was before the new transforms (CLAHE pick, horizontal flip)."""
    rng = np.random.default_rng(seed)

    def call(image, label, image_clahe=None):
        if image_clahe is not None and rng.random() < clahe_prob:
            image = image_clahe
        if rng.random() < flip_prob:
            image, label = (
                np.ascontiguousarray(image[:, ::-1]),
                np.ascontiguousarray(label[:, ::-1]),
            )
        return image, label

    return call, rng


@pytest.mark.parametrize("with_clahe", [True, False])
def test_defaults_draw_exactly_the_old_sequence(with_clahe):
    image, label = _regions()
    eq = (255 - image) if with_clahe else None
    old, old_rng = _legacy_augmenter(0.5, 0.5, seed=11)
    new = augment.Augmenter.from_config(Config(seed=11))
    for _ in range(40):
        oi, ol = old(image, label, eq)
        ni, nl = new(image, label, eq)
        np.testing.assert_array_equal(ni, oi)
        np.testing.assert_array_equal(nl, ol)
    assert new.state() == old_rng.bit_generator.state


def test_from_config_reads_every_field():
    config = Config(
        seed=9, clahe_prob=0.1, rotate_prob=0.3, rotate_degrees=5.0, noise_std=2.0, blur_sigma=0.5
    )
    aug = augment.Augmenter.from_config(config)
    for name in augment.CONFIG_FIELDS:
        assert getattr(aug, name) == getattr(config, name), name
    assert aug.state() == np.random.default_rng(9).bit_generator.state


def _sequence(aug, n=12):
    image, label = _regions()
    return [b"".join(a.tobytes() for a in aug(image, label, image // 2)) for _ in range(n)]


def test_every_transform_on_is_seeded():
    make = lambda seed: augment.Augmenter(0.5, 0.5, seed, **EVERY_TRANSFORM)  # noqa: E731
    assert _sequence(make(7)) == _sequence(make(7))
    assert _sequence(make(7)) != _sequence(make(8))


def test_state_round_trip_resumes_the_sequence():
    aug = augment.Augmenter(0.5, 0.5, 3, **EVERY_TRANSFORM)
    _sequence(aug, 5)
    saved = aug.state()
    first = _sequence(aug)
    resumed = augment.Augmenter(0.5, 0.5, 0, **EVERY_TRANSFORM)
    resumed.set_state(saved)
    assert _sequence(resumed) == first


def test_crop_takes_the_same_window_of_image_label_and_clahe_image():
    image, label = _regions(24, 32)
    eq = 255 - image
    aug = augment.Augmenter(1.0, 0.0, seed=5, crop=(16, 20))
    rng = np.random.default_rng(5)  # the crop draws first: its corner is the first two draws
    top, left = int(rng.integers(24 - 16 + 1)), int(rng.integers(32 - 20 + 1))
    got_image, got_label = aug(image, label, eq)  # clahe_prob 1: the CLAHE image, cropped
    np.testing.assert_array_equal(got_label, label[top : top + 16, left : left + 20])
    np.testing.assert_array_equal(got_image, eq[top : top + 16, left : left + 20])
    assert got_image.flags.c_contiguous and got_label.flags.c_contiguous


def test_crop_corners_cover_every_fit_and_a_whole_size_crop_is_the_image():
    image, label = _regions(24, 32)
    aug = augment.Augmenter(0.0, 0.0, seed=0, crop=(20, 30))
    corners = set()
    for _ in range(300):
        _, got = aug(image, label)
        assert got.shape == (20, 30)
        hits = [
            (top, left)
            for top in range(5)
            for left in range(3)
            if np.array_equal(got, label[top : top + 20, left : left + 30])
        ]
        corners.add(hits[0])
    assert corners == {(t, c) for t in range(5) for c in range(3)}  # all 15 windows drawn
    whole = augment.Augmenter(0.0, 0.0, seed=0, crop=(24, 32))
    np.testing.assert_array_equal(whole(image, label)[1], label)


def test_crop_must_fit_the_network_size():
    assert Config(image_shape=(64, 96), crop=(32, 96)).crop == (32, 96)
    with pytest.raises(Exception, match="--crop 64x128 must fit in --image-shape 64x96"):
        Config(image_shape=(64, 96), crop=(64, 128))
    with pytest.raises(Exception, match="at least 32x32"):
        Config(image_shape=(64, 96), crop=(16, 32))
    assert Config.from_dict({"crop": [32, 64], "image_shape": [64, 96]}).crop == (32, 64)
