"""Backends at prediction time: ONNX Runtime (float and int8) against the float TensorFlow export,
export --int8 and export.json's deployment fields, --backend/--int8/--threads on the commands,
and the one-line errors of a missing file, package or module."""

import importlib.util
import json
import os
import shutil
import sys

import cv2
import numpy as np
import pytest

from fcn import cli, precision, runs
from fcn.errors import UserError
from fcn.inference import backends, export, ort, quality

HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("tf2onnx", "onnxruntime"))
pytestmark = pytest.mark.skipif(
    not HAVE_ONNX, reason="tf2onnx/onnxruntime (requirements-extra.txt) missing"
)
CALIBRATION = 8  # of the tiny run's 10 training images
# The tiny run is near chance: its road probabilities lie within ~5e-4 of the 0.5 threshold
# (some exactly on it), so a float32 rounding difference (< 1e-6) may flip a pixel there.
NEAR = 1e-4
INT8_AGREEMENT = 0.98  # of mask pixels equal to float TF on random images (measured >= 0.993)


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("deploy") / "model")
    export.export(
        trained_run, out, onnx=True, int8=True, calibration_images=CALIBRATION, log=lambda *a: None
    )
    return out


@pytest.fixture(scope="module")
def reference(exported):
    with backends.open_backend(exported, "tf", precision_name="float32") as model:
        yield model


def _images(seed):
    rng = np.random.default_rng(seed)
    shapes = ((1, 75, 250, 3), (2, 40, 300, 3), (1, 64, 192, 3))  # taller, wider, the net's own
    return [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]


def test_onnxruntime_gives_the_tf_probabilities_and_masks(exported, reference):
    with backends.open_backend(exported, "onnxruntime", threads=1) as model:
        assert isinstance(model, ort.OrtPredictor) and model.precision == "float32"
        assert model.network_size == reference.network_size == (64, 192)
        assert model.class_names == reference.class_names
        for images in _images(0):
            probs, mask = model.predict(images)
            expected, expected_mask = reference.predict(images)
            assert probs.shape == expected.shape and mask.shape == images.shape[:3]
            assert probs.dtype == np.float32 and mask.dtype == np.uint8
            np.testing.assert_allclose(probs, expected, atol=1e-4, rtol=0)
            # Identical masks wherever the decision is not on the threshold itself.
            clear = np.abs(expected[..., 1] - 0.5) > NEAR
            assert clear.mean() > 0.5
            np.testing.assert_array_equal(mask[clear], expected_mask[clear])
        # A list of images of two sizes comes back as a list, each at its own size.
        listed = [_images(1)[0][0], _images(1)[1][0]]
        probs, masks = model.predict(listed)
        assert [p.shape for p in probs] == [(75, 250, 2), (40, 300, 2)]
        assert [m.shape for m in masks] == [(75, 250), (40, 300)]
        # --threshold is the NumPy decision on the ONNX probabilities.
        _, low = model.predict(listed[0], threshold=0.2)
        assert (low == 1).all()


def test_int8_masks_agree_with_float_tf(exported, reference):
    with backends.open_backend(exported, "onnxruntime", int8=True) as model:
        assert model.precision == "int8"
        assert os.path.basename(model.path) == "model_int8.onnx"
        for images in _images(2):
            probs, mask = model.predict(images)
            expected, expected_mask = reference.predict(images)
            np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
            assert (mask == expected_mask).mean() >= INT8_AGREEMENT


def test_export_json_states_backends_input_classes_calibration_and_quality(exported, trained_run):
    meta = json.loads(open(os.path.join(exported, export.METADATA_FILE)).read())
    assert set(meta["backends"]) == {"tf", "onnxruntime", "onnxruntime-int8"}
    assert meta["backends"]["onnxruntime-int8"] == {
        "file": "model_int8.onnx",
        "precision": "int8",
        "size_mb": round(os.path.getsize(os.path.join(exported, "model_int8.onnx")) / 2**20, 3),
    }
    assert meta["input"]["network_size"] == [64, 192]
    assert meta["classes"] == [
        {"id": 0, "name": "not_road", "color": None},
        {"id": 1, "name": "road", "color": [0, 255, 0]},
    ]
    calibration = meta["calibration"]
    train_names = runs.read_json(os.path.join(trained_run, "split.json"))["train"]
    assert len(calibration["images"]) == CALIBRATION
    # Evenly spaced over the 10 training names: linspace(0, 9, 8) rounded.
    assert calibration["images"] == [train_names[i] for i in (0, 1, 3, 4, 5, 6, 8, 9)]
    assert calibration["onnxruntime-int8"]["format"] == "QDQ"
    q = meta["quality"]
    assert q["split"] == "val" and q["images"] == 2 and q["metric"] == "road IoU"
    scored = q["backends"]
    assert set(scored) == {"tf", "onnxruntime", "onnxruntime-int8"}
    assert scored["tf"]["mask_pixels_differ"] == 0.0
    assert scored["onnxruntime"]["mask_pixels_differ"] < 1e-3
    assert scored["onnxruntime-int8"]["mask_pixels_differ"] < 1 - INT8_AGREEMENT
    assert abs(scored["onnxruntime"]["score"] - scored["tf"]["score"]) < 1e-3


