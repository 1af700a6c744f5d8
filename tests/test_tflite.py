"""TFLite: export --tflite [--int8] of the tiny trained run, TFLitePredictor against the float
TensorFlow export, export.json's record, and the one-line errors."""

import os
import shutil

import numpy as np
import pytest

from fcn import cli, runs
from fcn.errors import UserError
from fcn.inference import export, restore, tflite
from fcn.training import train

CALIBRATION = 8  # of the tiny run's 10 training images
# Float TFLite runs the same float32 kernels on the same network input: measured 6e-8.
FLOAT_TOLERANCE = 1e-6
# The tiny run is near chance: its road probabilities lie within 1e-3 of the 0.5 threshold, some
# exactly on it. Int8's probabilities stay within 3.3e-4 of float's (measured), and 93-98% of
# the mask pixels agree on random images (99.3-99.97% on training images).
INT8_TOLERANCE = 1e-3
INT8_AGREEMENT = 0.9


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    """The CLI's export --tflite --int8, as a user makes it."""
    out = str(tmp_path_factory.mktemp("tflite") / "model")
    argv = ["export", "--run", trained_run, "--out", out, "--tflite", "--int8"]
    assert cli.main(argv + ["--calibration-images", str(CALIBRATION)]) == 0
    return out


@pytest.fixture(scope="module")
def reference(exported):
    with restore.open_predictor(exported, "float32") as model:
        yield model


@pytest.fixture(scope="module")
def meta(exported):
    return restore.read_metadata(exported)


def _images(seed):
    rng = np.random.default_rng(seed)
    shapes = ((1, 75, 250, 3), (2, 40, 300, 3), (1, 64, 192, 3))  # taller, wider, the net's own
    return [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]


def test_float_tflite_gives_the_tf_probabilities_and_masks(exported, meta, reference):
    with tflite.TFLitePredictor(exported, meta, threads=1) as model:
        assert model.precision == "float32" and model.threads == 1
        assert model.network_size == reference.network_size == (64, 192)
        assert model.class_names == reference.class_names and model.tta == "none"
        for images in _images(0):
            probs, mask = model.predict(images)
            expected, expected_mask = reference.predict(images)
            assert probs.shape == expected.shape and mask.shape == images.shape[:3]
            assert probs.dtype == np.float32 and mask.dtype == np.uint8
            assert np.abs(probs - expected).max() < FLOAT_TOLERANCE
            # Equal wherever float32 rounding cannot cross the threshold.
            decided = np.abs(expected[..., 1] - 0.5) > FLOAT_TOLERANCE
            assert np.array_equal(mask[decided], expected_mask[decided])
        # A list of two sizes gives each image back at its own size; a threshold passes through.
        listed = [_images(1)[0][0], _images(1)[1][0]]
        probs, masks = model.predict(listed, threshold=0.0)
        assert [p.shape for p in probs] == [(75, 250, 2), (40, 300, 2)]
        assert all((m == 1).all() for m in masks)  # road_prob >= 0 everywhere


def test_int8_tflite_stays_near_float(exported, meta, reference):
    agree = total = 0
    with tflite.TFLitePredictor(exported, meta, int8=True, threads=1) as model:
        assert model.precision == "int8"
        for images in _images(2):
            probs, mask = model.predict(images)
            expected, expected_mask = reference.predict(images)
            assert np.abs(probs - expected).max() < INT8_TOLERANCE
            np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
            agree += (mask == expected_mask).sum()
            total += mask.size
    assert agree / total >= INT8_AGREEMENT


def test_export_json_records_the_tflite_files_shape_and_outside_resize(exported, meta, trained_run):
    record = meta["tflite"]
    assert record["file"] == "model.tflite" and record["int8_file"] == "model_int8.tflite"
    assert all(
        os.path.isfile(os.path.join(exported, f)) for f in ("model.tflite", "model_int8.tflite")
    )
    assert record["input_shape"] == [1, 64, 192, 3] and record["output"] == "logits"
    assert record["resize"].startswith("outside the model")
    assert record["max_abs_diff"] < FLOAT_TOLERANCE
    # Evenly spaced over the 10 training names: linspace(0, 9, 8).round() = 0 1 3 4 5 6 8 9.
    train_names = runs.RunFolder(trained_run).read_split()["train"]
    assert record["int8"]["images"] == [train_names[i] for i in (0, 1, 3, 4, 5, 6, 8, 9)]
    assert record["int8"]["calibration_images"] == CALIBRATION
    # The interpreter sees what the record says: (1, 64, 192, 3) float32 levels in, int8 for
    # the quantised model, whose input scale spans the levels seen (0..255: one level a step).
    with tflite.TFLitePredictor(exported, meta, int8=True) as model:
        detail = model._input
        assert list(detail["shape_signature"]) == [1, 64, 192, 3]
        assert detail["dtype"] == np.int8
        scale, zero = detail["quantization"]
        assert 0.9 < scale <= 1.0 and -128 <= zero <= -100
        # VGG's RGB -> BGR and mean subtraction stay float between a dequantise and a quantise;
        # the convolutions after them are int8 (int32 biases).
        assert record["int8"]["float_ops"] == ["encoder/ReverseV2", "encoder/sub"]
        dtypes = {t["name"]: t["dtype"] for t in model._interpreter.get_tensor_details()}
        assert [dtypes[name] for name in record["int8"]["float_ops"]] == [np.float32] * 2
        convs = [n for n in dtypes if n.startswith("encoder/block1_conv1/")]
        assert convs and all(dtypes[n] in (np.int8, np.int32) for n in convs)  # int32: bias


