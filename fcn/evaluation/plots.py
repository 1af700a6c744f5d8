"""The plots `evaluate` writes, as PNG bytes: each score against each metadata field of the
per-image rows (fcn.evaluation.analysis), the row-normalised confusion matrix and, for binary
datasets, the positive class's IoU against its metadata. matplotlib's Agg canvas without pyplot,
so they are safe without a display and in threads.
"""

import io
import math
import re

import numpy as np

from fcn.evaluation.analysis import field_kind, finite_number

# Confusion image: inches per class plus room for the names; 100 dpi.
CONFUSION_DPI = 100
CONFUSION_BASE_INCHES = 3.0
CONFUSION_INCHES_PER_CLASS = 0.4
_ANNOTATE_UP_TO = 20  # classes: beyond this the cell numbers would not be legible


def _figure(width_in, height_in, dpi=100):
    import matplotlib

    matplotlib.use("Agg")  # no display; before anything touches a backend
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def plot_name(score, field):
    """plots/<score>_vs_<field>.png with anything but letters, digits, '-' and '_' replaced."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", f"{score}_vs_{field}") + ".png"


def plot_score_vs_field(rows, score, field, score_label=None):
    """PNG bytes of `score` against `field` over the rows: a scatter for numeric fields, a box
    with every image as a jittered point per group for boolean and category fields; None when
    no image has both defined."""
    pairs = [(r.get(field), r.get(score)) for r in rows]
    pairs = [(v, s) for v, s in pairs if v is not None and finite_number(s)]
    kind = field_kind([v for v, _ in pairs])
    if kind == "numeric":
        pairs = [(v, s) for v, s in pairs if finite_number(v)]
    if not pairs:
        return None
    fig = _figure(5, 3.6)
    ax = fig.subplots()
    if kind == "numeric":
        x, y = zip(*pairs, strict=True)
        ax.scatter(x, y, s=16, alpha=0.7)
    else:
        values = sorted({bool(v) if kind == "boolean" else v for v, _ in pairs}, key=str)
        data = [[s for v, s in pairs if (bool(v) if kind == "boolean" else v) == g] for g in values]
        ax.boxplot(data, showfliers=False)
        rng = np.random.default_rng(0)  # the same picture every run
        for i, ys in enumerate(data, 1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(ys)), ys, s=12, alpha=0.6)
        ax.set_xticks(range(1, len(values) + 1))
        ax.set_xticklabels([f"{v}\n({len(d)})" for v, d in zip(values, data, strict=True)])
    ax.set_xlabel(field)
    ax.set_ylabel(score_label or score)
    ax.grid(alpha=0.3)
    ax.set_title(f"{score_label or score} against {field} ({len(pairs)} images)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def metadata_plots(rows, scores, fields, labels=None):
    """{plot_name(score, field): PNG bytes} for each score against each field that varies
    over the rows (a constant field shows nothing): len(scores) * len(fields) plots at most."""
    labels = labels or {}
    out = {}
    for field in fields:
        if len({str(r.get(field)) for r in rows}) < 2:
            continue
        for score in scores:
            png = plot_score_vs_field(rows, score, field, labels.get(score))
            if png is not None:
                out[plot_name(score, field)] = png
    return out


def confusion_image_size(num_classes):
    """(height, width) in px of confusion_png's image."""
    side = int(round((CONFUSION_BASE_INCHES + CONFUSION_INCHES_PER_CLASS * num_classes) * 100))
    return side, side


def confusion_png(cm, class_names):
    """PNG bytes of the row-normalised confusion matrix (rows: true class, columns: predicted;
    each row sums to 1, a class without ground truth is an empty row), class names on both
    axes, of confusion_image_size(len(class_names))."""
    cm = np.asarray(cm, np.float64)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"{n} class names for a confusion matrix of shape {cm.shape}")
    support = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(support > 0, cm / support, np.nan)
    side = CONFUSION_BASE_INCHES + CONFUSION_INCHES_PER_CLASS * n
    fig = _figure(side, side, CONFUSION_DPI)
    ax = fig.subplots()
    im = ax.imshow(np.ma.masked_invalid(norm), vmin=0.0, vmax=1.0, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(class_names, rotation=90, fontsize=8)
    ax.set_yticklabels(class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= _ANNOTATE_UP_TO:
        for i in range(n):
            for j in range(n):
                if math.isfinite(norm[i, j]) and norm[i, j] >= 0.005:
                    colour = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j,
                        i,
                        f"{norm[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=colour,
                    )
    ax.set_title("confusion (each true class's row sums to 1)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


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
