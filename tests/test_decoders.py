"""Decoder heads: exact output size on odd sizes, both heads, skip fitting."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import udacity
from fcn.errors import UserError
from fcn.models import savedmodel

# KITTI's real frame sizes (none a multiple of 32) and a tiny odd one.
SIZES = [(375, 1242), (376, 1241), (370, 1226), (370, 1224), (33, 33)]


@pytest.mark.parametrize("name", sorted(udacity.DECODERS))
def test_logits_have_the_input_size_for_odd_sizes(name):
    with tf.Graph().as_default():
        image, keep_prob, l3, l4, l7 = savedmodel.build_vgg16(width=1 / 32)
        logits = udacity.build_decoder(name, l3, l4, l7, 3, tf.shape(image)[1:3])
        assert logits.shape.as_list() == [None, None, None, 3]
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for h, w in SIZES:
                out = sess.run(logits, {image: np.zeros((1, h, w, 3), np.float32), keep_prob: 1.0})
                assert out.shape == (1, h, w, 3), (name, h, w, out.shape)


def test_fit_crops_and_pads_top_left_aligned():
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1))
        cropped = sess.run(udacity._fit(x, [2, 3], 1))[0, ..., 0]
        padded = sess.run(udacity._fit(x, [4, 5], 1))[0, ..., 0]
    np.testing.assert_array_equal(cropped, [[0, 1, 2], [4, 5, 6]])
    # SYMMETRIC padding repeats the last row/column: row 3 = row 2, column 4 = column 3.
    np.testing.assert_array_equal(padded[3], [8, 9, 10, 11, 11])
    np.testing.assert_array_equal(padded[:, 4], [3, 7, 11, 11])


def test_reference_head_uses_the_reference_widths():
    with tf.Graph().as_default():
        l3 = tf.placeholder(tf.float32, [None, None, None, 256])
        l4 = tf.placeholder(tf.float32, [None, None, None, 512])
        l7 = tf.placeholder(tf.float32, [None, None, None, 4096])
        udacity.build_decoder("reference", l3, l4, l7, 2, [64, 64])
        shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
    assert shapes["decoder/conv7_1x1/kernel"] == [1, 1, 4096, 512]
    assert shapes["decoder/up4/kernel"] == [4, 4, 512, 512]
    assert shapes["decoder/up3/kernel"] == [8, 8, 256, 512]
    assert shapes["decoder/up_out/kernel"] == [16, 16, 2, 256]


def test_unknown_decoder_lists_the_valid_ones():
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [None, None, None, 8])
        with pytest.raises(UserError, match="fcn8s"):
            udacity.build_decoder("unet", x, x, x, 2, [32, 32])
