"""The run page, RUN/index.html: header, curves, tables, galleries, error analysis.

Written when training ends, refreshed by evaluate, rebuilt by `python main.py report RUN`.
Every section shows what the folder holds and says what it lacks."""

import glob
import json
import os
import time

from fcn import names, runs
from fcn.report import plots, thumbs
from fcn.report.html import document, duration, esc, finite, number, table
from fcn.report.index import write_index
from fcn.report.run_folder import read_run

GALLERY_MAX = 12  # images per gallery; the rest are a click away in their folder
LEARN_IMAGES = 4  # validation images followed across epochs
LEARN_EPOCHS = 6  # epochs shown for them: the first, the last and evenly between
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
# KITTI devkit figures in the devkit's order; any other key evaluate writes follows.
KITTI_ORDER = ("MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh")
SCORE_NAMES = {"val_iou": "road IoU", "val_mean_iou": "mean IoU"}


def _images(run_dir, rel_folder):
    """RUN-relative paths of the images in a folder, sorted by name."""
    folder = os.path.join(run_dir, rel_folder)
    found = [p for ext in IMAGE_EXTS for p in glob.glob(os.path.join(folder, "*" + ext))]
    return [os.path.relpath(p, run_dir).replace(os.sep, "/") for p in sorted(found)]


def _spread(items, k):
    """k items evenly spread over the list, first and last included."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


class _Gallery:
    """Collects the thumbnails a page uses (to prune the others afterwards)."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.used = set()

    def figure(self, rel, caption):
        thumb = thumbs.make_thumbnail(self.run_dir, rel)
        if thumb is None:
            return f"<figure><figcaption>{esc(caption)}: cannot be read</figcaption></figure>"
        self.used.add(thumb)
        return (
            f'<figure><a href="{esc(rel)}"><img src="{esc(thumb)}" alt="{esc(caption)}" '
            f'loading="lazy"></a><figcaption>{esc(caption)}</figcaption></figure>'
        )

    def block(self, rels, caption=lambda rel: os.path.basename(rel), strip=False):
        cls = "strip" if strip else "gallery"
        return f'<div class="{cls}">' + "".join(self.figure(r, caption(r)) for r in rels) + "</div>"


def _more(shown, total, folder):
    if total <= shown:
        return ""
    return (
        f'<p class="muted">{shown} of {total} shown; all in '
        f'<a href="{esc(folder)}/">{esc(folder)}/</a>.</p>'
    )


def _header(run):
    score, epoch = run.best()
    metric = run.metric
    loss = run.get("loss") or "ce"
    weights = run.summary.get("class_weights") or run.config.get("class_weights")
    if weights and weights not in ("none", "auto"):
        loss += f" (class weights: {weights})"
    epochs_done = run.log[-1]["epoch"] if run.log else 0
    facts = [
        ("dataset", f"{run.dataset_name} ({', '.join(run.class_names) or '?'})"),
        ("encoder", run.get("encoder", "?")),
        ("decoder", run.get("decoder", "?")),
        ("loss", loss),
        ("image size", run.image_shape()),
        ("epochs", f"{epochs_done} of {run.config.get('epochs', '?')}"),
        ("time", duration(run.seconds())),
        ("precision", run.get("precision", "?")),
        (
            "best score",
            f"{SCORE_NAMES.get(metric, metric)} {number(score)} at epoch {epoch}"
            if score is not None
            else "none yet",
        ),
    ]
    if run.summary.get("train_images") is not None:
        facts.append(
            ("images", f"{run.summary['train_images']} train, {run.summary.get('val_images')} val")
        )
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    config = json.dumps(run.config, indent=2, sort_keys=True)
    return (
        f'<p><a href="../{names.REPORT_PAGE}">&larr; all runs</a></p>'
        f"<h1>{esc(run.name)}</h1>"
        f'<p class="muted">page written {time.strftime("%Y-%m-%d %H:%M")}</p>'
        f'<dl class="facts">{dl}</dl>'
        f'<details><summary>the whole config (<a href="{names.CONFIG_FILE}">'
        f"{names.CONFIG_FILE}</a>)</summary><pre>{esc(config)}</pre></details>"
    )


