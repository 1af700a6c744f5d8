"""The evaluate command: KITTI benchmark and per-class metrics, error analysis, submission files.

Two modes:
- `evaluate --run RUN_DIR`: restores the run's checkpoint (or loads an export made by the export
  command, which carries the run's split), predicts each image of a split, upsamples
  the probabilities to the image's original size (the benchmark scores there) and writes
  RUN_DIR/eval/: metrics.json, per_image.csv, summary.md, worst/ (the worst N images with true
  positives green, false positives red, false negatives blue) and iou_vs_metadata.png. With
  --submit it also writes RUN_DIR/submission/<cat>_road_<id>.png: 8-bit road probability maps of
  the test set at original size (perspective), and with --bev their bird's-eye views in
  RUN_DIR/submission/bev/, ready for the KITTI devkit or server.
- `evaluate --prob-dir DIR --gt-dir DIR`: scores any method's probability PNGs against KITTI gt
  images, with no model, like the devkit's evaluateRoad.py.

Metric definitions live in fcn.metrics; JSON holds null where a metric is undefined (NaN).
"""

import csv
import glob
import heapq
import io
import math
import os

import cv2
import numpy as np

from fcn import data, metrics, overlays, runs
from fcn.commands import flags
from fcn.errors import UserError
from fcn.kitti import devkit, submission

EVAL_DIR = "eval"
WORST_DIR = "worst"
SPLITS = ("val", "train", "all")
DEFAULT_WORST = 8
DEFAULT_THRESHOLD = 0.5  # --prob-dir mode has no run config to take it from
BATCH_SIZE = 8  # images per forward pass; each is resized to the run's input size first

KITTI_GROUPS = tuple(f"{c}_road" for c in devkit.KITTI_CATEGORIES) + ("urban_road",)
KITTI_KEYS = ("MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh")
CSV_COLUMNS = (
    "name",
    "category",
    "iou",
    "f1",
    "precision",
    "recall",
    "road_fraction",
    "n_road_regions",
    "brightness",
    "grayscale",
)

TP_COLOR, FP_COLOR, FN_COLOR = (0, 255, 0), (255, 0, 0), (0, 0, 255)
ERROR_ALPHA = 0.5
# Mean channel spread (max - min of R, G, B, in levels) below which an image counts as grey;
# 1 level absorbs JPEG chroma noise in frames that were grey before compression.
_GREY_SPREAD = 1.0
_CAPTION_HEIGHT = 22  # px of the black caption bar above each gallery image


# --------------------------------------------------------------------------------------------
# Per-image pieces (pure NumPy)
# --------------------------------------------------------------------------------------------


def road_label(label, spec):
    """(H, W) class label -> 1 road, 0 anything else, IGNORE_LABEL where void."""
    road = (label == spec.positive_class).astype(np.uint8)
    return np.where(label == data.IGNORE_LABEL, np.uint8(data.IGNORE_LABEL), road)


def error_overlay(image, road_pred, road_true, alpha=ERROR_ALPHA):
    """RGB (H, W, 3) with true positives green, false positives red, false negatives blue.

    road_pred: (H, W) bool; road_true: (H, W) 1 road / 0 not road / IGNORE_LABEL void (left as is).
    """
    valid = road_true != data.IGNORE_LABEL
    truth = road_true == 1
    out = overlays.overlay(image, road_pred & truth, TP_COLOR, alpha)
    out = overlays.overlay(out, road_pred & ~truth & valid, FP_COLOR, alpha)
    return overlays.overlay(out, ~road_pred & truth, FN_COLOR, alpha)


def image_metadata(image, road_true):
    """What an analyst sorts by: road fraction of the valid area, connected road regions
    (8-connected, in the label), mean brightness 0..1 and whether the frame is grey."""
    valid = int(np.count_nonzero(road_true != data.IGNORE_LABEL))
    road = (road_true == 1).astype(np.uint8)
    n_labels = cv2.connectedComponents(road, connectivity=8)[0]  # background counts as one
    spread = image.max(axis=2).astype(np.int16) - image.min(axis=2)
    return {
        "road_fraction": float(road.sum()) / valid if valid else float("nan"),
        "n_road_regions": int(n_labels - 1),
        "brightness": float(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean()) / 255.0,
        "grayscale": int(spread.mean() < _GREY_SPREAD),
    }


