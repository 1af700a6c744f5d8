"""Run folders and safe file writes: runs/<timestamp>/ never overwrites, files appear whole."""

import contextlib
import json
import math
import os
import tempfile
import time

import cv2
import numpy as np

from fcn.errors import UserError


def new_run_dir(runs_dir, name=None):
    """Create runs_dir/<YYYYmmdd-HHMMSS>[-k]; an existing run is never reused."""
    base = name or time.strftime("%Y%m%d-%H%M%S")
    try:
        os.makedirs(runs_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create runs folder {runs_dir}: {e.strerror}") from None
    for k in range(1000):
        path = os.path.join(runs_dir, base if k == 0 else f"{base}-{k}")
        try:
            os.mkdir(path)  # atomic: fails if another run took the name
            return path
        except FileExistsError:
            continue
    raise UserError(f"cannot find a free run folder name under {runs_dir}")


def atomic_write_bytes(path, data):
    """Write to a temporary sibling, fsync, then rename: readers see the old or the new file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def json_safe(obj):
    """JSON has no NaN or infinity (Python would write invalid JSON): they become null; NumPy
    scalars become Python numbers. Recursive over dicts, lists and tuples."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj):
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode())


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; is this a run folder?") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def write_image(path, rgb):
    """Save an RGB (or single-channel) uint8 array as PNG/JPEG atomically."""
    ext = os.path.splitext(path)[1] or ".png"
    array = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, array)
    if not ok:
        raise UserError(f"cannot encode image {path}")
    atomic_write_bytes(path, buf.tobytes())


class RunFolder:
    """One training run's folder (runs/<timestamp>/): the one place that knows where its files
    are and how each is read and written (atomically). What the files hold:

        config.json        the whole Config, so the run can be reproduced and resumed
        dataset.json       the resolved DatasetSpec (classes, palette): no data folder is
                           needed to use the run
        class_stats.json   the training labels' class pixel counts and the loss weights
        split.json         the train/val image names, the seed, whether val is official
        state.json         what a resume starts from (fcn.training.checkpoint writes it)
        log.jsonl          one record per finished epoch (fcn.training.checkpoint appends it)
        summary.json       the finished run's figures
        failed.json        why training stopped on a TensorFlow error (removed by a resume)
        checkpoints/       the latest --keep-checkpoints checkpoints; best/: TF's index of the
                           best one, and its files once it is no longer one of the latest
    """

    def __init__(self, path):
        from fcn import names

        self.path = path
        self._names = names

    @classmethod
    def create(cls, runs_dir, name=None):
        """A new, empty run folder under runs_dir (never an existing one)."""
        return cls(new_run_dir(runs_dir, name))

    def file(self, name):
        return os.path.join(self.path, name)

    def checkpoint_dir(self, which):
        """The folder of --checkpoint best|latest."""
        return self.file(self._names.CHECKPOINTS[which])

    def check_exists(self):
        if not os.path.isdir(self.path):
            raise UserError(f"run folder {self.path} does not exist; pass a folder from runs/")
        return self

    def has(self, name):
        return os.path.exists(self.file(name))

    def check_is_run(self):
        """A training run's folder: it has config.json (an export folder does not)."""
        self.check_exists()
        if not self.has(self._names.CONFIG_FILE):
            path = self.file(self._names.CONFIG_FILE)
            raise UserError(f"{path} does not exist; is this a run folder?")
        return self

    # --- config.json ---
    def read_config(self):
        from fcn.config import Config

        return Config.from_dict(read_json(self.file(self._names.CONFIG_FILE)))

    def write_config(self, config):
        write_json(self.file(self._names.CONFIG_FILE), json.loads(config.to_json()))

    # --- dataset.json ---
    def read_spec(self, config=None):
        """The run's DatasetSpec: its dataset.json (classes and palette as trained), else (a run
        from before it was written) the dataset's static spec."""
        from fcn import data

        if self.has(self._names.DATASET_FILE):
            return data.DatasetSpec.from_dict(read_json(self.file(self._names.DATASET_FILE)))
        return data.get_spec((config or self.read_config()).dataset)

    def write_spec(self, spec):
        write_json(self.file(self._names.DATASET_FILE), spec.to_dict())

    # --- split.json, class_stats.json, summary.json ---
    def read_split(self):
        return read_json(self.file(self._names.SPLIT_FILE))

    def write_split(self, train_names, val_names, seed, official):
        record = {"train": train_names, "val": val_names, "seed": seed, "official_val": official}
        write_json(self.file(self._names.SPLIT_FILE), record)

    def write_class_stats(self, stats):
        write_json(self.file(self._names.CLASS_STATS_FILE), stats)

    def read_summary(self):
        return read_json(self.file(self._names.SUMMARY_FILE))

    def write_summary(self, summary):
        write_json(self.file(self._names.SUMMARY_FILE), summary)

    # --- log.jsonl ---
    def log_lines(self):
        """log.jsonl as (line, record) pairs in file order; record is None for a line that is
        not one epoch's JSON object (a line torn by a crash). [] when there is no log yet."""
        try:
            with open(self.file(self._names.LOG_FILE)) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        pairs = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            ok = isinstance(record, dict) and isinstance(record.get("epoch"), int)
            pairs.append((line, record if ok else None))
        return pairs

    def append_log(self, record):
        """One JSON line per finished epoch, flushed to disk before the epoch's checkpoint."""
        path = self.file(self._names.LOG_FILE)
        try:
            with open(path, "a") as f:
                f.write(json.dumps(json_safe(record)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise UserError(
                f"cannot append to {path}: {e.strerror}; free some disk space"
            ) from None

    def rewrite_log(self, records):
        """Replace log.jsonl by these records, atomically (a resume drops the epochs it redoes)."""
        text = "".join(json.dumps(r) + "\n" for r in records)
        atomic_write_bytes(self.file(self._names.LOG_FILE), text.encode())

    # --- failed.json ---
    def write_failed(self, record):
        write_json(self.file(self._names.FAILED_FILE), record)

    def read_failed(self):
        """failed.json's record, or None when training did not fail."""
        path = self.file(self._names.FAILED_FILE)
        return read_json(path) if os.path.exists(path) else None

    def clear_failed(self):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.file(self._names.FAILED_FILE))

    @property
    def finished(self):
        """Training wrote its summary.json (it ran every epoch it was asked for)."""
        return self.has(self._names.SUMMARY_FILE)
