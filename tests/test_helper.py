"""helper.py keeps the Udacity signatures and behaviour, with the fixes the README lists."""

import os

import cv2
import numpy as np
import tensorflow.compat.v1 as tf

import helper
import main


def test_gen_batch_function_yields_one_hot_batches_with_void_left_out(kitti_sample):
    get_batches_fn = helper.gen_batch_function(
        os.path.join(kitti_sample, "data_road", "training"), (64, 224)
    )
    batches = list(get_batches_fn(2))
    assert len(batches) == 1
    images, labels = batches[0]
    assert images.shape == (2, 64, 224, 3) and labels.shape == (2, 64, 224, 2)
    assert images.max() > 1.0  # raw 0..255, as the VGG SavedModel expects
    sums = labels.sum(-1)
    # One-hot where labelled; void (KITTI black) rows are all zero, not "not road".
    assert set(np.unique(sums)) == {0.0, 1.0}


def test_save_inference_samples_writes_full_size_overlays(kitti_sample, tiny_vgg, tmp_path):
    with tf.Graph().as_default(), tf.Session() as sess:
        image, keep_prob, l3, l4, l7 = main.load_vgg(sess, tiny_vgg)
        out = main.layers(l3, l4, l7, 2)
        label = tf.placeholder(tf.float32, [None, None, None, 2])
        logits, _, _ = main.optimize(out, label, 1e-3, 2)
        sess.run(tf.global_variables_initializer())
        folder = helper.save_inference_samples(
            str(tmp_path / "runs"), kitti_sample, sess, (64, 224), logits, keep_prob, image
        )
    names = sorted(os.listdir(folder))
    tests = os.path.join(kitti_sample, "data_road", "testing", "image_2")
    assert names == sorted(os.listdir(tests))
    for name in names[:3]:
        written = cv2.imread(os.path.join(folder, name))
        assert written.shape == cv2.imread(os.path.join(tests, name)).shape
