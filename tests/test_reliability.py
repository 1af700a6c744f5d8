"""Bad input, interruption and resume, safe checkpoints: a user never loses a run or sees a
traceback for a mistake in their data.

Runs are tiny (32x96 input, 10 training images, batch 4: 3 steps an epoch) so each takes seconds.
"""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from PIL import Image

from fcn import cli, config, data, runs
from fcn.errors import UserError
from fcn.inference import restore
from fcn.training import build, checkpoint, epochs, losses, train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 3
STEPS_PER_EPOCH = 3  # ceil(10 training images / batch 4)


def _config(synth_data, tiny_vgg, runs_dir, **changes):
    values = dict(
        data_dir=synth_data,
        vgg_dir=tiny_vgg,
        runs_dir=str(runs_dir),
        image_shape=(32, 96),
        epochs=EPOCHS,
        batch_size=4,
        learning_rate=1e-3,
        val_count=2,
        overlay_every=0,
        keep_checkpoints=2,
        precision="float32",
        test_overlays=False,
    )
    values.update(changes)
    return config.Config(**values)


def _quiet(*args):
    pass


def _state(run_dir):
    return runs.read_json(os.path.join(run_dir, checkpoint.STATE_FILE))


def _log_epochs(run_dir):
    with open(os.path.join(run_dir, checkpoint.LOG_FILE)) as f:
        return [json.loads(line)["epoch"] for line in f]


def _run_dirs(runs_dir):
    return sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []


@pytest.fixture(scope="module")
def reference_run(synth_data, tiny_vgg, tmp_path_factory):
    """An uninterrupted run: what an interrupted and resumed one must match."""
    cfg = _config(synth_data, tiny_vgg, tmp_path_factory.mktemp("reference"))
    run_dir, _ = train.train(cfg, log=_quiet)
    return cfg, run_dir


def _copy_run(run_dir, tmp_path):
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    return copy


# --- bad input: every problem in one line, before a run folder exists ---


def test_bad_pairs_fail_before_any_run_folder_with_all_of_them_named(
    synth_data, tiny_vgg, tmp_path
):
    data_dir = tmp_path / "data"
    shutil.copytree(synth_data, data_dir)
    pairs = data.list_pairs(str(data_dir))
    open(pairs[-1].image_path, "wb").write(b"\x89PNG\r\n\x1a\n truncated")
    label = cv2.imread(pairs[-2].label_path)
    label[0, 0] = (1, 2, 3)  # a colour outside the KITTI code
    cv2.imwrite(pairs[-2].label_path, label)
    cfg = _config(str(data_dir), tiny_vgg, tmp_path / "runs")
    with pytest.raises(UserError, match=r"^2 of \d+ pairs are unusable; first: ") as info:
        train.train(cfg, log=_quiet)
    assert "\n" not in str(info.value)
    assert pairs[-1].name in str(info.value) or pairs[-2].name in str(info.value)
    assert _run_dirs(tmp_path / "runs") == []


def test_corrupt_vgg_fails_before_any_run_folder(synth_data, tiny_vgg, tmp_path):
    vgg_dir = tmp_path / "vgg"
    shutil.copytree(tiny_vgg, vgg_dir)
    (vgg_dir / "saved_model.pb").write_bytes(b"not a protobuf")
    cfg = _config(synth_data, str(vgg_dir), tmp_path / "runs")
    with pytest.raises(UserError, match="corrupt SavedModel"):
        train.train(cfg, log=_quiet)
    assert _run_dirs(tmp_path / "runs") == []


def test_palette_png_is_converted_to_rgb_with_a_warning(tmp_path, capsys):
    # Palette index -> colour: 0 magenta (road), 1 red (not road), 2 black (void), 3 a blue.
    palette = [255, 0, 255, 255, 0, 0, 0, 0, 0, 10, 20, 200]
    indices = np.array([[0, 1, 2, 3]], np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette + [0] * (768 - len(palette)))
    path = str(tmp_path / "p.png")
    image.save(path)
    rgb = data.read_image(path)
    assert rgb.tolist() == [[[255, 0, 255], [255, 0, 0], [0, 0, 0], [10, 20, 200]]]
    assert "palette -> RGB" in capsys.readouterr().out
    # A palette label decodes like an RGB one (blue is not a KITTI colour: 1 of 4 = 25.00%).
    with pytest.raises(UserError, match=r"25\.00% pixels"):
        data.decode_label(rgb)
    assert data.decode_label(rgb[:, :3]).tolist() == [[1, 0, data.IGNORE_LABEL]]


