"""The losses: ignore (void) pixels never count; L2 is explicit; every loss by hand."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import udacity
from fcn.errors import UserError
from fcn.training import losses


def _run(logits, labels):
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(losses.masked_cross_entropy(tf.constant(logits), tf.constant(labels)))


def test_void_pixels_do_not_count():
    # Two pixels: a valid one with logits (0, ln 3) and label road -> p(road) = 3/4,
    # loss = -ln(3/4) = 0.28768; a void one (all-zero label) with awful logits, ignored.
    logits = np.array([[0.0, np.log(3.0)], [50.0, -50.0]], np.float32)
    labels = np.array([[0.0, 1.0], [0.0, 0.0]], np.float32)
    assert abs(_run(logits, labels) - (-np.log(0.75))) < 1e-6


def test_mean_is_over_valid_pixels_only():
    # Valid: (0,0) label 0 -> ln 2; (0, ln 3) label 1 -> -ln(3/4). Mean of the two, void ignored.
    logits = np.array([[0.0, 0.0], [0.0, np.log(3.0)], [9.0, 0.0]], np.float32)
    labels = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]], np.float32)
    expected = (np.log(2.0) - np.log(0.75)) / 2
    assert abs(_run(logits, labels) - expected) < 1e-6


def test_all_void_batch_gives_zero_not_nan():
    assert _run(np.ones((3, 2), np.float32), np.zeros((3, 2), np.float32)) == 0.0


def test_l2_penalty_sums_decoder_kernels():
    with tf.Graph().as_default(), tf.Session() as sess:
        k = tf.constant(np.full((1, 1, 2, 2), 2.0, np.float32))
        tf.add_to_collection(udacity.L2_COLLECTION, k)
        # l2_loss = sum(k^2)/2 = 4*4/2 = 8; times 0.1 = 0.8
        assert abs(sess.run(losses.l2_penalty(0.1)) - 0.8) < 1e-6
        assert sess.run(losses.l2_penalty(0.0)) == 0.0


# segmentation_loss: every loss by name, checked on tiny inputs against numbers worked out by hand.
# Two classes. Logits (ln 4, 0) give p = (0.8, 0.2); logits (0, 0) give p = (0.5, 0.5).
_P80 = [np.log(4.0), 0.0]
_P50 = [0.0, 0.0]
_W13 = np.array([1.0, 3.0], np.float32)
# Pixel A: p = (0.8, 0.2), label 0 -> ce_A = -ln 0.8 = 0.223144.
# Pixel B: p = (0.5, 0.5), label 1 -> ce_B = ln 2 = 0.693147.
_CE_A, _CE_B = -np.log(0.8), np.log(2.0)
# Focal (gamma 2, alpha 0.25): A: 0.25 * 0.2^2 * 0.223144 = 0.0022314,
#                               B: 0.25 * 0.5^2 * 0.693147 = 0.0433217.
_FOCAL_A, _FOCAL_B = 0.25 * 0.04 * _CE_A, 0.25 * 0.25 * _CE_B
# Dice (smooth 1) over A and B: class 0: I = 0.8, sum p = 0.8 + 0.5 = 1.3, sum g = 1
#   -> D_0 = (1.6 + 1) / (1.3 + 1 + 1) = 2.6 / 3.3 = 0.787879;
# class 1: I = 0.5, sum p = 0.2 + 0.5 = 0.7, sum g = 1 -> D_1 = (1 + 1) / (0.7 + 1 + 1) = 0.740741.
_D0, _D1 = 2.6 / 3.3, 2.0 / 2.7


def _loss(name, logits, labels, num_classes=2, **kwargs):
    with tf.Graph().as_default(), tf.Session() as sess:
        loss = losses.segmentation_loss(
            name,
            tf.constant(np.asarray(logits, np.float32)),
            tf.constant(np.asarray(labels, np.uint8)),
            num_classes,
            **kwargs,
        )
        return sess.run(loss)


def _two_pixels(with_ignored=False):
    """(1, 1, 2) batch of pixels A and B; or (1, 2, 2) with a second row of two ignore pixels
    whose logits are awful for any label."""
    logits = [[_P80, _P50]]
    labels = [[0, 1]]
    if with_ignored:
        logits.append([[40.0, -40.0], [-40.0, 40.0]])
        labels.append([255, 255])
    return np.array([logits], np.float32), np.array([labels], np.uint8)


def test_losses_match_the_config_choices():
    from fcn import config
    from fcn.training import class_weights

    assert losses.LOSSES == config.LOSSES
    assert losses.CLASS_WEIGHTS == config.CLASS_WEIGHTINGS == ("auto",) + class_weights.METHODS


def test_ce_of_one_pixel():
    # p = (0.8, 0.2), label 0: -ln 0.8 = 0.22314
    assert abs(_loss("ce", [[[_P80]]], [[[0]]]) - 0.2231436) < 1e-6


def test_ce_is_sparse_cross_entropy_mean_over_labelled_pixels():
    logits, labels = _two_pixels(with_ignored=True)
    # (0.223144 + 0.693147) / 2 = 0.458145; the ignore pixels count nowhere.
    assert abs(_loss("ce", logits, labels) - (_CE_A + _CE_B) / 2) < 1e-6
    assert abs(_loss("ce", logits, labels) - 0.4581454) < 1e-6


def test_weighted_ce_by_hand():
    logits, labels = _two_pixels(with_ignored=True)
    # w = (1, 3): (1 * 0.223144 + 3 * 0.693147) / (1 + 3) = 2.302586 / 4 = 0.575646
    assert abs(_loss("weighted_ce", logits, labels, class_weights=_W13) - 0.5756463) < 1e-6
    # A weighted mean: scaling every weight changes nothing.
    assert abs(_loss("weighted_ce", logits, labels, class_weights=2 * _W13) - 0.5756463) < 1e-6
    # Equal weights: plain ce.
    ones = np.ones(2, np.float32)
    assert abs(_loss("weighted_ce", logits, labels, class_weights=ones) - 0.4581454) < 1e-6


def test_focal_of_one_pixel():
    # p_t = 0.8, gamma 2, alpha 0.25: 0.25 * 0.2^2 * 0.22314 = 0.0022314
    assert abs(_loss("focal", [[[_P80]]], [[[0]]]) - 0.0022314) < 1e-7


def test_focal_mean_and_weighted_mean_by_hand():
    logits, labels = _two_pixels(with_ignored=True)
    # Mean: (0.0022314 + 0.0433217) / 2 = 0.0227766
    assert abs(_loss("focal", logits, labels) - 0.0227766) < 1e-7
    # w = (1, 3): (0.0022314 + 3 * 0.0433217) / 4 = 0.1321965 / 4 = 0.0330491
    assert abs(_loss("focal", logits, labels, class_weights=_W13) - 0.0330491) < 1e-7
    # gamma 3, alpha 0.5 on pixel A: 0.5 * 0.2^3 * 0.223144 = 0.00089258
    value = _loss("focal", [[[_P80]]], [[[0]]], gamma=3.0, alpha=0.5)
    assert abs(value - 0.00089258) < 1e-7


def test_focal_with_gamma_0_and_alpha_1_is_ce():
    logits, labels = _two_pixels(with_ignored=True)
    value = _loss("focal", logits, labels, gamma=0.0, alpha=1.0)
    assert abs(value - 0.4581454) < 1e-6


def test_focal_is_finite_for_a_hopeless_pixel():
    # Logits (100, -100), label 1: ln p_t = -200 exactly by log_softmax (p_t = e^-200 underflows
    # to 0 in float32, where ln would give inf). (1 - p_t)^2 = 1: 0.25 * 200 = 50.
    assert abs(_loss("focal", [[[[100.0, -100.0]]]], [[[1]]]) - 50.0) < 1e-4


def test_dice_by_hand():
    logits, labels = _two_pixels(with_ignored=True)
    # 1 - (0.787879 + 0.740741) / 2 = 0.235690
    assert abs(_loss("dice", logits, labels) - 0.2356902) < 1e-6
    # w = (1, 3): 1 - (0.787879 + 3 * 0.740741) / 4 = 1 - 0.752525 = 0.247475
    assert abs(_loss("dice", logits, labels, class_weights=_W13) - 0.2474747) < 1e-6


def test_dice_class_absent_from_labels_and_prediction_scores_one():
    # A third class with logit -30 (p ~ 1e-13) and no pixel: D_2 = (0 + 1) / (0 + 1) = 1, the
    # other two as before: 1 - (0.787879 + 0.740741 + 1) / 3 = 0.157127.
    logits = np.array([[[_P80 + [-30.0], _P50 + [-30.0]]]], np.float32)
    labels = np.array([[[0, 1]]], np.uint8)
    assert abs(_loss("dice", logits, labels, num_classes=3) - 0.1571268) < 1e-6
    # Weight 0 for the absent class (fcn.training.class_weights gives it that) leaves the two-class
    # figure.
    weights = np.array([1.0, 1.0, 0.0], np.float32)
    assert abs(_loss("dice", logits, labels, 3, class_weights=weights) - 0.2356902) < 1e-6


def test_dice_focal_is_the_sum():
    logits, labels = _two_pixels(with_ignored=True)
    # 0.235690 + 0.0227766 = 0.258467
    assert abs(_loss("dice_focal", logits, labels) - 0.2584668) < 1e-6
    # Weighted: 0.247475 + 0.0330491 = 0.280524
    assert abs(_loss("dice_focal", logits, labels, class_weights=_W13) - 0.2805239) < 1e-6


_EVERY_LOSS = [
    (name, weights)
    for name in losses.LOSSES
    for weights in (None, _W13)
    if not (name == "weighted_ce" and weights is None)
    and not (name == "ce" and weights is not None)
]


@pytest.mark.parametrize("name,weights", _EVERY_LOSS)
def test_ignore_pixels_change_nothing(name, weights):
    logits, labels = _two_pixels(with_ignored=True)
    alone = _loss(name, *_two_pixels(), class_weights=weights)
    with_ignored = _loss(name, logits, labels, class_weights=weights)
    logits[0, 1] = [[-7.0, 9.0], [3.0, -5.0]]  # other logits at the ignore pixels
    changed = _loss(name, logits, labels, class_weights=weights)
    assert alone > 0
    assert abs(with_ignored - alone) < 1e-6
    assert changed == with_ignored
    # And the gradient at the ignore pixels is exactly zero.
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(logits)
        loss = losses.segmentation_loss(name, x, tf.constant(labels), 2, class_weights=weights)
        grad = sess.run(tf.gradients(loss, x)[0])
    assert np.all(grad[0, 1] == 0.0)
    assert np.any(grad[0, 0] != 0.0)


@pytest.mark.parametrize("name,weights", _EVERY_LOSS)
def test_all_ignored_batch_gives_zero_and_finite_gradients(name, weights):
    logits = np.array([[[[50.0, -50.0], [-3.0, 3.0]]]], np.float32)
    labels = np.full((1, 1, 2), 255, np.uint8)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(logits)
        loss = losses.segmentation_loss(name, x, tf.constant(labels), 2, class_weights=weights)
        value, grad = sess.run([loss, tf.gradients(loss, x)[0]])
    assert value == 0.0
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("name,weights", _EVERY_LOSS)
@pytest.mark.parametrize("dtype", [tf.float16, tf.bfloat16])
def test_low_precision_logits_give_a_float32_loss(name, weights, dtype):
    logits, labels = _two_pixels(with_ignored=True)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.cast(tf.constant(logits), dtype)
        loss = losses.segmentation_loss(name, x, tf.constant(labels), 2, class_weights=weights)
        assert loss.dtype == tf.float32 and loss.shape.ndims == 0
        value = sess.run(loss)
    assert abs(value - _loss(name, logits, labels, class_weights=weights)) < 2e-2


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_gradients_are_finite_for_a_certain_pixel(gamma):
    # Logits (100, -100), label 0: p_t == 1.0 in float32, so 1 - p_t = 0, where x^gamma has an
    # infinite slope for gamma < 1; the floor keeps the gradient finite.
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant([[[[100.0, -100.0], [0.0, 0.0]]]])
        labels = tf.constant([[[0, 1]]], tf.uint8)
        loss = losses.segmentation_loss("focal", x, labels, 2, gamma=gamma)
        grad = sess.run(tf.gradients(loss, x)[0])
    assert np.all(np.isfinite(grad))


def test_unknown_loss_names_the_choices():
    with pytest.raises(UserError, match=r"--loss 'dcie' is not one of \['ce', 'weighted_ce'"):
        _loss("dcie", [[[_P80]]], [[[0]]])


def test_weighted_ce_needs_weights_and_ce_refuses_them():
    with pytest.raises(UserError, match="--loss weighted_ce needs --class-weights"):
        _loss("weighted_ce", [[[_P80]]], [[[0]]])
    with pytest.raises(UserError, match="--loss ce takes no class weights"):
        _loss("ce", [[[_P80]]], [[[0]]], class_weights=_W13)


def test_class_weights_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        _loss("dice", [[[_P80]]], [[[0]]], class_weights=np.ones(3))
