"""The one config: a frozen dataclass that generates the CLI flags and is saved with every run.

Every field's comment gives the reason for its default. `add_arguments` turns the fields into
argparse flags (`image_shape` -> `--image-shape 160x576`, booleans -> `--flip/--no-flip`), and
`from_args` turns the parsed namespace back into a validated `Config`. The other commands'
options are dataclasses made the same way (`field`, `add_arguments(parser, cls=...)`,
`from_args(args, cls=...)`: fcn.options), and the checks they share with Config are written
once in fcn.checks.
"""

import argparse
import dataclasses
import json
from typing import get_type_hints

from fcn import checks
from fcn.errors import UserError
from fcn.inference.tta import CHOICES as TTA_CHOICES
from fcn.inference.tta import check as _check_tta
from fcn.models.decoders import DECODERS as _DECODERS  # registries only: no TensorFlow import
from fcn.models.encoders import ENCODERS as _ENCODERS

SAMPLINGS = ("uniform", "repeat_factor")  # fcn.data.sampling.SAMPLINGS (no data import here)

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
ENCODERS = tuple(_ENCODERS)
DECODERS = tuple(_DECODERS)
FC6_FORMS = ("auto", "conv", "im2col")
BEST_METRICS = ("auto", "val_iou", "val_mean_iou")
NORMALIZATIONS = ("raw", "centered")
LR_SCHEDULES = ("constant", "cosine")
# fcn.training.losses.LOSSES and fcn.training.losses.CLASS_WEIGHTS, repeated here so --help needs
# no TensorFlow.
LOSSES = ("ce", "weighted_ce", "dice", "focal", "dice_focal")
CLASS_WEIGHTINGS = ("auto", "none", "inverse", "median", "enet")
# The encoder has stride 32: a side shorter than this leaves layer 7 with nothing in it.
MIN_SIDE = 32


# The range of every numeric field: (low, high, low_closed, high_closed), high None for none.
# Each is checked once, in __post_init__, with fcn.checks.in_range's message.
_UNIT = (0, 1, True, True)  # probabilities
_NON_NEGATIVE = (0, None, True, False)
_POSITIVE = (0, None, False, False)
_RANGES = dict(
    epochs=_NON_NEGATIVE,
    learning_rate=_POSITIVE,
    keep_prob=(0, 1, False, True),
    l2_scale=_NON_NEGATIVE,
    skip_gain=_POSITIVE,
    bn_momentum=(0, 1, False, False),
    decoder_dropout=(0, 1, True, False),
    decoder_width=(0, 4, False, True),
    unet_filters=(1, None, True, False),
    val_count=_NON_NEGATIVE,
    **dict.fromkeys(
        "clahe_prob flip_prob vflip_prob rotate_prob shift_scale_prob brightness_contrast_prob "
        "blur_prob noise_prob".split(),
        _UNIT,
    ),
    **dict.fromkeys(
        "rotate_degrees shift_limit scale_limit brightness_limit contrast_limit blur_sigma "
        "noise_std focal_gamma focal_alpha".split(),
        _NON_NEGATIVE,
    ),
    clahe_clip=_POSITIVE,
    clahe_grid=(1, None, True, False),
    overlay_every=_NON_NEGATIVE,
    val_every=(1, None, True, False),
    keep_checkpoints=(1, None, True, False),
    max_train_images=_NON_NEGATIVE,
    peer_timeout=_POSITIVE,
)


# How a run's model predicts an image (fcn.inference.windows): recorded with the run, the default
# of evaluate, infer and serve. Here (not in fcn.options) because Config has the fields too.
PREDICT_MODES = ("whole", "slide")
DEFAULT_OVERLAP = 0.25  # a quarter of each window predicted twice: its edge is a neighbour's middle
PREDICT_HELP = (
    "whole: each image squeezed into the network's input size (the reference path); slide: "
    "windows of the network size over the image at --scales, blended (fcn.inference.windows)"
)
OVERLAP_HELP = "with --predict slide: windows' overlap, a fraction of the window"
# 1: one scale, the image's own; several average their probabilities (DeepLab's eval_scales).
SCALES_HELP = "image scale factors, comma-separated; several average their class probabilities"


