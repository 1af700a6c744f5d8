"""The in-code VGG16 encoder: its SavedModel's numbers, every weight source, both fc6 forms."""

import os

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import TINY_WIDTH
from fcn import config, data
from fcn.errors import UserError
from fcn.inference import serving_graph
from fcn.models import encoders, savedmodel, weights
from fcn.models.encoders import vgg16
from fcn.models.options import ModelOptions

# 13 convolutions + fc6 + fc7, a kernel and a bias each.
N_ARRAYS = 30


def _tiny_encoder(images, keep_prob=1.0, fc6="conv", reuse=None):
    """The tiny encoder under the encoder scope, as build_network places it."""
    with tf.variable_scope(encoders.SCOPE, reuse=reuse):
        return vgg16.build_vgg16_features(images, keep_prob, width=TINY_WIDTH, fc6=fc6)


def _load(sess, arrays, source="test"):
    variables = tf.global_variables(scope=encoders.SCOPE + "/")
    return weights.assign(sess, variables, arrays, encoders.SCOPE, source)


def test_in_code_vgg16_matches_its_saved_model_on_a_kitti_frame(tiny_vgg, kitti_sample):
    path = os.path.join(kitti_sample, "data_road", "training", "image_2", "um_000000.png")
    image = data.read_image(path)[None].astype(np.float32)  # (1, 375, 1242, 3)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        image_input, keep_prob, l3, l4, l7 = savedmodel.load_vgg(sess, tiny_vgg)
        want = sess.run([l3, l4, l7], {image_input: image, keep_prob: 1.0})
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        images = tf.placeholder(tf.float32, [None, None, None, 3])
        features = _tiny_encoder(images)
        sess.run(tf.global_variables_initializer())
        assert _load(sess, vgg16.read_weights(tiny_vgg), tiny_vgg) == N_ARRAYS
        got = sess.run([features[8], features[16], features[32]], {images: image})
    # SAME pools: ceil(375/8)=47, ceil(1242/8)=156; 24, 78; 12, 39. Width 1/16: 16, 32, 256.
    assert [g.shape for g in got] == [(1, 47, 156, 16), (1, 24, 78, 32), (1, 12, 39, 256)]
    for g, w in zip(got, want, strict=True):
        assert np.abs(w).max() > 0  # a dead layer would compare equal for free
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * np.abs(w).max())


def test_build_follows_the_contract_with_keras_names():
    cfg = config.Config(fc6="im2col", precision="float32")
    with tf.Graph().as_default() as graph:
        images = tf.placeholder(tf.float32, [None, 64, 96, 3])
        keep_prob = tf.placeholder(tf.float32, [])
        with tf.variable_scope(encoders.SCOPE):
            features = encoders.get("vgg16").build(
                images, ModelOptions.from_config(cfg), tf.constant(False), keep_prob
            )
        names = {
            weights.relative_name(v, encoders.SCOPE)
            for v in tf.global_variables(scope=encoders.SCOPE + "/")
        }
        im2col = any(op.type == "ExtractImagePatches" for op in graph.get_operations())
    assert sorted(features) == list(encoders.STRIDES)
    # ceil(64/s) x ceil(96/s) at strides 2..32, VGG16's full channel counts.
    assert [features[s].shape.as_list() for s in encoders.STRIDES] == [
        [None, 32, 48, 64],
        [None, 16, 24, 128],
        [None, 8, 12, 256],
        [None, 4, 6, 512],
        [None, 2, 3, 4096],
    ]
    assert len(names) == N_ARRAYS and {"fc6/kernel", "fc7/bias", "block5_conv3/kernel"} <= names
    assert im2col


def test_fc6_form_auto_resolves_by_precision():
    assert vgg16.fc6_form(config.Config(fc6="conv", precision="float32")) == "conv"
    assert vgg16.fc6_form(config.Config(fc6="im2col", precision="float32")) == "im2col"
    assert vgg16.fc6_form(config.Config(fc6="auto", precision="float32")) in vgg16.FC6_FORMS


