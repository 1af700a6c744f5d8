"""Windowed and multi-scale prediction (fcn.inference.windows) around a fake network: windows
predicted alone without overlap, constant and per-pixel networks across seams, padding, the
window grid counted by hand, the blend by hand, scales averaged, one-line errors."""

import numpy as np
import pytest

from fcn import data
from fcn.errors import UserError
from fcn.inference import windows
from fcn.inference.predictor import Predictor


class _Fake(Predictor):
    """A network that takes any size as it comes (no resize): road = fn(batch (N, H, W, 3))
    (N, H, W); records every batch it saw."""

    def __init__(self, fn, network_size=(4, 8), batch_size=4):
        self.fn, self.network_size, self.batch_size = fn, network_size, batch_size
        self.spec, self.batches, self.closed = data.KITTI_ROAD, [], 0

    def _predict_batch(self, batch, threshold):
        self.batches.append(batch.copy())
        road = np.asarray(self.fn(batch), np.float32)
        probs = np.stack([1.0 - road, road], axis=-1)
        return probs, self.decide(probs, threshold)

    def close(self):
        self.closed += 1


def _red(batch):  # per pixel: road = red / 255
    return batch[..., 0] / 255.0


def _window_mean(batch):  # depends on the whole window: red / 510 + the window's mean green / 510
    green = batch[..., 1].mean(axis=(1, 2), keepdims=True)
    return batch[..., 0] / 510.0 + green / 510.0


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_edge_weights_by_hand():
    # n = 4: (i + 0.5) * 2 / 4 - 1 = -0.75, -0.25, 0.25, 0.75 -> tent 0.25, 0.75, 0.75, 0.25,
    # weight 0.1 + 0.9 * tent = 0.325, 0.775, 0.775, 0.325; n = 1: 1.
    np.testing.assert_allclose(windows.edge_weights(4), [0.325, 0.775, 0.775, 0.325], atol=1e-7)
    assert windows.edge_weights(1).tolist() == [1.0]


def test_without_overlap_each_window_is_predicted_alone():
    fake = _Fake(_window_mean)
    image = _image(8, 16)  # 2 x 2 windows of 4 x 8
    probs, _ = windows.SlidePredictor(fake, overlap=0).predict(image)
    for y in (0, 4):
        for x in (0, 8):
            alone, _ = fake.predict(image[y : y + 4, x : x + 8])
            assert np.array_equal(probs[y : y + 4, x : x + 8], alone)


def test_constant_network_is_constant_across_seams():
    fake = _Fake(lambda b: np.full(b.shape[:3], 0.3))
    probs, mask = windows.SlidePredictor(fake, overlap=0.25).predict(_image(10, 13))
    np.testing.assert_allclose(probs[..., 1], 0.3, atol=1e-6)
    assert probs.shape == (10, 13, 2) and (mask == 0).all()


def test_window_grid_counted_by_hand_and_per_pixel_equals_whole():
    # Window 4 x 8, overlap 0.25: strides round(3) = 3 rows, round(6) = 6 columns. Image 10 x 13:
    # rows ceil((10 - 4) / 3) + 1 = 3 starts 0, 3, 6 (6 = 10 - 4, flush); columns
    # ceil((13 - 8) / 6) + 1 = 2 starts 0, 5 (flush) -> 6 windows, batches of 4 then 2.
    fake = _Fake(_red)
    slide = windows.SlidePredictor(fake, overlap=0.25)
    assert slide.corners((10, 13)) == [(0, 0), (0, 5), (3, 0), (3, 5), (6, 0), (6, 5)]
    image = _image(10, 13)
    probs, _ = slide.predict(image)
    assert [b.shape for b in fake.batches] == [(4, 4, 8, 3), (2, 4, 8, 3)]
    whole, _ = fake.predict(image)
    np.testing.assert_allclose(probs, whole, atol=1e-6)


def test_blend_by_hand():
    # Window 1 x 4, overlap 0.5 -> stride 2, windows at columns 0 and 2 of a 1 x 6 image with red
    # 0,0,0,0,255,255: window means 0 and 0.5. Column 2 is window 0's index 2 (weight 0.775)
    # and window 1's index 0 (0.325): 0.5 * 0.325 / 1.1 = 0.147727; column 3: 0.5 * 0.775 / 1.1.
    fake = _Fake(
        lambda b: np.broadcast_to(b[..., 0].mean(axis=(1, 2), keepdims=True) / 255.0, b.shape[:3]),
        (1, 4),
    )
    image = np.zeros((1, 6, 3), np.uint8)
    image[0, 4:, 0] = 255
    probs, _ = windows.SlidePredictor(fake, overlap=0.5).predict(image)
    expected = [0, 0, 0.5 * 0.325 / 1.1, 0.5 * 0.775 / 1.1, 0.5, 0.5]
    np.testing.assert_allclose(probs[0, :, 1], expected, atol=1e-6)


def test_a_small_image_is_mirror_padded_and_cropped_back():
    fake = _Fake(_red)
    image = _image(3, 5)
    probs, mask = windows.SlidePredictor(fake).predict(image)
    assert probs.shape == (3, 5, 2) and mask.shape == (3, 5)
    (seen,) = fake.batches
    assert seen.shape == (1, 4, 8, 3)
    assert np.array_equal(seen[0, 3], seen[0, 1]) and np.array_equal(seen[0, :3, 5], seen[0, :3, 3])
    np.testing.assert_array_equal(probs[..., 1], image[..., 0] / np.float32(255.0))


