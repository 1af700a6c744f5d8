"""Repeat-factor sampling (fcn.data.sampling) by hand-worked factors; uniform is the training
order the suite always had; draws replay from a saved generator state."""

import math
import types

import numpy as np
import pytest

from fcn import data
from fcn.data import sampling

IGN = data.IGNORE_LABEL


def _labels():
    """5 images of 2x2: class 1 in one image (f 0.2), class 2 in two (f 0.4), one all ignore."""
    labels = np.zeros((5, 2, 2), np.uint8)
    labels[0, 0, 0] = 1
    labels[0, 1, 1] = 2
    labels[1, 0, 0] = 2
    labels[4] = IGN
    return labels


def test_repeat_factors_by_hand():
    presence = sampling.class_presence(_labels(), 3)
    assert presence.tolist() == [[1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 0]]
    per_image, per_class, share = sampling.repeat_factors(presence, threshold=0.8)
    np.testing.assert_allclose(share, [0.8, 0.2, 0.4])
    # r_c = max(1, sqrt(t / f_c)): background sqrt(1) = 1, class 1 sqrt(4) = 2, class 2 sqrt(2)
    np.testing.assert_allclose(per_class, [1.0, 2.0, math.sqrt(2)])
    # an image's r is its rarest class's; the ignore-only image keeps 1
    np.testing.assert_allclose(per_image, [2.0, math.sqrt(2), 1.0, 1.0, 1.0])


def test_uniform_is_todays_sequence_and_repeat_factor_rounds_stochastically():
    split = data.CachedSplit([], np.arange(5, dtype=np.uint8)[:, None, None, None], _labels())
    uniform = sampling.Sampler(5)
    for seed in range(3):
        today = list(data.epoch_batches(split, 2, rng=np.random.default_rng(seed)))
        order = uniform.order(np.random.default_rng(seed))
        ours = list(data.epoch_batches(split, 2, order=order))
        assert len(ours) == len(today) == 3
        for (a, la), (b, lb) in zip(today, ours, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(la, lb)
    factors = np.array([2.0, math.sqrt(2), 1.0, 1.0, 1.0])
    rf = sampling.Sampler(5, factors)
    rng = np.random.default_rng(0)
    counts = np.array([np.bincount(rf.order(rng), minlength=5) for _ in range(4000)])
    assert counts[:, 0].tolist() == [2] * 4000 and set(counts[:, 1]) == {1, 2}
    assert (counts[:, 2:] == 1).all()
    assert counts[:, 1].mean() == pytest.approx(math.sqrt(2), abs=0.03)  # E = r
    # A saved generator state replays the epoch's draws (what a resume does).
    rng = np.random.default_rng(7)
    state = rng.bit_generator.state
    first = rf.order(rng)
    rng.bit_generator.state = state
    np.testing.assert_array_equal(rf.order(rng), first)


def test_from_config_logs_each_class_and_repeats_nothing_when_no_class_is_rare():
    split = data.CachedSplit([], np.zeros((5, 1, 1, 3), np.uint8), _labels())
    names = ("background", "a_long_class_name", "c2")
    lines = []
    config = types.SimpleNamespace(sampling="repeat_factor", repeat_threshold=0.8)
    sampler = sampling.Sampler.from_config(config, split, names, lines.append)
    np.testing.assert_allclose(sampler.factors, [2.0, math.sqrt(2), 1.0, 1.0, 1.0])
    # 2 + sqrt(2) + 3 draws; class 1's one image is drawn twice, class 2's images 1.71 times
    assert lines[0] == "repeat-factor sampling (t = 0.8): 6.4 image draws per epoch for 5 images"
    assert lines[2] == ("  a_long_class_name  in  20.0% of images, r_c 2.00, expected repeats 2.00")
    assert lines[3].startswith("  c2                 in  40.0% of images, r_c 1.41")
    assert lines[3].endswith("expected repeats 1.71")
    # t = 0.2: the rarest class is in 20% of the images, so nothing is repeated, and the epoch
    # is uniform's sequence (the same draws from the same generator state).
    lines.clear()
    config.repeat_threshold = 0.2
    sampler = sampling.Sampler.from_config(config, split, names, lines.append)
    assert sampler.factors is None
    assert lines[-1].startswith("  repeats nothing: the rarest class is in 20.0% of the images")
    np.testing.assert_array_equal(
        sampler.order(np.random.default_rng(3)), sampling.Sampler(5).order(np.random.default_rng(3))
    )


def test_an_epoch_yields_every_draw_of_an_order_longer_than_the_split():
    # Repeat factors make an epoch longer than the split: 7 draws of 5 images, batches of 3.
    split = data.CachedSplit([], np.arange(5, dtype=np.uint8)[:, None, None, None], _labels())
    order = np.array([4, 0, 0, 2, 1, 0, 3])
    batches = list(data.epoch_batches(split, 3, order=order))
    assert [len(images) for images, _ in batches] == [3, 3, 1]
    drawn = np.concatenate([images[:, 0, 0, 0] for images, _ in batches]).astype(int)
    assert drawn.tolist() == order.tolist()
    np.testing.assert_array_equal(batches[0][1][1], _labels()[0])