def test_compared_counts_differing_mask_pixels_by_hand():
    class Fixed:  # a predictor stand-in giving one 2x2 mask
        spec = config = None
        threshold, network_size, batch_size = 0.5, (2, 2), 8

        def __init__(self, mask):
            self.mask = np.array(mask, np.uint8)

        def _predict_batch(self, batch, threshold):
            return np.zeros(batch.shape[:3] + (2,), np.float32), np.stack([self.mask] * len(batch))

    images = np.zeros((2, 2, 2, 3), np.uint8)
    first = quality.Compared(Fixed([[0, 1], [1, 1]]))
    first.predict(images)
    other = quality.Compared(Fixed([[0, 0], [1, 0]]), reference=first.masks)
    other.predict(images)
    # 2 of the 4 pixels differ in each of the 2 images: 4 / 8.
    assert (other.differ, other.pixels, other.share()) == (4, 8, 0.5)


def test_evaluate_and_infer_run_on_each_backend(exported, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _images(3)[0][0][..., ::-1])
    masks = {}
    for backend in ("tf", "onnxruntime"):
        out = tmp_path / backend
        argv = ["infer", "--run", exported, str(folder), "--out", str(out), "--save-mask"]
        assert cli.main(argv + ["--backend", backend, "--threads", "1"]) == 0
        masks[backend] = cv2.imread(str(out / "a_mask.png"), cv2.IMREAD_UNCHANGED)
    assert masks["tf"].shape == (75, 250)
    assert (masks["tf"] == masks["onnxruntime"]).mean() > 0.999
    assert cli.main(["evaluate", "--run", exported, "--backend", "onnxruntime", "--int8"]) == 0
    metrics = runs.read_json(os.path.join(exported, "eval", "metrics.json"))
    assert metrics["backend"] == "onnxruntime-int8" and metrics["precision"] == "int8"
    assert metrics["num_images"] == 2


def test_threads_reach_each_backend(exported):
    with backends.open_backend(exported, "onnxruntime", threads=3) as model:
        assert model._session.get_session_options().intra_op_num_threads == 3
    assert precision.session_config("float32", threads=3).intra_op_parallelism_threads == 3
    assert backends.default_threads() >= 1


def test_backend_keys():
    assert backends.key("onnxruntime", True) == "onnxruntime-int8"
    assert backends.split_key("tflite-int8") == ("tflite", True)
    with pytest.raises(UserError, match="--int8 picks"):
        backends.key("tf", True)
    with pytest.raises(UserError, match="not one of"):
        backends.split_key("tensorrt")


def test_missing_file_says_what_exists_and_how_to_make_it(exported, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(exported, copy)
    os.remove(os.path.join(copy, "model_int8.onnx"))
    with pytest.raises(UserError) as e:
        backends.open_backend(copy, "onnxruntime", int8=True)
    message = str(e.value)
    assert "no model_int8.onnx" in message and "(it has: tf, onnxruntime)" in message
    assert "--onnx --int8" in message and "\n" not in message


def test_a_run_folder_is_not_an_export(trained_run):
    with pytest.raises(UserError, match="is not one; make one with .*--onnx"):
        backends.open_backend(trained_run, "onnxruntime")


def test_missing_onnxruntime_names_the_extras(exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(UserError, match="requirements-extra.txt"):
        backends.open_backend(exported, "onnxruntime")


def test_serve_answers_from_the_int8_file_what_infer_writes(exported, tmp_path):
    from test_serve import call, serving

    from fcn.serving import server

    image = _images(5)[0][0]
    cv2.imwrite(str(tmp_path / "a.png"), image[..., ::-1])
    argv = ["infer", "--run", exported, str(tmp_path / "a.png"), "--out", str(tmp_path / "out")]
    flags = ["--backend", "onnxruntime", "--int8", "--threads", "1"]
    assert cli.main(argv + ["--save-mask"] + flags) == 0
    written = cv2.imread(str(tmp_path / "out" / "a_mask.png"), cv2.IMREAD_UNCHANGED)
    opts = server.ServeOptions(run=exported, backend="onnxruntime", int8=True, threads=1, port=0)
    with serving(opts) as running:
        status, _, answer = call(running.url, "GET", "/v1/models/fcn/metadata")
        facts = json.loads(answer)["metadata"]["fcn"]
        assert status == 200 and (facts["backend"], facts["precision"]) == (
            "onnxruntime-int8", "int8",
        )  # fmt: skip
        body = open(tmp_path / "a.png", "rb").read()
        status, _, answer = call(running.url, "POST", "/v1/segment?output=mask", body)
        served = cv2.imdecode(np.frombuffer(answer, np.uint8), cv2.IMREAD_UNCHANGED)
        assert status == 200
        np.testing.assert_array_equal(served, written)
