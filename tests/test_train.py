"""End to end at tiny sizes: training lowers the loss, the run folder is complete, the CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import AUTO_BF16
from fcn import cli, config
from fcn.errors import UserError
from fcn.training import build, epochs, train, validation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_run(synth_data, tiny_vgg, tmp_path_factory):
    cfg = config.Config(
        data_dir=synth_data,
        vgg_dir=tiny_vgg,
        runs_dir=str(tmp_path_factory.mktemp("runs")),
        image_shape=(64, 192),
        epochs=6,
        batch_size=4,
        learning_rate=1e-3,
        val_count=2,
        overlay_every=3,
        precision="float32",
    )
    logs = []
    run_dir, summary = train.train(cfg, log=logs.append)
    return cfg, run_dir, summary, logs


def test_training_lowers_the_loss(tiny_run):
    _, run_dir, _, _ = tiny_run
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == list(range(1, 7))
    first, last = records[0]["train_loss"], records[-1]["train_loss"]
    assert last < 0.9 * first, (first, last)
    assert all(0.0 <= r["val_iou"] <= 1.0 for r in records)


@pytest.mark.parametrize("precision", [AUTO_BF16])
def test_training_under_the_default_precision_lowers_the_loss(precision, tiny_config, tmp_path):
    # The tiny run again under --precision auto (bfloat16 on bf16 CPUs: what users get).
    cfg = tiny_config(tmp_path, epochs=6, learning_rate=1e-3, overlay_every=0, precision=precision)
    logs = []
    run_dir, summary = train.train(cfg, log=logs.append)
    assert any(line.endswith("precision bfloat16") for line in logs)
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    first, last = records[0]["train_loss"], records[-1]["train_loss"]
    assert last < 0.9 * first, (first, last)
    assert 0.0 <= summary["best_val_iou"] <= 1.0


def test_run_folder_is_complete(tiny_run):
    cfg, run_dir, summary, logs = tiny_run
    saved = config.Config.from_dict(json.load(open(os.path.join(run_dir, "config.json"))))
    assert saved == cfg
    split = json.load(open(os.path.join(run_dir, "split.json")))
    assert len(split["val"]) == 2 and len(split["train"]) == 10
    on_disk = json.load(open(os.path.join(run_dir, "summary.json")))
    for key in ("epochs", "best_val_iou", "final_val_iou", "train_seconds"):
        assert key in on_disk
    assert on_disk["epochs"] == 6 and on_disk["train_seconds"] > 0
    assert os.path.exists(os.path.join(run_dir, "best", "checkpoint"))
    # The latest checkpoint only (--keep-checkpoints 1, the default); the best is that one or
    # its own in best/, never a copy of the same step.
    latest = [f for f in os.listdir(os.path.join(run_dir, "checkpoints")) if f.endswith(".index")]
    assert len(latest) == cfg.keep_checkpoints == 1
    best = [f for f in os.listdir(os.path.join(run_dir, "best")) if f.endswith(".index")]
    assert not set(best) & set(latest)
    # Validation overlays at epochs 3 and 6; test overlays at each image's original size.
    assert sorted(os.listdir(os.path.join(run_dir, "val_overlays"))) == ["epoch_003", "epoch_006"]
    import cv2

    test_dir = os.path.join(run_dir, "test")
    names = sorted(os.listdir(test_dir))
    assert len(names) == 3 and summary["test_overlays"] == 3
    source = os.path.join(cfg.data_dir, "data_road", "testing", "image_2", names[0])
    assert cv2.imread(os.path.join(test_dir, names[0])).shape == cv2.imread(source).shape
    assert any("road IoU" in line for line in logs)


def test_crop_trains_on_windows_and_validates_whole_images(tiny_config, tmp_path, monkeypatch):
    seen = []
    real = epochs.data.epoch_batches

    def spy(*args, **kwargs):
        for images, labels in real(*args, **kwargs):
            seen.append((images.shape[1:3], labels.shape[1:3]))
            yield images, labels

    validated = []
    real_validate = validation.validate

    def spy_validate(*args, **kwargs):
        scores, masks = real_validate(*args, **kwargs)
        validated.append(masks.shape)
        return scores, masks

    monkeypatch.setattr(epochs.data, "epoch_batches", spy)
    monkeypatch.setattr(validation, "validate", spy_validate)
    cfg = tiny_config(tmp_path, image_shape=(64, 192), crop=(32, 96))
    run_dir, summary = train.train(cfg, log=lambda *a: None)
    assert seen and set(seen) == {((32, 96), (32, 96))}
    assert validated == [(2, 64, 192)]  # the two validation images whole
    assert 0.0 <= summary["final_val_iou"] <= 1.0
    saved = config.Config.from_dict(json.load(open(os.path.join(run_dir, "config.json"))))
    assert saved.crop == (32, 96)


def test_val_every_validates_every_nth_epoch_and_the_last(tiny_config, tmp_path, monkeypatch):
    validated = []
    real_validate = validation.validate

    def spy_validate(*args, **kwargs):
        validated.append(len(validated))
        return real_validate(*args, **kwargs)

    monkeypatch.setattr(validation, "validate", spy_validate)
    cfg = tiny_config(tmp_path, epochs=3, val_every=2, overlay_every=0)
    run_dir, summary = train.train(cfg, log=lambda *a: None)
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        records = [json.loads(line) for line in f]
    # Epoch 2 (every 2nd) and epoch 3 (the last); epoch 1 keeps its training figures only.
    assert len(validated) == 2
    assert [("val_iou" in r) for r in records] == [False, True, True]
    assert all("train_loss" in r and "seconds" in r for r in records)
    assert summary["best_epoch"] in (2, 3) and summary["final_val_iou"] is not None


def test_overlay_paints_green_only_where_road():
    from fcn.inference import overlays

    image = np.full((2, 2, 3), 100, np.uint8)
    prob = np.array([[0.9, 0.1], [0.6, 0.4]], np.float32)
    out = overlays.road_overlay(image, prob, threshold=0.5, alpha=0.5)
    # Road pixels: 0.5*100 + 0.5*(0, 255, 0) = (50, 178, 50) after rounding 177.5 -> 178.
    assert out[0, 0].tolist() == [50, 178, 50] and out[1, 0].tolist() == [50, 178, 50]
    assert out[0, 1].tolist() == [100, 100, 100] and out[1, 1].tolist() == [100, 100, 100]


def test_config_flags_round_trip():
    parser = cli.build_parser()
    args = parser.parse_args(
        ["train", "--image-shape", "96x320", "--no-test-overlays", "--epochs", "3"]
    )
    cfg = config.from_args(args)
    assert cfg.image_shape == (96, 320) and cfg.test_overlays is False and cfg.epochs == 3
    assert config.Config.from_dict(json.loads(cfg.to_json())) == cfg


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--epochs", "-1"], "--epochs must be >= 0"),
        (["--image-shape", "16x576"], "too small"),
        (["--keep-prob", "0"], "--keep-prob"),
        (["--val-every", "0"], "--val-every must be >= 1"),
    ],
)
def test_invalid_flags_are_one_line_errors(flags, message):
    with pytest.raises(UserError, match=message):
        config.from_args(cli.build_parser().parse_args(["train"] + flags))


def test_cli_exit_code_and_message_for_bad_input(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "--data-dir",
            str(tmp_path / "none"),
            "--vgg-dir",
            str(tmp_path),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "does not exist" in err[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    # The check comes before any work: no run folder was started.
    assert not os.path.exists(tmp_path / "runs")


def test_cosine_schedule_by_hand():
    cfg = config.Config(epochs=4, learning_rate=1.0, lr_schedule="cosine")
    # 0.5 * (1 + cos(pi * k / 4)) for k = 0..3: 1, 0.8536, 0.5, 0.1464
    got = [epochs.learning_rate_at(cfg, e) for e in (1, 2, 3, 4)]
    assert np.allclose(got, [1.0, 0.853553, 0.5, 0.146447], atol=1e-6)
    # Per step: half-way through epoch 2 is 1.5 of 4 epochs done, 0.5 * (1 + cos(3 pi / 8)).
    assert np.isclose(epochs.learning_rate_at(cfg, 2, 0.5), 0.691342, atol=1e-6)
    assert np.isclose(epochs.learning_rate_at(cfg, 4, 1.0), 0.0, atol=1e-12)
    assert epochs.learning_rate_at(cfg.replace(lr_schedule="constant"), 3) == 1.0


def test_freeze_keeps_named_encoder_variables_fixed(tiny_vgg):
    import tensorflow.compat.v1 as tf

    cfg = config.Config(vgg_dir=tiny_vgg, freeze="fc6,fc7", precision="float32")
    with tf.Graph().as_default(), tf.Session() as sess:
        model = build.build_model(sess, cfg, 2)
        build.initialize_new_variables(sess)
        # The encoder's variables live under its scope; --freeze names are relative to it.
        names = ("fc6/kernel", "fc7/bias", "block5_conv3/kernel")
        variables = {
            v.op.name.removeprefix("encoder/"): v
            for v in tf.global_variables()
            if v.op.name.removeprefix("encoder/") in names
        }
        assert sorted(variables) == sorted(names)
        before = sess.run(variables)
        rng = np.random.default_rng(0)
        labels = (rng.random((2, 64, 96)) < 0.5).astype(np.uint8)  # class ids
        feed = {
            model.image_input: rng.uniform(0, 255, (2, 64, 96, 3)),
            model.labels: labels,
            model.keep_prob: 1.0,
            model.learning_rate: 1e-2,
            model.is_training: True,
        }
        sess.run(model.train_op, feed)
        after = sess.run(variables)
    assert np.array_equal(before["fc6/kernel"], after["fc6/kernel"])
    assert np.array_equal(before["fc7/bias"], after["fc7/bias"])
    assert not np.array_equal(before["block5_conv3/kernel"], after["block5_conv3/kernel"])


def test_freeze_with_an_unknown_scope_names_the_scopes(tiny_vgg):
    import tensorflow.compat.v1 as tf

    cfg = config.Config(vgg_dir=tiny_vgg, freeze="fc8")
    with tf.Graph().as_default(), tf.Session() as sess:
        with pytest.raises(UserError, match=r"--freeze 'fc8' matches no encoder variable.*fc6"):
            build.build_model(sess, cfg, 2)


@pytest.mark.parametrize("encoder,scope", [("unet", "stage1"), ("mobilenet_v2", "Conv1")])
def test_freeze_works_for_every_encoder(encoder, scope):
    import tensorflow.compat.v1 as tf

    cfg = config.Config(
        encoder=encoder, decoder="fcn8s", weights="random", freeze=scope, precision="float32"
    )
    cfg = cfg.replace(unet_filters=4) if encoder == "unet" else cfg
    with tf.Graph().as_default(), tf.Session() as sess:
        model = build.build_model(sess, cfg, 2)
        trainable = {v.op.name: v for v in tf.trainable_variables()}
        frozen = {n: v for n, v in trainable.items() if n.startswith(f"encoder/{scope}/")}
        other = {n: v for n, v in trainable.items() if n.startswith("encoder/") and n not in frozen}
        assert frozen and other
        before = sess.run([frozen, other])
        rng = np.random.default_rng(0)
        feed = {
            model.image_input: rng.uniform(0, 255, (2, 64, 64, 3)),
            model.labels: (rng.random((2, 64, 64)) < 0.5).astype(np.uint8),
            model.learning_rate: 1e-2,
            model.is_training: True,
        }
        sess.run(model.train_op, feed)
        after = sess.run([frozen, other])
    assert all(np.array_equal(before[0][n], after[0][n]) for n in frozen)
    assert any(not np.array_equal(before[1][n], after[1][n]) for n in other)
