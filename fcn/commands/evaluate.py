"""The evaluate command: benchmark and per-class metrics, per-image error analysis, submissions.

Two modes:
- `evaluate --run RUN_DIR`: restores the run's checkpoint (or loads an export made by the export
  command, which carries the run's split), predicts each image of a split, upsamples
  the probabilities to the image's original size (benchmarks score there), optionally refines
  them with a DenseCRF (--crf, any number of classes; then decided again: threshold for binary
  datasets, argmax for multiclass) and writes RUN_DIR/eval/ (names in fcn.names):
    metrics.json     per-class IoU / precision / recall / F1, ground-truth class shares, mean
                     IoU (and over the classes present in the ground truth), KITTI's scores
    per_image.csv    one row per image: scores, loss, metadata (fcn.analysis)
    summary.md       the tables and "what scores worse" (group means, Spearman correlations)
    confusion.png    the row-normalised confusion matrix
    plots/           the headline score and the loss against every metadata field
    worst/           the worst N images by the headline score, errors coloured (fcn.analysis)
    iou_vs_metadata.png  binary datasets: the positive class's IoU against its metadata
  With --submit (KITTI) it also writes RUN_DIR/submission/<cat>_road_<id>.png: 8-bit road
  probability maps of the test set at original size (perspective), and with --bev their
  bird's-eye views in RUN_DIR/submission/bev/, ready for the KITTI devkit or server.
- `evaluate --prob-dir DIR --gt-dir DIR`: scores any method's probability PNGs against KITTI gt
  images, with no model, like the devkit's evaluateRoad.py.

Metric definitions live in fcn.metrics; JSON holds null where a metric is undefined (NaN).
"""

import glob
import heapq
import io
import math
import os

import numpy as np

from fcn import analysis, data, metrics, names, runs
from fcn.commands import flags
from fcn.data import task
from fcn.errors import UserError
from fcn.inference import crf as densecrf
from fcn.inference.predictor import DEFAULT_PRECISION
from fcn.kitti import devkit, submission

EVAL_DIR = names.EVAL_DIR
WORST_DIR = names.EVAL_WORST_DIR
SPLITS = ("val", "train", "all")
DEFAULT_WORST = 8
DEFAULT_THRESHOLD = 0.5  # --prob-dir mode has no run config to take it from
BATCH_SIZE = 8  # images per forward pass; each is resized to the run's input size first
IOU_VS_METADATA = "iou_vs_metadata.png"  # binary datasets; plots/ holds every dataset's plots

KITTI_GROUPS = tuple(f"{c}_road" for c in devkit.KITTI_CATEGORIES) + ("urban_road",)
KITTI_KEYS = ("MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh")
# per_image.csv of KITTI road (a binary dataset without example metadata), in column order;
# other datasets' columns follow the same pattern (fcn.analysis.sample_row).
CSV_COLUMNS = (
    "name",
    "category",
    "iou",
    "f1",
    "precision",
    "recall",
    "loss",
    "grayscale",
    "brightness",
    "width",
    "height",
    "road_fraction",
    "n_road_regions",
)

TP_COLOR, FP_COLOR, FN_COLOR = analysis.TP_COLOR, analysis.FP_COLOR, analysis.FN_COLOR
ERROR_ALPHA = analysis.ERROR_ALPHA


# --------------------------------------------------------------------------------------------
# Per-image pieces of binary road datasets (pure NumPy; fcn.analysis has the general ones)
# --------------------------------------------------------------------------------------------


def road_label(label, spec):
    """(H, W) class label -> 1 road, 0 anything else, IGNORE_LABEL where void."""
    road = (label == spec.positive_class).astype(np.uint8)
    return np.where(label == data.IGNORE_LABEL, np.uint8(data.IGNORE_LABEL), road)


def error_overlay(image, road_pred, road_true, alpha=ERROR_ALPHA):
    """RGB (H, W, 3) with true positives green, false positives red, false negatives blue.

    road_pred: (H, W) bool; road_true: (H, W) 1 road / 0 not road / IGNORE_LABEL void (left as is).
    """
    return analysis.error_overlay(
        image, road_pred.astype(np.uint8), road_true, data.KITTI_ROAD, alpha
    )


