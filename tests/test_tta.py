"""Test-time augmentation (fcn.inference.tta): copies that map back exactly, the mean worked by
hand, the prediction path that averages only when predicting, and a run and its export that
agree."""

import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import config, data
from fcn.errors import UserError
from fcn.evaluation import evaluate
from fcn.inference import export, prediction, restore, tta
from fcn.training import train

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))


@pytest.mark.parametrize("name", tta.CHOICES)
def test_each_copy_maps_back_onto_the_original(name):
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    k = len(tta.TRANSFORMS[name])
    with tf.Graph().as_default(), tf.Session() as sess:
        copies, merged = sess.run(
            [tta.stack(tf.constant(x), name), tta.merge(tta.stack(tf.constant(x), name), 2, name)]
        )
    assert copies.shape == (2 * k, 4, 4, 3)
    np.testing.assert_array_equal(copies[:2], x)  # the image itself comes first
    # Every copy is a distinct view of the same pixels, and merging them gives the image back.
    assert len({c.tobytes() for c in copies[::2]}) == k
    np.testing.assert_allclose(merged, x, atol=1e-6)


def test_the_copies_are_the_flips_and_transposes_by_hand():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)  # [[0 1 2], [3 4 5]]
    with tf.Graph().as_default(), tf.Session() as sess:
        flips = sess.run(tta.stack(tf.constant(x), "flips"))[..., 0]
    assert flips[1].tolist() == [[2, 1, 0], [5, 4, 3]]  # columns reversed
    assert flips[2].tolist() == [[3, 4, 5], [0, 1, 2]]  # rows reversed
    assert flips[3].tolist() == [[5, 4, 3], [2, 1, 0]]
    y = np.arange(4, dtype=np.float32).reshape(1, 2, 2, 1)  # [[0 1], [2 3]]
    with tf.Graph().as_default(), tf.Session() as sess:
        d4 = sess.run(tta.stack(tf.constant(y), "d4"))[..., 0]
    assert d4[4].tolist() == [[0, 2], [1, 3]]  # the transpose
    assert d4[5].tolist() == [[2, 0], [3, 1]]  # the transpose, columns reversed


def test_the_mean_of_a_position_dependent_prediction_by_hand():
    # A "network" that adds its column index: on the mirror copy, column j of the original sits
    # at column 2 - j, so mapped back it gets 2 - j; the mean is j/2 + (2 - j)/2 = 1 everywhere.
    x = np.zeros((1, 1, 3, 1), np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        ramp = tf.constant([0.0, 1.0, 2.0])[None, None, :, None]
        merged = sess.run(tta.merge(tta.stack(tf.constant(x), "hflip") + ramp, 1, "hflip"))
    assert merged[0, 0, :, 0].tolist() == [1.0, 1.0, 1.0]


def _tiny_path(name, spec):
    """The prediction path around a network that is not flip-equivariant: logits (0, x * ramp)
    where the ramp grows along the columns, (N, 2, 4, 2)."""
    cfg = config.Config(image_shape=(32, 32), tta=name, precision="float32")

    def network(x, is_training, keep_prob):
        # x (N, 32, 32, 3) -> a (N, 2, 4) map of the first channel, scaled by its column.
        small = x[:, :2, :4, 0] * tf.constant([0.0, 1.0, 2.0, 3.0]) / 255.0
        return tf.stack([tf.zeros_like(small), small], axis=-1)

    return prediction.build(network, cfg, spec)


def test_the_prediction_path_averages_only_when_predicting():
    spec = data.KITTI_ROAD
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :2, :4, 0] = 255  # first channel 1.0 at the map's pixels
    with tf.Graph().as_default(), tf.Session() as sess:
        path = _tiny_path("hflip", spec)
        feed = {path.images: image}
        probs, logits = sess.run([path.probs, path.logits], feed)
        train_probs = sess.run(path.probs, {**feed, path.is_training: True})
        alone = sess.run(path.probs, {**feed, path.tta: False})
    sigmoid = 1 / (1 + np.exp(-np.array([0.0, 1.0, 2.0, 3.0])))
    # Training: the image alone, softmax of (0, ramp) = sigmoid(ramp) for the positive class.
    np.testing.assert_allclose(train_probs[0, 0, :, 1], sigmoid, atol=1e-6)
    np.testing.assert_allclose(alone[0, 0, :, 1], sigmoid, atol=1e-6)  # the switch off
    assert logits.shape == (1, 2, 4, 2)  # the image's own logits, not the copies'
    # Predicting: the mirror copy's map is 0 (its first channel is 0 there), so the mean is
    # (sigmoid(ramp) + 0.5) / 2 at each pixel.
    np.testing.assert_allclose(probs[0, 0, :, 1], (sigmoid + 0.5) / 2, atol=1e-6)


