"""Class statistics and loss weights (inverse, median, enet) on a label set worked out by hand."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fcn.errors import UserError
from fcn.training import class_weights

# Three 2x2 label images, four classes (class 3 never appears), 255 = ignore:
#   image 0 [[0, 0], [0, 1]]      -> counts (3, 1, 0, 0), 4 labelled pixels
#   image 1 [[0, 1], [1, 255]]    -> counts (1, 2, 0, 0), 3 labelled pixels
#   image 2 [[2, 0], [255, 255]]  -> counts (1, 0, 1, 0), 2 labelled pixels
# pixels = (5, 3, 1, 0), total = 9; images = (3, 2, 1, 0);
# image_pixels = (4 + 3 + 2, 4 + 3, 2, 0) = (9, 7, 2, 0).
LABELS = np.array(
    [[[0, 0], [0, 1]], [[0, 1], [1, 255]], [[2, 0], [255, 255]]],
    np.uint8,
)
NAMES = ("road", "car", "sign", "sky")


def _stats():
    return class_weights.pixel_stats(LABELS, 4)


def test_pixel_stats_by_hand():
    stats = _stats()
    assert stats["pixels"].tolist() == [5, 3, 1, 0]
    assert stats["image_pixels"].tolist() == [9, 7, 2, 0]
    assert stats["images"].tolist() == [3, 2, 1, 0]
    assert stats["total"] == 9
    assert all(stats[k].dtype == np.int64 for k in ("pixels", "image_pixels", "images"))


def test_pixel_stats_take_images_of_different_sizes_and_accumulate():
    # Image 0 alone and images 1, 2 as a list of arrays (no common shape needed) add up.
    first = class_weights.pixel_stats(LABELS[0], 4)  # a single (H, W) image
    rest = class_weights.pixel_stats([LABELS[1], LABELS[2, :1]], 4)  # (2, 2) and (1, 2)
    both = class_weights.accumulate(first, rest)
    for key in ("pixels", "image_pixels", "images"):
        assert both[key].tolist() == _stats()[key].tolist()
    assert both["total"] == 9


def test_pixel_stats_agree_with_counting_on_random_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(6, 7, 9)).astype(np.uint8)
    labels[labels == 4] = 255
    labels[2][labels[2] == 3] = 0  # class 3 missing from image 2
    stats = class_weights.pixel_stats(labels, 4)
    valid = labels != 255
    for c in range(4):
        assert stats["pixels"][c] == np.sum(labels == c)
        has = [np.any(lab == c) for lab in labels]
        assert stats["images"][c] == sum(has)
        assert stats["image_pixels"][c] == sum(
            v.sum() for v, h in zip(valid, has, strict=True) if h
        )
    assert stats["total"] == valid.sum()


def test_a_class_id_out_of_range_is_a_user_error():
    labels = LABELS.copy()
    labels[1, 0, 0] = 7
    with pytest.raises(UserError, match="training label 1 holds class id 7, outside 0..3"):
        class_weights.pixel_stats(labels, 4)


def test_none_is_ones():
    assert class_weights.compute(_stats(), "none").tolist() == [1.0, 1.0, 1.0, 1.0]


def test_inverse_by_hand():
    # total / (C * pixels_c) with C = 4: 9/20 = 0.45, 9/12 = 0.75, 9/4 = 2.25; absent -> 0.
    weights = class_weights.compute(_stats(), "inverse")
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, [0.45, 0.75, 2.25, 0.0], rtol=1e-6)


def test_median_frequency_by_hand():
    # freq = pixels / image_pixels = (5/9, 3/7, 1/2) = (0.5556, 0.4286, 0.5) over the classes
    # that occur; median 0.5 -> w = (0.5 * 9/5, 0.5 * 7/3, 0.5 * 2) = (0.9, 1.166667, 1); absent 0.
    weights = class_weights.compute(_stats(), "median")
    np.testing.assert_allclose(weights, [0.9, 7 / 6, 1.0, 0.0], rtol=1e-6)


def test_enet_by_hand():
    # p = (5/9, 3/9, 1/9); 1 / ln(1.02 + p): 1 / ln(1.575556) = 2.199698,
    # 1 / ln(1.353333) = 3.305013, 1 / ln(1.131111) = 8.116855; absent -> 0.
    weights = class_weights.compute(_stats(), "enet")
    np.testing.assert_allclose(weights, [2.199698, 3.305013, 8.116855, 0.0], rtol=1e-6)


def test_weights_of_an_all_ignored_label_set_are_a_user_error():
    stats = class_weights.pixel_stats(np.full((2, 3, 3), 255, np.uint8), 2)
    assert stats["total"] == 0
    assert class_weights.compute(stats, "none").tolist() == [1.0, 1.0]
    with pytest.raises(UserError, match="hold no labelled pixel"):
        class_weights.compute(stats, "median")


def test_unknown_method_names_the_choices():
    with pytest.raises(UserError, match=r"'mean' is not one of \['none', 'inverse'"):
        class_weights.compute(_stats(), "mean")
    with pytest.raises(UserError, match=r"'mean' is not one of \['auto', 'none'"):
        class_weights.resolve("mean", "dice")


@pytest.mark.parametrize(
    "method,loss,expected",
    [
        ("auto", "weighted_ce", "median"),
        ("auto", "ce", "none"),
        ("auto", "dice", "none"),
        ("auto", "focal", "none"),
        ("auto", "dice_focal", "none"),
        ("enet", "weighted_ce", "enet"),
        ("inverse", "dice", "inverse"),
        ("median", "dice_focal", "median"),
        ("none", "focal", "none"),
        ("none", "ce", "none"),
    ],
)
def test_resolve(method, loss, expected):
    assert class_weights.resolve(method, loss) == expected


def test_a_weighted_loss_without_weights_is_a_user_error():
    with pytest.raises(UserError) as info:
        class_weights.resolve("none", "weighted_ce")
    assert str(info.value) == "--loss weighted_ce needs --class-weights inverse, median or enet"


def test_ce_with_weights_is_a_user_error():
    with pytest.raises(UserError, match="--loss ce takes no class weights .*--loss weighted_ce"):
        class_weights.resolve("median", "ce")


def test_describe_prints_share_and_weight():
    stats = _stats()
    lines = class_weights.describe(stats, class_weights.compute(stats, "median"), NAMES)
    # road 5/9 = 55.56 %, car 3/9 = 33.33 %, sign 1/9 = 11.11 %, sky 0 %.
    assert lines == [
        "class    pixels    weight",
        "road     55.56%     0.900",
        "car      33.33%     1.167",
        "sign     11.11%     1.000",
        "sky       0.00%     0.000",
    ]


def test_module_needs_no_tensorflow():
    code = "import sys, fcn.training.class_weights; sys.exit('tensorflow' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
