"""Names of graph tensors, variable scopes and run-folder entries: one place to change them.

The training graph, restored runs and exports all use these, so a run folder, an export and the
code that opens them can never disagree on a name.
"""

# --- graph interface (fcn.inference.prediction builds these; see its docstring for shapes) ---
IMAGES = "images"  # uint8 (N, H, W, 3) RGB of any size: the one prediction input
IMAGE_INPUT = "image_input"  # float32 (N, h, w, 3) raw 0..255 at the network size (training)
KEEP_PROB = "keep_prob"  # float32 scalar, default 1.0
IS_TRAINING = "is_training"  # bool scalar, default False (batch norm, decoder dropout)
THRESHOLD = "threshold"  # float32 scalar, default the run's threshold (binary datasets)
TTA = "tta"  # bool scalar, default True: average the run's --tta copies (only with one)
LABELS = "labels"  # uint8 (N, h, w) class ids, IGNORE_LABEL where unlabelled
LEARNING_RATE = "learning_rate"
LOGITS = "logits"  # (N, h, w, C) at the network size
PROBS = "probs"  # float32 (N, h, w, C) softmax at the network size
PROBS_FULL = "probs_full"  # float32 (N, H, W, C) upsampled to the input size
MASK = "mask"  # uint8 (N, H, W) decided class ids at the input size
LOSS = "cross_entropy_loss"
TRAIN_OP = "train_op"
# Batch norm's tf.cond on is_training (fcn.models.layers); the export keeps its moving branch.
BATCH_OR_MOVING = "batch_or_moving"


# --- variable scopes ---
ENCODER_SCOPE = "encoder"  # every encoder's variables; --freeze and weight names are relative
DECODER_SCOPE = "decoder"


def tensor(name):
    return name + ":0"


def positive_prob_name(class_name):
    """Output of binary models: the positive class's probability, e.g. 'road_prob'."""
    return f"{class_name}_prob"


# --- run folder entries ---
CONFIG_FILE = "config.json"
SPLIT_FILE = "split.json"
LOG_FILE = "log.jsonl"
SUMMARY_FILE = "summary.json"
STATE_FILE = "state.json"
FAILED_FILE = "failed.json"  # why training stopped on a TensorFlow error (fcn.training.epochs)
LATEST_DIR = "checkpoints"
BEST_DIR = "best"
TB_DIR = "tb"
VAL_OVERLAYS_DIR = "val_overlays"
TEST_DIR = "test"
CHECKPOINTS = {"best": BEST_DIR, "latest": LATEST_DIR}  # --checkpoint -> folder
DATASET_FILE = "dataset.json"  # the resolved DatasetSpec (classes, palette): runs need no data
CLASS_STATS_FILE = "class_stats.json"  # training labels' class pixel counts and the loss weights
VAL_COMPARE_DIR = "val_compare"  # image | ground truth | prediction for a few validation images
REPORT_PAGE = "index.html"  # a run's page (fcn.report), and runs/index.html for all runs
EVAL_DIR = "eval"
# --- entries of RUN/eval/ (fcn.evaluation.evaluate writes them, fcn.report shows them) ---
EVAL_METRICS_FILE = "metrics.json"
EVAL_PER_IMAGE_FILE = "per_image.csv"
EVAL_SUMMARY_FILE = "summary.md"
EVAL_WORST_DIR = "worst"
EVAL_CONFUSION_IMAGE = "confusion.png"
EVAL_PLOTS_DIR = "plots"  # one PNG per (score, metadata field)
SUBMISSION_DIR = "submission"

# --- export folders (fcn.inference.export writes them, fcn.inference.restore opens them) ---
EXPORT_METADATA_FILE = "export.json"
EXPORT_FORMAT = "fcn-export"
EXPORT_FORMAT_VERSION = 2
EXPORT_TAG = "serve"
EXPORT_SIGNATURE = "serving_default"
