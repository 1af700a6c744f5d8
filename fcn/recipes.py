"""Recipes: each system the suite serves, run end to end offline on synthetic data of its kind
(`python main.py demo --recipe NAME`) with the figure it must reach.

A recipe is data: the synthetic kind and where it goes, the config that trains it, and the
validation score with its target. The score is `evaluate`'s on the validation split with the
final weights, at each image's original size (as benchmarks score), not at the network size.
Every figure below was measured on a 2-core CPU machine (README: "Recipes"); each recipe is
sized to finish within 10 minutes there.
"""

import dataclasses
import math

from fcn.errors import UserError

RANDOM_VGG = "./data/vgg_random"
# Batch norm predicts with its moving statistics. At the default 0.99 they still held 26% of
# their initial values after the ~135 steps of a 3-epoch run, and validation saw nothing (building
# IoU 0.00 while the training loss fell); 0.9 forgets the start within ~45 steps.
BN_MOMENTUM = 0.9


@dataclasses.dataclass(frozen=True)
class SceneTargets:
    """Large scenes a recipe predicts after training on tiles, and the figures they must reach:
    the positive class's IoU over every scene pixel and the SpaceNet polygon F1
    (fcn.evaluation.polygon_scores), both from `evaluate --split all` on `subdir`."""

    subdir: str  # the scenes' folder dataset, inside the recipe's dataset folder
    predict: str  # evaluate's --predict: how a scene many times the network's input is seen
    iou: float
    polygon_f1: float
    # Predicted regions of fewer pixels are not proposals: SpaceNet leaves out footprints under
    # 20 pixels; the scenes' smallest true footprint is ~250 pixels.
    min_area: float = 20.0


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    kind: str  # fcn.data.synth kind that generates its data
    synth_dir: str  # where `synth --kind` writes (the demo's --data-dir)
    count: int  # synthetic training images
    config: dict  # Config fields (data_dir included)
    score_label: str  # what the figure is, as printed
    target: float
    # Classes whose mean validation IoU is the figure; () = the run's selection score.
    score_classes: tuple = ()
    # The dataset's folder inside synth_dir, as `synth --kind` writes it; '{dataset}' when it
    # writes one folder per layout (streets: mapillary/ and cityscapes/) and --dataset picks.
    data_subdir: str = ""
    scenes: SceneTargets = None  # also predicted after training (footprints); None: none

    @property
    def needs_vgg(self):
        return self.config.get("encoder", "vgg16") == "vgg16"


# Full VGG16 from scratch (random He weights), sized to finish in <= 390 s on 2 CPU cores.
# What each choice bought, measured on 3-epoch runs at 96x320 (docs/performance.md): skip gain
# 1000 instead of 100 (pool3 undamped: whole road widths, not a central blob) 0.818 -> 0.869
# road IoU; no L2 on the decoder (whose 13 M weights made the penalty 7x the data loss) 0.871;
# batch 4 (1.75x the updates for 1.15x the time per image) 0.900. Freezing the random fc6/fc7
# (119 M of the 134 M weights, on a 3x10 map) makes a step ~30% cheaper. Many distinct images
# seen few times beat few images seen often (148 images x 8 epochs stalled at 0.87).
# The random block1 frozen too (its 2 convolutions at full resolution; 3x3x3x64 + 3x3x64x64
# weights): no weight gradients there and none through them, 0.9153 against 0.9138 trained, in
# fewer seconds; block2 frozen as well fell to 0.8985 (2026-12-06, docs/performance.md).
VGG_FROZEN = "fc6,fc7,block1_conv1,block1_conv2"
KITTI_ROAD = Recipe(
    name="kitti_road",
    description="FCN-8 on VGG16, KITTI road layout (the reference system)",
    kind="kitti",
    synth_dir="./data/synthetic",
    count=440,
    config=dict(
        vgg_dir=RANDOM_VGG,
        image_shape=(96, 320),
        epochs=3,
        batch_size=4,
        learning_rate=5e-4,
        lr_schedule="cosine",
        skip_gain=1000.0,
        l2_scale=0.0,
        freeze=VGG_FROZEN,
        val_count=40,
        # Full-size validation overlays of the last epoch only: each pass re-predicts the 40
        # frames at 1242x375 (8 s; the per-epoch scores are in the log and the run page).
        overlay_every=0,
    ),
    score_label="validation road IoU",
    target=0.90,
)