def test_jpeg_images_are_paired_and_read(tmp_path):
    img_dir = tmp_path / "data_road" / "training" / "image_2"
    gt_dir = tmp_path / "data_road" / "training" / "gt_image_2"
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    Image.fromarray(np.full((40, 60, 3), (10, 200, 30), np.uint8)).save(
        img_dir / "um_000000.jpg", quality=95
    )
    label = np.zeros((40, 60, 3), np.uint8)
    label[20:] = (255, 0, 255)
    cv2.imwrite(str(gt_dir / "um_road_000000.png"), cv2.cvtColor(label, cv2.COLOR_RGB2BGR))
    (ex,) = data.list_pairs(str(tmp_path))
    image, lab = data.load_example(ex, (32, 64))
    assert ex.image_path.endswith(".jpg") and image.shape == (32, 64, 3)
    # JPEG is lossy: the flat colour comes back within a few levels.
    assert np.abs(image[16, 32].astype(int) - (10, 200, 30)).max() <= 4
    assert lab[:15].max() == data.IGNORE_LABEL and (lab[17:] == 1).all()


def test_cut_off_jpeg_is_named(tmp_path):
    rng = np.random.default_rng(0)
    whole = tmp_path / "um_000000.jpg"
    cv2.imwrite(str(whole), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert data.read_image(str(whole)).shape == (64, 64, 3)
    # OpenCV would decode this half with grey filler and only a warning on stderr.
    cut = tmp_path / "um_000001.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match="cannot read image .*um_000001.jpg: .*truncated"):
        data.read_image(str(cut))


def test_image_and_label_of_different_sizes_are_named(tmp_path):
    ex = data.Example("um_000000", str(tmp_path / "i.png"), str(tmp_path / "l.png"), "um")
    cv2.imwrite(ex.image_path, np.zeros((40, 60, 3), np.uint8))
    cv2.imwrite(ex.label_path, np.zeros((40, 61, 3), np.uint8))
    with pytest.raises(UserError, match=r"is 60x40 but its label .*l\.png is 61x40"):
        data.load_example(ex, (32, 64))


def test_no_pickle_loading_anywhere():
    """The shipped code calls np.load only with allow_pickle=False and never imports pickle:
    data files and downloads are untrusted."""
    paths = [os.path.join(ROOT, "fcn", n) for n in sorted(os.listdir(os.path.join(ROOT, "fcn")))]
    paths += [os.path.join(ROOT, n) for n in ("main.py", "helper.py")]
    offenders = []
    for path in paths:
        if not path.endswith(".py") or not os.path.exists(path):
            continue
        text = open(path).read()
        name = os.path.relpath(path, ROOT)
        if re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib)\b", text, re.M):
            offenders.append(f"{name}: imports pickle")
        for call in re.findall(r"np\.load\([^)]*\)", text):
            if "allow_pickle=False" not in call:
                offenders.append(f"{name}: {call}")
    assert offenders == []


def test_unknown_choice_is_an_argparse_error_with_exit_code_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(["train", "--decoder", "segnet"])
    assert info.value.code == 2
    assert "invalid choice: 'segnet'" in capsys.readouterr().err


def test_run_folders_are_never_reused_and_json_has_no_nan(tmp_path):
    first = runs.new_run_dir(str(tmp_path), name="same")
    second = runs.new_run_dir(str(tmp_path), name="same")
    assert (os.path.basename(first), os.path.basename(second)) == ("same", "same-1")
    runs.write_json(os.path.join(first, "x.json"), {"iou": float("nan"), "losses": [float("inf")]})
    assert json.load(open(os.path.join(first, "x.json"))) == {"iou": None, "losses": [None]}


# --- checkpoints: what state.json names is always complete ---


