"""The Predictor contract (fcn.inference.predictor): shapes as the input came, batching by size,
the NumPy decision equal to the graph's, one-line errors, and a run and its TensorFlow session
through it (the precision recorded, the same pixels as the raw session)."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import data
from fcn.errors import UserError
from fcn.inference import prediction, restore
from fcn.inference.predictor import LogitsPredictor, Predictor

MULTI = data.KITTI_ROAD.__class__(**{**data.KITTI_ROAD.__dict__, "task": "multiclass"})


class _Mean(Predictor):
    """road probability = the mean of the red channel / 255 at every pixel; records each
    batch's shape, so the grouping by size is visible."""

    def __init__(self, spec=data.KITTI_ROAD, batch_size=2):
        self.spec, self.batch_size, self.batches = spec, batch_size, []

    def _predict_batch(self, batch, threshold):
        self.batches.append(batch.shape)
        road = batch[..., 0].astype(np.float32) / 255.0
        probs = np.stack([1.0 - road, road], axis=-1)
        return probs, self.decide(probs, threshold)


def _image(h, w, red):
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = red
    return image


def test_shapes_follow_the_input_one_batch_or_list():
    p = _Mean()
    probs, mask = p.predict(_image(2, 3, 204))  # one image: red 204 -> road 0.8
    assert probs.shape == (2, 3, 2) and mask.shape == (2, 3) and mask.dtype == np.uint8
    np.testing.assert_allclose(probs[..., 1], 0.8)
    assert mask.tolist() == [[1, 1, 1], [1, 1, 1]]
    probs, mask = p.predict(np.stack([_image(2, 3, 51), _image(2, 3, 204)]))  # a batch
    assert probs.shape == (2, 2, 3, 2) and mask[:, 0, 0].tolist() == [0, 1]
    # A list of sizes: runs of one size are batched, at most batch_size (2) at a time.
    p.batches.clear()
    images = [_image(2, 3, 0), _image(2, 3, 255), _image(2, 3, 255), _image(4, 1, 255)]
    probs, masks = p.predict(images)
    assert [m.shape for m in masks] == [(2, 3), (2, 3), (2, 3), (4, 1)]
    assert p.batches == [(2, 2, 3, 3), (1, 2, 3, 3), (1, 4, 1, 3)]
    assert [int(m[0, 0]) for m in masks] == [0, 1, 1, 1]


def test_threshold_default_and_override():
    p = _Mean()
    image = _image(1, 1, 153)  # road 0.6
    assert p.predict(image)[1].item() == 1  # the default threshold 0.5
    assert p.predict(image, threshold=0.7)[1].item() == 0
    # Multi-class datasets take the argmax whatever the threshold.
    assert _Mean(MULTI).predict(image, threshold=0.7)[1].item() == 1


def test_numpy_decision_equals_the_graph_decision():
    rng = np.random.default_rng(0)
    road = rng.random((3, 4, 5)).astype(np.float32)
    probs = np.stack([1 - road, road], -1)
    with tf.Graph().as_default(), tf.Session() as sess:
        for spec in (data.KITTI_ROAD, MULTI):
            graph = sess.run(prediction.decide(tf.constant(probs), spec, 0.3))
            np.testing.assert_array_equal(_Mean(spec).decide(probs, 0.3), graph)


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 3), np.uint8), "(H, W, 3) or (N, H, W, 3)"),
        ([np.zeros((2, 3, 4), np.uint8)], "image 0: expected uint8 RGB (H, W, 3)"),
        ([np.zeros((2, 3, 3), np.float32)], "image 0: expected uint8 RGB, got float32"),
        ([np.zeros((0, 3, 3), np.uint8)], "image 0: empty image"),
    ],
)
def test_bad_images_are_one_line_errors(images, message):
    with pytest.raises(UserError) as e:
        _Mean().predict(images)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_run_through_the_predictor_equals_its_raw_session(trained_run):
    images = [
        np.random.default_rng(1).integers(0, 256, (70, 200, 3), dtype=np.uint8),
        np.random.default_rng(2).integers(0, 256, (64, 192, 3), dtype=np.uint8),
    ]
    with restore.open_predictor(trained_run, "float32") as run:
        assert run.precision == "float32" and run.network_size == tuple(run.config.image_shape)
        assert run.class_names == ("not_road", "road") and run.tta == "none"
        probs, masks = run.predict(images)
        t = run.tensors
        for image, p, m in zip(images, probs, masks, strict=True):
            raw_p, raw_m = run.sess.run([t.probs_full, t.mask], {t.images: image[None]})
            np.testing.assert_allclose(p, raw_p[0], atol=1e-6)
            np.testing.assert_array_equal(m, raw_m[0])
            assert p.shape[:2] == image.shape[:2]
    with pytest.raises(RuntimeError, match="closed"):  # closed with its context
        run.sess.run(t.mask, {t.images: images[0][None]})


def test_logits_predictor_runs_a_foreign_graph_through_the_path():
    # A "network" in the caller's graph: road logit = red - 128, other 0, on (N*h*w, 2) logits
    # flattened as the Udacity code does.
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, 4, 6, 3])
        keep = tf.placeholder(tf.float32, [])
        road = (x[..., 0] - 128.0) * keep
        logits = tf.reshape(tf.stack([tf.zeros_like(road), road], -1), [-1, 2])
    with tf.Session(graph=graph) as sess:
        with LogitsPredictor(sess, logits, keep, x, (4, 6), data.KITTI_ROAD) as p:
            probs, mask = p.predict(_image(8, 12, 200))  # twice the network size
    assert probs.shape == (8, 12, 2) and mask.shape == (8, 12)
    # sigmoid(200 - 128) = 1 everywhere, after the INTER_AREA resize and the upsampling.
    np.testing.assert_allclose(probs[..., 1], 1.0, atol=1e-6)
    assert mask.all()