def image_metadata(image, road_true):
    """What an analyst sorts by: road fraction of the valid area, connected road regions
    (8-connected, in the label), mean brightness 0..1 and whether the frame is grey (0/1)."""
    fractions = analysis.class_fractions(road_true, data.KITTI_ROAD)
    return {
        "road_fraction": fractions["road_fraction"],
        "n_road_regions": fractions["n_road_regions"],
        "brightness": analysis.brightness(image),
        "grayscale": int(analysis.is_grayscale(image)),
    }


# --------------------------------------------------------------------------------------------
# Dataset-level accumulation
# --------------------------------------------------------------------------------------------


class _DatasetScores:
    """Confusion matrix (and, for KITTI road, the devkit's counts) pooled over images, one
    image at a time."""

    def __init__(self, spec):
        self.spec = spec
        self.confusion = metrics.ConfusionAccumulator(spec.num_classes, spec.ignore_label)
        self.kitti = (
            {group: devkit.KittiRoadEvaluator() for group in KITTI_GROUPS}
            if spec.benchmark == "kitti_road"
            else {}
        )
        self.counts = {}  # category -> images

    def add(self, category, road_prob, pred, label, gt_rgb=None):
        """road_prob (H, W) in [0, 1] (binary datasets); pred, label (H, W) classes; gt_rgb
        the KITTI gt image (KITTI road only)."""
        self.confusion.update(pred, label)
        self.counts[category] = self.counts.get(category, 0) + 1
        if not self.kitti:
            return
        gt_road, gt_valid = devkit.kitti_gt_from_rgb(gt_rgb)
        group = f"{category}_road"
        # Categories outside um/umm/uu (another dataset's names) still count in urban_road.
        for name in (group, "urban_road") if group in self.kitti else ("urban_road",):
            self.kitti[name].update(road_prob, gt_road, gt_valid)

    def result(self):
        """{"kitti": {group: scores, all groups always present} (KITTI road only), "classes",
        "mean_iou", "pixel_accuracy", "class_shares", "mean_iou_present",
        "num_classes_present", "headline", "num_images", "images_per_category"}; NaN where
        undefined. headline names the mean to read first: "mean_iou", or "mean_iou_present"
        when some classes have no ground-truth pixel (their IoU says nothing about the model)."""
        out = {}
        if self.kitti:
            nan_scores = dict.fromkeys(KITTI_KEYS, float("nan"))
            out["kitti"] = {
                g: ev.result() if ev.num_images else dict(nan_scores)
                for g, ev in self.kitti.items()
            }
        out.update(
            num_images=sum(self.counts.values()),
            images_per_category=dict(sorted(self.counts.items())),
        )
        names_ = list(self.spec.class_names)
        cm = self.confusion.matrix
        out.update(metrics.segmentation_metrics(cm, names_))
        shares = metrics.class_shares(cm)
        present, n_present = metrics.present_mean_iou(cm)
        out.update(
            class_shares=dict(zip(names_, shares, strict=True)),
            mean_iou_present=present,
            num_classes_present=n_present,
            headline="mean_iou" if n_present == len(names_) else "mean_iou_present",
            confusion_matrix=cm.tolist(),
        )
        return out


class _Worst:
    """The N images of lowest road IoU seen so far; an image with undefined IoU (no road in
    label or prediction) is never among them."""

    def __init__(self, n):
        self.n = n
        self._heap = []  # (-iou, arrival, name, picture): the root is the best of the worst
        self._arrivals = 0  # breaks IoU ties (first seen stays), so pictures are never compared

    def wants(self, iou):
        if self.n <= 0 or not math.isfinite(iou):
            return False
        return len(self._heap) < self.n or -iou > self._heap[0][0]

    def add(self, iou, name, picture):
        self._arrivals += 1
        heapq.heappush(self._heap, (-iou, -self._arrivals, name, picture))
        if len(self._heap) > self.n:
            heapq.heappop(self._heap)

    def ranked(self):
        """[(name, iou, picture)], worst first."""
        return [(name, -k, pic) for k, _, name, pic in sorted(self._heap, reverse=True)]


# --------------------------------------------------------------------------------------------
# Model mode
# --------------------------------------------------------------------------------------------


