"""The export command: a SavedModel usable without this project, a frozen graph, ONNX."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types

import cv2
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import PRECISIONS
from fcn import cli, data, names
from fcn.errors import UserError
from fcn.inference import export, prediction, restore
from fcn.training import train

IMAGE_SHAPE = (64, 192)
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))
# Two sizes unlike the training size (64x192), one taller and one wider, batch sizes 1 and 2.
SHAPES = ((1, 75, 250, 3), (2, 40, 300, 3))

# Runs in a fresh interpreter in TF2 eager mode, from a folder where `fcn` cannot be imported.
FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    assert tf.executing_eagerly()
    serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
    results = {}
    for i, images in enumerate(np.load(sys.argv[2]).values()):
        out = serve(images=tf.constant(images))
        results[f"road_prob{i}"] = out["road_prob"].numpy()
        results[f"mask{i}"] = out["mask"].numpy()
    np.savez(sys.argv[3], **results)
    assert not any(name == "fcn" or name.startswith("fcn.") for name in sys.modules)
    """
)


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export") / "model")
    export.export(trained_run, out, onnx=HAVE_ONNX, log=lambda *a: None)
    return out


def _images(seed):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in SHAPES]


def _training_graph_road_prob(trained_run, images):
    """The run's own graph: its prediction path from uint8 images to the road probability."""
    with restore.open_run(trained_run, precision_name="float32") as r:
        return r.sess.run(r.tensors.probs_full, {r.tensors.images: images})[..., 1]


def _saved_model_outputs(path, images):
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        meta = tf.saved_model.loader.load(sess, [export.SERVE_TAG], path)
        sig = meta.signature_def[export.SIGNATURE_KEY]
        fetch = {k: v.name for k, v in sig.outputs.items()}
        return sess.run(fetch, {sig.inputs[export.INPUT_NAME].name: images})


def test_prediction_path_scales_maps_keep_prob_and_thresholds_by_hand():
    # A stand-in network: road logit = red channel * keep_prob, other logit 0, so
    # road_prob = sigmoid(red) after the prediction path's scaling.
    # The path reads only these fields (a real Config refuses a 1x3 network input).
    cfg = types.SimpleNamespace(image_shape=(1, 3), normalize="centered", threshold=0.6, tta="none")

    def network(x, is_training, keep_prob):
        red = x[..., 0] * keep_prob
        return tf.stack([tf.zeros_like(red), red], axis=-1)

    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        t = prediction.build(network, cfg, data.KITTI_ROAD)
        image = np.zeros((1, 1, 3, 3), np.uint8)
        image[0, 0, :, 0] = (0, 255, 128)
        road, mask = sess.run([t.positive_prob, t.mask], {t.images: image})
    # centered: v / 255 - 0.5 -> -0.5, 0.5, 0.00196; sigmoid -> 0.37754, 0.62246, 0.50049.
    np.testing.assert_allclose(road, [[[0.37754, 0.62246, 0.50049]]], atol=1e-5)
    np.testing.assert_array_equal(mask, [[[0, 1, 0]]])  # threshold 0.6


