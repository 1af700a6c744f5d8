"""The one prediction path: resize like training, and an export that agrees with infer on real
full-size KITTI frames."""

import glob
import os

import cv2
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from fcn import data
from fcn.data import task
from fcn.inference import export, prediction, predictor, restore

# Real KITTI test frames come in four sizes (1242x375, 1241x376, 1226x370, 1224x370).
FRAMES = ("um_000084.png", "umm_000010.png", "uu_000066.png", "uu_000080.png")


def _frames(kitti_sample):
    folder = os.path.join(kitti_sample, "data_road", "testing", "image_2")
    paths = sorted(glob.glob(os.path.join(folder, "*.png")))
    by_size = {}
    for p in paths:  # one frame of each size the benchmark has
        image = data.read_image(p, warn=None)
        by_size.setdefault(image.shape, image)
    return list(by_size.values())


# Network sizes below the frames: the case of every KITTI recipe (images smaller than the
# network: test_upscaling_resize_is_within_a_level_of_opencv).
@pytest.mark.parametrize("shape", [(160, 576), (96, 320), (64, 192), (370, 1224)])
def test_resize_is_opencvs_inter_area_on_real_frames(kitti_sample, shape):
    images = _frames(kitti_sample)
    assert len(images) == 4  # the four KITTI sizes
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.uint8, [None, None, None, 3])
        y = prediction.to_network_size(x, shape)
        for image in images:
            got = sess.run(y, {x: image[None]})[0]
            ref = cv2.resize(image, shape[::-1], interpolation=cv2.INTER_AREA).astype(np.float32)
            diff = np.abs(got - ref)
            # Float rounding may flip a level where cv2's fixed point lands on .5.
            assert diff.max() <= 1.0, (shape, image.shape)
            assert (diff > 0).mean() < 1e-3


def test_area_weights_by_hand():
    # 4 -> 3: scale 4/3; output 0 covers [0, 4/3): pixel 0 whole, 1/3 of pixel 1 -> (1, 1/3) * 3/4.
    with tf.Graph().as_default(), tf.Session() as sess:
        w = sess.run(prediction.area_weights(4, 3, tf.constant(True)))
    np.testing.assert_allclose(w[0], [0.75, 0.25, 0, 0], atol=1e-6)
    np.testing.assert_allclose(w[1], [0, 0.5, 0.5, 0], atol=1e-6)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)


def test_decide_thresholds_binary_and_argmaxes_multiclass():
    probs = np.array([[[0.45, 0.55], [0.6, 0.4]]], np.float32)  # (1, 2, 2)
    binary = data.KITTI_ROAD
    multi = binary.__class__(**{**binary.__dict__, "task": "multiclass"})
    with tf.Graph().as_default(), tf.Session() as sess:
        p = tf.constant(probs[None])
        assert sess.run(prediction.decide(p, binary, 0.6)).tolist() == [[[0, 0]]]
        assert sess.run(prediction.decide(p, binary, 0.4)).tolist() == [[[1, 1]]]
        assert sess.run(prediction.decide(p, multi, 0.6)).tolist() == [[[1, 0]]]
    np.testing.assert_array_equal(task.decide(probs, binary, 0.4), [[1, 1]])
    np.testing.assert_array_equal(task.decide(probs, multi, 0.4), [[1, 0]])


def test_size_batches_groups_runs_of_one_size():
    a, b = np.zeros((2, 3, 3)), np.zeros((4, 3, 3))
    groups = [(start, batch.shape[0]) for start, batch in predictor.size_batches([a, a, b, a], 2)]
    assert groups == [(0, 2), (2, 1), (3, 1)]


def test_export_agrees_with_infer_on_full_size_real_frames(trained_run, kitti_sample, tmp_path):
    """The exported SavedModel, given full-size KITTI frames, gives the masks and probabilities
    that `infer` computes from the run's checkpoint (>= 99.9% of mask pixels, 1e-3 in prob)."""
    out = str(tmp_path / "export")
    export.export(trained_run, out, log=lambda *a: None)
    images = _frames(kitti_sample)
    with restore.open_predictor(trained_run, "float32") as run:
        from_run = run.predict_each(images)
    with restore.open_predictor(out, "float32") as exported:
        from_export = exported.predict_each(images)
    for image, (p_run, m_run), (p_exp, m_exp) in zip(images, from_run, from_export, strict=True):
        assert m_run.shape == m_exp.shape == image.shape[:2]
        assert (m_run == m_exp).mean() >= 0.999
        assert np.abs(p_run - p_exp).max() <= 1e-3
    # And through TensorFlow's own loader, without this project: the signature's outputs.
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        meta = tf.saved_model.loader.load(sess, [export.SERVE_TAG], out)
        sig = meta.signature_def[export.SIGNATURE_KEY]
        fetch = {k: v.name for k, v in sig.outputs.items()}
        served = sess.run(fetch, {sig.inputs[export.INPUT_NAME].name: images[0][None]})
    assert (served["mask"][0] == from_run[0][1]).mean() >= 0.999
    np.testing.assert_allclose(served["road_prob"][0], from_run[0][0][..., 1], atol=1e-3)