def test_im2col_fc6_equals_conv_fc6_on_an_odd_size():
    # 75 x 141 -> pool5 3 x 5: most of each 7x7 window is SAME padding, so padding must agree.
    image = np.random.RandomState(0).uniform(0, 255, (2, 75, 141, 3)).astype(np.float32)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        images = tf.placeholder(tf.float32, [None, None, None, 3])
        conv = _tiny_encoder(images, fc6="conv")[32]
        im2col = _tiny_encoder(images, fc6="im2col", reuse=True)[32]  # the same variables
        block5 = graph.get_tensor_by_name(encoders.SCOPE + "/block5_conv3/kernel:0")
        grads = [tf.gradients(tf.reduce_sum(y * y), block5)[0] for y in (conv, im2col)]
        sess.run(tf.global_variables_initializer())
        (a, b), (ga, gb) = sess.run([(conv, im2col), grads], {images: image})
    assert a.shape == (2, 3, 5, 256) and np.abs(a).max() > 0
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * np.abs(a).max())
    # Training sees the same gradients through either form.
    np.testing.assert_allclose(gb, ga, rtol=1e-3, atol=1e-4 * np.abs(ga).max())


def test_a_frozen_im2col_fc6_is_served_as_the_convolution_it_computes():
    # Exports rewrite the im2col form (what a bfloat16 run trains) as Conv2D over the same
    # kernel (fcn.inference.serving_graph): ONNX and TFLite cannot take ExtractImagePatches.
    image = np.random.RandomState(1).uniform(0, 255, (2, 75, 141, 3)).astype(np.float32)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        images = tf.placeholder(tf.float32, [None, None, None, 3], name="images")
        out = tf.identity(_tiny_encoder(images, fc6="im2col")[32], name="out")
        sess.run(tf.global_variables_initializer())
        want = sess.run(out, {images: image})
        frozen = tf.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["out"])
    assert serving_graph.im2col_as_conv(frozen) == 1
    served = tf.graph_util.extract_sub_graph(frozen, ["out"])
    ops = [n.op for n in served.node]
    assert "ExtractImagePatches" not in ops and "MatMul" not in ops
    assert ops.count("Conv2D") == 13 + 1 + 1  # block convolutions, fc6 again, fc7
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        tf.import_graph_def(served, name="")
        got = sess.run("out:0", {"images:0": image})
    assert want.shape == (2, 3, 5, 256) and np.abs(want).max() > 0
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_an_im2col_chain_of_another_shape_is_refused():
    with tf.Graph().as_default() as graph:
        x = tf.placeholder(tf.float32, [1, 4, 4, 2])
        patches = tf.image.extract_patches(x, [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
        tf.identity(tf.reduce_sum(patches), name="out")  # patches, but no matmul after them
    with pytest.raises(ValueError, match="is not followed by one Reshape"):
        serving_graph.im2col_as_conv(graph.as_graph_def())


def _write_checkpoint(folder, arrays):
    """A SavedModel's variables/ checkpoint holding `arrays` under their names."""
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        variables = [tf.Variable(a, name=n) for n, a in arrays.items()]
        sess.run(tf.global_variables_initializer())
        os.makedirs(os.path.join(folder, "variables"))
        prefix = os.path.join(folder, "variables", "variables")
        tf.train.Saver(variables).save(sess, prefix, write_meta_graph=False)
    return folder


def _udacity_names(arrays):
    """Our names -> the Udacity vgg.zip's: block3_conv2/kernel -> conv3_2/filter, ..."""
    out = {}
    for name, array in arrays.items():
        layer, kind = name.split("/")
        if layer.startswith("block"):
            b, i = layer[len("block") :].split("_conv")
            out[f"conv{b}_{i}/{'filter' if kind == 'kernel' else 'biases'}"] = array
        else:
            out[f"{layer}/{'weights' if kind == 'kernel' else 'biases'}"] = array
    return out


def test_udacity_names_map_to_ours(tiny_vgg, tmp_path):
    ours = vgg16.read_weights(tiny_vgg)
    udacity = _udacity_names(ours)
    assert "conv3_2/filter" in udacity and "fc6/weights" in udacity
    udacity["fc8/weights"] = np.ones((1, 1, 256, 10), np.float32)  # ImageNet classes: ignored
    got = vgg16.read_weights(_write_checkpoint(str(tmp_path / "udacity"), udacity))
    assert sorted(got) == sorted(ours)
    assert all(np.array_equal(got[n], ours[n]) and got[n].dtype == np.float32 for n in ours)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        _tiny_encoder(tf.placeholder(tf.float32, [None, None, None, 3]))
        assert _load(sess, got) == N_ARRAYS


def test_udacity_wrong_shape_and_missing_name_are_listed(tiny_vgg, tmp_path):
    udacity = _udacity_names(vgg16.read_weights(tiny_vgg))
    del udacity["conv2_1/biases"]
    udacity["fc7/weights"] = np.zeros((1, 1, 256, 10), np.float32)
    folder = _write_checkpoint(str(tmp_path / "udacity"), udacity)
    arrays = vgg16.read_weights(folder)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        _tiny_encoder(tf.placeholder(tf.float32, [None, None, None, 3]))
        with pytest.raises(UserError) as info:
            _load(sess, arrays, folder)
    message = str(info.value)
    assert "\n" not in message and folder in message
    assert "missing: block2_conv1/bias" in message
    assert "fc7/kernel [1, 1, 256, 10] (model [1, 1, 256, 256])" in message


def _write_keras_h5(path, width):
    """A Keras-2 layout VGG16 weights file at a reduced width, fc1/fc2 included."""
    c = lambda n: int(n * width)  # noqa: E731
    with h5py.File(path, "w") as f:
        cin = 3
        for b, n, filters in vgg16.BLOCKS:
            for i in range(1, n + 1):
                g = f.create_group(f"block{b}_conv{i}/block{b}_conv{i}")
                g["kernel:0"] = np.full((3, 3, cin, c(filters)), 0.01 * b, np.float32)
                g["bias:0"] = np.full((c(filters),), 0.1 * i, np.float32)
                cin = c(filters)
        fc = c(4096)
        f["fc1/fc1/kernel:0"] = np.arange(49 * cin * fc, dtype=np.float32).reshape(49 * cin, fc)
        f["fc1/fc1/bias:0"] = np.zeros(fc, np.float32)
        f["fc2/fc2/kernel:0"] = np.eye(fc, dtype=np.float32)
        f["fc2/fc2/bias:0"] = np.zeros(fc, np.float32)


def test_keras_h5_weights_load_by_name(tmp_path):
    path = str(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
    _write_keras_h5(path, TINY_WIDTH)
    arrays = vgg16.read_weights(path)
    # fc1 (7*7*32, 256) is the flatten of a channels-last (7, 7, 32) map: (r*7 + c)*32 + ch.
    assert arrays["fc6/kernel"].shape == (7, 7, 32, 256)
    assert arrays["fc6/kernel"][1, 2, 3, 4] == ((1 * 7 + 2) * 32 + 3) * 256 + 4
    assert arrays["fc7/kernel"].shape == (1, 1, 256, 256)
    with tf.Graph().as_default() as graph, tf.Session(graph=graph) as sess:
        _tiny_encoder(tf.placeholder(tf.float32, [None, None, None, 3]))
        assert _load(sess, arrays, path) == N_ARRAYS
        kernel = sess.run(graph.get_tensor_by_name(encoders.SCOPE + "/block2_conv1/kernel:0"))
    assert np.all(kernel == np.float32(0.02))


def test_unreadable_sources_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(UserError, match="nope do not exist.*random"):
        vgg16.read_weights(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no variables/variables.index"):
        vgg16.read_weights(str(tmp_path / "empty"))
    (tmp_path / "weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="weights.h5 is not a readable HDF5 file"):
        vgg16.read_weights(str(tmp_path / "weights.h5"))
    (tmp_path / "bad" / "variables").mkdir(parents=True)
    (tmp_path / "bad" / "variables" / "variables.index").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot read the weights"):
        vgg16.read_weights(str(tmp_path / "bad"))