STREETS = Recipe(
    name="streets",
    description="U-Net on VGG16, Mapillary layout, 7 street classes, Dice + focal",
    kind="streets",
    synth_dir="./data/synthetic_streets",
    # 360 images validated every 2nd epoch: 0.7227 in 335 s; 400 every epoch 0.7353 in 370 s,
    # over the 390 s margin with the data's writing (2026-12-06, docs/performance.md).
    count=360,
    config=dict(
        bn_momentum=BN_MOMENTUM,
        dataset="mapillary",
        vgg_dir=RANDOM_VGG,
        decoder="unet",
        loss="dice_focal",
        class_weights="median",
        image_shape=(96, 192),
        epochs=4,
        batch_size=4,
        learning_rate=5e-4,
        lr_schedule="cosine",
        l2_scale=0.0,
        freeze=VGG_FROZEN,  # 0.7353 against 0.7430; with block2 frozen too 0.6794
        val_count=40,
        val_every=2,
        clahe_prob=0.0,
        flip_prob=0.5,
        brightness_contrast_prob=0.5,
        rotate_prob=0.3,
        rotate_degrees=5.0,
        noise_prob=0.3,
        overlay_every=0,  # the last epoch's only (each pass 6.5 s)
    ),
    score_label="validation mean IoU over the 7 classes",
    target=0.70,
    data_subdir="{dataset}",
)

FOOTPRINTS = Recipe(
    name="footprints",
    description="MobileNetV2 + pix2pix, aerial building footprints (0/255 masks)",
    kind="footprints",
    synth_dir="./data/synthetic_footprints",
    # Four times the images of the other recipes: at ~1800 steps, 400 of them were overfitted
    # (train loss 0.079, validation 0.093) and the building IoU stalled at 0.73; in the same
    # 1900 steps 1600 reached 0.803 where 800 reached 0.785 (128x128, at the network size).
    count=1600,
    config=dict(
        bn_momentum=BN_MOMENTUM,
        dataset="folder",
        encoder="mobilenet_v2",
        decoder="pix2pix",
        weights="random",
        loss="ce",
        decoder_width=0.25,  # as in coco: the full up-stack would cost several times the encoder
        # float32 trains this net faster than bfloat16 on CPU (0.29 vs 0.38 s a step, 128x128,
        # batch 8: its many small depthwise and 1x1 layers gain nothing from bf16 and pay the
        # casts); 96x96 crops for 8 epochs were faster still but reached 0.825, not 0.85.
        precision="float32",
        # Tiles (128-256 px) near their own scale, trained on 128x128 windows at the cost of
        # 128x128 images: 8-pixel roofs stay 8 pixels. Same steps, whole 128x128 images: building
        # IoU 0.824 at the original size; 192 with 128 windows 0.842; 256 with 128 windows 0.843.
        image_shape=(192, 192),
        crop=(128, 128),
        epochs=10,
        batch_size=8,
        learning_rate=2e-3,
        lr_schedule="cosine",
        l2_scale=0.0,
        val_count=40,
        clahe_prob=0.0,
        flip_prob=0.5,
        vflip_prob=0.5,
        rotate_prob=0.3,
        rotate_degrees=15.0,
        # Overhead tiles have no up or left: predict as the mean over the four flips (0.862;
        # single pass 0.842). The 8 symmetries of d4 scored the same (0.8625) at twice the cost.
        tta="flips",
        # Each validation is a pass of 40 tiles x 4 flips (3.4 s): at epochs 5 and 10, where
        # every epoch's cost 10 of the recipe's seconds; the demo scores the final weights.
        val_every=5,
        overlay_every=0,
    ),
    score_label="validation building IoU",
    data_subdir="footprints",
    target=0.85,
    # synth's 2048 x 2048 scenes (fcn.data.synth.footprint_scenes), seen by windows of the
    # network's size at the tiles' scale: `whole` would squeeze each into 192 x 192.
    scenes=SceneTargets(subdir="scenes", predict="slide", iou=0.85, polygon_f1=0.80),
)

COCO = Recipe(
    name="coco",
    description="MobileNetV2 + upsample_conv, COCO instances JSON, person and car",
    kind="coco",
    synth_dir="./data/synthetic_coco",
    count=400,
    config=dict(
        bn_momentum=BN_MOMENTUM,
        dataset="coco",
        classes="person,car",
        encoder="mobilenet_v2",
        decoder="upsample_conv",
        weights="random",
        loss="ce",
        # A quarter of the tutorial's up-stack: the full one costs ~40x the encoder here.
        decoder_width=0.25,
        image_shape=(128, 128),
        epochs=20,
        batch_size=8,
        learning_rate=2e-3,
        lr_schedule="cosine",
        l2_scale=0.0,
        val_count=40,
        clahe_prob=0.0,
        flip_prob=0.5,
        overlay_every=5,  # full-size validation overlays: 4 snapshots of the model learning
    ),
    score_label="validation mean IoU of person and car",
    target=0.60,
    score_classes=("person", "car"),
    data_subdir="coco",
)