def parse_scales(text):
    """'0.5,1,1.5' -> (0.5, 1.0, 1.5); an argparse error for anything that is not numbers (the
    values are checked, once, by fcn.checks.scales)."""
    try:
        return tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"scales must look like 0.5,1,1.5, got {text!r}") from None


def field(default, help, choices=None, flag=True, **flag_options):
    """A dataclass field that `add_arguments` makes a flag (flag=False: none, or one written by
    hand whose value still lands here). flag_options, for the commands' options (fcn.options):
    metavar; parse, the flag's text -> value (a tuple field's default: parse_shape); shown, the
    text of "(default: ...)" (a None default shows none without it); action "store_true" (a
    plain --flag) or "store_false" (a --no-flag), instead of the --flag/--no-flag pair a bool
    gets."""
    metadata = {"help": help, "choices": choices, "flag": flag, **flag_options}
    return dataclasses.field(default=default, metadata=metadata)


def _flag(name):
    return "--" + name.replace("_", "-")


def _rule(problem):
    """A shared check's message (fcn.checks) as one of Config's (ok, message) rules."""
    return problem is None, problem


@dataclasses.dataclass(frozen=True)
class Config:
    # --- where things are ---
    data_dir: str = field("./data", "folder that holds data_road/ (KITTI layout)")
    vgg_dir: str = field("./data/vgg", "VGG16 SavedModel folder (tag 'vgg16')")
    runs_dir: str = field("./runs", "every run writes into RUNS_DIR/<timestamp>/")
    dataset: str = field(
        "kitti_road",
        "dataset: kitti_road, mapillary, cityscapes, folder, coco, voc, labelme or labelstudio "
        "(fcn.data)",
    )
    # COCO: which categories become classes (names, or a supercategory such as 'vehicle').
    classes: str = field(
        "", "coco: comma-separated categories or supercategories ('' = person,car)"
    )
    # Class-balanced sampling (fcn.data.sampling): LVIS' repeat factors per image.
    sampling: str = field(
        "uniform",
        "uniform: each training image once an epoch; repeat_factor: LVIS' repeat-factor sampling",
        SAMPLINGS,
    )
    repeat_threshold: float = field(
        0.1, "repeat_factor's t: classes in fewer than this share of images are repeated"
    )
    voc_aug: bool = field(
        False, "voc: train on SBD's SegmentationClassAug/ (train_aug.txt)", action="store_true"
    )

    # --- the reference system's training recipe (Udacity FCN-8 on KITTI road) ---
    # 160x576 keeps KITTI's ~1:3.3 aspect ratio at a size whose sides are multiples of 32.
    image_shape: tuple = field((160, 576), "network input size HxW, e.g. 160x576")
    # Training on windows of the network-size images (the convolutions do not care about the
    # size) keeps objects at image_shape's scale for a fraction of the cost per step: aerial
    # tiles are trained this way, and validated and predicted whole.
    crop: tuple = field(
        (), "train on random HxW windows of the image_shape images (validation, prediction: whole)"
    )
    epochs: int = field(40, "passes over the training split (reference: 40)")
    batch_size: int = field(8, "images per step (reference: 8)")
    learning_rate: float = field(1e-4, "Adam learning rate (reference: 1e-4)")
    lr_schedule: str = field(
        "constant",
        "learning rate: constant (reference) or a per-step cosine decay to 0",
        LR_SCHEDULES,
    )
    keep_prob: float = field(0.5, "dropout keep probability on fc6/fc7 while training")
    # Cross-entropy is the reference's loss; Dice and focal suit rare classes (fcn.training.losses).
    loss: str = field("ce", "training loss", LOSSES)
    # auto: median-frequency weights for weighted_ce, none for the others. Computed once over
    # the training labels and written into the run (class_stats.json).
    class_weights: str = field(
        "auto", "per-class loss weights from the training labels' frequencies", CLASS_WEIGHTINGS
    )
    # RetinaNet's values (Lin et al. 2017): gamma 2 down-weights easy pixels, alpha scales.
    focal_gamma: float = field(2.0, "focal loss focusing parameter gamma")
    focal_alpha: float = field(0.25, "focal loss weight alpha")
    # Explicit L2 on the decoder kernels only: the encoder is pretrained (or He-initialised).
    l2_scale: float = field(1e-3, "L2 weight on decoder kernels, added to the loss (0 = off)")
    # --- the network: any encoder with any decoder (fcn.models) ---
    encoder: str = field("vgg16", "encoder (feature maps at strides 2..32)", ENCODERS)
    decoder: str = field("reference", "decoder head", DECODERS)
    # '' keeps the reference behaviour: vgg16 reads --vgg-dir, other encoders start random.
    weights: str = field(
        "", "encoder weights: a SavedModel folder, a Keras .h5 file, or 'random' ('' = default)"
    )
    # Channel multiplier of the encoder: tests build VGG16 at 1/16 (same structure, tiny). A
    # vgg16 SavedModel or .h5 of another width sets it from its weights' shapes.
    width: float = field(1.0, "encoder channel multiplier (1 = the published network)")
    # 0.99 (Keras's layer default) settles the moving statistics within a few hundred steps;
    # pretrained MobileNetV2 used 0.999, which needs far longer runs than ours.
    bn_momentum: float = field(0.99, "batch-norm moving-average momentum")
    # The tutorial's up-stack (512, 256, 128, 64 filters) costs ~40x the MobileNetV2 encoder at
    # 128x128 with upsample_conv; a quarter of it trains ~5x faster per image from scratch.
    decoder_width: float = field(
        1.0, "multiplier of the pix2pix/upsample_conv block filters (512, 256, 128, 64)"
    )
    # The TensorFlow segmentation tutorial's pix2pix blocks have dropout off by default.
    decoder_dropout: float = field(0.0, "dropout rate in pix2pix/upsample_conv/unet decoders")
    # 32 (not the lab's 64) halves a small U-Net's cost; the Dice lab trains well at either.
    unet_filters: int = field(32, "channels of the U-Net encoder's first stage (doubling)")
    # fc6 is a 7x7 conv on a tiny map: im2col + one matmul is faster in bf16 on some CPUs.
    fc6: str = field("auto", "VGG16 fc6 form: conv, im2col, or auto (bench's choice)", FC6_FORMS)
    # Truncated-normal stddev of the decoder kernels, from the reference system.
    init_stddev: float = field(0.01, "stddev of the decoder's truncated-normal init")
    # 1 keeps the reference damping of the skips (right for a pretrained VGG's large
    # activations). A from-scratch He-initialised encoder's maps are near unit scale: 1000 (pool4
    # x10, pool3 x1) let the stride-8 detail through; on the demo it beat 100 by 0.05 road IoU.
    skip_gain: float = field(1.0, "multiplier of the decoder's skip scales (0.01/0.001)")
    # fc6/fc7 hold 119 M of VGG16's 134 M parameters but see a 5x18 map at 160x576: fixing them
    # (as random features, or pretrained ones) cuts a CPU training step by ~30%.
    freeze: str = field(
        "", "comma-separated encoder variable prefixes kept fixed, e.g. fc6,fc7 ('' = train all)"
    )

    # --- data ---
    # 48 of KITTI's 289 training pairs (~17%) is the validation size the reference used.
    val_count: int = field(48, "validation images carved out of training (stratified)")
    seed: int = field(0, "seed of the split, the augmentation and the decoder init")
    # raw 0..255 is what our VGG SavedModels expect: their preprocessing is inside the graph.
    normalize: str = field(
        "raw", "input scaling: raw 0..255, or centered x/255-0.5", NORMALIZATIONS
    )
    # CLAHE as an augmentation (not preprocessing): applied with this probability, so the model
    # sees both contrast regimes and test images need no CLAHE.
    clahe_prob: float = field(0.5, "probability of CLAHE on a training image (0 = off)")
    clahe_clip: float = field(2.0, "CLAHE clip limit")
    clahe_grid: int = field(8, "CLAHE tile grid size")
    flip_prob: float = field(0.5, "probability of a horizontal flip of image and label")
    # The augmentations below are off by default: the KITTI recipe uses CLAHE and flips only.
    # Aerial images have no "up": vertical flips are free extra data there.
    vflip_prob: float = field(0.0, "probability of a vertical flip of image and label")
    rotate_prob: float = field(
        0.0, "probability of a rotation (labels: nearest, uncovered: ignore)"
    )
    rotate_degrees: float = field(10.0, "largest rotation angle in degrees (either way)")
    shift_scale_prob: float = field(0.0, "probability of a random shift and scale")
    shift_limit: float = field(0.1, "largest shift as a fraction of the side")
    scale_limit: float = field(0.1, "largest relative zoom in or out")
    brightness_contrast_prob: float = field(0.0, "probability of a brightness/contrast change")
    brightness_limit: float = field(0.2, "largest brightness change as a fraction of 255")
    contrast_limit: float = field(0.2, "largest relative contrast change")
    blur_prob: float = field(0.0, "probability of a Gaussian blur")
    blur_sigma: float = field(1.5, "largest Gaussian blur sigma in pixels")
    noise_prob: float = field(0.0, "probability of additive Gaussian noise")
    noise_std: float = field(8.0, "largest Gaussian noise standard deviation (0..255 levels)")
    threshold: float = field(
        0.5, "positive-class probability threshold of binary datasets (masks and metrics)"
    )
    tta: str = field(
        "none",
        "test-time augmentation: average the prediction over flipped copies (validation, "
        "evaluate, infer, export); d4 adds transposes (square --image-shape)",
        TTA_CHOICES,
    )
    # Training validates the network-size copies (one window, so slide == whole there at scale
    # 1); these are what the run's evaluate, infer and serve use unless told otherwise.
    predict: str = field("whole", "how the run predicts by default: " + PREDICT_HELP, PREDICT_MODES)
    overlap: float = field(DEFAULT_OVERLAP, OVERLAP_HELP)
    scales: tuple = field((1.0,), SCALES_HELP, metavar="S,S", parse=parse_scales, shown="1")
    # auto: the positive class's IoU for binary datasets, mean IoU for multi-class ones.
    best_metric: str = field(
        "auto", "validation score that picks the best checkpoint", BEST_METRICS
    )

    # --- run management ---
    overlay_every: int = field(5, "write validation overlays every N epochs (0 = only last)")
    # Validation costs a pass over the split (times the --tta copies) per epoch: a long recipe of
    # short epochs validates every few. The last epoch always validates, so the best checkpoint
    # is chosen among the validated epochs and the final figure is always there.
    val_every: int = field(1, "validate every N epochs (the last epoch always)")
    # 1: a resume needs only the latest; the best is that checkpoint or one kept beside it, never
    # a copy (fcn.training.checkpoint), so a VGG16 run folder holds 0.8-1.7 GB of checkpoints.
    keep_checkpoints: int = field(1, "how many latest checkpoints to keep besides the best")
    # 0 means the whole split: tests and the demo cap it to bound their time.
    max_train_images: int = field(0, "use at most N training images (0 = all)")
    precision: str = field(
        "auto", "compute precision (auto: bf16 on AMX CPUs, fp16 on GPU)", PRECISIONS
    )
    xla: bool = field(False, "compile the graph with XLA (GPU)")
    # '' trains on TensorFlow's default device. Several devices (or TF_CONFIG's workers) train
    # synchronously with tf.distribute; --batch-size stays the global batch
    # (fcn.training.distribute).
    devices: str = field(
        "", "devices to train on: gpu:0,gpu:1, all, or cpu:0,cpu:1 ('' = the default device)"
    )
    # Several machines: a killed peer leaves the others blocked in an all-reduce; any session
    # call waiting longer than this fails, and the job stops with its last checkpoint. 300 s is
    # far above one step of any model here (seconds on 2 CPU cores).
    peer_timeout: float = field(
        300.0, "several machines: seconds a step may wait for the other workers"
    )
    test_overlays: bool = field(True, "write an overlay of every test image at the end")

    def __post_init__(self):
        h, w = self.image_shape
        crop_h, crop_w = self.crop or (h, w)
        rules = [
            _rule(checks.batch_size(self.batch_size)),
            (
                h >= MIN_SIDE and w >= MIN_SIDE,
                f"--image-shape {h}x{w} is too small: the encoder has stride 32, use at least "
                f"{MIN_SIDE}x{MIN_SIDE} (multiples of 32 such as 160x576 are best)",
            ),
            (
                MIN_SIDE <= crop_h <= h and MIN_SIDE <= crop_w <= w,
                f"--crop {crop_h}x{crop_w} must fit in --image-shape {h}x{w} and be at least "
                f"{MIN_SIDE}x{MIN_SIDE}",
            ),
            _rule(checks.width(self.width)),
            _rule(checks.threshold(self.threshold)),
            _rule(checks.overlap(self.overlap)),
            _rule(checks.scales(self.scales)),
            (
                0 < self.repeat_threshold <= 1,
                f"--repeat-threshold is a share of images, in (0, 1]; got {self.repeat_threshold}",
            ),
        ]
        rules += [
            _rule(checks.in_range(_flag(name), getattr(self, name), *bounds))
            for name, bounds in _RANGES.items()
        ]
        for name, choices in (
            ("encoder", ENCODERS),
            ("decoder", DECODERS),
            ("fc6", FC6_FORMS),
            ("best_metric", BEST_METRICS),
            ("normalize", NORMALIZATIONS),
            ("precision", PRECISIONS),
            ("lr_schedule", LR_SCHEDULES),
            ("loss", LOSSES),
            ("class_weights", CLASS_WEIGHTINGS),
            ("sampling", SAMPLINGS),
        ):
            rules.append(_rule(checks.one_of(f"--{name}", getattr(self, name), choices)))
        rules.append(_rule(_check_tta(self.tta, self.image_shape)))
        checks.raise_first(message for ok, message in rules if not ok)

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        """Build from a saved config.json; unknown keys (from a newer version) are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(
                f"config has unknown keys {unknown}; was it written by a newer version?"
            )
        values = dict(values)
        for name in ("image_shape", "crop", "scales"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def parse_shape(text):
    """'160x576' -> (160, 576); a clear error for anything else."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image shape must look like 160x576, got {text!r}"
        ) from None
    return (h, w)


