"""Encoders other than VGG16, end to end through the commands: train on the synthetic KITTI
data, then evaluate, infer and export the run; batch-norm statistics travel with it."""

import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import AUTO_BF16
from fcn import cli
from fcn.inference import restore

# Each pair in float32 (exact comparisons); the U-Net pair once more under --precision auto
# (what users get: bfloat16 on bf16 CPUs).
PAIRS = [
    ("mobilenet_v2", "pix2pix", "float32"),
    ("unet", "unet", "float32"),
    pytest.param("unet", "unet", *AUTO_BF16.values, marks=AUTO_BF16.marks, id="unet-unet-auto"),
]


def _flags(precision):
    """No --precision flag for auto: the default users get."""
    return [] if precision == "auto" else ["--precision", precision]


def _train(synth_data, runs_dir, encoder, decoder, precision="float32"):
    argv = ["train", "--data-dir", synth_data, "--runs-dir", str(runs_dir)]
    argv += ["--encoder", encoder, "--decoder", decoder, "--weights", "random"]
    argv += ["--image-shape", "64x160", "--epochs", "1", "--batch-size", "4", "--val-count", "2"]
    argv += [*_flags(precision), "--no-test-overlays", "--unet-filters", "4"]
    assert cli.main(argv) == 0
    # One run folder (runs_dir also holds index.html, the page of all runs).
    (run,) = [d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d))]
    return os.path.join(runs_dir, run)


@pytest.mark.parametrize("encoder,decoder,precision", PAIRS)
def test_pair_trains_and_its_run_evaluates_infers_and_exports(
    encoder, decoder, precision, synth_data, tmp_path, capsys
):
    run_dir = _train(synth_data, tmp_path / "runs", encoder, decoder, precision)
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert (summary["encoder"], summary["decoder"]) == (encoder, decoder)
    assert summary["best_metric"] == "val_iou" and summary["weights"].startswith("random")

    # The best checkpoint keeps the batch-norm statistics, and one step of training moved them.
    prefix = tf.train.latest_checkpoint(os.path.join(run_dir, "best"))
    reader = tf.train.load_checkpoint(prefix)
    moving = [n for n in reader.get_variable_to_shape_map() if n.endswith("moving_mean")]
    assert moving and any(np.abs(reader.get_tensor(n)).max() > 0 for n in moving)

    assert cli.main(["evaluate", "--run", run_dir]) == 0
    assert os.path.isfile(os.path.join(run_dir, "eval", "metrics.json"))

    export_dir = str(tmp_path / "export")
    assert cli.main(["export", "--run", run_dir, "--out", export_dir]) == 0
    images = os.path.join(synth_data, "data_road", "testing", "image_2")
    for name, model in (("from_run", run_dir), ("from_export", export_dir)):
        argv = ["infer", "--run", model, images, "--out", str(tmp_path / name), "--save-prob"]
        assert cli.main(argv + _flags(precision)) == 0
    stems = sorted(os.listdir(tmp_path / "from_run"))
    assert stems == sorted(os.listdir(tmp_path / "from_export")) and stems
    capsys.readouterr()

    # Export and run predict the same pixels (moving statistics included in the export).
    test_image = np.random.default_rng(0).integers(0, 256, (1, 90, 300, 3), dtype=np.uint8)
    with (
        restore.open_predictor(run_dir, precision) as a,
        restore.open_predictor(export_dir, precision) as b,
    ):
        (pa, ma), (pb, mb) = (
            a.predict_each(list(test_image))[0],
            b.predict_each(list(test_image))[0],
        )
    # Under bfloat16 the two graphs (training's, with batch norm's select; the export's, with
    # the moving statistics only) may round apart by a few bf16 steps.
    tolerance, agreement = (1e-4, 0.999) if precision == "float32" else (3e-2, 0.99)
    assert np.abs(pa - pb).max() < tolerance and (ma == mb).mean() > agreement
    assert a.precision == b.precision == ("float32" if precision == "float32" else "bfloat16")