def _road_scores(road_pred, road_true):
    """Road IoU / F1 / precision / recall of one image (void excluded, NaN when undefined)."""
    cm = metrics.confusion_matrix(road_pred.astype(np.uint8), road_true, 2)
    road = metrics.segmentation_metrics(cm)["classes"]["class_1"]
    return {k: road[k] for k in ("iou", "f1", "precision", "recall")}


def _caption(image, text):
    """The image under a black bar holding `text` and the colour key, so a gallery file explains
    itself; the font shrinks to fit narrow images."""
    pieces = [
        (text + "  ", (255, 255, 255)),
        ("TP ", TP_COLOR),
        ("FP ", FP_COLOR),
        ("FN", FN_COLOR),
    ]
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    width = sum(cv2.getTextSize(t, font, scale, 1)[0][0] for t, _ in pieces)
    scale *= min(1.0, (image.shape[1] - 8) / width)
    bar = np.zeros((_CAPTION_HEIGHT, image.shape[1], 3), np.uint8)
    x = 4
    for t, colour in pieces:
        cv2.putText(bar, t, (x, 16), font, scale, colour, 1, cv2.LINE_AA)
        x += cv2.getTextSize(t, font, scale, 1)[0][0]
    return np.concatenate([bar, image])


# --------------------------------------------------------------------------------------------
# Dataset-level accumulation
# --------------------------------------------------------------------------------------------


class _DatasetScores:
    """Confusion matrix and KITTI devkit counts pooled over images, one image at a time."""

    def __init__(self, spec):
        self.spec = spec
        self.confusion = metrics.ConfusionAccumulator(spec.num_classes)
        self.kitti = {group: devkit.KittiRoadEvaluator() for group in KITTI_GROUPS}
        self.counts = {}  # category -> images

    def add(self, category, road_prob, pred, label, gt_rgb):
        """road_prob (H, W) in [0, 1]; pred, label (H, W) classes; gt_rgb the KITTI gt image."""
        self.confusion.update(pred, label)
        self.counts[category] = self.counts.get(category, 0) + 1
        if self.spec.benchmark != "kitti_road":
            return
        gt_road, gt_valid = devkit.kitti_gt_from_rgb(gt_rgb)
        group = f"{category}_road"
        # Categories outside um/umm/uu (another dataset's names) still count in urban_road.
        for name in (group, "urban_road") if group in self.kitti else ("urban_road",):
            self.kitti[name].update(road_prob, gt_road, gt_valid)

    def result(self):
        """{"kitti": {group: scores, all groups always present}, "classes", "mean_iou",
        "pixel_accuracy", "num_images", "images_per_category"}; NaN where undefined."""
        nan_scores = dict.fromkeys(KITTI_KEYS, float("nan"))
        out = {
            "kitti": {
                g: ev.result() if ev.num_images else dict(nan_scores)
                for g, ev in self.kitti.items()
            },
            "num_images": sum(self.counts.values()),
            "images_per_category": dict(sorted(self.counts.items())),
        }
        out.update(self.confusion.metrics(list(self.spec.class_names)))
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
    names = split_names.get(split)
    if not isinstance(names, list):
        raise UserError(f"{run_dir}/split.json has no '{split}' list; is this a run folder?")
    missing = [n for n in names if n not in by_name]
    if missing:
        raise UserError(
            f"{len(missing)} image(s) of the run's {split} split are not in {data_dir} "
            f"(e.g. {', '.join(missing[:3])}); pass the run's --data-dir or use --split all"
        )
    if not names:
        raise UserError(f"the run's {split} split is empty; use --split train or --split all")
    return [by_name[n] for n in names]


def _predict_originals(model, originals, threshold):
    """[(probs (H, W, C), mask (H, W))] of each image at its own size, through the one
    prediction path (fcn.prediction: resized as in training, upsampled back, decided)."""
    return model.predict(originals, threshold, BATCH_SIZE)


def _batches(examples, size=BATCH_SIZE):
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        yield chunk, [data.read_image(ex.image_path, warn=None) for ex in chunk]


def _check_threshold(threshold):
    if not 0.0 < threshold < 1.0:
        raise UserError(f"--threshold must be in (0, 1), got {threshold}")