def test_state_json_names_complete_checkpoints_and_keeps_k_and_best(reference_run):
    cfg, run_dir = reference_run
    state = _state(run_dir)
    assert state["epoch"] == EPOCHS and state["batch"] == 0
    assert state["step"] == EPOCHS * STEPS_PER_EPOCH
    assert state["checkpoint"] == f"checkpoints/model-{state['step']}"
    assert state["kept"] == ["checkpoints/model-6", "checkpoints/model-9"]  # keep_checkpoints=2
    files = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
    assert sorted(f.split(".")[0] for f in files if f != "checkpoint") == (
        ["model-6"] * 3 + ["model-9"] * 3  # .data, .index, .meta
    )
    # The best is one checkpoint, never a copy: one of the kept ones, or its own in best/.
    in_best = [f for f in os.listdir(os.path.join(run_dir, "best")) if f.endswith(".index")]
    if state["best"] in state["kept"]:
        assert in_best == []
    else:
        assert state["best"].startswith("best/model-") and len(in_best) == 1
    assert restore.find_checkpoint(run_dir, "best") == os.path.normpath(
        os.path.join(run_dir, state["best"])
    )
    # TF's own index agrees, so fcn.inference.restore finds the same files.
    with restore.open_run(run_dir, "latest") as r:
        assert r.checkpoint == os.path.join(run_dir, state["checkpoint"])
    assert _log_epochs(run_dir) == [1, 2, 3]


def test_interrupted_then_resumed_run_matches_an_uninterrupted_one(
    reference_run, monkeypatch, tmp_path
):
    cfg, reference_dir = reference_run
    cfg = cfg.replace(runs_dir=str(tmp_path / "runs"))
    real = data.epoch_batches
    epochs_started = []

    def ctrl_c_in_epoch_2(*args, **kwargs):
        epochs_started.append(1)
        for i, batch in enumerate(real(*args, **kwargs)):
            if len(epochs_started) == 2 and i == 1:
                os.kill(os.getpid(), signal.SIGINT)  # from the prefetch thread, as a user would
            yield batch

    monkeypatch.setattr(data, "epoch_batches", ctrl_c_in_epoch_2)
    with pytest.raises(checkpoint.Interrupted) as info:
        train.train(cfg, log=_quiet)
    (run_dir,) = [os.path.join(cfg.runs_dir, d) for d in _run_dirs(cfg.runs_dir)]
    assert info.value.exit_code == 130
    assert f"python main.py train --resume {run_dir}" in str(info.value)
    state = _state(run_dir)
    # Stopped mid-epoch 2, after the current step, with a checkpoint of exactly that step.
    assert state["epoch"] == 1 and 1 <= state["batch"] < STEPS_PER_EPOCH
    assert state["step"] == STEPS_PER_EPOCH + state["batch"]
    assert len(state["epoch_losses"]) == state["batch"]
    assert _log_epochs(run_dir) == [1]

    monkeypatch.setattr(data, "epoch_batches", real)
    run_dir, summary = train.train(
        checkpoint.resume_config(run_dir, {}), log=_quiet, resume_dir=run_dir
    )
    final, reference = _state(run_dir), _state(reference_dir)
    assert _log_epochs(run_dir) == [1, 2, 3]
    assert final["step"] == reference["step"] == EPOCHS * STEPS_PER_EPOCH
    # Same seed: the same split and, across the interruption, the same augmentation sequence.
    assert runs.read_json(os.path.join(run_dir, "split.json")) == runs.read_json(
        os.path.join(reference_dir, "split.json")
    )
    assert final["rng"] == reference["rng"]
    assert summary["epochs"] == EPOCHS and os.path.exists(os.path.join(run_dir, "summary.json"))


def _fail_second_latest_save(monkeypatch):
    """The saver writes part of model-6 (epoch 2's checkpoint), then the disk is full."""
    real = tf.train.Saver.save

    def save(self, sess, save_path, *args, **kwargs):
        if save_path.endswith("checkpoints/model-6"):
            with open(save_path + ".data-00000-of-00001", "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, sess, save_path, *args, **kwargs)

    monkeypatch.setattr(tf.train.Saver, "save", save)


def _fail_second_state_write(monkeypatch):
    """The checkpoint files of epoch 2 are complete, but state.json cannot be replaced."""
    real = runs.atomic_write_bytes
    writes = []

    def atomic_write_bytes(path, payload):
        if path.endswith(checkpoint.STATE_FILE):
            writes.append(path)
            if len(writes) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, payload)

    monkeypatch.setattr(runs, "atomic_write_bytes", atomic_write_bytes)


