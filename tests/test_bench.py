"""The bench command at tiny sizes: every figure is there and positive, the baseline is naive."""

import json

import cv2
import numpy as np
import pytest

from conftest import PRECISIONS
from fcn import cli, data
from fcn.bench import flops, naive, scene
from fcn.bench import run as bench
from fcn.precision import resolve

TINY = ["--image-shape", "32x96", "--batch-size", "2", "--steps", "1", "--repeats", "1"]


class _CountingImread:
    def __init__(self, real):
        self.real, self.paths = real, []

    def __call__(self, path, *args):
        self.paths.append(path)
        return self.real(path, *args)


@pytest.fixture(scope="module")
def tiny_bench(synth_data, tiny_vgg, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bench") / "bench.json")
    argv = ["bench", "--data-dir", synth_data, "--vgg-dir", tiny_vgg, "--json", out]
    with pytest.MonkeyPatch.context() as mp:
        imread = _CountingImread(cv2.imread)
        mp.setattr(cv2, "imread", imread)
        code = cli.main(argv + TINY + ["--precision", "float32"])
    with open(out) as f:
        return code, json.load(f), imread.paths


def test_bench_writes_every_figure(tiny_bench):
    code, result, _ = tiny_bench
    assert code == 0
    assert set(result) == set(bench.RESULT_KEYS)
    for key in (
        "train_img_s",
        "train_compute_img_s",
        "pipeline_img_s",
        "infer_img_s",
        "naive_train_img_s",
        "pipeline_fraction",
        "peak_rss_mb",
    ):
        assert result[key] > 0, key
    assert result["pipeline_fraction"] == pytest.approx(
        result["train_img_s"] / result["pipeline_img_s"]
    )
    assert result["precision"] == "float32"
    assert result["image_shape"] == [32, 96] and result["batch_size"] == 2
    assert "cores" in result["cpu"] and result["tf_version"]


def test_naive_baseline_reads_files_every_batch(tiny_bench):
    _, _, paths = tiny_bench
    # Cache: 12 pairs read once = 24 reads. Baseline: 1 warm-up + 1 timed step, each 2 pairs
    # read from disk again = 8 reads. Our own loop never touches the files after the cache.
    assert len(paths) == 24 + 8
    baseline = paths[24:]
    assert sum("gt_image_2" in p for p in baseline) == 4


def test_naive_batches_decode_resize_and_one_hot_like_udacity(tmp_path, monkeypatch):
    # Two 4x6 frames; label columns 0-1 red (not road), 2-3 magenta (road), 4-5 black (void).
    gt = np.zeros((4, 6, 3), np.uint8)
    gt[:, :2] = (255, 0, 0)
    gt[:, 2:4] = (255, 0, 255)
    examples = []
    for i in range(2):
        image_path, label_path = str(tmp_path / f"um_{i}.png"), str(tmp_path / f"gt_{i}.png")
        cv2.imwrite(image_path, np.full((4, 6, 3), 10 * i, np.uint8))
        cv2.imwrite(label_path, gt[..., ::-1])  # cv2 writes BGR
        examples.append(data.Example(f"um_{i}", image_path, label_path, "um"))
    imread = _CountingImread(cv2.imread)
    monkeypatch.setattr(cv2, "imread", imread)
    rng = np.random.default_rng(0)
    for epoch in range(2):
        ((images, labels),) = naive.naive_batches(examples, (4, 6), 2, rng)
        assert len(imread.paths) == 4 * (epoch + 1)  # 2 images + 2 labels, every epoch again
    assert images.shape == (2, 4, 6, 3) and images.dtype == np.uint8
    assert sorted(images[:, 0, 0, 0]) == [0, 10]
    # not road = [1, 0]; road and (the Udacity helper's bug) void = [0, 1].
    assert labels.shape == (2, 4, 6, 2)
    np.testing.assert_array_equal(labels[0, 0, :, 0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(labels[0, 0, :, 1], [0, 0, 1, 1, 1, 1])


def test_bench_works_with_nothing_given(tmp_path, capsys):
    # No data_road and no VGG: a synthetic dataset and a random (tiny) VGG in temporary folders.
    out = str(tmp_path / "b.json")
    argv = ["bench", "--data-dir", str(tmp_path / "empty"), "--width", "0.0625", "--json", out]
    assert cli.main(argv + TINY) == 0
    with open(out) as f:
        result = json.load(f)
    assert result["train_img_s"] > 0 and result["naive_train_img_s"] > 0
    text = capsys.readouterr().out
    assert "synthetic" in text and "train, end to end" in text


def test_bench_errors_are_one_line(synth_data, tiny_vgg, capsys):
    base = ["bench", "--data-dir", synth_data, "--vgg-dir", tiny_vgg, "--image-shape", "32x96"]
    assert cli.main(base + ["--steps", "0"]) == 2
    assert cli.main(base + ["--batch-size", "13"]) == 2
    err = capsys.readouterr().err
    assert "--steps" in err and "fewer than --batch-size 13" in err


def test_bench_result_has_flops_peaks_and_shares(tiny_bench):
    _, result, _ = tiny_bench
    assert result["encoder"] == "vgg16" and result["decoder"] == "reference"
    forward = result["forward_flops_per_image"]
    assert forward > 0
    assert result["train_flops_per_image"] == flops.TRAIN_FLOPS_FACTOR * forward
    assert result["matmul_peak_float32"] > 0 and result["matmul_peak_bfloat16"] > 0
    peak = result["matmul_peak_float32"]  # the run's precision
    kinds = (("train", 3 * forward), ("train_compute", 3 * forward), ("infer", forward))
    for kind, kind_flops in kinds:
        share = result[f"{kind}_peak_share"]
        assert share == pytest.approx(result[f"{kind}_img_s"] * kind_flops / peak), kind


def test_graph_flops_counts_one_conv_by_hand():
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, (1, 4, 4, 2))
        kernel = tf.Variable(tf.zeros((3, 3, 2, 5)))
        y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
    # 4x4x5 outputs, each 3x3x2 multiply-adds of 2 FLOPs: 80 * 18 * 2.
    assert flops.graph_flops(graph) == 2880
    with graph.as_default():
        tf.nn.bias_add(y, tf.zeros(5))
    assert flops.graph_flops(graph) == 2880 + 80  # one add per output


def test_peak_share_arithmetic():
    # 2 img/s x 3 GFLOP per image = 6 GFLOP/s of a 100 GFLOP/s peak.
    assert flops.peak_share(2.0, 3e9, 100e9) == pytest.approx(0.06)
    assert flops.peak_share(2.0, 3e9, None) is None


@pytest.mark.parametrize("precision", PRECISIONS)
def test_bench_other_encoder_and_decoder_without_naive(precision, synth_data, tmp_path, capsys):
    out = str(tmp_path / "b.json")
    argv = ["bench", "--data-dir", synth_data, "--encoder", "unet", "--decoder", "pix2pix"]
    argv += [] if precision == "auto" else ["--precision", precision]  # auto: no flag
    assert cli.main(argv + TINY + ["--no-naive", "--json", out]) == 0
    with open(out) as f:
        result = json.load(f)
    assert result["precision"] == resolve(precision)
    # Measured against float32's masks from the same weights: all of them in float32 itself.
    agreement = result["mask_agreement_float32"]
    assert agreement == 1.0 if precision == "float32" else 0.9 < agreement <= 1.0
    assert (result["encoder"], result["decoder"]) == ("unet", "pix2pix")
    assert result["naive_train_img_s"] is None and result["train_img_s"] > 0
    assert result["forward_flops_per_image"] > 0 and result["infer_peak_share"] > 0
    text = capsys.readouterr().out
    assert "random weights" in text and "not measured (--no-naive)" in text and "% of peak" in text


@pytest.mark.parametrize("model", ["random", "run"])
def test_scene_bench_slides_over_a_geotiff_and_reports_its_figures(model, trained_run, capsys):
    # 300 x 300 in windows of the network's size, a quarter overlapping (fcn.inference.windows):
    # random U-Net 64 x 64: stride 48, ceil((300 - 64) / 48) + 1 = 6 positions a side, 36.
    # The trained tiny VGG run, 64 x 192: rows as above (6); columns stride 144,
    # ceil((300 - 192) / 144) + 1 = 2; 12.
    argv = ["--side", "300", "--batch-size", "4"]
    if model == "random":
        argv += ["--encoder", "unet", "--decoder", "unet", "--size", "64"]
    else:
        argv += ["--run", trained_run, "--precision", "float32"]
    scene.main(argv)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["windows"] == (36 if model == "random" else 12)
    assert result["image_shape"] == ([64, 64] if model == "random" else [64, 192])
    assert result["megapixels"] == pytest.approx(0.09)
    assert result["seconds"] > 0 and result["mpx_s"] > 0
    assert result["peak_rss_mb"] >= result["rss_before_mb"] > 0
    assert result["precision"] == "float32"
