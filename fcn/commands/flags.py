"""Flags that several commands share, defined once (the training flags come from fcn.config)."""

from fcn import config as cfg
from fcn import names

PREDICT_BATCH_SIZE = 8  # images per forward pass when predicting


def checkpoint(parser):
    parser.add_argument(
        "--checkpoint",
        choices=tuple(names.CHECKPOINTS),
        default="best",
        help="which checkpoint of the run: best (best validation score) or latest (default: best)",
    )


def threshold(parser, default_text="the run's"):
    parser.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="positive-class probability threshold of binary datasets, for masks and metrics "
        f"(default: {default_text})",
    )


def batch_size(parser, default=PREDICT_BATCH_SIZE):
    parser.add_argument(
        "--batch-size",
        type=int,
        default=default,
        help=f"images per forward pass (default: {default})",
    )


def precision(parser):
    # One default for every command that predicts (fcn.inference.predictor.DEFAULT_PRECISION),
    # so evaluate scores what infer writes.
    parser.add_argument(
        "--precision",
        choices=cfg.PRECISIONS,
        default="auto",
        help="compute precision when predicting (default: auto: fp16 on a GPU, bf16 on CPUs "
        "with bf16 instructions, else float32); recorded with the results",
    )


def no_tta(parser):
    parser.add_argument(
        "--no-tta",
        dest="tta",
        action="store_false",
        help="predict each image alone where the run was trained with --tta (K times quicker; "
        "default: average the run's copies)",
    )


def crf(parser):
    parser.add_argument(
        "--crf",
        action="store_true",
        help="refine the probabilities with a DenseCRF before deciding, for any number of "
        "classes (needs pydensecrf2)",
    )


def legend(parser):
    from fcn.inference import overlays  # cv2: only the commands that paint need it

    parser.add_argument(
        "--legend",
        choices=overlays.LEGENDS,
        help="class legend under each overlay: the classes present, all, or none (default: "
        "present for multiclass datasets, all for their videos, none for binary ones)",
    )