def evaluate_run(
    run_dir,
    data_dir=None,
    split="val",
    threshold=None,
    worst=DEFAULT_WORST,
    submit=False,
    use_bev=False,
    checkpoint="best",
    log=print,
):
    """Score a run's checkpoint on a split and write RUN_DIR/eval/ (and the submission).

    Returns the metrics dict written to metrics.json (NaN for undefined values in memory).
    """
    from fcn import config as cfg
    from fcn import restore  # TensorFlow: imported only when a model is needed

    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} does not exist; pass a folder from runs/")
    if split not in SPLITS:
        raise UserError(f"--split {split!r} is not one of {list(SPLITS)}")
    if worst < 0:
        raise UserError(f"--worst must be >= 0, got {worst}")
    if use_bev and not submit:
        raise UserError("--bev transforms the submission maps; add --submit")
    if restore.is_export(run_dir):
        config = cfg.Config.from_dict(restore.read_metadata(run_dir)["config"])
        if split != "all" and not os.path.isfile(os.path.join(run_dir, "split.json")):
            raise UserError(f"the export {run_dir} carries no split.json; use --split all")
    else:
        config = cfg.Config.from_dict(runs.read_json(os.path.join(run_dir, "config.json")))
    split_names = {} if split == "all" else runs.read_json(os.path.join(run_dir, "split.json"))
    spec = data.get_spec(config.dataset)
    data_dir = data_dir or config.data_dir
    threshold = config.threshold if threshold is None else threshold
    _check_threshold(threshold)
    examples = _select(data.list_pairs(data_dir, spec), split_names, split, run_dir, data_dir)
    test_examples, calibs = [], None
    if submit:
        test_examples = data.list_test_images(data_dir, spec)
        if not test_examples:
            folder = os.path.join(data_dir, spec.root, spec.test_images)
            raise UserError(f"--submit found no test images in {folder}; is --data-dir right?")
        calibs = submission.calib_paths(data_dir, spec, test_examples) if use_bev else None

    scores = _DatasetScores(spec)
    gallery = _Worst(worst)
    rows = []
    with restore.open_model(run_dir, "float32", checkpoint) as restored:
        log(f"evaluating {restored.source} on {len(examples)} image(s) of {data_dir} ({split})")
        for chunk, originals in _batches(examples):
            for ex, image, (probs, pred) in zip(
                chunk, originals, _predict_originals(restored, originals, threshold), strict=True
            ):
                gt_rgb = data.read_image(ex.label_path, warn=None)
                if gt_rgb.shape[:2] != image.shape[:2]:
                    raise UserError(
                        f"image {ex.image_path} is {image.shape[1]}x{image.shape[0]} but its "
                        f"label {ex.label_path} is {gt_rgb.shape[1]}x{gt_rgb.shape[0]}; they "
                        "must match"
                    )
                label = data.decode_label(gt_rgb, spec, ex.label_path)
                road_prob = probs[..., spec.positive_class]
                scores.add(ex.category, road_prob, pred, label, gt_rgb)
                truth, road_pred = road_label(label, spec), pred == spec.positive_class
                row = {"name": ex.name, "category": ex.category}
                row.update(_road_scores(road_pred, truth))
                row.update(image_metadata(image, truth))
                rows.append(row)
                if gallery.wants(row["iou"]):
                    picture = error_overlay(image, road_pred, truth)
                    text = f"{ex.name} road IoU {row['iou']:.3f}"
                    gallery.add(row["iou"], ex.name, _caption(picture, text))
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
    )
    out_dir = os.path.join(run_dir, EVAL_DIR)
    runs.write_json(os.path.join(out_dir, "metrics.json"), json_safe(result))
    runs.atomic_write_bytes(os.path.join(out_dir, "per_image.csv"), _csv_bytes(rows))
    worst_names = _write_gallery(os.path.join(out_dir, WORST_DIR), gallery.ranked())
    runs.atomic_write_bytes(
        os.path.join(out_dir, "iou_vs_metadata.png"), plot_iou_vs_metadata(rows)
    )
    summary = summary_markdown(result, rows, worst_names)
    runs.atomic_write_bytes(os.path.join(out_dir, "summary.md"), summary.encode())
    log(format_table(result))
    log(
        f"wrote metrics.json, per_image.csv, summary.md, iou_vs_metadata.png and "
        f"{len(worst_names)} worst image(s) to {out_dir}"
    )
    if submit:
        where = os.path.join(run_dir, submission.SUBMISSION_DIR)
        extra = (
            f" and their bird's-eye views in {os.path.join(where, submission.BEV_DIR)}"
            if use_bev
            else ""
        )
        log(f"wrote {n_sub} submission map(s) to {where}{extra}")
    return result


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
    lines = [["class", "IoU", "precision", "recall", "F1"]]
    for name, s in result["classes"].items():
        lines.append([name] + [_num(s[k]) for k in ("iou", "precision", "recall", "f1")])
    return lines


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