def test_saved_model_in_a_fresh_tf2_process_equals_the_training_graph(
    trained_run, exported, tmp_path
):
    images = _images(0)
    np.savez(tmp_path / "in.npz", *images)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    args = [sys.executable, "-c", FRESH_PROCESS, exported, "in.npz", "out.npz"]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    out = np.load(tmp_path / "out.npz")
    for i, images_i in enumerate(images):
        road, mask = out[f"road_prob{i}"], out[f"mask{i}"]
        assert road.shape == mask.shape == images_i.shape[:3]
        assert road.dtype == np.float32 and mask.dtype == np.uint8
        expected = _training_graph_road_prob(trained_run, images_i)
        np.testing.assert_allclose(road, expected, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(mask, (road >= 0.5).astype(np.uint8))


def test_frozen_graph_runs_and_matches_the_saved_model(exported):
    meta = json.loads(open(os.path.join(exported, export.METADATA_FILE)).read())
    names = meta["tensors"]
    graph_def = tf.GraphDef()
    with open(os.path.join(exported, meta["frozen_graph"]), "rb") as f:
        graph_def.ParseFromString(f.read())
    assert not [n.name for n in graph_def.node if n.op in ("VariableV2", "VarHandleOp")]
    images = _images(1)[0]
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        tf.import_graph_def(graph_def, name="")
        road, mask = sess.run(["road_prob:0", names["mask"]], {names["images"]: images})
    served = _saved_model_outputs(exported, images)
    np.testing.assert_array_equal(road, served["road_prob"])
    np.testing.assert_array_equal(mask, served["mask"])


@pytest.mark.skipif(not HAVE_ONNX, reason="tf2onnx/onnxruntime (requirements-extra.txt) missing")
def test_onnx_matches_tensorflow(exported):
    import onnxruntime

    meta = json.loads(open(os.path.join(exported, export.METADATA_FILE)).read())
    assert meta["onnx"]["max_abs_diff"] < export.ONNX_TOLERANCE
    session = onnxruntime.InferenceSession(
        os.path.join(exported, meta["onnx"]["file"]), providers=["CPUExecutionProvider"]
    )
    for images in _images(2):
        (probs,) = session.run([meta["tensors"]["probs_full"]], {meta["tensors"]["images"]: images})
        served = _saved_model_outputs(exported, images)
        road = probs[..., 1]
        assert road.shape == images.shape[:3]
        assert np.abs(road - served["road_prob"]).max() < 1e-4


# Batch-norm networks (encoder and decoder), decoder dropout on: their serving graph keeps the
# moving statistics only, and tf2onnx converts it. (MobileNetV2 + pix2pix takes the same path,
# three times slower to build: checked by hand, not in the suite.)
BN_NETWORKS = {
    "unet": dict(encoder="unet", decoder="unet", unet_filters=4, decoder_dropout=0.2),
}


@pytest.mark.skipif(not HAVE_ONNX, reason="tf2onnx/onnxruntime (requirements-extra.txt) missing")
@pytest.mark.parametrize("network", list(BN_NETWORKS))
def test_batch_norm_networks_export_to_onnx(network, tiny_config, tmp_path):
    cfg = tiny_config(
        tmp_path / "runs", image_shape=(32, 64), weights="random", **BN_NETWORKS[network]
    )
    run = train.train(cfg, log=lambda *a: None)[0]
    out = str(tmp_path / "model")
    meta = export.export(run, out, onnx=True, log=lambda *a: None)
    assert meta["onnx"]["max_abs_diff"] < export.ONNX_TOLERANCE
    graph_def = tf.GraphDef()
    with open(os.path.join(out, meta["frozen_graph"]), "rb") as f:
        graph_def.ParseFromString(f.read())
    # Batch moments are computed only while training: none is left in the served graph, nor
    # batch norm's cond on is_training (its moving branch is what serves).
    assert not [n.name for n in graph_def.node if "/moments/" in n.name]
    switches = [n.name for n in graph_def.node if n.op in ("Switch", "Merge")]
    assert not [name for name in switches if names.BATCH_OR_MOVING in name]
    assert any(n.op == "FusedBatchNormV3" for n in graph_def.node)
    assert not [n.name for n in graph_def.node if "is_training" in n.input]
    images = _images(4)[1]
    served = _saved_model_outputs(out, images)
    expected = _training_graph_road_prob(run, images)
    np.testing.assert_allclose(served["road_prob"], expected, atol=1e-5, rtol=0)


def test_a_run_with_the_im2col_fc6_exports_it_as_a_convolution(tiny_config, tmp_path):
    # --fc6 auto trains bfloat16 runs (the default on AMX / AVX512-BF16 CPUs) with fc6 as
    # ExtractImagePatches + MatMul, which tf2onnx cannot convert (nor TFLite's builtin ops):
    # every export file holds the convolution instead, over the same kernel.
    run = train.train(tiny_config(tmp_path / "runs", fc6="im2col"), log=lambda *a: None)[0]
    out = str(tmp_path / "model")
    meta = export.export(run, out, onnx=HAVE_ONNX, tflite=True, log=lambda *a: None)
    graph_def = tf.GraphDef()
    with open(os.path.join(out, meta["frozen_graph"]), "rb") as f:
        graph_def.ParseFromString(f.read())
    assert meta["tflite"]["max_abs_diff"] < 1e-4
    assert "ExtractImagePatches" not in [n.op for n in graph_def.node]
    convs = [n.input[1] for n in graph_def.node if n.op == "Conv2D" and "/fc6/" in n.name]
    assert len(convs) == 1 and "fc6" in convs[0]  # fc6's own kernel
    if HAVE_ONNX:
        assert meta["onnx"]["max_abs_diff"] < export.ONNX_TOLERANCE
    images = _images(5)[0]
    served = _saved_model_outputs(out, images)["road_prob"]
    np.testing.assert_allclose(served, _training_graph_road_prob(run, images), atol=1e-5, rtol=0)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_infer_with_the_export_equals_infer_with_the_run(
    precision, trained_run, exported, tmp_path
):
    image = np.random.default_rng(3).integers(0, 256, (83, 241, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "x.png"), image)
    for name, model in (("from_run", trained_run), ("from_export", exported)):
        argv = ["infer", "--run", model, str(tmp_path / "x.png"), "--out", str(tmp_path / name)]
        argv += [] if precision == "auto" else ["--precision", precision]  # auto: no flag
        assert cli.main(argv + ["--save-prob"]) == 0
    a = cv2.imread(str(tmp_path / "from_run" / "x_prob.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "from_export" / "x_prob.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (83, 241)
    # float32: the same pixels. bfloat16: the same graph rewritten the same way, weights as
    # constants instead of variables: at most one 8-bit level apart.
    assert np.abs(a.astype(int) - b).max() <= (0 if precision == "float32" else 1)


def test_refuses_a_non_empty_out_and_leaves_it_alone(trained_run, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert cli.main(["export", "--run", trained_run, "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert os.listdir(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no staging left


def test_onnx_without_the_extras_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import now raises ImportError
    with pytest.raises(UserError, match="requirements-extra.txt"):
        export.onnx_modules()
