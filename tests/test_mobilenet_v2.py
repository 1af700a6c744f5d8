"""MobileNetV2 encoder: the feature contract, Keras weight files by order and shape, batch norm,
and (where Keras is installed) the same numbers as Keras's own MobileNetV2."""

import importlib.util
import math
import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import config
from fcn.errors import UserError
from fcn.models import encoders, weights
from fcn.models.encoders import mobilenet_v2

CHANNELS = {2: 96, 4: 144, 8: 192, 16: 576, 32: 320}
# Odd on both sides, so every stride-2 layer pads (1, 1) as Keras's correct_pad does.
ODD = (65, 97)
CONFIG = config.Config(encoder="mobilenet_v2")


@pytest.fixture(scope="module")
def net():
    """One MobileNetV2 graph for the module (building it takes about a second)."""
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [None, None, None, 3])
        is_training = tf.placeholder_with_default(False, [])
        with tf.variable_scope(encoders.SCOPE):
            features = mobilenet_v2.build(images, CONFIG, is_training, tf.constant(1.0))
        variables = tf.global_variables()
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        init = tf.global_variables_initializer()
    return dict(
        graph=graph,
        images=images,
        is_training=is_training,
        features=features,
        variables=variables,
        updates=updates,
        init=init,
    )


def _session(net):
    sess = tf.Session(graph=net["graph"])
    sess.run(net["init"])
    return sess


def _variable(net, name):
    return next(v for v in net["variables"] if v.op.name == f"{encoders.SCOPE}/{name}")


def _load(sess, net, arrays):
    """Every array into its variable in one run: weights.assign (tested above) spends ~30 ms a
    variable, a new run signature each."""
    by_name = {weights.relative_name(v, encoders.SCOPE): v for v in net["variables"]}
    assert by_name.keys() == arrays.keys()
    sess.run(
        [v.initializer for v in by_name.values()],
        {v.initializer.inputs[1]: arrays[n] for n, v in by_name.items()},
    )


def _images(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, *ODD, 3)).astype(np.float32)


def test_features_have_the_contracts_strides_channels_and_sizes(net):
    assert {s: int(f.shape[-1]) for s, f in net["features"].items()} == CHANNELS
    with _session(net) as sess:
        out = sess.run(net["features"], {net["images"]: _images(1)})
    for s, c in CHANNELS.items():
        # 65x97: ceil(65/32) = 3, ceil(97/32) = 4.
        assert out[s].shape == (1, math.ceil(ODD[0] / s), math.ceil(ODD[1] / s), c), s


def test_variables_are_keras_layer_names_in_the_readers_order(net):
    built = [
        (weights.relative_name(v, encoders.SCOPE), tuple(v.shape.as_list()))
        for v in net["variables"]
    ]
    planned = [
        (f"{layer}/{array}", shape)
        for layer, kind, shapes in mobilenet_v2.weight_layers()
        for array, shape in zip(mobilenet_v2._ARRAYS[kind], shapes, strict=True)
    ]
    assert built == planned
    assert built[0] == ("Conv1/kernel", (3, 3, 3, 32))
    assert built[-1] == ("block_16_project_BN/moving_variance", (320,))


# --- Keras .h5 files, written here in Keras's legacy layout ---


def _old_name(name):
    """The first Keras release's names: block_3_expand -> mobl3_conv_3_expand,
    block_3_expand_BN -> bn3_conv_3_bn_expand, expanded_conv_* is block 0."""
    name = name.replace("expanded_conv_", "block_0_")
    if not name.startswith("block_"):
        return name.lower()  # Conv1 -> conv1, bn_Conv1 -> bn_conv1
    _, i, part = name.split("_", 2)
    if part.endswith("_BN"):
        return f"bn{i}_conv_{i}_bn_{part[: -len('_BN')]}"
    return f"mobl{i}_conv_{i}_{part}"


def _random_layers(seed=0):
    """[(our layer name, kind, [arrays])]: distinct random values for every array."""
    rng = np.random.default_rng(seed)
    return [
        (name, kind, [rng.standard_normal(s).astype(np.float32) for s in shapes])
        for name, kind, shapes in mobilenet_v2.weight_layers()
    ]


# The no_top file's 1280-channel head, after our last layer; the reader ignores it.
_HEAD = [
    ("Conv_1", "conv", [np.ones((1, 1, 320, 1280), np.float32)]),
    ("Conv_1_bn", "bn", [np.ones(1280, np.float32)] * 4),
]


def _write_h5(
    path, layers, rename=lambda n: n, under_model_weights=False, weight_names=True, head=True
):
    """Keras's legacy layout: one group per layer, datasets <group>/<layer>/<array>:0, the layer
    order in the 'layer_names' attribute, weightless layers (input, ReLU6) listed too."""
    layers = layers + (_HEAD if head else [])
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if under_model_weights else f
        order = ["input_1"]
        root.create_group("input_1")
        for name, kind, arrays in layers:
            name = rename(name)
            group = root.create_group(name)
            array_names = [f"{name}/{a}:0" for a in mobilenet_v2._ARRAYS[kind]]
            # h5py lists a group's datasets alphabetically (beta before gamma): Keras's order
            # comes only from the weight_names attribute or, without it, the reader's ranking.
            for array_name, array in zip(array_names, arrays, strict=True):
                group.create_dataset(array_name, data=array)
            if weight_names:
                group.attrs["weight_names"] = [n.encode() for n in array_names]
            order.append(name)
            if kind == "bn":
                order.append(name + "_relu")
                root.create_group(name + "_relu")
        root.attrs["layer_names"] = [n.encode() for n in order]