def format_table(result):
    """The console report: KITTI scores in % (as the devkit prints them), then per class."""
    per_cat = ", ".join(f"{c} {n}" for c, n in result["images_per_category"].items())
    return "\n".join(
        [
            f"{result['num_images']} image(s) ({per_cat}), threshold {result['threshold']:.2f}",
            "",
            "KITTI road benchmark (perspective, original resolution):",
            _text_table(_kitti_lines(result)),
            "",
            f"per class at threshold {result['threshold']:.2f}:",
            _text_table(_class_lines(result)),
            f"mean IoU {_num(result['mean_iou'])}, pixel accuracy {_num(result['pixel_accuracy'])}",
        ]
    )


def _cell(value):
    """A CSV cell: floats with 6 decimals, undefined scores (NaN) as empty cells."""
    if isinstance(value, float):
        return f"{value:.6f}" if math.isfinite(value) else ""
    return value


def _csv_bytes(rows):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue().encode()


def summary_markdown(result, rows, worst_names):
    """RUN_DIR/eval/summary.md: the tables, the worst images ([(filename, name)] in rank order)
    and the metadata plot."""
    per_cat = ", ".join(f"{c} {n}" for c, n in result["images_per_category"].items())
    lines = [
        f"# Evaluation of `{result['run']}`",
        "",
        f"- checkpoint: `{result['checkpoint']}`",
        f"- data: `{result['data_dir']}`, split `{result['split']}`: "
        f"{result['num_images']} image(s) ({per_cat})",
        f"- threshold for masks and per-class metrics: {result['threshold']:.2f}",
        "",
        "## KITTI road benchmark",
        "",
        "Perspective space at each image's original resolution, the devkit's definitions; "
        "scores in %, BestThresh as a fraction.",
        "",
        _markdown_table(_kitti_lines(result)),
        "",
        "## Per class",
        "",
        _markdown_table(_class_lines(result)),
        "",
        f"Mean IoU {_num(result['mean_iou'])}, pixel accuracy {_num(result['pixel_accuracy'])}.",
        "",
        f"## The {len(worst_names)} worst images by road IoU",
        "",
        "True positives green, false positives red, false negatives blue. "
        "All images are in `per_image.csv`.",
        "",
    ]
    by_name = {r["name"]: r for r in rows}
    table = [["rank", "image", "category", "IoU", "F1", "road fraction", "regions", "brightness"]]
    for rank, (filename, name) in enumerate(worst_names, 1):
        r = by_name[name]
        table.append(
            [
                str(rank),
                f"[{r['name']}]({WORST_DIR}/{filename})",
                r["category"],
                _num(r["iou"]),
                _num(r["f1"]),
                _num(r["road_fraction"], 3),
                str(r["n_road_regions"]),
                _num(r["brightness"], 3),
            ]
        )
    if worst_names:
        lines += [_markdown_table(table), ""]
    lines += ["## Road IoU against image metadata", "", "![](iou_vs_metadata.png)", ""]
    return "\n".join(lines)


def plot_iou_vs_metadata(rows):
    """PNG bytes: per-image road IoU against road fraction, road regions and brightness, one
    colour per category, grey frames as hollow markers."""
    import matplotlib

    matplotlib.use("Agg")  # no display; before anything touches a backend
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(12, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3, sharey=True)
    panels = (
        ("road_fraction", "road fraction of the valid area"),
        ("n_road_regions", "connected road regions in the label"),
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
    axes[0].set_ylabel("road IoU")
    axes[0].set_ylim(-0.02, 1.02)
    if any(ax.get_legend_handles_labels()[0] for ax in axes):
        axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"per-image road IoU against image metadata ({len(rows)} images)")
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
        )
        return 0
    if not (args.prob_dir and args.gt_dir):
        raise UserError(
            "evaluate needs --run RUN_DIR, or --prob-dir DIR together with --gt-dir DIR"
        )
    if args.submit or args.bev or args.data_dir:
        raise UserError("--submit, --bev and --data-dir need --run RUN_DIR")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    result = evaluate_prob_dir(args.prob_dir, args.gt_dir, threshold)
    print(format_table(result))
    if args.out:
        runs.write_json(args.out, json_safe(result))
        print(f"wrote {args.out}")
    return 0