def test_upscaling_resize_is_within_a_level_of_opencv():
    """Images smaller than the network (footprint tiles of 128 px into 192): cv2's two-tap
    INTER_AREA upscaling within one level. The graph once took a pixel's neighbour where i*s is
    whole (18 * 160/192: TensorFlow's float64 product floored to 14), 253 levels off on noise."""
    rng = np.random.default_rng(0)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.placeholder(tf.uint8, [None, None, None, 3])
        y = prediction.to_network_size(x, (192, 192))
        for size in ((128, 160), (40, 300), (100, 192), (150, 150)):
            image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            got = sess.run(y, {x: image[None]})[0]
            ref = cv2.resize(image, (192, 192), interpolation=cv2.INTER_AREA).astype(np.float32)
            assert np.abs(got - ref).max() <= 1.0, size


@pytest.mark.parametrize("task_name", ["binary", "multiclass"])
def test_host_stages_give_the_graph_stages_answer(kitti_sample, task_name):
    """fcn.inference.host_stages (NumPy: the TFLite predictor's) against the graph's Stages on
    the four real KITTI frame sizes and on smaller images: the same weight matrices, network
    inputs within a level (the sums' order differs: host_stages' docstring), probabilities
    within 1e-6 after softmax and upsampling (the upsampling is the graph's, operation for
    operation), the same masks away from the threshold; an image of the network size passes
    unresized."""
    from fcn.inference import host_stages

    spec = data.KITTI_ROAD
    if task_name == "multiclass":
        spec = spec.__class__(**{**spec.__dict__, "task": "multiclass"})
    shape = (64, 192)
    graph = prediction.Stages(shape, spec, 0.5)
    host = host_stages.HostStages(shape, spec, 0.5)
    rng = np.random.default_rng(0)
    smaller = [rng.integers(0, 256, size, dtype=np.uint8) for size in ((40, 300, 3), (50, 150, 3))]
    try:
        for image in _frames(kitti_sample) + smaller:
            batch = image[None]
            got, ref = host.to_network(batch), graph.to_network(batch)
            assert got.shape == ref.shape == (1, *shape, 3) and got.dtype == np.float32
            # Whole levels from sums in another order: a level may flip where a sum lands
            # within float32's last bits of a .5 (1 of 36,864 values on an AVX2 EPYC, 0 on AMX).
            flipped = np.abs(got - ref)
            assert flipped.max() <= 1.0 and (flipped > 0).mean() < 1e-3
            logits = rng.normal(0, 2, (1, *shape, 2)).astype(np.float32)
            (p_host, m_host), (p_graph, m_graph) = (
                s.finish(logits, image.shape[:2], 0.4) for s in (host, graph)
            )
            assert p_host.shape == p_graph.shape == (1, *image.shape[:2], 2)
            np.testing.assert_allclose(p_host, p_graph, atol=1e-6)
            clear = np.abs(p_graph[..., spec.positive_class] - 0.4) > 1e-6
            if task_name == "multiclass":
                clear = np.abs(p_graph[..., 0] - p_graph[..., 1]) > 2e-6
            assert m_host.dtype == np.uint8 and (m_host == m_graph)[clear].all()
            assert clear.mean() > 0.99
            # Probabilities straight from the network (a --tta model ends at its softmax).
            p_direct, _ = host.finish(None, image.shape[:2], probs=host_stages.softmax(logits))
            np.testing.assert_array_equal(p_direct, p_host)
        same = rng.integers(0, 256, (2, *shape, 3), dtype=np.uint8)
        np.testing.assert_array_equal(host.to_network(same), same.astype(np.float32))
    finally:
        graph.close()
