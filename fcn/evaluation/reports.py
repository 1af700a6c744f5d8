"""The files `evaluate` writes into RUN/eval/ and the tables it prints: metrics.json,
per_image.csv, confusion.png, plots/, worst/, summary.md and, for binary datasets,
iou_vs_metadata.png (names in fcn.names)."""

import glob
import math
import os

from fcn import data, names, runs
from fcn.data import task
from fcn.evaluation import analysis, plots, polygon_scores
from fcn.evaluation.scoring import KITTI_GROUPS, KITTI_KEYS

IOU_VS_METADATA = "iou_vs_metadata.png"  # binary datasets; plots/ holds every dataset's plots
# per_image.csv of KITTI road (a binary dataset without example metadata), in column order;
# other datasets' columns follow the same pattern (fcn.evaluation.analysis.sample_row).
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
    runs.write_json(os.path.join(out_dir, names.EVAL_METRICS_FILE), runs.json_safe(result))
    runs.atomic_write_bytes(
        os.path.join(out_dir, names.EVAL_PER_IMAGE_FILE), analysis.csv_bytes(rows)
    )
    runs.atomic_write_bytes(
        os.path.join(out_dir, names.EVAL_CONFUSION_IMAGE),
        plots.confusion_png(result["confusion_matrix"], list(spec.class_names)),
    )
    plots_dir = os.path.join(out_dir, names.EVAL_PLOTS_DIR)
    for old in glob.glob(os.path.join(plots_dir, "*.png")):
        os.remove(old)
    labels = {headline: label_text, analysis.LOSS: "loss (cross-entropy)"}
    plot_pngs = plots.metadata_plots(rows, [headline, analysis.LOSS], fields, labels)
    for filename, png in plot_pngs.items():
        runs.atomic_write_bytes(os.path.join(plots_dir, filename), png)
    worst_names = _write_gallery(os.path.join(out_dir, names.EVAL_WORST_DIR), ranked)
    written = [
        names.EVAL_METRICS_FILE,
        names.EVAL_PER_IMAGE_FILE,
        names.EVAL_SUMMARY_FILE,
        names.EVAL_CONFUSION_IMAGE,
        f"{len(plot_pngs)} plot(s) in {names.EVAL_PLOTS_DIR}/",
        f"{len(worst_names)} worst image(s) in {names.EVAL_WORST_DIR}/",
    ]
    if spec.task == "binary":
        png = plots.plot_iou_vs_metadata(rows, spec.positive_name)
        runs.atomic_write_bytes(os.path.join(out_dir, IOU_VS_METADATA), png)
        written.insert(4, IOU_VS_METADATA)
    summary = summary_markdown(result, rows, worst_names, spec, sorted(plot_pngs))
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
    lines += polygon_scores.lines(result)
    return "\n".join(lines)


def _prediction(result):
    """'whole image at scale 1' or 'slide, windows overlapping 0.25, at scales 0.5, 1'."""
    scales = result.get("scales") or [1.0]
    at = f"at scale{'s' if len(scales) > 1 else ''} {', '.join(f'{s:g}' for s in scales)}"
    if result["predict"] == "slide":
        return f"slide, windows of the network size overlapping {result['overlap']:g}, {at}"
    return f"whole image in the network's input size, {at}"


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
        *([f"- prediction: {_prediction(result)}"] if result.get("predict") else []),
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
    if "cityscapes" in result:
        lines += _cityscapes_lines(result["cityscapes"])
    if "polygons" in result:
        lines += ["## Buildings as polygons", "", *polygon_scores.lines(result), ""]
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
                f"[{r['name']}]({names.EVAL_WORST_DIR}/{filename})",
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


def _cityscapes_lines(cs):
    """summary.md's section of Cityscapes' four figures (fcn.evaluation.cityscapes)."""

    def cell(x):
        return "missing" if x is None else _num(x)

    lines = [
        "## Cityscapes benchmark",
        "",
        "evalPixelLevelSemanticLabeling's figures; iIoU weights each instance by its class's "
        f"average size ({cs['instances']}).",
        "",
        "| figure | value |",
        "|---|---|",
        *(
            f"| {k} | {cell(cs[k])} |"
            for k in ("iou_class", "iiou_class", "iou_category", "iiou_category")
        ),
        "",
        "| class | IoU | iIoU |",
        "|---|---|---|",
        *(f"| {n} | {cell(v['iou'])} | {cell(v['iiou'])} |" for n, v in cs["classes"].items()),
        "",
        "| category | IoU | iIoU |",
        "|---|---|---|",
        *(f"| {n} | {cell(v['iou'])} | {cell(v['iiou'])} |" for n, v in cs["categories"].items()),
        "",
    ]
    return lines


def _colour_name(rgb):
    return _COLOUR_NAMES.get(tuple(rgb), "grey" if len(set(rgb)) == 1 else str(tuple(rgb)))