@pytest.mark.parametrize("inject", [_fail_second_latest_save, _fail_second_state_write])
def test_full_disk_keeps_the_previous_checkpoint(
    inject, synth_data, tiny_vgg, monkeypatch, tmp_path
):
    cfg = _config(synth_data, tiny_vgg, tmp_path / "runs")
    inject(monkeypatch)
    with pytest.raises(UserError, match="No space left on device") as info:
        train.train(cfg, log=_quiet)
    monkeypatch.undo()
    (run_dir,) = [os.path.join(cfg.runs_dir, d) for d in _run_dirs(cfg.runs_dir)]
    message = str(info.value)
    assert "checkpoints/model-3 is intact" in message and "--resume" in message
    state = _state(run_dir)
    assert state["epoch"] == 1 and state["checkpoint"] == "checkpoints/model-3"
    # The half-written checkpoint is gone; the one state.json names loads.
    assert not [f for f in os.listdir(os.path.join(run_dir, "checkpoints")) if "model-6" in f]
    with restore.open_run(run_dir, "latest") as r:
        assert r.checkpoint.endswith("checkpoints/model-3")
        t = r.tensors
        assert r.sess.run(
            t.probs, {t.image_input: np.zeros((1, 32, 96, 3)), t.keep_prob: 1.0}
        ).shape == (1, 32, 96, 2)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    synth_data, tiny_vgg, monkeypatch, tmp_path
):
    cfg = _config(synth_data, tiny_vgg, tmp_path / "runs")
    real = data.epoch_batches
    real_loss = losses.sparse_cross_entropy
    epochs_started = []
    marker = 254  # a label value that, in this test only, makes the batch's loss NaN

    def nan_loss_on_marker(logits, labels):
        marked = tf.reduce_any(tf.equal(labels, marker))
        clean = tf.where_v2(tf.equal(labels, marker), tf.constant(255, labels.dtype), labels)
        return real_loss(logits, clean) + tf.where_v2(marked, np.float32(np.nan), 0.0)

    def nan_in_epoch_2(*args, **kwargs):
        epochs_started.append(1)
        for images, labels in real(*args, **kwargs):
            if len(epochs_started) == 2:
                # Labels are uint8 class ids, so a NaN loss is injected through the loss
                # (pixels cannot be relied on: VGG's max pools swallow NaN).
                labels = labels.copy()
                labels[:, 0, 0] = marker
            yield images, labels

    monkeypatch.setattr(losses, "sparse_cross_entropy", nan_loss_on_marker)
    monkeypatch.setattr(data, "epoch_batches", nan_in_epoch_2)
    with pytest.raises(UserError, match=r"loss became nan at epoch 2, step 1/3") as info:
        train.train(cfg, log=_quiet)
    (run_dir,) = [os.path.join(cfg.runs_dir, d) for d in _run_dirs(cfg.runs_dir)]
    assert "checkpoints/model-3 is kept" in str(info.value)
    state = _state(run_dir)
    assert state["epoch"] == 1 and state["checkpoint"] == "checkpoints/model-3"
    reader = tf.train.load_checkpoint(os.path.join(run_dir, state["checkpoint"]))
    for name in reader.get_variable_to_shape_map():
        assert np.isfinite(reader.get_tensor(name)).all(), name


@pytest.mark.parametrize("failing_epoch", [1, 2])
def test_a_tensorflow_error_in_a_step_is_one_line_and_leaves_a_resumable_or_failed_run(
    failing_epoch, synth_data, tiny_vgg, monkeypatch, tmp_path, capsys
):
    argv = _train_command(synth_data, tiny_vgg, tmp_path / "runs", EPOCHS)[2:]
    real = epochs.run_epoch
    calls = []

    def failing_run_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == failing_epoch:
            # What the workers' bf16 _FusedConv2D raised (issue 20): the stack in front.
            message = (
                "Graph execution error:\n\nDetected at node 'x/BiasAdd' defined at (most "
                'recent call last):\n  File "main.py", line 1, in <module>\n    run()\n'
                "Node: 'x/BiasAdd'\nValue for attr 'T' of bfloat16 is not allowed\n"
                "\t; NodeDef: {{node x/BiasAdd}}"
            )
            raise tf.errors.InvalidArgumentError(None, None, message)
        return real(*args, **kwargs)

    monkeypatch.setattr(epochs, "run_epoch", failing_run_epoch)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: ")
    assert f"training failed in TensorFlow at epoch {failing_epoch}, after 0 step(s)" in err
    assert "InvalidArgumentError: Value for attr 'T' of bfloat16 is not allowed;" in err
    assert "--verbose for the whole trace" in err
    (run_dir,) = [os.path.join(tmp_path / "runs", d) for d in _run_dirs(tmp_path / "runs")]
    failed = runs.read_json(os.path.join(run_dir, "failed.json"))
    assert failed["epoch"] == failing_epoch and "InvalidArgumentError" in failed["error"]
    monkeypatch.undo()
    if failing_epoch == 1:  # no checkpoint: --resume says why there is nothing to continue
        assert "has no checkpoint yet and is marked failed" in err
        assert cli.main(["train", "--resume", run_dir]) == 2
        assert "failed before its first checkpoint" in capsys.readouterr().err
        return
    # After a checkpoint: --resume continues from it and the run is no longer marked failed.
    assert f"resume with `python main.py train --resume {run_dir}`" in err
    assert cli.main(["train", "--resume", run_dir]) == 0
    assert _log_epochs(run_dir) == list(range(1, EPOCHS + 1))
    assert not os.path.exists(os.path.join(run_dir, "failed.json"))