def test_new_and_old_keras_names_read_to_the_same_weights_and_load(net, tmp_path):
    layers = _random_layers()
    new, old = str(tmp_path / "new.h5"), str(tmp_path / "old.h5")
    _write_h5(new, layers)
    _write_h5(old, layers, _old_name, under_model_weights=True, weight_names=False)
    a, b = mobilenet_v2.read_weights(new), mobilenet_v2.read_weights(old)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    name, _, arrays = layers[-1]  # block_16_project_BN
    np.testing.assert_array_equal(a[f"{name}/moving_mean"], arrays[2])
    with _session(net) as sess:
        assert weights.assign(sess, net["variables"], b, encoders.SCOPE, old) == len(a) == 255
        loaded = sess.run(_variable(net, "block_5_depthwise/depthwise_kernel"))
    np.testing.assert_array_equal(loaded, a["block_5_depthwise/depthwise_kernel"])


def test_a_file_that_does_not_fit_names_the_first_layer_that_differs(tmp_path):
    layers = _random_layers()
    i = next(i for i, (n, _, _) in enumerate(layers) if n == "block_5_project")
    wrong = list(layers)
    wrong[i] = ("block_5_project", "conv", [np.zeros((1, 1, 192, 33), np.float32)])
    path = str(tmp_path / "wrong.h5")
    _write_h5(path, wrong, _old_name)
    with pytest.raises(UserError, match=r"mobl5_conv_5_project \(1x1x192x33\).*block_5_project"):
        mobilenet_v2.read_weights(path)
    short = str(tmp_path / "short.h5")
    _write_h5(short, layers[:-3], head=False)
    with pytest.raises(UserError, match="first missing is block_16_depthwise_BN"):
        mobilenet_v2.read_weights(short)
    text = tmp_path / "not.h5"
    text.write_text("not hdf5")
    with pytest.raises(UserError, match="not.h5"):
        mobilenet_v2.read_weights(str(text))


# --- batch norm ---


def test_training_updates_moving_statistics_from_the_batch(net):
    images = _images(2)
    conv1 = net["graph"].get_tensor_by_name(f"{encoders.SCOPE}/Conv1/Conv2D:0")
    moving_mean = _variable(net, "bn_Conv1/moving_mean")
    with _session(net) as sess:
        feed = {net["images"]: images, net["is_training"]: True}
        batch_mean = sess.run(conv1, feed).mean(axis=(0, 1, 2))
        sess.run(net["updates"], feed)
        after = sess.run(moving_mean)
    # From 0: moving_mean -= (1 - momentum) * (moving_mean - batch_mean).
    np.testing.assert_allclose(after, (1 - CONFIG.bn_momentum) * batch_mean, rtol=1e-4, atol=1e-6)


def test_prediction_uses_moving_statistics_not_the_batch(net):
    a, b = _images(1, seed=1), _images(1, seed=2)
    with _session(net) as sess:
        for is_training, same in ((False, True), (True, False)):
            feed = {net["is_training"]: is_training}
            alone = sess.run(net["features"][32], {net["images"]: a, **feed})[0]
            paired = sess.run(net["features"][32], {net["images"]: np.concatenate([a, b]), **feed})
            # Moving statistics: a's output does not depend on what else is in the batch.
            assert np.allclose(alone, paired[0], atol=1e-5) == same, is_training


# --- Keras's own MobileNetV2 as the oracle (Keras only here, in a subprocess) ---

# Random batch-norm statistics (Keras initialises them to 0/1), so that loading them in the wrong
# order or predicting with batch statistics would show.
_ORACLE = textwrap.dedent(
    """
    import sys
    import numpy as np
    import keras

    out, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(0)
    model = keras.applications.MobileNetV2(
        input_shape=(h, w, 3), alpha=1.0, include_top=False, weights=None
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([
                rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c),
                rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c),
            ])
    names = ["block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
             "block_13_expand_relu", "block_16_project_BN"]
    taps = keras.Model(model.input, [model.get_layer(n).output for n in names])
    image = rng.uniform(0, 255, (2, h, w, 3)).astype(np.float32)
    features = taps(image / 127.5 - 1.0, training=False)
    np.savez(out + "/reference.npz", image=image,
             **{str(s): np.asarray(f) for s, f in zip((2, 4, 8, 16, 32), features)})
    model.save_weights(out + "/keras3.weights.h5")
    model.save(out + "/legacy.h5")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed")
def test_features_equal_keras_mobilenet_v2(net, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, "-c", _ORACLE, str(tmp_path), *map(str, ODD)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reference = np.load(tmp_path / "reference.npz")
    legacy = mobilenet_v2.read_weights(str(tmp_path / "legacy.h5"))  # under model_weights
    keras3 = mobilenet_v2.read_weights(str(tmp_path / "keras3.weights.h5"))
    assert legacy.keys() == keras3.keys()
    for name in legacy:
        np.testing.assert_array_equal(legacy[name], keras3[name], err_msg=name)
    with _session(net) as sess:
        _load(sess, net, keras3)
        out = sess.run(net["features"], {net["images"]: reference["image"]})
    for s in CHANNELS:
        np.testing.assert_allclose(out[s], reference[str(s)], atol=1e-5, err_msg=str(s))