def _mean_over_classes(entry, key):
    values = [c.get(key) for c in entry.get("val_classes", {}).values()]
    values = [v for v in values if finite(v)]
    return sum(values) / len(values) if values else None


def _curves(run):
    """The per-epoch charts (SVG) of log.jsonl."""
    if not run.log:
        return ""

    def series(key, label=None, fn=None):
        return (label or key, [(e["epoch"], fn(e) if fn else e.get(key)) for e in run.log])

    metric = run.metric
    charts = [
        plots.line_chart("loss", [series("train_loss", "train"), series("val_loss", "val")]),
        plots.line_chart(
            "selection score",
            [series(metric, SCORE_NAMES.get(metric, metric))]
            + ([series("val_mean_iou", "mean IoU")] if metric != "val_mean_iou" else [])
            + [series("val_pixel_accuracy", "pixel accuracy")],
        ),
    ]
    if any("val_precision" in e for e in run.log):
        pr = [series("val_precision", "precision"), series("val_recall", "recall")]
        title = "precision and recall (positive class)"
    else:
        pr = [
            series("p", "mean precision", lambda e: _mean_over_classes(e, "precision")),
            series("r", "mean recall", lambda e: _mean_over_classes(e, "recall")),
        ]
        title = "precision and recall (mean over classes)"
    charts.append(plots.line_chart(title, pr))
    charts.append(plots.line_chart("learning rate", [series("learning_rate", "learning rate")]))
    body = "".join(f"<div>{c}</div>" for c in charts if c)
    note = (
        ""
        if any("learning_rate" in e for e in run.log)
        else '<p class="muted">This run\'s log has no learning rate per epoch.</p>'
    )
    return f'<h2>Curves (validation, per epoch)</h2><div class="charts">{body}</div>{note}'


def _swatch(run, i):
    palette = run.dataset.get("palette") or []
    colour = palette[i] if i < len(palette) else None
    if not colour:
        return '<span class="swatch"></span>'
    r, g, b = colour
    return f'<span class="swatch" style="background: rgb({r},{g},{b})"></span>'


def _training_shares(run):
    """{class: share of the training labels' labelled pixels} from class_stats.json."""
    pixels = run.class_stats.get("pixels") or []
    total = sum(pixels)
    return dict(zip(run.class_names, (p / total for p in pixels), strict=False)) if total else {}


def _class_table(run, classes, shares):
    """Per-class figures; shares: {class: pixel share} (absent classes show n/a)."""
    rows = []
    for i, name in enumerate(run.class_names or list(classes)):
        s = classes.get(name, {})
        share = shares.get(name)
        rows.append(
            [(_swatch(run, i) + esc(name), None)]
            + [number(s.get(k)) for k in ("iou", "precision", "recall", "f1")]
            + [number(share, 2, 100.0) + " %" if finite(share) else "n/a"]
        )
    head = [(h, "num") for h in ("class", "IoU", "precision", "recall", "F1", "pixel share")]
    return table(head, rows)


def _kitti_table(kitti):
    groups = [(g, s) for g, s in kitti.items() if isinstance(s, dict)]
    if not groups or not any(finite(v) for _, s in groups for v in s.values()):
        return ""
    keys = [k for k in KITTI_ORDER if any(k in s for _, s in groups)]
    keys += sorted({k for _, s in groups for k in s} - set(keys))
    head = [("category", "text")] + [(k if k == "BestThresh" else f"{k} (%)", "num") for k in keys]
    rows = [
        [g]
        + [number(s.get(k), 3) if k == "BestThresh" else number(s.get(k), 2, 100.0) for k in keys]
        for g, s in groups
    ]
    return "<h3>KITTI road benchmark (devkit definitions, original resolution)</h3>" + table(
        head, rows
    )


