"""`python main.py demo [--recipe NAME]`: a system end to end offline on synthetic data of its
kind (fcn.recipes), which must reach its validation target within 10 minutes on 2 CPU cores.

The default recipe is the reference system: FCN-8 on a random VGG16, synthetic KITTI road.
A recipe with scenes (footprints) then predicts them too (fcn.recipes.SceneTargets) and must
reach those targets as well.
Every training flag may be given; those not given take the recipe's values.
"""

import dataclasses
import os
import time

from fcn import config as cfg
from fcn import recipes
from fcn.commands import train as train_command

DEMO_DATA = recipes.KITTI_ROAD.synth_dir
DEMO_VGG = recipes.RANDOM_VGG
DEMO_TARGET_IOU = recipes.KITTI_ROAD.target
DEMO_DEFAULTS = {"data_dir": DEMO_DATA, **recipes.KITTI_ROAD.config}
DEMO_COUNT = recipes.KITTI_ROAD.count
SCENES_EVAL_DIR = "eval_scenes"  # the scenes' reports, beside the validation split's eval/
_SCENES_MORE = "; footprints predicts them after training and must reach their targets; 0: none"


def add_arguments(parser):
    parser.add_argument(
        "--recipe",
        default=recipes.KITTI_ROAD.name,
        choices=list(recipes.RECIPES),
        help="which system: "
        + "; ".join(f"{r.name}: {r.description}" for r in recipes.RECIPES.values())
        + f" (default: {recipes.KITTI_ROAD.name})",
    )
    # Flags left out take the recipe's values, so their defaults are shown as the recipe's.
    cfg.add_arguments(parser, recipe_defaults=True)
    parser.add_argument(
        "--count", type=int, help="synthetic training images (default: the recipe's)"
    )
    add_scene_arguments(parser, _SCENES_MORE)


def add_scene_arguments(parser, more=""):
    """--scenes and --scene-side: the footprint scenes synth writes (and the demo predicts).
    The defaults in the help are fcn.data.synth.footprint_scenes' (not imported: parsing the
    command line stays free of the data package)."""
    parser.add_argument(
        "--scenes", type=int, metavar="N",
        help=f"large georeferenced footprint scenes to write (default 2{more})",
    )  # fmt: skip
    parser.add_argument(
        "--scene-side", type=int, metavar="PX",
        help="their side in pixels (default 2048, at least 384)",
    )  # fmt: skip


def scene_options(args, kind):
    """synth.generate's scene options from --scenes / --scene-side (footprints only)."""
    from fcn.data.synth import footprint_scenes as fs
    from fcn.errors import UserError

    given = {"scenes": args.scenes, "scene_side": args.scene_side}
    given = {k: v for k, v in given.items() if v is not None}
    if kind != "footprints":
        if given:
            raise UserError(f"--scenes and --scene-side are for footprints, not {kind}: drop them")
        return {}
    return {"scenes": fs.SCENE_COUNT, "scene_side": fs.SCENE_SIDE, **given}


def recipe_config(recipe, args):
    """(where the synthetic data goes, the run's Config): the recipe's config under the flags
    given on the command line."""
    given = {k: v for k, v in vars(args).items() if k in cfg.field_names()}
    # --data-dir is where the synthetic data goes; a recipe may read a folder inside it.
    synth_dir = given.pop("data_dir", recipe.synth_dir)
    dataset = given.get("dataset", recipe.config.get("dataset"))
    subdir = recipe.data_subdir.format(dataset=dataset)
    data_dir = os.path.join(synth_dir, subdir) if subdir else synth_dir
    values = {**recipe.config, "data_dir": data_dir, **given}
    if values.get("crop") and "image_shape" in given and "crop" not in given:
        # A smaller --image-shape than the recipe's crop trains on whole images of that size.
        values["crop"] = tuple(map(min, values["crop"], values["image_shape"]))
    h, w = values.get("image_shape", (0, 0))
    if values.get("tta") == "d4" and h != w and "tta" not in given:
        # The recipe's transposes need a square input; a non-square one keeps the flips.
        values["tta"] = "flips"
    return synth_dir, cfg.Config(**values)