# --- resume: same config, clear errors for another architecture ---


def test_resume_accepts_more_epochs_and_rejects_other_changes(reference_run):
    cfg, run_dir = reference_run
    assert checkpoint.resume_config(run_dir, {"epochs": 5}) == cfg.replace(epochs=5)
    # A flag left at its default is not a change: the saved value (batch 4) is kept.
    assert checkpoint.resume_config(run_dir, {"epochs": 5, "batch_size": 8}).batch_size == 4
    with pytest.raises(UserError, match=r"--batch-size 2 \(the run has 4\).*only --epochs"):
        checkpoint.resume_config(run_dir, {"epochs": 5, "batch_size": 2})
    with pytest.raises(UserError, match="--decoder 'fcn8s'"):
        checkpoint.resume_config(run_dir, {"epochs": 5, "decoder": "fcn8s"})
    with pytest.raises(UserError, match="already finished its 3 epochs"):
        checkpoint.resume_config(run_dir, {})
    with pytest.raises(UserError, match="--epochs 2 is below the 3 epochs"):
        checkpoint.resume_config(run_dir, {"epochs": 2})


def test_resume_of_a_folder_without_checkpoint_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    runs.write_json(str(tmp_path / "run" / "config.json"), json.loads(config.Config().to_json()))
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 2
    assert "has no state.json" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_checkpoint_of_another_decoder_is_a_clear_error(reference_run, tmp_path):
    cfg, run_dir = reference_run
    run_dir = _copy_run(run_dir, tmp_path)
    saved = runs.read_json(os.path.join(run_dir, "config.json"))
    runs.write_json(os.path.join(run_dir, "config.json"), dict(saved, decoder="fcn8s"))
    with pytest.raises(UserError, match=r"has no variable 'decoder/score\w+/kernel'"):
        train.train(
            checkpoint.resume_config(run_dir, {"epochs": 4}), log=_quiet, resume_dir=run_dir
        )


def test_checkpoint_of_another_class_count_is_a_clear_error(reference_run):
    cfg, run_dir = reference_run
    state = _state(run_dir)
    with tf.Graph().as_default(), tf.Session() as sess:
        build.build_model(sess, cfg, num_classes=3)
        ckpts = checkpoint.Checkpoints(run_dir, keep=2, state=state)
        with pytest.raises(UserError, match=r"holds decoder/\S+ of shape .*class count") as info:
            ckpts.restore(sess, state["checkpoint"], "3 classes")
    assert "\n" not in str(info.value)


# --- real processes: SIGKILL then --resume, SIGTERM ---


def _train_command(synth_data, tiny_vgg, runs_dir, epochs):
    return [
        sys.executable, "main.py", "train",
        "--data-dir", synth_data, "--vgg-dir", tiny_vgg, "--runs-dir", str(runs_dir),
        "--image-shape", "32x96", "--batch-size", "4", "--val-count", "2",
        "--learning-rate", "1e-3", "--epochs", str(epochs), "--overlay-every", "0",
        "--precision", "float32", "--no-test-overlays",
    ]  # fmt: skip


def _start_and_wait_for_first_checkpoint(command, runs_dir, timeout=90):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = [os.path.join(runs_dir, d) for d in _run_dirs(runs_dir)]
        if found and os.path.exists(os.path.join(found[0], checkpoint.STATE_FILE)):
            return proc, found[0]
        time.sleep(0.02)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"no checkpoint appeared (rc {proc.returncode}):\n{out[-2000:]}\n{err[-2000:]}")