def test_a_missing_tflite_file_names_what_exists_and_the_flag(exported, meta, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(exported, copy)
    os.remove(os.path.join(copy, "model_int8.tflite"))
    with pytest.raises(UserError, match=r"no model_int8.tflite \(TFLite files: model.tflite\)"):
        tflite.TFLitePredictor(copy, meta, int8=True)
    with pytest.raises(UserError, match="export --run RUN_DIR --out DIR --tflite`"):
        tflite.TFLitePredictor(copy, {**meta, "tflite": None})


@pytest.mark.parametrize(
    "count, message",
    [(11, "calibrates on 11 training images but .* has 10"), (0, "--calibration-images")],
)
def test_too_few_calibration_images_leave_no_export(trained_run, tmp_path, count, message):
    out = tmp_path / "model"
    with pytest.raises(UserError, match=message):
        export.export(
            trained_run, str(out), tflite=True, int8=True, calibration_images=count, log=print
        )
    assert not out.exists() and os.listdir(tmp_path) == []  # nor a staging folder


def test_int8_without_tflite_is_refused_in_one_line(trained_run, tmp_path, capsys):
    out = tmp_path / "model"
    assert cli.main(["export", "--run", trained_run, "--out", str(out), "--int8"]) == 2
    assert (
        "--int8 quantises the ONNX or TFLite model; add --onnx or --tflite"
        in capsys.readouterr().err
    )
    assert not out.exists()


def test_a_batch_norm_dropout_tta_network_converts_whole(tiny_config, tmp_path):
    """U-Net (batch norm, decoder dropout 0.2) with --tta hflip: the model ends at the averaged
    probabilities, has no dropout or training branch left, and gives TF's probabilities."""
    cfg = tiny_config(
        tmp_path / "runs", image_shape=(32, 64), weights="random", encoder="unet",
        decoder="unet", unet_filters=4, decoder_dropout=0.2, tta="hflip",
    )  # fmt: skip
    run = train.train(cfg, log=lambda *a: None)[0]
    out = str(tmp_path / "model")
    meta = export.export(run, out, tflite=True, log=lambda *a: None)
    assert meta["tflite"]["output"] == "probs" and meta["tflite"]["int8_file"] is None
    assert meta["tflite"]["max_abs_diff"] < FLOAT_TOLERANCE
    with tflite.TFLitePredictor(out, meta, threads=1) as model:
        ops = {op["op_name"] for op in model._interpreter._get_ops_details()}
        assert "RANDOM_UNIFORM" not in ops and "SELECT_V2" not in ops and model.tta == "hflip"
        images = np.random.default_rng(3).integers(0, 256, (2, 45, 70, 3), dtype=np.uint8)
        with restore.open_predictor(out, "float32") as reference:
            expected, _ = reference.predict(images)
        probs, _ = model.predict(images)
    assert np.abs(probs - expected).max() < FLOAT_TOLERANCE


def test_evaluate_and_infer_run_on_the_tflite_files(exported, meta, tmp_path):
    import cv2

    # export.json lists and scores the TFLite files as the other backends' (fcn.inference.deploy).
    assert {"tf", "tflite", "tflite-int8"} <= set(meta["backends"])
    assert meta["backends"]["tflite-int8"]["file"] == "model_int8.tflite"
    assert len(meta["calibration"]["images"]) == CALIBRATION
    assert set(meta["quality"]["backends"]) >= {"tflite", "tflite-int8"}
    image = _images(4)[0][0]
    cv2.imwrite(str(tmp_path / "a.png"), image[..., ::-1])
    for int8, key in ((False, "tflite"), (True, "tflite-int8")):
        flags = ["--backend", "tflite", "--threads", "1"] + (["--int8"] if int8 else [])
        out = tmp_path / key
        argv = ["infer", "--run", exported, str(tmp_path / "a.png"), "--out", str(out)]
        assert cli.main(argv + ["--save-mask"] + flags) == 0
        assert cv2.imread(str(out / "a_mask.png"), cv2.IMREAD_UNCHANGED).shape == (75, 250)
        assert cli.main(["evaluate", "--run", exported] + flags) == 0
        metrics = runs.read_json(os.path.join(exported, "eval", "metrics.json"))
        assert metrics["backend"] == key and metrics["num_images"] == 2