DICE_UNET = Recipe(
    name="dice_unet",
    description="a small U-Net trained with soft Dice, images + 0/255 masks",
    kind="shapes",
    synth_dir="./data/synthetic_shapes",
    # 800 images: with 400 the foreground IoU stalled at 0.80 (training loss 0.046, validation
    # 0.060). Single-pass, at the original size, 40 epochs reached 0.836; 60 epochs (0.838) or
    # 128x128 (0.836) bought nothing. The d4 average of the same weights: 0.863.
    count=800,
    config=dict(
        bn_momentum=BN_MOMENTUM,
        dataset="folder",
        encoder="unet",
        decoder="unet",
        weights="random",
        loss="dice",
        unet_filters=16,
        # 96x96 trains ~1.8x faster than 128x128 for the same IoU on these blobs.
        image_shape=(96, 96),
        # 32 epochs leave time for validating on 8 copies: 0.861 (40 epochs: 0.863, over 10 min).
        epochs=32,
        # Validating on 8 copies is ~1/8 of an epoch's time: every 4th epoch (and the last) is
        # enough to pick the best. Precision: the default (auto). On the AMD EPYC with AVX512-BF16
        # of 2026-12-06 bfloat16 took 8-9 s an epoch against float32's 11-15 s and scored 0.8546
        # against 0.8502 (36 epochs: 0.8549); on 2026-12-03's Intel Xeon (AMX) the same pair was
        # 0.8495 and 0.8576 (docs/performance.md): the figure's spread between numerics.
        val_every=4,
        batch_size=8,
        learning_rate=2e-3,
        lr_schedule="cosine",
        l2_scale=0.0,
        val_count=40,
        clahe_prob=0.0,
        # Blobs lit from any side have no up or left: train on both flips (32 epochs without
        # the vertical one: 0.855) and predict as the mean over the square's 8 symmetries.
        flip_prob=0.5,
        vflip_prob=0.5,
        blur_prob=0.3,
        tta="d4",
        overlay_every=10,
    ),
    score_label="validation foreground IoU",
    data_subdir="shapes",
    target=0.85,
)

RECIPES = {r.name: r for r in (KITTI_ROAD, STREETS, FOOTPRINTS, COCO, DICE_UNET)}


def get(name):
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def reached(value, target):
    """Whether a figure (None or NaN: not measured) reaches its target."""
    return value is not None and math.isfinite(value) and value >= target


def decide(recipe, figure, scene_iou=None, polygon_f1=None):
    """(passed, the figures as printed): every target the recipe has must be reached (the
    validation figure, and with scenes their IoU and polygon F1)."""

    def shown(label, value, target):
        number = f"{value:.4f}" if reached(value, float("-inf")) else "n/a"
        verdict = "reached" if reached(value, target) else "DID NOT reach"
        return f"{label} {number} {verdict} the target {target:.2f}"

    parts = [shown(recipe.score_label, figure, recipe.target)]
    ok = reached(figure, recipe.target)
    if recipe.scenes is not None:
        s = recipe.scenes
        parts.append(shown(f"scene building IoU ({s.predict})", scene_iou, s.iou))
        parts.append(shown("scene polygon F1", polygon_f1, s.polygon_f1))
        ok = ok and reached(scene_iou, s.iou) and reached(polygon_f1, s.polygon_f1)
    return ok, "; ".join(parts)


def score(recipe, result, spec):
    """The recipe's figure from an `evaluate` result (its metrics.json): the mean IoU of the
    recipe's classes, else the run's selection score: the positive class's IoU (binary) or the
    mean IoU over the classes present (multi-class). None when a class it needs is missing."""
    classes = result.get("classes") or {}
    if recipe.score_classes:
        wanted = recipe.score_classes
    elif spec.task == "binary":
        wanted = (spec.positive_name,)
    else:
        return result.get(result.get("headline", "mean_iou"))
    ious = [classes.get(c, {}).get("iou") for c in wanted]
    if any(v is None for v in ious):
        return None
    return sum(ious) / len(ious)