def _tables(run):
    out = ["<h2>Per class</h2>"]
    ev = run.eval_metrics
    if ev.get("classes"):
        what = f"split {ev.get('split', '?')}, {ev.get('num_images', '?')} image(s)"
        out.append(
            f"<h3>Evaluation ({esc(what)}, checkpoint {esc(ev.get('checkpoint', '?'))})</h3>"
        )
        out.append(_class_table(run, ev["classes"], ev.get("class_shares") or {}))
        out.append('<p class="muted">Pixel share: of the evaluated ground truth.</p>')
        out.append(
            f"<p>mean IoU {number(ev.get('mean_iou'))}, pixel accuracy "
            f"{number(ev.get('pixel_accuracy'))}</p>"
        )
    score, epoch = run.best()
    best = next((e for e in run.log if e["epoch"] == epoch), run.log[-1] if run.log else None)
    if best and best.get("val_classes"):
        out.append(f"<h3>Validation at epoch {best['epoch']} (network input size)</h3>")
        out.append(_class_table(run, best["val_classes"], _training_shares(run)))
        if run.class_stats:
            out.append('<p class="muted">Pixel share: of the training labels\' pixels.</p>')
    if len(out) == 1:
        out.append('<p class="muted">No per-class figures yet.</p>')
    out.append(_kitti_table(ev.get("kitti") or {}))
    out.append(_confusion(run))
    return "".join(out)


def _confusion(run):
    image = f"{names.EVAL_DIR}/{names.EVAL_CONFUSION_IMAGE}"
    if os.path.isfile(os.path.join(run.path, image)):
        return (
            f'<h3>Confusion matrix</h3><a href="{image}"><img class="plot" src="{image}" '
            'alt="confusion matrix"></a>'
        )
    matrix = run.eval_metrics.get("confusion_matrix")
    if isinstance(matrix, list) and matrix and all(isinstance(r, list) for r in matrix):
        labels = run.class_names + [f"class_{i}" for i in range(len(run.class_names), len(matrix))]
        return "<h3>Confusion matrix</h3>" + plots.confusion_svg(matrix, labels)
    return ""


def _galleries(run, gallery):
    out = ["<h2>Images</h2>"]
    compare = _images(run.path, names.VAL_COMPARE_DIR)
    if compare:
        out.append("<h3>Validation: image | ground truth | prediction</h3>")
        out.append(gallery.block(compare[:GALLERY_MAX]))
        out.append(_more(min(len(compare), GALLERY_MAX), len(compare), names.VAL_COMPARE_DIR))
    epochs = (
        sorted(
            d
            for d in os.listdir(os.path.join(run.path, names.VAL_OVERLAYS_DIR))
            if os.path.isdir(os.path.join(run.path, names.VAL_OVERLAYS_DIR, d))
        )
        if os.path.isdir(os.path.join(run.path, names.VAL_OVERLAYS_DIR))
        else []
    )
    per_epoch = {e: _images(run.path, f"{names.VAL_OVERLAYS_DIR}/{e}") for e in epochs}
    epochs = [e for e in epochs if per_epoch[e]]
    if epochs:
        shown = _spread(epochs, LEARN_EPOCHS)
        stems = sorted(
            {os.path.basename(p) for p in per_epoch[epochs[-1]]}
            & {os.path.basename(p) for p in per_epoch[shown[0]]}
        )[:LEARN_IMAGES]
        if len(shown) > 1 and stems:
            out.append("<h3>Validation overlays across epochs</h3>")
            for stem in stems:
                rels = [f"{names.VAL_OVERLAYS_DIR}/{e}/{stem}" for e in shown]
                rels = [r for r in rels if os.path.isfile(os.path.join(run.path, r))]
                out.append(f"<p>{esc(os.path.splitext(stem)[0])}</p>")
                out.append(gallery.block(rels, lambda r: r.split("/")[-2].replace("_", " "), True))
        last = epochs[-1]
        out.append(f"<h3>Validation overlays, {esc(last.replace('_', ' '))}</h3>")
        out.append(gallery.block(per_epoch[last][:GALLERY_MAX]))
        folder = f"{names.VAL_OVERLAYS_DIR}/{last}"
        out.append(_more(min(len(per_epoch[last]), GALLERY_MAX), len(per_epoch[last]), folder))
    test = _images(run.path, names.TEST_DIR)
    if test:
        out.append("<h3>Test overlays</h3>")
        out.append(gallery.block(test[:GALLERY_MAX]))
        out.append(_more(min(len(test), GALLERY_MAX), len(test), names.TEST_DIR))
    worst_dir = f"{names.EVAL_DIR}/{names.EVAL_WORST_DIR}"
    worst = _images(run.path, worst_dir)
    if worst:
        out.append(
            "<h3>Worst images (true positives green, false positives red, false negatives "
            "blue)</h3>"
        )
        out.append(gallery.block(worst[:GALLERY_MAX]))
        out.append(_more(min(len(worst), GALLERY_MAX), len(worst), worst_dir))
    if len(out) == 1:
        out.append('<p class="muted">No images yet.</p>')
    return "".join(out)