def _select(examples, split_names, split, run_dir, data_dir):
    """The split's examples from the data folder, in split.json's order."""
    if split == "all":
        return examples
    by_name = {ex.name: ex for ex in examples}
    wanted = split_names.get(split)
    if not isinstance(wanted, list):
        raise UserError(f"{run_dir}/split.json has no '{split}' list; is this a run folder?")
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise UserError(
            f"{len(missing)} image(s) of the run's {split} split are not in {data_dir} "
            f"(e.g. {', '.join(missing[:3])}); pass the run's --data-dir or use --split all"
        )
    if not wanted:
        raise UserError(f"the run's {split} split is empty; use --split train or --split all")
    return [by_name[n] for n in wanted]


def _batches(examples, size=BATCH_SIZE):
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        yield chunk, [data.read_image(ex.image_path, warn=None) for ex in chunk]


def _check_threshold(threshold):
    if not 0.0 < threshold < 1.0:
        raise UserError(f"--threshold must be in (0, 1), got {threshold}")


def read_ground_truth(example, spec, image_shape, warn=None):
    """(label (H, W) uint8 class ids, KITTI gt RGB or None) of an example at its original size.

    Labels come from `data.read_label` (every label format) where the data package has it;
    colour-coded label images read for KITTI road (the devkit scores its own gt image) or without
    read_label are decoded from the image already read.
    """
    reader = getattr(data, "read_label", None)
    gt_rgb = None
    if spec.benchmark == "kitti_road" or reader is None:
        gt_rgb = data.read_image(example.label_path, warn=None)
        _check_size(example, image_shape, gt_rgb.shape)
    if gt_rgb is not None and spec.label_format == "color":
        label = data.decode_label(gt_rgb, spec, example.label_path)  # read once, decoded here
    elif reader is not None:
        label = reader(example, spec, warn=warn or (lambda _: None))
    else:
        raise UserError(
            f"{spec.name} labels are {spec.label_format!r}; read_label is not in fcn.data yet"
        )
    _check_size(example, image_shape, label.shape)
    return label, gt_rgb


def _check_size(example, image_shape, label_shape):
    if tuple(label_shape[:2]) != tuple(image_shape[:2]):
        raise UserError(
            f"image {example.image_path} is {image_shape[1]}x{image_shape[0]} but its "
            f"label {example.label_path} is {label_shape[1]}x{label_shape[0]}; they must match"
        )


def _example_metadata(example, spec):
    """The dataset's own facts about an example (data.example_metadata; {} without it)."""
    reader = getattr(data, "example_metadata", None)
    return dict(reader(example, spec)) if reader is not None else {}


def score_examples(model, examples, spec, threshold, worst=DEFAULT_WORST, crf=False, log=print):
    """Predict, (refine,) decide and score every example: the evaluation without files.

    model: a Predictor (fcn.inference.predictor; only its predict_each is used), so the images
    are resized as in training, upsampled back and decided by the one prediction path.
    Returns (scores, rows, ranked): the pooled _DatasetScores, one fcn.analysis row per image
    in order, and [(name, score, captioned error picture)] of the
    `worst` lowest headline scores, worst first.
    """
    scores = _DatasetScores(spec)
    gallery = _Worst(worst)
    headline, label_text = task.headline(spec), task.headline_label(spec)
    keys = analysis.error_keys(spec)
    rows, notes = [], []
    for chunk, originals in _batches(examples):
        for ex, image, (probs, pred) in zip(
            chunk, originals, model.predict_each(originals, threshold), strict=True
        ):
            label, gt_rgb = read_ground_truth(ex, spec, image.shape, warn=notes.append)
            if crf:
                probs, pred = task.refine_then_decide(
                    image, probs, spec, threshold, densecrf.refine
                )
            positive = task.positive_probs(probs, spec)
            scores.add(ex.category, positive, pred, label, gt_rgb)
            extra = _example_metadata(ex, spec)
            row = analysis.sample_row(ex.name, ex.category, image, probs, pred, label, spec, extra)
            rows.append(row)
            if gallery.wants(row[headline]):
                picture = analysis.error_overlay(image, pred, label, spec)
                text = f"{ex.name} {label_text} {row[headline]:.3f}"
                gallery.add(row[headline], ex.name, analysis.caption(picture, text, keys))
    if notes and log:
        more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
        log(f"{notes[0]}{more}")
    return scores, rows, gallery.ranked()