def test_sigkilled_training_resumes_and_finishes_every_epoch_once(
    synth_data, tiny_vgg, tmp_path, capsys
):
    epochs = 8
    command = _train_command(synth_data, tiny_vgg, tmp_path / "runs", epochs)
    proc, run_dir = _start_and_wait_for_first_checkpoint(command, tmp_path / "runs")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = _state(run_dir)["epoch"]
    assert 1 <= killed_at < epochs
    # Resumed in this process (one TensorFlow start less), through the same command line: the
    # same flags again are fine, they match the saved config.
    assert cli.main(command[2:] + ["--resume", run_dir]) == 0
    assert f"resuming {run_dir}" in capsys.readouterr().out
    assert _log_epochs(run_dir) == list(range(1, epochs + 1))
    assert _state(run_dir)["epoch"] == epochs
    assert runs.read_json(os.path.join(run_dir, "summary.json"))["epochs"] == epochs


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(synth_data, tiny_vgg, tmp_path):
    command = _train_command(synth_data, tiny_vgg, tmp_path / "runs", epochs=500)
    proc, run_dir = _start_and_wait_for_first_checkpoint(command, tmp_path / "runs")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "Traceback" not in err
    assert "stopped by SIGTERM" in err and f"python main.py train --resume {run_dir}" in err
    state = _state(run_dir)
    assert os.path.exists(os.path.join(run_dir, state["checkpoint"] + ".index"))
    assert not os.path.exists(os.path.join(run_dir, "summary.json"))


def test_the_best_checkpoint_is_never_a_second_copy_of_a_step(tmp_path):
    # One variable v = step. Saves at steps 1..4 with keep 1; steps 2 and 4 are bests.
    run_dir = str(tmp_path)
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        v = tf.get_variable("v", [], initializer=tf.zeros_initializer())
        tf.train.get_or_create_global_step()
        value = tf.placeholder(tf.float32, [])
        assign = v.assign(value)
        sess.run(tf.global_variables_initializer())
        ckpts = checkpoint.Checkpoints(run_dir, keep=1)

        def step(n, best):
            sess.run(assign, {value: float(n)})
            if best:
                ckpts.save_best(sess, n)
            ckpts.save(sess, n, checkpoint.Progress(epoch=n))
            return _state(run_dir)

        def files(folder):
            return sorted(f for f in os.listdir(os.path.join(run_dir, folder)) if f != "checkpoint")

        state = step(1, best=False)
        assert state["best"] is None and files("checkpoints") == [
            "model-1.data-00000-of-00001", "model-1.index", "model-1.meta"
        ]  # fmt: skip
        state = step(2, best=True)  # the best is the latest: best/ holds only TF's index
        assert state["best"] == "checkpoints/model-2" and state["kept"] == ["checkpoints/model-2"]
        assert os.listdir(os.path.join(run_dir, "best")) == ["checkpoint"]
        assert restore.find_checkpoint(run_dir, "best") == os.path.join(
            run_dir, "checkpoints", "model-2"
        )
        state = step(3, best=False)  # model-2 leaves `kept`: its files move into best/ as links
        assert state["best"] == "best/model-2" and files("best") == [
            "model-2.data-00000-of-00001", "model-2.index", "model-2.meta"
        ]  # fmt: skip
        assert [f.split(".")[0] for f in files("checkpoints")] == ["model-3"] * 3
        assert restore.find_checkpoint(run_dir, "best") == os.path.join(run_dir, "best", "model-2")
        state = step(4, best=True)  # a new best: the old one's files go
        assert state["best"] == "checkpoints/model-4"
        assert (
            files("best") == []
            and [f.split(".")[0] for f in files("checkpoints")] == ["model-4"] * 3
        )
        # Restoring the best gives its step's weights.
        for prefix, want in ((state["best"], 4.0),):
            saver = tf.train.Saver([v])
            saver.restore(sess, os.path.join(run_dir, prefix))
            assert sess.run(v) == want
    # A resumed Checkpoints keeps the rule: step 5 moves model-4 into best/.
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        v = tf.get_variable("v", [], initializer=tf.constant_initializer(5.0))
        tf.train.get_or_create_global_step()
        sess.run(tf.global_variables_initializer())
        ckpts = checkpoint.Checkpoints(run_dir, keep=1, state=_state(run_dir))
        ckpts.save(sess, 5, checkpoint.Progress(epoch=5))
        assert _state(run_dir)["best"] == "best/model-4"
        tf.train.Saver([v]).restore(sess, restore.find_checkpoint(run_dir, "best"))
        assert sess.run(v) == 4.0
