"""The infer command on a tiny trained run: images, folders, globs, odd formats, video, errors."""

import glob
import sys

import cv2
import numpy as np
import pytest

from conftest import PRECISIONS
from fcn import cli, data
from fcn.data import task
from fcn.errors import UserError
from fcn.inference import crf as densecrf
from fcn.inference import infer, media, overlays, restore

IMAGE_SHAPE = (64, 192)
FLOAT32 = ["--precision", "float32"]


def _random_image(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _write_rgb(path, rgb):
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _expected_probs(trained_run, image, precision="float32"):
    """The run's class probabilities of `image` at its own size, without the infer command."""
    with restore.open_run(trained_run, precision_name=precision) as r:
        small = cv2.resize(image, IMAGE_SHAPE[::-1], interpolation=cv2.INTER_AREA)
        t = r.tensors
        probs = overlays.predict_probs(r.sess, t.probs, t.image_input, t.keep_prob, small[None])[0]
    return overlays.to_original_size(probs, *image.shape[:2])


def test_postprocess_hand_worked():
    # 1x2 network output upsampled to 1x2 (same size): road 0.8 | 0.3 -> mask 1 | 0.
    probs = np.array([[[0.2, 0.8], [0.7, 0.3]]], np.float32)
    image = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)
    decided = task.decide(probs, data.KITTI_ROAD, 0.5)
    shown, road, mask = infer.postprocess(image, probs, decided, data.KITTI_ROAD, 0.5, alpha=0.5)
    np.testing.assert_array_equal(mask, [[1, 0]])
    np.testing.assert_allclose(road, [[0.8, 0.3]])
    # Road pixel: 0.5 * (10, 20, 30) + 0.5 * (0, 255, 0) = (5, 137.5, 15) -> rounded (5, 138, 15).
    np.testing.assert_array_equal(shown, [[[5, 138, 15], [40, 50, 60]]])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_folder_single_image_and_glob(precision, trained_run, tmp_path, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    images = {
        "f1": _random_image((90, 300, 3), 1),
        "f2": _random_image((64, 192, 3), 2),
        "single": _random_image((101, 257, 3), 3),
        "g1": _random_image((45, 150, 3), 4),
    }
    _write_rgb(folder / "f1.png", images["f1"])
    _write_rgb(folder / "f2.png", images["f2"])
    _write_rgb(tmp_path / "single.png", images["single"])
    (tmp_path / "globbed").mkdir()
    _write_rgb(tmp_path / "globbed" / "g1.png", images["g1"])
    out = tmp_path / "out"
    argv = ["infer", "--run", trained_run, str(folder), str(tmp_path / "single.png")]
    argv += [str(tmp_path / "glob*" / "*.png"), "--out", str(out), "--save-prob", "--save-mask"]
    flags = [] if precision == "auto" else ["--precision", precision]  # auto: no flag
    assert cli.main(argv + ["--batch-size", "3"] + flags) == 0
    printed = capsys.readouterr().out
    assert "4 images" in printed and "images/s" in printed
    # Batches of 3 vs 1 may round differently: in float32 in the last bit (one 8-bit level of
    # the probability PNG), in bfloat16 in its 8-bit mantissa (a few levels).
    levels, margin = (1, 1e-4) if precision == "float32" else (3, 2e-2)

    for stem, image in images.items():
        shown = data.read_image(str(out / f"{stem}.png"))
        prob = cv2.imread(str(out / f"{stem}_prob.png"), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert shown.shape == image.shape and prob.shape == mask.shape == image.shape[:2]
        road = _expected_probs(trained_run, image, precision)[..., 1]
        assert np.abs(prob.astype(int) - np.rint(road * 255)).max() <= levels
        sure = np.abs(road - 0.5) > margin
        np.testing.assert_array_equal(mask[sure], road[sure] >= 0.5)
        # Not-road pixels are the input, untouched; road pixels are blended with green.
        np.testing.assert_array_equal(shown[mask == 0], image[mask == 0])
        np.testing.assert_array_equal(
            shown, overlays.overlay(image, mask == 1, overlays.GREEN, 0.5)
        )


def test_rgba_grey_and_16_bit_inputs(trained_run, tmp_path, capsys):
    rgba = _random_image((50, 170, 4), 5)
    grey16 = np.random.default_rng(6).integers(0, 65536, (70, 130), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "grey16.png"), grey16)
    out = tmp_path / "out"
    argv = [
        "infer",
        "--run",
        trained_run,
        str(tmp_path / "*.png"),
        "--out",
        str(out),
        "--alpha",
        "1",
    ]
    assert cli.main(argv + FLOAT32) == 0
    notes = capsys.readouterr().out
    assert "warning: " in notes and "(and 1 more)" in notes  # converted, and said so once
    a = cv2.imread(str(out / "rgba.png"), cv2.IMREAD_UNCHANGED)
    g = cv2.imread(str(out / "grey16.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (50, 170, 3) and g.shape == (70, 130, 3)
    # alpha 1: every road pixel is pure green, every other pixel is the grey input (high byte).
    grey8 = (grey16 >> 8).astype(np.uint8)
    green = np.all(g == (0, 255, 0), axis=-1)
    np.testing.assert_array_equal(g[~green], np.repeat(grey8[~green][:, None], 3, axis=1))


def test_video_keeps_frame_count_and_fps(trained_run, tmp_path):
    import imageio.v3 as iio

    frames = _random_image((6, 64, 200, 3), 7)
    src = tmp_path / "clip.mp4"
    iio.imwrite(src, frames, fps=7, plugin="FFMPEG", macro_block_size=1)
    out = tmp_path / "out"
    argv = ["infer", "--run", trained_run, str(src), "--out", str(out), "--save-mask"]
    assert cli.main(argv + FLOAT32) == 0
    meta = iio.immeta(out / "clip.mp4", plugin="FFMPEG")
    decoded = list(iio.imiter(out / "clip.mp4", plugin="FFMPEG"))
    assert meta["fps"] == pytest.approx(7.0)
    assert len(decoded) == 6 and decoded[0].shape == (64, 200, 3)
    masks = sorted(glob.glob(str(out / "clip_mask" / "*.png")))
    assert len(masks) == 6 and cv2.imread(masks[0], cv2.IMREAD_UNCHANGED).shape == (64, 200)
    assert not glob.glob(str(out / ".*"))  # no temporary file left behind


def test_bad_input_exits_2_before_any_output(trained_run, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _write_rgb(folder / "a_good.png", _random_image((40, 120, 3), 8))
    (folder / "b_bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    assert cli.main(["infer", "--run", trained_run, str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "b_bad.png" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_never_overwrites_an_input(trained_run, tmp_path, capsys):
    image = _random_image((40, 120, 3), 9)
    _write_rgb(tmp_path / "a.png", image)
    before = (tmp_path / "a.png").read_bytes()
    assert cli.main(["infer", "--run", trained_run, str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert (tmp_path / "a.png").read_bytes() == before


def test_two_inputs_with_one_output_name_are_refused(tmp_path):
    for name in ("a.png", "a.jpg"):
        _write_rgb(tmp_path / name, _random_image((8, 8, 3), 0))
    paths = media.collect_inputs([str(tmp_path)])
    with pytest.raises(UserError, match="would both write"):
        media.plan_jobs(paths, str(tmp_path / "out"), False, False)


def test_missing_input_and_empty_glob(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        media.collect_inputs([str(tmp_path / "nope.png")])
    with pytest.raises(UserError, match="matches no images"):
        media.collect_inputs([str(tmp_path / "*.png")])


def test_crf_without_pydensecrf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(UserError, match="pip install pydensecrf2"):
        densecrf.densecrf_module()


def test_crf_cleans_noise_inside_a_colour_region():
    pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf2 (optional extra) not installed")
    # Left half black, right half white; road 0.6 on the right but 0.45 on a few noisy pixels.
    image = np.zeros((24, 24, 3), np.uint8)
    image[:, 12:] = 255
    road = np.full((24, 24), 0.3, np.float32)
    road[:, 12:] = 0.6
    road[5, 15] = road[10, 20] = road[18, 14] = 0.45
    probs = np.stack([1 - road, road], axis=-1)
    refined = densecrf.refine(image, probs)
    assert refined.shape == probs.shape
    np.testing.assert_allclose(refined.sum(-1), 1.0, atol=1e-5)
    assert (refined[:, 12:, 1] > 0.5).all() and (refined[:, :12, 1] < 0.5).all()


def test_postprocess_multiclass_palette_and_legend():
    import dataclasses

    red, blue = (255, 0, 0), (0, 0, 255)
    spec = dataclasses.replace(
        data.KITTI_ROAD,
        name="toy3",
        class_names=("bg", "car", "person"),
        task="multiclass",
        positive_class=0,
        palette=(None, red, blue),
    )
    # argmax decides: bg | car | person. The threshold plays no part in multiclass decisions.
    probs = np.array([[[0.5, 0.3, 0.2], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6]]], np.float32)
    image = np.full((1, 3, 3), 100, np.uint8)
    mask = task.decide(probs, spec, 0.99)
    np.testing.assert_array_equal(mask, [[0, 1, 2]])
    shown, positive, out_mask = infer.postprocess(
        image, probs, mask, spec, 0.99, alpha=0.5, legend="none"
    )
    assert positive is None  # no positive-class map for a multiclass dataset
    # 0.5 * 100 + 0.5 * 255 = 177.5 -> 178; bg is unpainted.
    np.testing.assert_array_equal(shown, [[[100, 100, 100], [178, 50, 50], [50, 50, 178]]])
    with_legend, _, _ = infer.postprocess(image, probs, mask, spec, 0.99, 0.5, legend="all")
    # car and person, one legend row each on a 3-pixel-wide image.
    assert with_legend.shape == (1 + 2 * overlays.LEGEND_ROW, 3, 3)
    # Defaults: binary none; multiclass the classes present, videos all (one frame size).
    assert infer._legend(data.KITTI_ROAD, None, video=False) == "none"
    assert infer._legend(spec, None, video=False) == "present"
    assert infer._legend(spec, None, video=True) == "all"
