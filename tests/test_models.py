"""Encoders x decoders: every registered pair trains a step and predicts at the input size; the
U-Net encoder's maps; the U-Net and pix2pix decoders' variables, dropout and batch norm."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import config, models
from fcn.errors import UserError
from fcn.models import decoders, encoders, layers
from fcn.models.options import ModelOptions
from fcn.training import losses

NUM_CLASSES = 3
IGNORE_LABEL = 255
# Every pair of the registries: a new encoder or decoder is tested by being registered.
PAIRS = [(e, d) for e in sorted(encoders.ENCODERS) for d in sorted(decoders.DECODERS)]
# The decoders of fcn.models.decoders.unet and .pix2pix (they have batch norm and dropout).
BN_DECODERS = ("unet", "pix2pix", "upsample_conv")
# Distinct channel counts per stride, so a kernel shape shows which map it reads.
CHANNELS = {2: 5, 4: 6, 8: 7, 16: 9, 32: 11}
# A 33 x 33 input: its maps are ceil(33 / s) on a side.
SIDE = 33
MAP_SIDES = {2: 17, 4: 9, 8: 5, 16: 3, 32: 2}


def _session():
    """A session without Grappler: rewriting these one-step graphs costs more than running them
    (about 3 s of a mobilenet_v2 pair's 9), and the rewrites are not what these tests check."""
    session_config = tf.ConfigProto()
    session_config.graph_options.rewrite_options.disable_meta_optimizer = True
    return tf.Session(config=session_config)


def _inputs():
    images = tf.placeholder(tf.float32, [None, None, None, 3], name="images")
    is_training = tf.placeholder_with_default(False, [], name="is_training")
    keep_prob = tf.placeholder_with_default(1.0, [], name="keep_prob")
    return images, is_training, keep_prob


@pytest.mark.parametrize("encoder,decoder", PAIRS)
def test_every_pair_trains_a_step_and_predicts_at_the_input_size(encoder, decoder):
    # VGG16 at 1/16 of its channels: the same structure, without 134 M weights to initialise.
    cfg = config.Config(encoder=encoder, decoder=decoder, width=1 / 16 if encoder == "vgg16" else 1)
    rng = np.random.default_rng(0)
    rgb = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    odd_rgb = rng.uniform(0, 255, (1, 75, 93, 3)).astype(np.float32)
    ids = rng.integers(0, NUM_CLASSES, (2, 64, 64)).astype(np.int32)
    ids[:, :8] = IGNORE_LABEL  # the top 8 rows are unlabelled
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        images, is_training, keep_prob = _inputs()
        labels = tf.placeholder(tf.int32, [None, None, None])
        logits = models.build_network(images, cfg, NUM_CLASSES, is_training, keep_prob)["logits"]
        # The suite's own loss (ignore pixels left out) and optimizer (batch-norm updates run
        # with every step).
        loss = losses.sparse_cross_entropy(logits, labels)
        train_op = losses.minimize(loss, 1e-4)
        with _session() as sess:
            sess.run(tf.global_variables_initializer())
            feed = {images: rgb, labels: ids, is_training: True, keep_prob: 0.5}
            _, loss_value = sess.run([train_op, loss], feed)
            predicted = sess.run(logits, {images: rgb})
            odd = sess.run(logits, {images: odd_rgb})
    assert np.isfinite(loss_value)
    assert predicted.shape == (2, 64, 64, NUM_CLASSES)
    assert np.isfinite(predicted).all()
    assert odd.shape == (1, 75, 93, NUM_CLASSES)


def test_unet_encoder_maps_have_the_contract_strides_and_channels_on_an_odd_size():
    cfg = config.Config(encoder="unet", unet_filters=4)
    with tf.Graph().as_default():
        images, is_training, keep_prob = _inputs()
        with tf.variable_scope(encoders.SCOPE):
            features = encoders.get("unet").build(
                images, ModelOptions.from_config(cfg), is_training, keep_prob
            )
        shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        with _session() as sess:
            sess.run(tf.global_variables_initializer())
            out = sess.run(features, {images: np.zeros((1, 33, 47, 3), np.float32)})
    # ceil(33 / s) x ceil(47 / s); channels 4 * (1, 2, 4, 8) after each pool, 4 * 16 in the bridge
    assert {s: v.shape for s, v in out.items()} == {
        1: (1, 33, 47, 4),  # the first stage before its pool: the full-resolution skip
        2: (1, 17, 24, 4),
        4: (1, 9, 12, 8),
        8: (1, 5, 6, 16),
        16: (1, 3, 3, 32),
        32: (1, 2, 2, 64),
    }
    channels = {s: int(v.shape[-1]) for s, v in features.items()}
    assert channels == {1: 4, 2: 4, 4: 8, 8: 16, 16: 32, 32: 64}
    assert shapes["encoder/stage1/conv1/kernel"] == [3, 3, 3, 4]
    assert shapes["encoder/stage1/bn1/gamma"] == [4]
    assert shapes["encoder/stage4/conv2/kernel"] == [3, 3, 32, 32]
    assert shapes["encoder/bridge/conv1/kernel"] == [3, 3, 32, 64]
    assert shapes["encoder/bridge/bn2/moving_variance"] == [64]
    # 5 stages x 2 x (kernel + gamma, beta, moving mean, moving variance); no conv biases
    assert len(shapes) == 50


def test_unet_encoder_has_no_weights_to_read(tmp_path):
    with pytest.raises(UserError, match="from scratch.*--weights random"):
        encoders.get("unet").read_weights(str(tmp_path))


def _feature_placeholders(full_resolution=0):
    """Placeholders for the maps at strides 2..32, and at stride 1 with that many channels."""
    channels = {**({1: full_resolution} if full_resolution else {}), **CHANNELS}
    return {
        s: tf.placeholder(tf.float32, [None, None, None, c], name=f"features{s}")
        for s, c in channels.items()
    }


def _decoder_variables(name, full_resolution=0, **config_changes):
    cfg = config.Config(**config_changes)
    with tf.Graph().as_default():
        features = _feature_placeholders(full_resolution)
        is_training = tf.placeholder_with_default(False, [])
        decoders.get(name)(features, NUM_CLASSES, [SIDE, SIDE], cfg, is_training)
        shapes = {v.op.name: v.shape.as_list() for v in tf.global_variables()}
        l2 = {v.op.name for v in tf.get_collection(layers.L2_COLLECTION)}
    return shapes, l2


def test_unet_decoder_stages_are_as_wide_as_their_skips():
    shapes, l2 = _decoder_variables("unet")
    # transposed kernels are (k, k, out, in); each stage: up to Cs, concat to 2Cs, two convs to Cs
    assert shapes["up16/transpose/kernel"] == [2, 2, 9, 11]
    assert shapes["up16/conv1/kernel"] == [3, 3, 18, 9]
    assert shapes["up16/conv2/kernel"] == [3, 3, 9, 9]
    assert shapes["up8/transpose/kernel"] == [2, 2, 7, 9]
    assert shapes["up4/conv1/kernel"] == [3, 3, 12, 6]
    assert shapes["up2/transpose/kernel"] == [2, 2, 5, 6]
    assert shapes["up2/conv2/kernel"] == [3, 3, 5, 5]
    assert shapes["up2/bn2/moving_mean"] == [5]
    assert shapes["up1/transpose/kernel"] == [2, 2, 5, 5]
    assert shapes["up1/bn/gamma"] == [5]
    assert shapes["logits/kernel"] == [1, 1, 5, NUM_CLASSES]
    assert "up16/conv1/bias" not in shapes  # batch norm's beta is the offset
    # 4 stages x (transpose + 2 convs) + up1 + logits
    assert l2 == {n for n in shapes if n.endswith("kernel")} and len(l2) == 14


def test_unet_decoder_takes_a_full_resolution_map_as_its_last_skip():
    shapes, l2 = _decoder_variables("unet", full_resolution=4)
    # the last step is a stage like the others: up to 4 channels, concat to 8, two convs to 4
    assert shapes["up1/transpose/kernel"] == [2, 2, 4, 5]
    assert shapes["up1/conv1/kernel"] == [3, 3, 8, 4]
    assert shapes["up1/conv2/kernel"] == [3, 3, 4, 4]
    assert shapes["up1/bn2/gamma"] == [4]
    assert "up1/bn/gamma" not in shapes
    assert shapes["logits/kernel"] == [1, 1, 4, NUM_CLASSES]
    assert len(l2) == 5 * 3 + 1  # 5 stages x (transpose + 2 convs) + logits
    # Other decoders ignore the extra map.
    assert _decoder_variables("pix2pix", full_resolution=4)[0] == _decoder_variables("pix2pix")[0]


def test_unet_decoder_full_resolution_skip_reaches_the_logits():
    """A pixel's logits change when only that pixel of the stride-1 map changes: the skip
    carries full-resolution detail (without it a 2x2 block shares one stride-2 input)."""
    cfg = config.Config()
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        features = _feature_placeholders(full_resolution=4)
        logits = decoders.get("unet")(features, NUM_CLASSES, [SIDE, SIDE], cfg, False)
        feed = {features[s]: v for s, v in _feature_values(rng, batch=1).items()}
        full = rng.normal(size=(1, SIDE, SIDE, 4)).astype(np.float32)
        with _session() as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(logits, {**feed, features[1]: full})
            full[0, 10, 10] += 5.0
            after = sess.run(logits, {**feed, features[1]: full})
    assert before.shape == (1, SIDE, SIDE, NUM_CLASSES)
    changed = np.abs(after - before).max(axis=-1)[0] > 1e-6
    # two 3x3 convs: the change spreads at most 2 pixels, and reaches the pixel itself
    assert changed[10, 10] and changed.sum() <= 25
    assert not changed[:7].any() and not changed[14:].any()


def test_pix2pix_decoder_has_the_tutorial_widths():
    shapes, l2 = _decoder_variables("pix2pix")
    # 512, 256, 128, 64 filters; each block's input is the previous block's output + its skip
    assert shapes["up16/transpose/kernel"] == [3, 3, 512, 11]
    assert shapes["up8/transpose/kernel"] == [3, 3, 256, 512 + 9]
    assert shapes["up4/transpose/kernel"] == [3, 3, 128, 256 + 7]
    assert shapes["up2/transpose/kernel"] == [3, 3, 64, 128 + 6]
    assert shapes["up2/bn/gamma"] == [64]
    assert shapes["last/kernel"] == [3, 3, NUM_CLASSES, 64 + 5]
    assert shapes["last/bias"] == [NUM_CLASSES]
    assert not [n for n in shapes if n.startswith("up") and n.endswith("bias")]
    assert l2 == {n for n in shapes if n.endswith("kernel")} and len(l2) == 5


def test_upsample_conv_decoder_convolves_after_resizing():
    shapes, l2 = _decoder_variables("upsample_conv")
    # convolution kernels are (k, k, in, out)
    assert shapes["up16/conv/kernel"] == [3, 3, 11, 512]
    assert shapes["up8/conv/kernel"] == [3, 3, 512 + 9, 256]
    assert shapes["up4/conv/kernel"] == [3, 3, 256 + 7, 128]
    assert shapes["up2/conv/kernel"] == [3, 3, 128 + 6, 64]
    assert shapes["last/kernel"] == [3, 3, 64 + 5, NUM_CLASSES]
    assert l2 == {n for n in shapes if n.endswith("kernel")} and len(l2) == 5


def test_decoder_width_scales_the_up_stack_filters():
    shapes, _ = _decoder_variables("upsample_conv", decoder_width=0.25)
    # 512, 256, 128, 64 x 0.25 = 128, 64, 32, 16; each block's input is the previous + its skip
    assert shapes["up16/conv/kernel"] == [3, 3, 11, 128]
    assert shapes["up8/conv/kernel"] == [3, 3, 128 + 9, 64]
    assert shapes["up4/conv/kernel"] == [3, 3, 64 + 7, 32]
    assert shapes["up2/conv/kernel"] == [3, 3, 32 + 6, 16]
    assert shapes["last/kernel"] == [3, 3, 16 + 5, NUM_CLASSES]


def _feature_values(rng, batch=2):
    return {
        s: rng.normal(size=(batch, n, n, CHANNELS[s])).astype(np.float32)
        for s, n in MAP_SIDES.items()
    }


@pytest.mark.parametrize("name", BN_DECODERS)
def test_decoder_dropout_is_off_at_prediction(name):
    cfg = config.Config(decoder_dropout=0.5)
    rng = np.random.default_rng(0)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        features = _feature_placeholders()
        is_training = tf.placeholder_with_default(False, [])
        logits = decoders.get(name)(features, NUM_CLASSES, [SIDE, SIDE], cfg, is_training)
        feed = {features[s]: v for s, v in _feature_values(rng).items()}
        with _session() as sess:
            sess.run(tf.global_variables_initializer())
            predicted = [sess.run(logits, feed) for _ in range(2)]
            trained = [sess.run(logits, {**feed, is_training: True}) for _ in range(2)]
    assert predicted[0].shape == (2, SIDE, SIDE, NUM_CLASSES)
    np.testing.assert_array_equal(predicted[0], predicted[1])
    # while training, a fresh dropout mask each run (the batch statistics are the same)
    assert not np.allclose(trained[0], trained[1])


@pytest.mark.parametrize("name", BN_DECODERS)
def test_batch_norm_statistics_move_only_with_the_update_ops(name):
    cfg = config.Config(encoder="unet", decoder=name, unet_filters=2)
    rgb = np.random.default_rng(0).uniform(0, 255, (2, SIDE, SIDE, 3)).astype(np.float32)
    with tf.Graph().as_default():
        images, is_training, keep_prob = _inputs()
        logits = models.build_network(images, cfg, NUM_CLASSES, is_training, keep_prob)["logits"]
        means = [v for v in tf.global_variables() if v.op.name.endswith("moving_mean")]
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        # mean and variance of every batch norm
        assert len(updates) == 2 * len(means)
        assert {v.op.name.split("/")[0] for v in means} == {"encoder", "decoder"}
        with _session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(logits, {images: rgb, is_training: True})
            assert not np.any(np.concatenate(sess.run(means)))
            sess.run(updates, {images: rgb, is_training: True})
            moved = sess.run(means)
    assert all(np.any(m) for m in moved)


def test_unknown_encoder_lists_the_valid_ones():
    with pytest.raises(UserError, match="mobilenet_v2.*unet.*vgg16"):
        encoders.get("nope")


def test_unknown_decoder_lists_the_valid_ones():
    names = ".*".join(sorted(decoders.DECODERS))  # fcn8s, pix2pix, reference, unet, upsample_conv
    with pytest.raises(UserError, match=names):
        decoders.get("nope")


def test_batch_norm_follows_its_formula_in_both_modes_and_trains_through_the_batch_branch():
    # y = gamma (x - mean) / sqrt(var + eps) + beta over (N, h, w) per channel; training uses the
    # batch's moments and moves the statistics by (1 - momentum) towards them (the unbiased
    # variance), prediction the moving ones; gradients reach x, gamma and beta in training.
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 5, 6, 3)).astype(np.float32)
    gamma0, beta0 = np.array([1.5, 0.5, 2.0], np.float32), np.array([0.1, -0.2, 0.3], np.float32)
    eps, momentum = layers.BN_EPSILON, 0.9
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, x.shape)
        is_training = tf.placeholder_with_default(False, [])
        y = layers.batch_norm(images, is_training, "bn", momentum=momentum)
        gamma, beta, mean, var = (
            tf.global_variables(f"bn/{n}")[0]
            for n in ("gamma", "beta", "moving_mean", "moving_variance")
        )
        grads = tf.gradients(tf.reduce_sum(y * y), [images, gamma, beta])
        updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        with _session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run([gamma.assign(gamma0), beta.assign(beta0)])
            predicted = sess.run(y, {images: x})
            trained, *g = sess.run([y, *grads], {images: x, is_training: True})
            sess.run(updates, {images: x, is_training: True})
            moved_mean, moved_var = sess.run([mean, var])
    # prediction: the initial moving statistics, mean 0 and variance 1
    np.testing.assert_allclose(predicted, gamma0 * x / np.sqrt(1 + eps) + beta0, rtol=1e-5)
    m, v = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    want = gamma0 * (x - m) / np.sqrt(v + eps) + beta0
    np.testing.assert_allclose(trained, want, rtol=1e-4, atol=1e-4)
    n = x.size // 3
    np.testing.assert_allclose(moved_mean, (1 - momentum) * m, rtol=1e-5)
    np.testing.assert_allclose(moved_var, momentum + (1 - momentum) * v * n / (n - 1), rtol=1e-5)
    # d/dbeta sum(y^2) = 2 sum(y); d/dgamma = 2 sum(y (x - m) / sqrt(v + eps))
    np.testing.assert_allclose(g[2], 2 * want.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-3)
    xhat = (x - m) / np.sqrt(v + eps)
    np.testing.assert_allclose(g[1], 2 * (want * xhat).sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-3)
    assert np.abs(g[0]).max() > 0