def evaluate_run(
    run_dir,
    data_dir=None,
    split="val",
    threshold=None,
    worst=DEFAULT_WORST,
    submit=False,
    use_bev=False,
    checkpoint="best",
    crf=False,
    tta=True,
    precision_name=DEFAULT_PRECISION,
    log=print,
):
    """Score a run's checkpoint on a split and write RUN_DIR/eval/ (and the submission).
    tta False: each image alone where the run was trained with --tta. precision_name: the
    Predictor's (the same default as infer's, so the score is that of what infer writes).

    Returns the metrics dict written to metrics.json (NaN for undefined values in memory).
    """
    from fcn.inference import restore  # TensorFlow: imported only when a model is needed

    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} does not exist; pass a folder from runs/")
    if split not in SPLITS:
        raise UserError(f"--split {split!r} is not one of {list(SPLITS)}")
    if worst < 0:
        raise UserError(f"--worst must be >= 0, got {worst}")
    if use_bev and not submit:
        raise UserError("--bev transforms the submission maps; add --submit")
    if crf:
        densecrf.densecrf_module()
    if threshold is not None:
        _check_threshold(threshold)
    folder = runs.RunFolder(run_dir)  # an export carries the run's split.json too
    if split != "all" and not folder.has(names.SPLIT_FILE):
        what = "the export" if restore.is_export(run_dir) else "the run folder"
        raise UserError(f"{what} {run_dir} carries no split.json; use --split all")
    split_names = {} if split == "all" else folder.read_split()

    with restore.open_predictor(
        run_dir, precision_name, checkpoint, tta=tta, batch_size=BATCH_SIZE
    ) as restored:
        config = restored.config
        data_dir = data_dir or config.data_dir
        threshold = restored.threshold if threshold is None else threshold
        spec = restored.spec  # the run's own classes (its dataset.json), not today's registry
        examples = _select(data.list_pairs(data_dir, spec), split_names, split, run_dir, data_dir)
        test_examples, calibs = [], None
        if submit:
            if spec.benchmark != "kitti_road":
                raise UserError(f"--submit writes KITTI road maps; {spec.name} has no benchmark")
            test_examples = data.list_test_images(data_dir, spec)
            if not test_examples:
                folder = os.path.join(data_dir, spec.root, spec.test_images)
                raise UserError(f"--submit found no test images in {folder}; is --data-dir right?")
            calibs = submission.calib_paths(data_dir, spec, test_examples) if use_bev else None
        tta = restored.tta
        refined = (f" averaged over --tta {tta} copies" if tta != "none" else "") + (
            " with DenseCRF" if crf else ""
        )
        log(
            f"evaluating {restored.source}{refined} on {len(examples)} image(s) of {data_dir} "
            f"({split})"
        )
        scores, rows, ranked = score_examples(restored, examples, spec, threshold, worst, crf, log)
        n_sub = (
            submission.write(restored, test_examples, run_dir, spec, calibs, BATCH_SIZE)
            if submit
            else 0
        )

    result = scores.result()
    result.update(
        run=run_dir,
        checkpoint=restored.source,
        data_dir=data_dir,
        split=split,
        threshold=threshold,
        task=spec.task,
        crf=bool(crf),
        tta=restored.tta,
        precision=restored.precision,
    )
    out_dir = os.path.join(run_dir, EVAL_DIR)
    written = write_reports(out_dir, result, rows, ranked, spec)
    log(format_table(result))
    log(f"wrote {', '.join(written)} to {out_dir}")
    if submit:
        where = os.path.join(run_dir, submission.SUBMISSION_DIR)
        extra = (
            f" and their bird's-eye views in {os.path.join(where, submission.BEV_DIR)}"
            if use_bev
            else ""
        )
        log(f"wrote {n_sub} submission map(s) to {where}{extra}")
    if not restore.is_export(run_dir):
        from fcn import report

        report.refresh(run_dir, log)
    return result


def analysis_fields(rows):
    """The per_image.csv columns that describe an image (not its name or scores): category and
    every metadata column."""
    cols = analysis.columns(rows)
    after_loss = cols[cols.index(analysis.LOSS) + 1 :] if analysis.LOSS in cols else []
    return ["category"] + after_loss


