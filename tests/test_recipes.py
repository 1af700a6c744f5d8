"""Recipes: each system runs end to end through the same commands on its own dataset format —
`demo --recipe` writes its synthetic data and trains, then evaluate, infer and export use the
run. Tiny sizes: these check the plumbing, the recipe targets are measured by the demo itself."""

import json
import os

import pytest

from conftest import AUTO_BF16
from fcn import cli, config, data, recipes
from fcn.precision import resolve

# The table: the model and loss of each system.
SYSTEMS = {
    "kitti_road": ("vgg16", "reference", "ce", "kitti_road"),
    "streets": ("vgg16", "unet", "dice_focal", "mapillary"),
    "footprints": ("mobilenet_v2", "pix2pix", "ce", "folder"),
    "coco": ("mobilenet_v2", "upsample_conv", "ce", "coco"),
    "dice_unet": ("unet", "unet", "dice", "folder"),
}


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_recipe_config_is_valid_and_builds_the_named_system(name):
    recipe = recipes.get(name)
    cfg = config.Config(**recipe.config)
    assert (cfg.encoder, cfg.decoder, cfg.loss, cfg.dataset) == SYSTEMS[name]
    assert 0 < recipe.target < 1 and recipe.count > 0


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(Exception, match="choose one of kitti_road, streets"):
        recipes.get("nope")


def test_score_is_the_mean_iou_of_the_recipe_classes_or_the_selection_score():
    from fcn.data import datasets

    result = {
        "mean_iou": 0.4,
        "mean_iou_present": 0.5,
        "headline": "mean_iou_present",
        "classes": {"background": {"iou": 0.9}, "person": {"iou": 0.6}, "car": {"iou": 0.7}},
    }
    coco = datasets.get_spec("cityscapes")  # any multi-class spec
    assert recipes.score(recipes.COCO, result, coco) == pytest.approx(0.65)  # (0.6 + 0.7) / 2
    # Multi-class without named classes: the headline mean (here over the classes present).
    assert recipes.score(recipes.STREETS, result, coco) == 0.5
    partial = {"classes": {"person": {"iou": 0.6}}}
    assert recipes.score(recipes.COCO, partial, coco) is None
    # Binary: the positive class's IoU.
    kitti = datasets.get_spec("kitti_road")
    road = {"classes": {"not_road": {"iou": 0.97}, "road": {"iou": 0.91}}, "mean_iou": 0.94}
    assert recipes.score(recipes.KITTI_ROAD, road, kitti) == 0.91


def test_flags_given_adapt_the_recipe_crop_and_tta_to_a_smaller_or_non_square_input():
    from fcn.commands import demo
    from fcn.errors import UserError

    def configured(recipe, *flags):
        args = cli.build_parser().parse_args(["demo", "--recipe", recipe.name, *flags])
        return demo.recipe_config(recipe, args)[1]

    footprints = configured(recipes.FOOTPRINTS)
    assert (footprints.image_shape, footprints.crop, footprints.tta) == (
        (192, 192),
        (128, 128),
        "flips",
    )
    # 96x128: the 128x128 crop shrinks to the input.
    assert configured(recipes.FOOTPRINTS, "--image-shape", "96x128").crop == (96, 128)
    # dice_unet's d4 (transposes) becomes flips on a non-square input, unless asked for.
    assert configured(recipes.DICE_UNET).tta == "d4"
    assert configured(recipes.DICE_UNET, "--image-shape", "64x64").tta == "d4"
    assert configured(recipes.DICE_UNET, "--image-shape", "96x128").tta == "flips"
    with pytest.raises(UserError, match="--tta d4 transposes the image"):
        configured(recipes.DICE_UNET, "--image-shape", "96x128", "--tta", "d4")


# Tiny runs: small networks (the 1/16 VGG16, 4-filter U-Net), 64x64 inputs, one epoch.
_TINY = ["--epochs", "1", "--batch-size", "2", "--val-count", "2"]
_TINY += ["--unet-filters", "4", "--count", "6", "--image-shape", "64x64"]