def _analysis(run):
    plots_dir = f"{names.EVAL_DIR}/{names.EVAL_PLOTS_DIR}"
    found = _images(run.path, plots_dir)
    legacy = f"{names.EVAL_DIR}/iou_vs_metadata.png"  # evaluate's single plot before plots/
    if os.path.isfile(os.path.join(run.path, legacy)):
        found.append(legacy)
    if not found:
        return ""
    imgs = "".join(
        f'<figure><a href="{esc(p)}"><img class="plot" src="{esc(p)}" alt="{esc(p)}"></a>'
        f"<figcaption>{esc(os.path.basename(p))}</figcaption></figure>"
        for p in found
    )
    return f"<h2>Error analysis: scores against image metadata</h2>{imgs}"


def _files(run):
    entries = [
        names.CONFIG_FILE,
        names.LOG_FILE,
        names.SUMMARY_FILE,
        names.DATASET_FILE,
        names.CLASS_STATS_FILE,
        f"{names.EVAL_DIR}/{names.EVAL_SUMMARY_FILE}",
        f"{names.EVAL_DIR}/{names.EVAL_METRICS_FILE}",
        f"{names.EVAL_DIR}/{names.EVAL_PER_IMAGE_FILE}",
    ]
    links = [f'<a href="{e}">{e}</a>' for e in entries if os.path.isfile(os.path.join(run.path, e))]
    return "<h2>Files</h2><p>" + " &middot; ".join(links) + "</p>"


def render_run_page(run_dir):
    """(html text, RUN-relative thumbnails it uses); makes missing or stale thumbnails."""
    run = read_run(run_dir)
    gallery = _Gallery(run.path)
    notes = "".join(f"<p>{esc(n)}</p>" for n in run.notes)
    body = "".join(
        [
            _header(run),
            f'<div class="notes">{notes}</div>' if notes else "",
            _curves(run),
            _tables(run),
            _galleries(run, gallery),
            _analysis(run),
            _files(run),
        ]
    )
    return document(f"run {run.name}", body), gallery.used


def write_run_page(run_dir):
    """Write RUN/index.html (and its thumbnails in RUN/report/), then refresh the parent's
    runs/index.html. Returns the page's path; UserError when run_dir is not a run folder."""
    text, used = render_run_page(run_dir)
    path = os.path.join(run_dir, names.REPORT_PAGE)
    runs.atomic_write_bytes(path, text.encode())
    thumbs.prune(run_dir, used)
    write_index(os.path.dirname(os.path.abspath(run_dir)))
    return path
