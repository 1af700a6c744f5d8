"""Interface checks of the four Udacity functions and of the KITTI data folder.

`python project_tests.py` runs them and prints a line each; pytest collects them too (the
function under test comes from a fixture in conftest.py). The checks follow the Udacity project's
own, so code written against that project is checked the same way, in tf.compat.v1 graph mode.
"""

import os
import sys
from unittest import mock

import numpy as np

from fcn import tfquiet

# tensorflow.compat.v1 in graph mode, without TensorFlow's start-up log lines.
tf = tfquiet.tensorflow()

# The full KITTI road benchmark: 289 training pairs and 290 test images.
KITTI_TRAIN_IMAGES = 289
KITTI_TEST_IMAGES = 290


class Skip(Exception):
    """A check that cannot run here (no dataset): reported, never a failure."""


def _assert_shape(tensor, shape, name):
    got = tensor.get_shape().as_list() if tensor.get_shape().ndims is not None else None
    assert got == shape, f"{name} has shape {got}, expected {shape}"


def test_load_vgg(load_vgg):
    """load_vgg calls the SavedModel loader with tag 'vgg16' and returns the five tensors."""
    graph = tf.Graph()
    with graph.as_default():
        names = ("image_input", "keep_prob", "layer3_out", "layer4_out", "layer7_out")
        expected = [tf.placeholder(tf.float32, name=n) for n in names]
        with mock.patch.object(tf.saved_model.loader, "load") as load:
            sess = tf.Session(graph=graph)
            got = load_vgg(sess, "")
            assert load.called, "tf.saved_model.loader.load was not called"
            assert load.call_args == mock.call(sess, ["vgg16"], ""), load.call_args
            sess.close()
    assert list(got) == expected, "load_vgg must return the graph's tensors in order " + str(names)


def test_layers(layers):
    """The decoder returns (N, H, W, num_classes) logits for unknown spatial sizes."""
    with tf.Graph().as_default():
        num_classes = 2
        l3 = tf.placeholder(tf.float32, [None, None, None, 256])
        l4 = tf.placeholder(tf.float32, [None, None, None, 512])
        l7 = tf.placeholder(tf.float32, [None, None, None, 4096])
        out = layers(l3, l4, l7, num_classes)
        _assert_shape(out, [None, None, None, num_classes], "layers output")


def test_optimize(optimize):
    """Logits are flattened to (P, C) and one step of the train op changes the weights."""
    with tf.Graph().as_default():
        num_classes = 2
        shape = [2, 3, 4, num_classes]
        last = tf.Variable(tf.zeros(shape))
        label = tf.placeholder(tf.float32, [None, None, None, num_classes])
        lr = tf.placeholder(tf.float32)
        logits, train_op, loss = optimize(last, label, lr, num_classes)
        _assert_shape(logits, [2 * 3 * 4, num_classes], "logits")
        one_hot = np.zeros(shape, np.float32)
        one_hot[..., 1] = 1
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(loss, {label: one_hot})
            sess.run(train_op, {label: one_hot, lr: 10})
            weights, after = sess.run([last, loss], {label: one_hot})
        assert np.abs(weights).max() > 0, "the train op did not change the weights"
        # zero logits: loss = ln 2 = 0.6931 on every pixel; the step must lower it.
        assert abs(before - np.log(2)) < 1e-5, before
        assert after < before, (before, after)


def test_train_nn(train_nn):
    """train_nn runs epochs over get_batches_fn and feeds the four placeholders."""
    with tf.Graph().as_default():
        epochs, batch_size = 2, 2
        seen = []

        def get_batches_fn(size):
            seen.append(size)
            shape = [size, 2, 3, 3]
            yield np.arange(np.prod(shape)).reshape(shape), np.zeros([size, 2, 3, 2])

        train_op = tf.constant(0)
        loss = tf.constant(10.11)
        image = tf.placeholder(tf.float32, name="input_image")
        label = tf.placeholder(tf.float32, name="correct_label")
        keep_prob = tf.placeholder(tf.float32, name="keep_prob")
        lr = tf.placeholder(tf.float32, name="learning_rate")
        with tf.Session() as sess:
            train_nn(
                sess,
                epochs,
                batch_size,
                get_batches_fn,
                train_op,
                loss,
                image,
                label,
                keep_prob,
                lr,
            )
        assert seen == [batch_size] * epochs, seen


def test_for_kitti_dataset(data_dir):
    """The KITTI road benchmark is complete under data_dir; skipped when it is absent."""
    root = os.path.join(data_dir, "data_road")
    if not os.path.isdir(root):
        raise Skip(f"no KITTI dataset at {root}; download data_road.zip (see data/README.md)")
    folders = {
        "training/image_2": ("*.png", KITTI_TRAIN_IMAGES),
        "training/gt_image_2": ("*_road_*.png", KITTI_TRAIN_IMAGES),
        "testing/image_2": ("*.png", KITTI_TEST_IMAGES),
    }
    import glob

    problems = []
    for folder, (pattern, want) in folders.items():
        got = len(glob.glob(os.path.join(root, folder, pattern)))
        if got != want:
            problems.append(f"{folder}: {got} files matching {pattern}, expected {want}")
    assert not problems, f"KITTI dataset at {root} is incomplete: " + "; ".join(problems)


def main():
    import main as project

    checks = [
        (test_load_vgg, project.load_vgg),
        (test_layers, project.layers),
        (test_optimize, project.optimize),
        (test_train_nn, project.train_nn),
        (test_for_kitti_dataset, os.environ.get("DATA_DIR", "./data")),
    ]
    failed = 0
    for check, arg in checks:
        try:
            check(arg)
            print(f"PASS  {check.__name__}")
        except Skip as e:
            print(f"SKIP  {check.__name__}: {e}")
        except AssertionError as e:
            failed += 1
            print(f"FAIL  {check.__name__}: {e}")
    print("Tests Passed" if not failed else f"{failed} test(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
