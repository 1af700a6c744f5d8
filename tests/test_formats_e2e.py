"""train, evaluate, export and infer end to end on each hand-labelled format (VOC, LabelMe,
Label Studio) written by synth, with a 4-filter U-Net on 32x32 inputs; and a Cityscapes run
evaluating on a folder that holds only val/, with the benchmark's figures, and --submit."""

import glob
import json
import os
import shutil
import zipfile

import cv2
import numpy as np
import pytest

from fcn import cli
from fcn.data import synth

TINY = ["--encoder", "unet", "--decoder", "unet", "--weights", "random", "--unet-filters", "4"]
TINY += ["--image-shape", "32x32", "--epochs", "1", "--batch-size", "2", "--val-count", "2"]
TINY += ["--precision", "float32", "--no-test-overlays"]
SIZES = ((40, 56), (36, 48))


def _run_dir(runs_dir):
    (run,) = [d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d))]
    return os.path.join(runs_dir, run)


@pytest.mark.parametrize(
    "kind,extra",
    [
        ("voc", ["--voc-aug"]),
        ("labelme", ["--sampling", "repeat_factor", "--repeat-threshold", "1.0"]),
        ("labelstudio", []),
    ],
)
def test_format_trains_evaluates_exports_and_infers(kind, extra, tmp_path, capsys):
    summary = synth.generate(kind, tmp_path / "data", count=6, test_count=2, seed=0, sizes=SIZES)
    (data_dir,) = summary["roots"].values()
    runs = str(tmp_path / "runs")
    argv = ["train", "--dataset", kind, "--data-dir", data_dir, "--runs-dir", runs, *TINY, *extra]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    # repeat-factor sampling prints each class's expected repeats
    assert ("expected repeats" in printed) == ("repeat_factor" in extra)
    run_dir = _run_dir(runs)
    spec = json.load(open(os.path.join(run_dir, "dataset.json")))
    assert spec["name"] == kind and spec["class_names"][0] == "background"
    split = json.load(open(os.path.join(run_dir, "split.json")))
    assert len(split["val"]) == (summary.get("val") or 1)
    assert cli.main(["evaluate", "--run", run_dir]) == 0
    metrics = json.load(open(os.path.join(run_dir, "eval", "metrics.json")))
    assert metrics["num_images"] == len(split["val"]) and 0 <= metrics["pixel_accuracy"] <= 1
    export_dir = str(tmp_path / "export")
    assert cli.main(["export", "--run", run_dir, "--out", export_dir]) == 0
    out = tmp_path / "infer"
    test_dir = os.path.join(data_dir, "test") if kind != "voc" else None
    images = (
        [os.path.join(test_dir, f) for f in sorted(os.listdir(test_dir))]
        if test_dir
        else [os.path.join(data_dir, "JPEGImages", n + ".jpg") for n in split["val"]]
    )
    assert cli.main(["infer", "--run", export_dir, *images, "--out", str(out), "--save-mask"]) == 0
    assert len([f for f in os.listdir(out) if "mask" in f]) == len(images)
    capsys.readouterr()


def test_cityscapes_val_only_folder_evaluates_with_the_benchmark_figures_and_submits(
    tmp_path, capsys
):
    summary = synth.generate("streets", tmp_path / "data", count=4, test_count=1, seed=0,
                             sizes=SIZES, val_count=2)  # fmt: skip
    data_dir = summary["roots"]["cityscapes"]
    runs = str(tmp_path / "runs")
    argv = ["train", "--dataset", "cityscapes", "--data-dir", data_dir, "--runs-dir", runs, *TINY]
    assert cli.main(argv) == 0
    run_dir = _run_dir(runs)
    val_only = tmp_path / "val_only"
    for sub in ("leftImg8bit/val", "gtFine/val"):
        shutil.copytree(os.path.join(data_dir, sub), val_only / sub)
    argv = ["evaluate", "--run", run_dir, "--data-dir", str(val_only)]
    assert cli.main(argv) == 0
    metrics = json.load(open(os.path.join(run_dir, "eval", "metrics.json")))
    assert metrics["num_images"] == 2 and metrics["data_dir"] == str(val_only)
    cs = metrics["cityscapes"]  # synth writes instanceIds: all four figures are there
    assert cs["instances"] == "instanceIds"
    for key in ("iou_class", "iiou_class", "iou_category", "iiou_category"):
        assert cs[key] is None or 0 <= cs[key] <= 1
    assert cs["iou_class"] is not None and set(cs["categories"]) >= {"flat", "vehicle"}
    summary_md = open(os.path.join(run_dir, "eval", "summary.md")).read()
    assert "## Cityscapes benchmark" in summary_md and "| iiou_category |" in summary_md
    # --submit: the test split as label-id PNGs at the original size, and their zip
    assert cli.main(["evaluate", "--run", run_dir, "--submit"]) == 0
    sub = os.path.join(run_dir, "submission")
    (test_image,) = glob.glob(os.path.join(data_dir, "leftImg8bit", "test", "*", "*.png"))
    stem = os.path.basename(test_image)[: -len("_leftImg8bit.png")]
    written = cv2.imread(os.path.join(sub, stem + "_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == cv2.imread(test_image).shape[:2]
    assert set(np.unique(written)) <= {7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27,
                                       28, 31, 32, 33}  # fmt: skip
    with zipfile.ZipFile(os.path.join(sub, "cityscapes_results.zip")) as z:
        assert z.namelist() == [stem + "_labelIds.png"]
    capsys.readouterr()
