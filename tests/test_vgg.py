"""VGG16 SavedModels: build (random or Keras h5), load with the Udacity contract, clear errors."""

import os

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import main
from fcn.errors import UserError
from fcn.models import savedmodel


def test_load_vgg_returns_the_interface_tensors(tiny_vgg):
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tensors = main.load_vgg(sess, tiny_vgg)
        assert [t.name for t in tensors] == list(savedmodel.TENSOR_NAMES)
        image, keep_prob, l3, l4, l7 = tensors
        out = sess.run([l3, l4, l7], {image: np.zeros((1, 70, 100, 3)), keep_prob: 1.0})
    # SAME pooling: ceil(70/8)=9, ceil(100/8)=13; ceil(70/16)=5, 7; ceil(70/32)=3, 4.
    assert [o.shape[1:3] for o in out] == [(9, 13), (5, 7), (3, 4)]
    assert [o.shape[3] for o in out] == [16, 32, 256]  # 256, 512, 4096 at width 1/16


def test_random_model_has_he_scaled_weights(tiny_vgg):
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        main.load_vgg(sess, tiny_vgg)
        kernel = sess.run(graph.get_tensor_by_name("block3_conv1/kernel:0"))
    # He: std = sqrt(2 / fan_in), fan_in = 3*3*8 (width 1/16 of 128) = 72 -> 0.1667.
    assert abs(kernel.std() - np.sqrt(2 / 72)) < 0.03


def _write_keras_h5(path, width):
    """A Keras-2 layout VGG16 weights file at a reduced width, with known values."""
    c = lambda n: int(n * width)  # noqa: E731
    with h5py.File(path, "w") as f:
        cin = 3
        for b, n, filters in ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)):
            for i in range(1, n + 1):
                g = f.create_group(f"block{b}_conv{i}/block{b}_conv{i}")
                g["kernel:0"] = np.full((3, 3, cin, c(filters)), 0.01 * b, np.float32)
                g["bias:0"] = np.full((c(filters),), 0.1 * i, np.float32)
                cin = c(filters)
        return f


def test_keras_h5_fc_layers_become_convolutions(tmp_path, monkeypatch):
    width = 1 / 16
    path = str(tmp_path / "w.h5")
    _write_keras_h5(path, width)
    fc = int(4096 * width)
    flat = np.arange(7 * 7 * 32 * fc, dtype=np.float32).reshape(7 * 7 * 32, fc)
    with h5py.File(path, "a") as f:
        f["fc1/fc1/kernel:0"] = flat
        f["fc1/fc1/bias:0"] = np.zeros(fc, np.float32)
        f["fc2/fc2/kernel:0"] = np.eye(fc, dtype=np.float32)
        f["fc2/fc2/bias:0"] = np.zeros(fc, np.float32)
    monkeypatch.setattr(savedmodel, "_FC_FILTERS", fc)
    monkeypatch.setattr(
        savedmodel, "_BLOCKS", tuple((b, n, int(c * width)) for b, n, c in savedmodel._BLOCKS)
    )
    weights = savedmodel.read_keras_h5(path)
    # Flatten order of a channels-last (7, 7, 32) map: index = (r*7 + c)*32 + ch.
    k6 = weights["fc6"][0]
    assert k6.shape == (7, 7, 32, fc)
    assert k6[1, 2, 3, 4] == flat[(1 * 7 + 2) * 32 + 3, 4]
    assert weights["fc7"][0].shape == (1, 1, fc, fc)
    out = savedmodel.save_vgg16(str(tmp_path / "model"), weights=weights)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        main.load_vgg(sess, out)
        got = sess.run(graph.get_tensor_by_name("block2_conv1/kernel:0"))
        # Constant initialisers: re-running the initializer keeps the pretrained values.
        sess.run(tf.global_variables_initializer())
        again = sess.run(graph.get_tensor_by_name("block2_conv1/kernel:0"))
    assert np.all(got == np.float32(0.02)) and np.all(again == np.float32(0.02))


def test_keras_h5_missing_layer_is_named(tmp_path):
    path = str(tmp_path / "w.h5")
    _write_keras_h5(path, 1 / 16)
    with pytest.raises(UserError, match="'fc1'"):
        savedmodel.read_keras_h5(path)


def test_missing_folder_and_files_are_named(tmp_path):
    with tf.Graph().as_default(), tf.Session() as sess:
        with pytest.raises(UserError, match="does not exist"):
            savedmodel.load_vgg(sess, str(tmp_path / "nope"))
        (tmp_path / "vgg").mkdir()
        with pytest.raises(UserError, match="saved_model.pb"):
            savedmodel.load_vgg(sess, str(tmp_path / "vgg"))


def test_corrupt_model_and_wrong_tag(tmp_path, tiny_vgg):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_vgg, bad)
    (bad / "saved_model.pb").write_bytes(b"not a protobuf")
    with tf.Graph().as_default(), tf.Session() as sess:
        with pytest.raises(UserError, match="corrupt"):
            savedmodel.load_vgg(sess, str(bad))
    other = tmp_path / "other"
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.placeholder(tf.float32, name="image_input")
        tf.Variable(1.0)
        sess.run(tf.global_variables_initializer())
        builder = tf.saved_model.Builder(str(other))
        builder.add_meta_graph_and_variables(sess, ["serve"])
        builder.save()
    with tf.Graph().as_default(), tf.Session() as sess:
        with pytest.raises(UserError, match="tag 'vgg16'"):
            savedmodel.load_vgg(sess, str(other))


def test_missing_tensor_is_named(tmp_path):
    path = tmp_path / "m"
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.placeholder(tf.float32, name="image_input")
        tf.Variable(1.0)
        sess.run(tf.global_variables_initializer())
        builder = tf.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, ["vgg16"])
        builder.save()
    with tf.Graph().as_default(), tf.Session() as sess:
        with pytest.raises(UserError, match="keep_prob:0"):
            savedmodel.load_vgg(sess, str(path))


def test_save_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        savedmodel.save_vgg16(str(tmp_path / "x"), width=1 / 32)
    assert os.listdir(tmp_path / "x") == ["keep.txt"]