def write_reports(out_dir, result, rows, ranked, spec):
    """RUN/eval/: metrics.json, per_image.csv, confusion.png, plots/, worst/, summary.md (and
    iou_vs_metadata.png for binary datasets). Returns the names written, for the log."""
    headline, label_text = task.headline(spec), task.headline_label(spec)
    fields = analysis_fields(rows)
    groups, correlations = analysis.what_scores_worse(rows, headline, fields)
    result["what_scores_worse"] = {
        "score": headline,
        "groups": [
            {**g, "groups": [{"value": v, "mean": m, "n": n} for v, m, n in g["groups"]]}
            for g in groups
        ],
        "correlations": correlations,
    }
    runs.write_json(os.path.join(out_dir, names.EVAL_METRICS_FILE), json_safe(result))
    runs.atomic_write_bytes(
        os.path.join(out_dir, names.EVAL_PER_IMAGE_FILE), analysis.csv_bytes(rows)
    )
    runs.atomic_write_bytes(
        os.path.join(out_dir, names.EVAL_CONFUSION_IMAGE),
        analysis.confusion_png(result["confusion_matrix"], list(spec.class_names)),
    )
    plots_dir = os.path.join(out_dir, names.EVAL_PLOTS_DIR)
    for old in glob.glob(os.path.join(plots_dir, "*.png")):
        os.remove(old)
    labels = {headline: label_text, analysis.LOSS: "loss (cross-entropy)"}
    plots = analysis.metadata_plots(rows, [headline, analysis.LOSS], fields, labels)
    for filename, png in plots.items():
        runs.atomic_write_bytes(os.path.join(plots_dir, filename), png)
    worst_names = _write_gallery(os.path.join(out_dir, WORST_DIR), ranked)
    written = [
        names.EVAL_METRICS_FILE,
        names.EVAL_PER_IMAGE_FILE,
        names.EVAL_SUMMARY_FILE,
        names.EVAL_CONFUSION_IMAGE,
        f"{len(plots)} plot(s) in {names.EVAL_PLOTS_DIR}/",
        f"{len(worst_names)} worst image(s) in {WORST_DIR}/",
    ]
    if spec.task == "binary":
        png = plot_iou_vs_metadata(rows, spec.positive_name)
        runs.atomic_write_bytes(os.path.join(out_dir, IOU_VS_METADATA), png)
        written.insert(4, IOU_VS_METADATA)
    summary = summary_markdown(result, rows, worst_names, spec, sorted(plots))
    runs.atomic_write_bytes(os.path.join(out_dir, names.EVAL_SUMMARY_FILE), summary.encode())
    return written


def _write_gallery(folder, ranked):
    """worst/<rank>_<name>.png, worst first; earlier gallery files are replaced.
    Returns [(filename, name)] in rank order."""
    for old in glob.glob(os.path.join(folder, "*.png")):
        os.remove(old)
    written = []
    for rank, (name, _, picture) in enumerate(ranked, 1):
        filename = f"{rank:02d}_{name}.png"
        runs.write_image(os.path.join(folder, filename), picture)
        written.append((filename, name))
    return written


# --------------------------------------------------------------------------------------------
# Probability-folder mode (no model)
# --------------------------------------------------------------------------------------------