def field_names(cls=Config):
    return {f.name for f in dataclasses.fields(cls)}


def add_arguments(parser, cls=Config, defaults=None, only=None, recipe_defaults=False, hidden=()):
    """Add one flag per dataclass field (or only the named ones); defaults may be overridden.

    recipe_defaults: flags not given stay out of the parsed namespace (argparse.SUPPRESS), so a
    recipe's values fill them (fcn.commands.demo). hidden: fields whose flags --help leaves out.
    The field's flag options (`field`) choose the metavar, the default shown and the action."""
    hints = get_type_hints(cls)
    defaults = defaults or {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("flag", True) or (only is not None and f.name not in only):
            continue
        flag = "--" + f.name.replace("_", "-")
        default = defaults.get(f.name, f.default)
        kind = hints[f.name]
        help_text = f.metadata["help"]
        action = f.metadata.get("action")
        if recipe_defaults:
            default = argparse.SUPPRESS
        if action == "store_false":  # --no-tta: the field is True unless the flag is given
            parser.add_argument("--no-" + flag[2:], dest=f.name, action=action, help=help_text)
            continue
        if action == "store_true":
            parser.add_argument(flag, action=action, help=help_text)
            continue
        if kind is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=default, help=help_text
            )
            continue
        if "shown" in f.metadata:
            shown = f.metadata["shown"]
        else:
            shown = ("x".join(map(str, default)) or "off") if kind is tuple else default
        if recipe_defaults:
            shown = "the recipe's"
        if shown is not None:
            help_text = f"{help_text} (default: {shown})"
        kwargs = dict(default=default, help=argparse.SUPPRESS if f.name in hidden else help_text)
        kwargs["type"] = f.metadata.get("parse") or (parse_shape if kind is tuple else kind)
        if f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        if f.metadata.get("metavar"):
            kwargs["metavar"] = f.metadata["metavar"]
        parser.add_argument(flag, **kwargs)


def from_args(args, cls=Config):
    """The config from parsed flags; fields without a flag keep their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names})