def test_without_tta_the_path_is_the_single_pass():
    spec = data.KITTI_ROAD
    with tf.Graph().as_default():
        path = _tiny_path("none", spec)
        ops = {op.type for op in tf.get_default_graph().get_operations()}
    assert "ReverseV2" not in ops and path.tta is None


def test_config_checks_the_set_and_the_square_for_transposes():
    assert config.Config(image_shape=(64, 64), tta="d4").tta == "d4"
    assert config.Config(image_shape=(64, 192), tta="flips").tta == "flips"
    with pytest.raises(UserError, match="square --image-shape, got 64x192; use --tta flips"):
        config.Config(image_shape=(64, 192), tta="d4")
    with pytest.raises(UserError, match="--tta 'rot90' is not one of"):
        config.Config(tta="rot90")


def test_a_run_with_tta_validates_and_exports_the_averaged_prediction(tiny_config, tmp_path):
    cfg = tiny_config(tmp_path, image_shape=(64, 192), tta="flips")
    run_dir, summary = train.train(cfg, log=lambda *a: None)
    assert 0.0 <= summary["final_val_iou"] <= 1.0
    saved = json.load(open(os.path.join(run_dir, "config.json")))
    assert saved["tta"] == "flips"
    images = np.random.default_rng(1).integers(0, 256, (2, 50, 150, 3), dtype=np.uint8)
    with restore.open_run(run_dir, precision_name="float32") as run:
        r = run.tensors
        got, mean, logits, net = run.sess.run(
            [r.probs_full, r.probs, r.logits, r.image_input], {r.images: images}
        )
        # Each copy alone, by hand: is_training runs the batch as fed (this VGG16 + FCN-8 has
        # no batch norm, and keep_prob stays 1), so only the averaging is switched off.
        is_training = run.sess.graph.get_tensor_by_name("is_training:0")
        single = []
        for axes in ([], [2], [1], [1, 2]):
            flipped = np.flip(net, axes) if axes else net
            p = run.sess.run(r.probs, {r.image_input: flipped, is_training: True})
            single.append(np.flip(p, axes) if axes else p)
    assert logits.shape[:3] == (2, 64, 192)  # the images' own logits, not the copies'
    logs = []
    result = evaluate.evaluate_run(run_dir, log=logs.append)
    assert result["tta"] == "flips" and "averaged over --tta flips copies" in logs[0]
    summary_md = open(os.path.join(run_dir, "eval", "summary.md")).read()
    assert "on the mean over --tta flips copies" in summary_md
    np.testing.assert_allclose(mean, np.mean(single, axis=0), atol=1e-5)
    out = str(tmp_path / "export")
    # With the extras, the export's own check runs the ONNX model against TensorFlow's.
    export.export(run_dir, out, onnx=HAVE_ONNX, log=lambda *a: None)
    assert os.path.isfile(os.path.join(out, "model.onnx")) == HAVE_ONNX
    with restore.open_predictor(out, "float32", batch_size=2) as m:
        served = m.predict_each(list(images))
    np.testing.assert_allclose(np.stack([p for p, _ in served]), got, atol=1e-5)
    # --no-tta: the run and its export predict the image alone (network-size images, so the
    # resize and the upsampling are identities and the probabilities are the first copy's).
    originals = list(net.astype(np.uint8))
    for source in (run_dir, out):
        with restore.open_predictor(source, "float32", tta=False, batch_size=2) as m:
            alone = np.stack([p for p, _ in m.predict_each(originals)])
        np.testing.assert_allclose(alone, single[0], atol=1e-5)
        assert np.abs(alone - mean).max() > 1e-4  # and that is not the average (10x the tolerance)
    logs = []
    assert evaluate.evaluate_run(run_dir, tta=False, log=logs.append)["tta"] == "none"
    assert "averaged" not in logs[0]


def test_evaluate_and_infer_take_no_tta():
    from fcn import cli

    parser = cli.build_parser()
    for command in (["evaluate", "--run", "R"], ["infer", "--run", "R", "x.png", "--out", "O"]):
        assert parser.parse_args(command).tta is True
        assert parser.parse_args([*command, "--no-tta"]).tta is False
