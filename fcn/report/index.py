"""runs/index.html: one row per run, sortable by any column, each linking to its page."""

import os
import time

from fcn import names, runs
from fcn.errors import UserError
from fcn.report.html import cell, document, duration, esc, number, table
from fcn.report.run_folder import is_run, read_run

COLUMNS = (
    ("date", "num"),
    ("run", "text"),
    ("dataset", "text"),
    ("model", "text"),
    ("loss", "text"),
    ("size", "num"),
    ("epochs", "num"),
    ("best score", "num"),
    ("time", "num"),
)


def run_dirs(runs_dir):
    """The run folders directly under runs_dir (those with a config.json), newest first."""
    if not os.path.isdir(runs_dir):
        raise UserError(f"runs folder {runs_dir} does not exist; pass the folder holding runs")
    entries = [os.path.join(runs_dir, d) for d in sorted(os.listdir(runs_dir), reverse=True)]
    return [d for d in entries if os.path.isdir(d) and is_run(d)]


def _row(run_dir):
    run = read_run(run_dir)
    started = run.started()
    score, epoch = run.best()
    metric = {"val_iou": "road IoU", "val_mean_iou": "mean IoU"}.get(run.metric, run.metric)
    shape = run.config.get("image_shape") or [0, 0]
    done = run.log[-1]["epoch"] if run.log else 0
    page = os.path.join(run_dir, names.REPORT_PAGE)
    # A run without a page yet (older, or never reported) links to its folder.
    href = f"{run.name}/{names.REPORT_PAGE}" if os.path.isfile(page) else f"{run.name}/"
    seconds = run.seconds()
    return [
        cell(time.strftime("%Y-%m-%d %H:%M", time.localtime(started)), f"{started:.0f}"),
        (f'<a href="{esc(href)}">{esc(run.name)}</a>', run.name),
        cell(run.dataset_name, run.dataset_name),
        cell(f"{run.get('encoder', '?')} + {run.get('decoder', '?')}"),
        cell(run.get("loss") or "ce"),
        cell(run.image_shape(), shape[0] * shape[1] if len(shape) == 2 else ""),
        cell(f"{done} / {run.config.get('epochs', '?')}", done),
        cell(
            f"{number(score)} {metric} (epoch {epoch})" if score is not None else "n/a",
            "" if score is None else f"{score:.6f}",
        ),
        cell(duration(seconds), "" if seconds is None else f"{seconds:.1f}"),
    ]


def render_index(runs_dir):
    rows = [_row(d) for d in run_dirs(runs_dir)]
    body = (
        f"<h1>Runs in {esc(os.path.basename(os.path.abspath(runs_dir)))}/</h1>"
        f'<p class="muted">{len(rows)} run(s); click a column header to sort. Page written '
        f"{time.strftime('%Y-%m-%d %H:%M')}.</p>"
        + (table(COLUMNS, rows, sortable=True) if rows else "<p>No runs yet.</p>")
    )
    return document("runs", body, script=True)


def write_index(runs_dir):
    """Write runs_dir/index.html; returns its path."""
    path = os.path.join(runs_dir, names.REPORT_PAGE)
    runs.atomic_write_bytes(path, render_index(runs_dir).encode())
    return path