# float32 for every recipe; the KITTI demo once more under --precision auto (no flag: what
# users get, bfloat16 on bf16 CPUs).
@pytest.mark.parametrize(
    "name,dataset,precision",
    [
        ("kitti_road", None, "float32"),
        ("streets", None, "float32"),
        ("streets", "cityscapes", "float32"),
        ("footprints", None, "float32"),
        ("coco", None, "float32"),
        ("dice_unet", None, "float32"),
        pytest.param("kitti_road", None, *AUTO_BF16.values, marks=AUTO_BF16.marks, id="auto"),
    ],
)
def test_recipe_runs_end_to_end_and_its_run_evaluates_infers_and_exports(
    name, dataset, precision, tiny_vgg, tmp_path, capsys
):
    recipe = recipes.get(name)
    data_dir, runs_dir = str(tmp_path / "data"), str(tmp_path / "runs")
    argv = ["demo", "--recipe", name, "--data-dir", data_dir, "--runs-dir", runs_dir, *_TINY]
    argv += [] if precision == "auto" else ["--precision", precision]
    argv += ["--vgg-dir", tiny_vgg] + (["--dataset", dataset] if dataset else [])
    argv += ["--scenes", "1", "--scene-side", "384"] if recipe.scenes else []
    code = cli.main(argv)
    out = capsys.readouterr().out
    # A one-epoch run on six images is far below the target: exit 1, and the figure printed.
    assert f"demo {name}: {recipe.score_label}" in out
    assert code in (0, 1) and ("DID NOT reach" in out) == (code == 1)
    (run,) = [d for d in os.listdir(runs_dir) if os.path.isdir(os.path.join(runs_dir, d))]
    run_dir = os.path.join(runs_dir, run)
    assert os.path.isfile(os.path.join(runs_dir, "index.html"))  # the page of all runs
    summary = json.load(open(os.path.join(run_dir, "summary.json")))
    assert summary["dataset"] == (dataset or SYSTEMS[name][3])
    # A recipe's training crop shrinks to a smaller --image-shape given on the command line.
    saved = config.Config.from_dict(json.load(open(os.path.join(run_dir, "config.json"))))
    assert saved.image_shape == (64, 64) and saved.crop in ((), (64, 64))
    assert bool(saved.crop) == bool(recipe.config.get("crop"))
    spec = json.load(open(os.path.join(run_dir, "dataset.json")))
    stats = json.load(open(os.path.join(run_dir, "class_stats.json")))
    assert stats["class_names"] == spec["class_names"] and sum(stats["pixels"]) > 0
    assert os.path.isfile(os.path.join(run_dir, "index.html"))
    # The figure is evaluate's, on the validation split at the images' original size.
    result = json.load(open(os.path.join(run_dir, "eval", "metrics.json")))
    assert result["split"] == "val" and result["checkpoint"].startswith(
        os.path.join(run_dir, "checkpoints")
    )
    assert saved.precision == precision
    # The demo scores at evaluate's default, whatever the training precision: one policy.
    assert result["precision"] == resolve("auto")
    figure = recipes.score(recipe, result, data.DatasetSpec.from_dict(spec))
    # Two tiny validation images may hold no car at all: then there is no figure to print.
    shown = "n/a" if figure is None else f"{figure:.4f}"
    assert f"demo {name}: {recipe.score_label} {shown} " in out
    if recipe.scenes:  # then the scene, slid over as the recipe says, and its two figures
        scenes = json.load(open(os.path.join(run_dir, "eval_scenes", "metrics.json")))
        assert scenes["split"] == "all"
        assert scenes["num_images"] == scenes["polygons"]["images"] == 1
        assert scenes["predict"] == recipe.scenes.predict == "slide"
        assert {"precision", "recall", "f1"} <= set(scenes["polygons"])
        assert "; scene building IoU (slide) " in out and "; scene polygon F1 " in out

    assert cli.main(["evaluate", "--run", run_dir]) == 0
    assert os.path.isfile(os.path.join(run_dir, "eval", "metrics.json"))
    export_dir = str(tmp_path / "export")
    assert cli.main(["export", "--run", run_dir, "--out", export_dir]) == 0
    split = json.load(open(os.path.join(run_dir, "split.json")))
    assert split["val"], "every recipe validates"
    images = [p for p in _val_images(run_dir) if p]
    for label, model in (("from_run", run_dir), ("from_export", export_dir)):
        out_dir = str(tmp_path / label)
        assert cli.main(["infer", "--run", model, *images, "--out", out_dir]) == 0
        assert len(os.listdir(out_dir)) >= len(images)
    capsys.readouterr()


def _val_images(run_dir):
    """Paths of the run's validation images (from its validation overlays' names)."""
    cfg = config.Config.from_dict(json.load(open(os.path.join(run_dir, "config.json"))))
    spec = data.DatasetSpec.from_dict(json.load(open(os.path.join(run_dir, "dataset.json"))))
    train_ex, val_ex = data.list_splits(cfg.data_dir, spec)
    names = set(json.load(open(os.path.join(run_dir, "split.json")))["val"])
    return [ex.image_path for ex in train_ex + (val_ex or []) if ex.name in names][:2]