def evaluate_prob_dir(prob_dir, gt_dir, threshold=DEFAULT_THRESHOLD):
    """Score <cat>_road_<id>.png probability maps (8- or 16-bit) against the KITTI gt images of
    the same names in gt_dir, like the devkit: every gt image needs its map; extra maps are
    ignored. Returns the metrics dict (as metrics.json)."""
    spec = data.KITTI_ROAD  # not_road = 0, road = 1, the classes of a KITTI gt image
    _check_threshold(threshold)
    for folder, what in ((prob_dir, "--prob-dir"), (gt_dir, "--gt-dir")):
        if not os.path.isdir(folder):
            raise UserError(f"{what} {folder} does not exist")
    kind = spec.label_stem.format(cat="", id="").strip("_")  # "road": skip KITTI's *_lane_*
    gt_paths = [p for p in data.images_in(gt_dir) if f"_{kind}_" in os.path.basename(p)]
    if not gt_paths:
        raise UserError(
            f"no ground truth <cat>_{kind}_<id>.png in {gt_dir}; point --gt-dir at gt_image_2"
        )
    stems = [os.path.splitext(os.path.basename(p))[0] for p in gt_paths]
    prob_paths = [os.path.join(prob_dir, s + ".png") for s in stems]
    missing = [os.path.basename(p) for p in prob_paths if not os.path.isfile(p)]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(stems)} probability maps are missing in {prob_dir} "
            f"(e.g. {', '.join(missing[:3])}); write one <cat>_{kind}_<id>.png per gt image"
        )
    scores = _DatasetScores(spec)
    for stem, gt_path, prob_path in zip(stems, gt_paths, prob_paths, strict=True):
        gt_rgb = data.read_image(gt_path, warn=None)
        prob = devkit.read_probability_png(prob_path)
        if prob.shape != gt_rgb.shape[:2]:
            raise UserError(
                f"probability map {prob_path} is {prob.shape[1]}x{prob.shape[0]} but "
                f"{gt_path} is {gt_rgb.shape[1]}x{gt_rgb.shape[0]}; write maps at the gt size"
            )
        # Classes from the gt the devkit's way (road = blue > 0, valid = red > 0), so any gt the
        # devkit accepts is accepted here too.
        gt_road, gt_valid = devkit.kitti_gt_from_rgb(gt_rgb)
        label = np.where(gt_valid, gt_road, data.IGNORE_LABEL).astype(np.uint8)
        pred = (prob >= threshold).astype(np.uint8)
        scores.add(data.category_of(stem), prob, pred, label, gt_rgb)
    result = scores.result()
    result.update(prob_dir=prob_dir, gt_dir=gt_dir, threshold=threshold)
    return result


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def json_safe(obj):
    """NaN / inf -> None and NumPy scalars -> Python, recursively: JSON has no NaN."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _num(x, digits=4, scale=1.0):
    return "n/a" if x is None or not math.isfinite(x) else f"{x * scale:.{digits}f}"


def _kitti_lines(result):
    head = ["category"] + [f"{k} (%)" if k != "BestThresh" else k for k in KITTI_KEYS]
    lines = [head]
    for group in KITTI_GROUPS:
        s = result["kitti"][group]
        lines.append(
            [group] + [_num(s[k], 2, 100.0) for k in KITTI_KEYS[:-1]] + [_num(s["BestThresh"], 3)]
        )
    return lines


def _class_lines(result):
    shares = result.get("class_shares", {})
    lines = [["class", "IoU", "precision", "recall", "F1", "GT share"]]
    for name, sc in result["classes"].items():
        share = shares.get(name, float("nan"))
        cells = [_num(sc[k]) for k in ("iou", "precision", "recall", "f1")]
        # A class without ground truth scores IoU 0 if predicted at all: flag it, since the
        # headline mean leaves it out.
        absent = share == 0.0
        lines.append([name + (" (not in GT)" if absent else "")] + cells + [_num(share, 4)])
    return lines


def _mean_line(result):
    """The headline mean IoU first; over which classes it runs, said in words."""
    n, total = result.get("num_classes_present"), len(result["classes"])
    acc = f"pixel accuracy {_num(result['pixel_accuracy'])}"
    if result.get("headline") == "mean_iou_present":
        return (
            f"mean IoU {_num(result['mean_iou_present'])} over the {n} of {total} classes "
            f"present in the ground truth (headline); {_num(result['mean_iou'])} over every "
            f"class with a defined IoU, which counts predicted-only classes as 0; {acc}"
        )
    return f"mean IoU {_num(result['mean_iou'])}, {acc}"


def _text_table(lines):
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    out = []
    for j, row in enumerate(lines):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _markdown_table(lines):
    out = [
        "| " + " | ".join(lines[0]) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(lines[0]) - 1)) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in lines[1:]]
    return "\n".join(out)


def _per_category(result):
    """' (um 10, umm 8)' for datasets with categories (KITTI's prefixes), else ''."""
    cats = {c: n for c, n in result["images_per_category"].items() if c}
    return f" ({', '.join(f'{c} {n}' for c, n in cats.items())})" if cats else ""


def format_table(result):
    """The console report: KITTI scores in % (as the devkit prints them), then per class."""
    lines = [
        f"{result['num_images']} image(s){_per_category(result)}, threshold "
        f"{result['threshold']:.2f}",
        "",
    ]
    if "kitti" in result:
        lines += [
            "KITTI road benchmark (perspective, original resolution):",
            _text_table(_kitti_lines(result)),
            "",
        ]
    decided = (
        "argmax" if result.get("task") == "multiclass" else f"threshold {result['threshold']:.2f}"
    )
    lines += [f"per class at {decided}:", _text_table(_class_lines(result)), _mean_line(result)]
    return "\n".join(lines)


def summary_markdown(result, rows, worst_names, spec=None, plots=()):
    """RUN_DIR/eval/summary.md: the tables, what scores worse, the worst images
    ([(filename, name)] in rank order) and the plots (file names in plots/)."""
    spec = spec or data.KITTI_ROAD
    headline, label_text = task.headline(spec), task.headline_label(spec)
    decided = (
        "argmax of the class probabilities"
        if spec.task == "multiclass"
        else f"{spec.positive_name} probability >= {result['threshold']:.2f}"
    )
    lines = [
        f"# Evaluation of `{result['run']}`",
        "",
        f"- checkpoint: `{result['checkpoint']}`",
        f"- data: `{result['data_dir']}`, split `{result['split']}`: "
        f"{result['num_images']} image(s){_per_category(result)}",
        f"- decision for masks and per-class metrics: {decided}"
        + (
            f" on the mean over --tta {result['tta']} copies"
            if result.get("tta", "none") != "none"
            else ""
        )
        + (" after DenseCRF refinement" if result.get("crf") else ""),
        *([f"- compute precision: {result['precision']}"] if result.get("precision") else []),
        "",
    ]
    if "kitti" in result:
        lines += [
            "## KITTI road benchmark",
            "",
            "Perspective space at each image's original resolution, the devkit's definitions; "
            "scores in %, BestThresh as a fraction.",
            "",
            _markdown_table(_kitti_lines(result)),
            "",
        ]
    mean = _mean_line(result)
    lines += [
        "## Per class",
        "",
        "GT share: the class's share of the labelled ground-truth pixels.",
        "",
        _markdown_table(_class_lines(result)),
        "",
        mean[0].upper() + mean[1:] + ".",
        "",
        f"![confusion matrix]({names.EVAL_CONFUSION_IMAGE})",
        "",
    ]
    worse = result.get("what_scores_worse", {})
    groups = [
        {**g, "groups": [(x["value"], x["mean"], x["n"]) for x in g["groups"]]}
        for g in worse.get("groups", [])
    ]
    lines += [
        "## What scores worse",
        "",
        f"Per-image {label_text}: the mean of each group of a yes/no or category field (largest "
        "gap first), then Spearman's rank correlation with each numeric field (strongest first).",
        "",
        *analysis.worse_markdown(groups, worse.get("correlations", []), label_text),
        "",
        f"## The {len(worst_names)} worst images by {label_text}",
        "",
        " ".join(f"{w}: {_colour_name(c)}." for w, c in analysis.error_keys(spec))
        + f" All images are in `{names.EVAL_PER_IMAGE_FILE}`.",
        "",
    ]
    by_name = {r["name"]: r for r in rows}
    table = [["rank", "image", "category", label_text, "loss", "brightness", "grayscale"]]
    for rank, (filename, name) in enumerate(worst_names, 1):
        r = by_name[name]
        table.append(
            [
                str(rank),
                f"[{r['name']}]({WORST_DIR}/{filename})",
                r["category"],
                _num(r[headline]),
                _num(r[analysis.LOSS], 3),
                _num(r["brightness"], 3),
                "yes" if r["grayscale"] else "no",
            ]
        )
    if worst_names:
        lines += [_markdown_table(table), ""]
    if plots:
        lines += [f"## {label_text} and loss against image metadata", ""]
        lines += [f"![]({names.EVAL_PLOTS_DIR}/{p})" for p in plots] + [""]
    if spec.task == "binary":
        lines += [f"![]({IOU_VS_METADATA})", ""]
    return "\n".join(lines)


_COLOUR_NAMES = {(0, 255, 0): "green", (255, 0, 0): "red", (0, 0, 255): "blue"}


def _colour_name(rgb):
    return _COLOUR_NAMES.get(tuple(rgb), "grey" if len(set(rgb)) == 1 else str(tuple(rgb)))


def plot_iou_vs_metadata(rows, positive="road"):
    """PNG bytes: per-image IoU of the positive class (binary datasets) against its fraction,
    its regions and brightness, one colour per category, grey frames as hollow markers."""
    import matplotlib

    matplotlib.use("Agg")  # no display; before anything touches a backend
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(12, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    panels = (
        (f"{positive}_fraction", f"{positive} fraction of the valid area"),
        (f"n_{positive}_regions", f"connected {positive} regions in the label"),
        ("brightness", "mean brightness (0..1)"),
    )
    categories = sorted({r["category"] for r in rows})
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    for ax, (key, xlabel) in zip(axes, panels, strict=True):
        for i, cat in enumerate(categories):
            for grey in (0, 1):
                pts = [
                    (r[key], r["iou"])
                    for r in rows
                    if r["category"] == cat and r["grayscale"] == grey and math.isfinite(r["iou"])
                ]
                if not pts:
                    continue
                x, y = zip(*pts, strict=True)
                colour = colours[i % len(colours)]
                ax.scatter(
                    x,
                    y,
                    s=18,
                    label=f"{cat} (grey)" if grey else cat,
                    facecolors="none" if grey else colour,
                    edgecolors=colour,
                )
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))  # region counts are whole
    axes[0].set_ylabel(f"{positive} IoU")
    axes[0].set_ylim(-0.02, 1.02)
    if any(ax.get_legend_handles_labels()[0] for ax in axes):
        axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"per-image {positive} IoU against image metadata ({len(rows)} images)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser):
    model = parser.add_argument_group("score a trained run")
    model.add_argument("--run", metavar="RUN_DIR", help="run folder from runs/")
    model.add_argument(
        "--data-dir", metavar="DIR", help="KITTI-layout data folder (default: the run's)"
    )
    model.add_argument(
        "--split", choices=SPLITS, default="val", help="images to score (default: val)"
    )
    flags.checkpoint(model)
    model.add_argument(
        "--worst",
        type=int,
        default=DEFAULT_WORST,
        metavar="N",
        help=f"images in the error gallery (default: {DEFAULT_WORST})",
    )
    model.add_argument(
        "--submit",
        action="store_true",
        help="also write the test set's road maps to RUN_DIR/submission/",
    )
    model.add_argument(
        "--bev", action="store_true", help="with --submit: also their bird's-eye views (calib/)"
    )
    flags.crf(model)
    flags.no_tta(model)
    flags.precision(model)
    files = parser.add_argument_group("score probability maps (no model)")
    files.add_argument("--prob-dir", metavar="DIR", help="<cat>_road_<id>.png road probabilities")
    files.add_argument("--gt-dir", metavar="DIR", help="KITTI gt images (gt_image_2)")
    files.add_argument("--out", metavar="FILE", help="write the metrics as JSON here")
    flags.threshold(parser, default_text="the run's, 0.5 for --prob-dir")