def run(args):
    from fcn.data import synth
    from fcn.models import savedmodel
    from fcn.training import train

    recipe = recipes.get(args.recipe)
    synth_dir, config = recipe_config(recipe, args)
    count = args.count or recipe.count
    scenes = scene_options(args, recipe.kind)
    t0 = time.time()
    if not _has_data(config, recipe):
        print(f"writing a synthetic {recipe.kind} dataset ({count} images) to {synth_dir}")
        synth.generate(
            recipe.kind, synth_dir, count=count, test_count=12, seed=config.seed, **scenes
        )
    if (
        recipe.needs_vgg
        and config.encoder == "vgg16"
        and not config.weights
        and not os.path.exists(os.path.join(config.vgg_dir, "saved_model.pb"))
    ):
        print(f"building a random-weight VGG16 SavedModel in {config.vgg_dir}")
        savedmodel.save_vgg16(config.vgg_dir, seed=config.seed)
    run_dir, summary = train.train(config)
    train_command.print_summary(run_dir, summary)
    if run_dir is None:  # a worker other than the chief (fcn.training.distribute): the chief scores
        return 0
    figure = _score(recipe, run_dir, summary)
    scene_iou = polygon_f1 = None
    if recipe.scenes is not None and scenes["scenes"] == 0:
        recipe = dataclasses.replace(recipe, scenes=None)  # --scenes 0: the tiles' target only
    if recipe.scenes is not None:
        scene_iou, polygon_f1 = _score_scenes(recipe, run_dir, config, scenes)
    ok, figures = recipes.decide(recipe, figure, scene_iou, polygon_f1)
    print(
        f"demo {recipe.name}: {figures} in {time.time() - t0:.0f}s; run page "
        f"{os.path.join(run_dir, 'index.html')}"
    )
    return 0 if ok else 1


def _score(recipe, run_dir, summary):
    """The recipe's figure, scored as benchmarks score: the final weights on the validation
    split at each image's original size (`evaluate`: probabilities resized back, then decided),
    not on the network-size copies that training validates on. None without a validation split.
    """
    from fcn import runs
    from fcn.evaluation import evaluate

    if not summary.get("val_images"):
        return None
    result = evaluate.evaluate_run(run_dir, split="val", checkpoint="latest")
    spec = runs.RunFolder(run_dir).read_spec()
    return recipes.score(recipe, result, spec)


def _score_scenes(recipe, run_dir, config, scenes):
    """(building IoU, polygon F1) of the final weights on the recipe's scenes, predicted by its
    mode; reports in RUN_DIR/eval_scenes/. Scenes missing from an earlier demo's data are
    written first (scenes: their count and side); scenes already there are predicted as they
    are."""
    from pathlib import Path

    from fcn import runs
    from fcn.data.synth import footprint_scenes
    from fcn.evaluation import evaluate

    s = recipe.scenes
    scenes_dir = os.path.join(config.data_dir, s.subdir)
    if not os.path.isdir(scenes_dir):
        print(f"writing {scenes['scenes']} synthetic scenes to {scenes_dir}")
        footprint_scenes.write(
            Path(config.data_dir), scenes["scenes"], config.seed, scenes["scene_side"]
        )
    result = evaluate.evaluate_run(
        run_dir, split="all", checkpoint="latest", data_dir=scenes_dir, predict=s.predict,
        min_area=s.min_area, out_name=SCENES_EVAL_DIR,
    )  # fmt: skip
    spec = runs.RunFolder(run_dir).read_spec()
    return recipes.score(recipe, result, spec), (result.get("polygons") or {}).get("f1")


def _has_data(config, recipe):
    """Whether the recipe's synthetic data is already there (written by an earlier demo)."""
    if recipe.kind == "kitti":
        return os.path.isdir(os.path.join(config.data_dir, "data_road"))
    return os.path.isdir(config.data_dir) and bool(os.listdir(config.data_dir))