def test_scales_average_and_keep_the_size():
    # Whole images through a network that answers H / 32: a 16 x 16 image at scales 0.5 and 1
    # is seen at 8 and 16 rows -> (0.25 + 0.5) / 2 = 0.375 everywhere.
    fake = _Fake(lambda b: np.full(b.shape[:3], b.shape[1] / 32.0))
    probs, _ = windows.wrap(fake, "whole", scales=(0.5, 1)).predict(_image(16, 16))
    np.testing.assert_allclose(probs[..., 1], 0.375, atol=1e-6)
    # Slid at each scale: every window has the network size, the answer the image's size.
    fake = _Fake(lambda b: np.full(b.shape[:3], 0.3))
    model = windows.wrap(fake, "slide", 0.25, (0.5, 1, 1.5))
    probs, _ = model.predict(_image(10, 13))
    assert probs.shape == (10, 13, 2) and {b.shape[1:] for b in fake.batches} == {(4, 8, 3)}
    np.testing.assert_allclose(probs[..., 1], 0.3, atol=1e-6)
    model.close()
    assert fake.closed == 1


def test_wrappers_keep_the_contract():
    fake = _Fake(_red)
    assert windows.wrap(fake) is fake  # whole at scale 1: today's path, no wrapper
    slide = windows.wrap(fake, "slide")
    assert (slide.spec, slide.network_size, slide.tta, slide.precision) == (
        fake.spec, (4, 8), "none", "float32",
    )  # fmt: skip
    probs, masks = slide.predict([_image(5, 9), _image(3, 3)], threshold=0.9)
    assert [m.shape for m in masks] == [(5, 9), (3, 3)]
    assert np.array_equal(masks[0], (probs[0][..., 1] >= 0.9).astype(np.uint8))


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(scales=(0.5, 0)), "--scales must be factors > 0 such as 0.5,1,1.5, got 0.5,0"),
        (dict(predict="slide", overlap=1.0), "--overlap must be in [0, 1), got 1.0"),
        (dict(predict="tile"), "--predict 'tile' is not one of"),
    ],
)
def test_bad_values_are_one_line_errors(args, message):
    with pytest.raises(UserError) as raised:
        windows.wrap(_Fake(_red), **args)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_infer_slide_writes_masks_of_the_input_size(trained_run, tmp_path):
    import cv2

    from fcn import cli

    # 64 x 192 is the run's network size: one window, weight share 1, so slide == whole.
    images = {"exact": _image(64, 192, 1), "odd": _image(101, 257, 2)}
    for stem, image in images.items():
        cv2.imwrite(str(tmp_path / f"{stem}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    masks = {}
    for mode, flags in (("whole", []), ("slide", ["--predict", "slide", "--scales", "0.5,1"])):
        out = tmp_path / mode
        argv = ["infer", "--run", trained_run, str(tmp_path / "exact.png")]
        argv += [str(tmp_path / "odd.png"), "--out", str(out), "--save-mask"]
        assert cli.main(argv + ["--precision", "float32", "--batch-size", "1"] + flags) == 0
        masks[mode] = {
            s: cv2.imread(str(out / f"{s}_mask.png"), cv2.IMREAD_UNCHANGED) for s in images
        }
        for stem, image in images.items():
            assert masks[mode][stem].shape == image.shape[:2]
    out = tmp_path / "slide1"
    argv = ["infer", "--run", trained_run, str(tmp_path / "exact.png"), "--out", str(out)]
    assert cli.main(argv + ["--save-mask", "--precision", "float32", "--predict", "slide"]) == 0
    slid = cv2.imread(str(out / "exact_mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(slid, masks["whole"]["exact"])


def test_evaluate_records_the_prediction(trained_run, tmp_path):
    import json
    import os
    import shutil

    from fcn.evaluation.evaluate import evaluate_run
    from fcn.inference.infer import InferOptions

    run = str(tmp_path / "run")
    shutil.copytree(trained_run, run)  # eval/ of the shared run stays the other tests'
    evaluate_run(run, log=lambda *a: None, predict="slide", overlap=0.5, scales=(0.5, 1.0))
    m = json.load(open(os.path.join(run, "eval", "metrics.json")))
    assert (m["predict"], m["overlap"], m["scales"]) == ("slide", 0.5, [0.5, 1.0])
    summary = open(os.path.join(run, "eval", "summary.md")).read()
    assert "slide, windows of the network size overlapping 0.5, at scales 0.5, 1" in summary
    with pytest.raises(UserError, match="--scales must be factors > 0"):
        InferOptions(scales=(-1.0,))


def test_a_run_names_its_prediction_and_the_flags_override_it(trained_run, tmp_path):
    import json
    import os
    import shutil

    from fcn import config
    from fcn.evaluation.evaluate import EvaluateOptions, evaluate_run

    run = str(tmp_path / "run")
    shutil.copytree(trained_run, run)
    path = os.path.join(run, "config.json")
    saved = json.load(open(path))
    assert saved["predict"] == "whole" and saved["scales"] == [1.0]  # what every run records
    saved.update(predict="slide", overlap=0.5, scales=[0.5, 1.0])
    json.dump(saved, open(path, "w"))
    assert config.Config.from_dict(saved).scales == (0.5, 1.0)
    assert EvaluateOptions(run=run).predict is None  # no flag: the run's
    metrics = os.path.join(run, "eval", "metrics.json")
    evaluate_run(run, log=lambda *a: None)
    m = json.load(open(metrics))
    assert (m["predict"], m["overlap"], m["scales"]) == ("slide", 0.5, [0.5, 1.0])
    evaluate_run(run, log=lambda *a: None, scales=(1.0,))  # one flag; the others the run's
    m = json.load(open(metrics))
    assert (m["predict"], m["overlap"], m["scales"]) == ("slide", 0.5, [1.0])
    with pytest.raises(UserError, match="--overlap must be in"):
        config.Config.from_dict({**saved, "overlap": 1.5})