def run(args):
    """Entry point of `python main.py evaluate`; returns the exit code."""
    if args.run and (args.prob_dir or args.gt_dir):
        raise UserError("use either --run RUN_DIR or --prob-dir DIR --gt-dir DIR, not both")
    if args.run:
        if args.out:
            raise UserError("--out is for --prob-dir; --run writes RUN_DIR/eval/metrics.json")
        evaluate_run(
            args.run,
            data_dir=args.data_dir,
            split=args.split,
            threshold=args.threshold,
            worst=args.worst,
            submit=args.submit,
            use_bev=args.bev,
            checkpoint=args.checkpoint,
            crf=args.crf,
            tta=args.tta,
            precision_name=args.precision,
        )
        return 0
    if not (args.prob_dir and args.gt_dir):
        raise UserError(
            "evaluate needs --run RUN_DIR, or --prob-dir DIR together with --gt-dir DIR"
        )
    if args.submit or args.bev or args.data_dir or args.crf:
        raise UserError("--submit, --bev, --data-dir and --crf need --run RUN_DIR")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    result = evaluate_prob_dir(args.prob_dir, args.gt_dir, threshold)
    print(format_table(result))
    if args.out:
        runs.write_json(args.out, json_safe(result))
        print(f"wrote {args.out}")
    return 0
