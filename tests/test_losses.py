"""The loss: void pixels never count; L2 is explicit."""

import numpy as np
import tensorflow.compat.v1 as tf

from fcn import decoders, losses


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
        tf.add_to_collection(decoders.L2_COLLECTION, k)
        # l2_loss = sum(k^2)/2 = 4*4/2 = 8; times 0.1 = 0.8
        assert abs(sess.run(losses.l2_penalty(0.1)) - 0.8) < 1e-6
        assert sess.run(losses.l2_penalty(0.0)) == 0.0
