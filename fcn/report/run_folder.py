"""What a run folder (fcn.runs.RunFolder) holds, read for the pages: every entry may be missing
(a run that has not finished an epoch, an interrupted one, one never evaluated, one from an
older version)."""

import dataclasses
import json
import math
import os
import re
import time

from fcn import names, runs
from fcn.errors import UserError

# The fallback when summary.json is missing: the score training selects by
# (fcn.training.validation.best_metric).
_BINARY_METRIC, _MULTICLASS_METRIC = "val_iou", "val_mean_iou"
_STAMP = re.compile(r"^(\d{8}-\d{6})")  # runs.new_run_dir's names, with an optional -k


@dataclasses.dataclass
class Run:
    """One run folder's contents; dicts are empty and lists empty where the file is absent."""

    path: str
    name: str
    config: dict
    summary: dict
    dataset: dict
    class_stats: dict
    log: list  # one dict per epoch, in epoch order; a resumed epoch's last record wins
    eval_metrics: dict
    notes: list  # what the folder lacks, one sentence each, for the page

    def get(self, key, default=None):
        """A run property from summary.json, falling back to config.json."""
        value = self.summary.get(key)
        return self.config.get(key, default) if value is None else value

    @property
    def dataset_name(self):
        return self.dataset.get("name") or self.get("dataset", "?")

    @property
    def class_names(self):
        names_ = self.dataset.get("class_names") or self.class_stats.get("class_names")
        if names_:
            return list(names_)
        return list(self.log[-1].get("val_classes", {})) if self.log else []

    @property
    def metric(self):
        """The selection score's log key: val_iou (binary) or val_mean_iou (multi-class)."""
        metric = self.summary.get("best_metric")
        if metric:
            return metric
        task = self.dataset.get("task") or self.summary.get("task")
        if task:
            return _BINARY_METRIC if task == "binary" else _MULTICLASS_METRIC
        has_binary = any(_BINARY_METRIC in e for e in self.log)
        return _BINARY_METRIC if has_binary else _MULTICLASS_METRIC

    def best(self):
        """(score, epoch) of the best epoch: summary.json's, else the log's; (None, None)."""
        if self.summary.get("best_epoch") is not None:
            return _finite(self.summary.get("best_score")), self.summary["best_epoch"]
        scored = [(_finite(e.get(self.metric)), e["epoch"]) for e in self.log]
        scored = [(s, ep) for s, ep in scored if s is not None]
        # Ties go to the earliest epoch, as training keeps the first best checkpoint.
        return max(scored, key=lambda s: (s[0], -s[1])) if scored else (None, None)

    def seconds(self):
        """Training time: summary.json's, else the epochs' sum so far; None when unknown."""
        if self.summary.get("train_seconds") is not None:
            return float(self.summary["train_seconds"])
        times = [e["seconds"] for e in self.log if _finite(e.get("seconds")) is not None]
        return float(sum(times)) if times else None

    def started(self):
        """Start time (seconds since the epoch) from the folder's stamp, else config.json's
        modification time."""
        match = _STAMP.match(self.name)
        if match:
            try:
                return time.mktime(time.strptime(match.group(1), "%Y%m%d-%H%M%S"))
            except ValueError:
                pass
        return os.path.getmtime(runs.RunFolder(self.path).file(names.CONFIG_FILE))

    def image_shape(self):
        shape = self.config.get("image_shape") or []
        return f"{shape[0]}x{shape[1]}" if len(shape) == 2 else "?"


def _finite(x):
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def _known_spec(config):
    """The descriptor of config.dataset, for runs older than dataset.json; {} if unknown."""
    try:
        from fcn import data

        return data.get_spec(config.get("dataset", "")).to_dict()
    except (ImportError, AttributeError, UserError):
        return {}


def is_run(path):
    return os.path.isfile(runs.RunFolder(path).file(names.CONFIG_FILE))


def _json(path, notes, missing=None):
    """The file's JSON object; {} with a note when it is missing (if `missing` says why it
    matters) or unreadable, so one damaged file never stops the page."""
    try:
        with open(path) as f:
            value = json.load(f)
    except FileNotFoundError:
        if missing:
            notes.append(missing)
        return {}
    except (OSError, ValueError) as e:
        notes.append(f"{os.path.basename(path)} could not be read ({e}).")
        return {}
    return value if isinstance(value, dict) else {}


def read_log(folder, notes):
    """log.jsonl's epochs in order. A line cut short by a crash is skipped with a note; a
    resumed run may log an epoch twice, and its later record is the one that counts."""
    by_epoch, bad = {}, 0
    for line, record in folder.log_lines():
        if record is not None:
            by_epoch[record["epoch"]] = record
        elif line.strip():
            bad += 1
    if bad:
        notes.append(f"{bad} line(s) of {names.LOG_FILE} could not be read and were skipped.")
    return [by_epoch[k] for k in sorted(by_epoch)]


def read_run(run_dir):
    """The run folder as a Run; UserError (one line) when it is not a run folder."""
    runs.RunFolder(run_dir).check_exists()
    folder = runs.RunFolder(os.path.abspath(run_dir))
    if not is_run(run_dir):
        raise UserError(
            f"{run_dir} has no {names.CONFIG_FILE}, so it is not a run folder; pass one from runs/"
        )
    notes = []
    config = _json(folder.file(names.CONFIG_FILE), notes)
    log = read_log(folder, notes)
    if not log:
        notes.append(f"No epoch has finished yet ({names.LOG_FILE} is missing or empty).")
    summary = _json(
        folder.file(names.SUMMARY_FILE),
        notes,
        f"Training has not finished: it is running or was interrupted (no "
        f"{names.SUMMARY_FILE}); `python main.py train --resume {run_dir}` continues it.",
    )
    eval_metrics = _json(
        folder.file(os.path.join(names.EVAL_DIR, names.EVAL_METRICS_FILE)),
        notes,
        f"Not evaluated yet: `python main.py evaluate --run {run_dir}` adds per-class and "
        "benchmark figures, the worst images and the error analysis.",
    )
    return Run(
        path=folder.path,
        name=os.path.basename(folder.path),
        config=config,
        summary=summary,
        dataset=_json(folder.file(names.DATASET_FILE), notes) or _known_spec(config),
        class_stats=_json(folder.file(names.CLASS_STATS_FILE), notes),
        log=log,
        eval_metrics=eval_metrics,
        notes=notes,
    )
