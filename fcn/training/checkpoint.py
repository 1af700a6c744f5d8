"""Checkpoints that survive interruption: atomic saves, the state.json pointer, clean stops, resume.

A save writes the TensorFlow files under a new name (checkpoints/model-<step>.*), then replaces
state.json atomically, then TF's `checkpoint` index, and only then deletes older files. state.json
is the one pointer a resume trusts and it only ever names complete files, so a crash at any moment
(SIGKILL, power cut, full disk) leaves a run that resumes from its previous checkpoint.

state.json holds the `Progress` fields plus:
    step        the global step of the checkpoint
    checkpoint  its path prefix, relative to the run folder ("checkpoints/model-120")
    kept        the latest K prefixes, oldest first (K = --keep-checkpoints, default 1)
    best        the prefix of the best-validation checkpoint, or null: one of `kept` while it is
                ("checkpoints/model-120"), else its files, hard-linked into best/ when it left
                `kept` ("best/model-60"). best/checkpoint (TF's index) names it either way.

No step is ever stored twice: the best is the latest checkpoint of its step, not a copy, so a
`make demo` run folder holds one 832 MB VGG16 checkpoint when its last epoch is its best (two
when an earlier epoch was), where it once held three latest ones and a best copy (3.1 GB).
The config and the validation split sit beside it in config.json and split.json.
"""

import dataclasses
import glob
import json
import os
import shutil
import signal
import sys
import threading

import tensorflow.compat.v1 as tf

from fcn import names, runs
from fcn.config import Config
from fcn.errors import UserError

STATE_FILE = names.STATE_FILE
SPLIT_FILE = names.SPLIT_FILE
LATEST_DIR = names.LATEST_DIR
BEST_DIR = names.BEST_DIR
LOG_FILE = names.LOG_FILE
_PREFIX = "model"
_TF_INDEX = "checkpoint"  # the file tf.train.latest_checkpoint reads
# Flags that may differ from the saved config on --resume: raising --epochs trains longer,
# folders may move (the split's image names and the checkpoint's shapes are checked instead), and
# --devices may change: checkpoints of N devices restore on any number (fcn.training.distribute).
RESUMABLE_CHANGES = (
    "epochs",
    "data_dir",
    "vgg_dir",
    "weights",
    "runs_dir",
    "devices",
    "peer_timeout",
)


def resume_hint(run_dir):
    return f"resume with `python main.py train --resume {run_dir}`"


@dataclasses.dataclass
class Progress:
    """Where training stands; everything a resume needs besides the weights."""

    epoch: int = 0  # finished epochs
    batch: int = 0  # steps done in the unfinished epoch (non-zero only after a stop request)
    epoch_losses: list = dataclasses.field(default_factory=list)  # their losses
    best_iou: float = -1.0
    best_epoch: int = None
    train_seconds: float = 0.0
    # numpy bit-generator states of the augmenter and the epoch order at the start of the
    # unfinished epoch: a resume replays that epoch's batches exactly (skipping `batch` of them).
    rng: dict = None

    @classmethod
    def from_state(cls, state):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in names})


class Interrupted(UserError):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint; exit code 128 + signal."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopRequest:
    """While active, SIGINT and SIGTERM ask the training loop to stop after the current step.

    A second Ctrl-C gives up at once (KeyboardInterrupt). Outside the main thread Python cannot
    install handlers, so there this does nothing and signals keep their usual effect.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    @property
    def requested(self):
        return self.signum is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: finishing the current step, then saving a "
            "checkpoint (Ctrl-C again quits at once)",
            file=sys.stderr,
            flush=True,
        )


class Checkpoints:
    """The latest K checkpoints and the best one of a run folder, written so that a crash at any
    moment leaves state.json naming complete files. Build it after the whole model exists: it
    saves every global variable (VGG, decoder, Adam slots, global step)."""

    def __init__(self, run_dir, keep, state=None):
        self.run_dir = run_dir
        self.keep = keep
        self.variables = tf.global_variables()
        self.saver = tf.train.Saver(self.variables, max_to_keep=None)
        state = state or {}
        self.kept = list(state.get("kept", []))
        self.best = state.get("best")
        self._best_step = None  # save_best's step, until `save` writes that step

    @property
    def latest(self):
        return self.kept[-1] if self.kept else None

    def save(self, sess, step, progress):
        """Save the weights, then point state.json at them; returns the prefix (run-relative).
        A best leaving `kept` is hard-linked into best/ first, so it is never lost or copied."""
        prefix = self._write(sess, LATEST_DIR, step)
        kept = ([p for p in self.kept if p != prefix] + [prefix])[-self.keep :]
        best = prefix if self._best_step == step else self.best
        if best and best.startswith(LATEST_DIR + "/") and best not in kept:
            best = self._commit(lambda: self._link_into_best(best), prefix)
        state = dict(dataclasses.asdict(progress), step=step, checkpoint=prefix, kept=kept)
        state["best"] = best
        self._commit(lambda: runs.write_json(self._path(STATE_FILE), state), prefix)
        self.kept, self.best, self._best_step = kept, best, None
        self._finish(LATEST_DIR, kept)
        if self.best:
            self._finish(BEST_DIR, [self.best])
        return prefix

    def save_best(self, sess, step):
        """Mark `step` as the best so far: the `save` of that step that follows makes its
        checkpoint the best (state.json then names it), with no second copy of the weights."""
        self._best_step = step

    def _link_into_best(self, prefix):
        """best/<name>.* as hard links of prefix's files (a copy where links are refused);
        returns the new run-relative prefix."""
        name = os.path.basename(prefix)
        os.makedirs(self._path(BEST_DIR), exist_ok=True)
        for path in glob.glob(glob.escape(self._path(prefix)) + ".*"):
            target = os.path.join(self._path(BEST_DIR), os.path.basename(path))
            if os.path.exists(target):
                os.remove(target)  # a leftover of a crash between this and state.json
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
        return f"{BEST_DIR}/{name}"

    def restore(self, sess, prefix, describe):
        """Load `prefix` (run-relative) into the model; a checkpoint of another architecture or
        class count is a one-line error naming the first variable that does not fit."""
        path = self._path(prefix)
        try:
            saved = dict(tf.train.list_variables(path))
        except (tf.errors.OpError, ValueError) as e:
            raise UserError(
                f"cannot read checkpoint {path}: {_first_line(e)}; the run folder is damaged"
            ) from None
        for v in self.variables:
            name, shape = v.op.name, v.shape.as_list()
            if name not in saved:
                raise UserError(
                    f"checkpoint {path} has no variable {name!r} that the model ({describe}) "
                    "needs: it comes from another architecture; resume with the config it was "
                    "trained with or start a new run"
                )
            if list(saved[name]) != shape:
                raise UserError(
                    f"checkpoint {path} holds {name} of shape {list(saved[name])} but the model "
                    f"({describe}) needs {shape}: it comes from another architecture or class "
                    "count; resume with the config it was trained with or start a new run"
                )
        try:
            self.saver.restore(sess, path)
        except tf.errors.OpError as e:
            raise UserError(f"cannot restore checkpoint {path}: {_first_line(e)}") from None

    def _path(self, relative):
        return os.path.join(self.run_dir, relative)

    def _write(self, sess, folder, step, saver=None):
        """The TF files of model-<step> in folder; a failed write removes what it left."""
        prefix = f"{folder}/{_PREFIX}-{step}"
        os.makedirs(self._path(folder), exist_ok=True)
        self._commit(
            lambda: (saver or self.saver).save(sess, self._path(prefix), write_state=False),
            prefix,
        )
        return prefix

    def _commit(self, write, prefix):
        """Run a write (returning what it returns); on a full disk or any I/O error delete
        prefix's files (unless state.json already names them) and stop with a message: the
        previous checkpoint is untouched."""
        try:
            return write()
        except (OSError, tf.errors.OpError) as e:
            if prefix not in (self.kept + [self.best]):
                _remove_files(self._path(prefix))
            reason = e.strerror if isinstance(e, OSError) and e.strerror else _first_line(e)
            kept = (
                f"the previous checkpoint {self._path(self.latest)} is intact; "
                if self.latest
                else "no checkpoint was saved yet; "
            )
            raise UserError(
                f"cannot save checkpoint {self._path(prefix)}: {reason}; {kept}free some disk "
                f"space, then {resume_hint(self.run_dir) if self.latest else 'start again'}"
            ) from None

    def _finish(self, folder, keep):
        """Point TF's index at the newest kept checkpoint, then delete every other model-* file
        in folder (older ones and leftovers of a crashed save). A kept prefix of another folder
        (the best while it is one of the latest) is named relative to this one."""
        here = [p for p in keep if p.startswith(folder + "/")]
        names = [os.path.basename(p) for p in here]
        shown = [os.path.relpath(p, folder) for p in keep]
        lines = [f'model_checkpoint_path: "{shown[-1]}"']
        lines += [f'all_model_checkpoint_paths: "{n}"' for n in shown]
        try:
            os.makedirs(self._path(folder), exist_ok=True)
            runs.atomic_write_bytes(self._path(os.path.join(folder, _TF_INDEX)), _lines(lines))
            for path in glob.glob(os.path.join(self._path(folder), _PREFIX + "-*")):
                if _prefix_of(path) not in names:
                    _delete(path)
        except OSError as e:
            raise UserError(
                f"cannot update {self._path(folder)}: {e.strerror}; state.json names a "
                f"complete checkpoint, so {resume_hint(self.run_dir)} once the disk is fixed"
            ) from None


def read_state(run_dir):
    """The run's state.json, checked to be there: what a resume starts from."""
    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} does not exist; pass a folder from runs/")
    folder = runs.RunFolder(run_dir)
    path = folder.file(STATE_FILE)
    failed = None if os.path.exists(path) else folder.read_failed()
    if failed is not None:
        raise UserError(
            f"{run_dir} failed before its first checkpoint ({folder.file(names.FAILED_FILE)}: "
            f"{failed.get('error', '?')}), so there is nothing to resume; start a new run"
        )
    if not os.path.exists(path):
        raise UserError(
            f"{run_dir} has no {STATE_FILE}: the run stopped before its first checkpoint, so "
            "there is nothing to resume; start a new run"
        )
    state = runs.read_json(path)
    missing = sorted({"epoch", "step", "checkpoint", "kept"} - set(state))
    if missing:
        raise UserError(f"{path} lacks {missing}; the run folder is damaged, start a new run")
    return state


def resume_config(run_dir, requested):
    """The run's saved config, with `requested` (parsed flag values by field name) checked.

    A value equal to Config's default counts as not given. Anything else must match the saved
    config, except RESUMABLE_CHANGES: --epochs (not below the epochs already finished) and the
    folders.
    """
    state = read_state(run_dir)
    saved = runs.RunFolder(run_dir).read_config()
    defaults = Config()
    changes, conflicts = {}, []
    for f in dataclasses.fields(Config):
        if f.name not in requested:
            continue
        value = requested[f.name]
        if value == getattr(defaults, f.name) or value == getattr(saved, f.name):
            continue
        if f.name in RESUMABLE_CHANGES:
            changes[f.name] = value
        else:
            flag = "--" + f.name.replace("_", "-")
            conflicts.append(f"{flag} {_show(value)} (the run has {_show(getattr(saved, f.name))})")
    if conflicts:
        raise UserError(
            f"--resume continues {run_dir} with its saved config, but "
            f"{'; '.join(conflicts[:3])}; drop those flags (only --epochs, --devices and the "
            "folders may change) or start a new run"
        )
    epochs = changes.get("epochs", saved.epochs)
    if epochs < state["epoch"]:
        raise UserError(
            f"--epochs {epochs} is below the {state['epoch']} epochs {run_dir} already finished"
        )
    if epochs == state["epoch"] and runs.RunFolder(run_dir).finished:
        raise UserError(
            f"{run_dir} already finished its {epochs} epochs; pass a larger --epochs to train on"
        )
    return saved.replace(**changes)


def read_split(run_dir, examples):
    """(train, val) examples named by the run's split.json; all must still be in the data."""
    split = runs.RunFolder(run_dir).read_split()
    by_name = {e.name: e for e in examples}
    try:
        names = {part: list(split[part]) for part in ("train", "val")}
    except (KeyError, TypeError):
        raise UserError(
            f"{run_dir}/{SPLIT_FILE} lacks its train/val lists; start a new run"
        ) from None
    missing = [n for n in names["train"] + names["val"] if n not in by_name]
    if missing:
        raise UserError(
            f"{len(missing)} image(s) of {run_dir}'s split are no longer in the data folder "
            f"(e.g. {', '.join(missing[:3])}); pass the --data-dir it was trained on"
        )
    return [by_name[n] for n in names["train"]], [by_name[n] for n in names["val"]]


def history_upto(run_dir, epoch):
    """log.jsonl's records of epochs 1..epoch, each once; later ones (epochs a resume redoes)
    and a line torn by a crash are dropped from the file too."""
    folder = runs.RunFolder(run_dir)
    pairs = folder.log_lines()
    by_epoch = {}
    for _, record in pairs:
        if record is not None and 1 <= record["epoch"] <= epoch:
            by_epoch.setdefault(record["epoch"], record)
    history = [by_epoch[e] for e in sorted(by_epoch)]
    if [json.dumps(r) for r in history] != [line for line, _ in pairs]:
        folder.rewrite_log(history)
    return history


def _lines(lines):
    return "".join(line + "\n" for line in lines).encode()


def _prefix_of(path):
    """checkpoints/model-12.data-00000-of-00001 -> model-12 (also .index, .meta, model-12_temp)."""
    return os.path.basename(path).split(".", 1)[0].removesuffix("_temp")


def _delete(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _remove_files(prefix_path):
    """Best effort after a failed save: a leftover is deleted by the next successful one."""
    for path in glob.glob(glob.escape(prefix_path) + "[._]*"):
        try:
            _delete(path)
        except OSError:
            pass


def _first_line(e):
    text = str(getattr(e, "message", "") or e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _show(value):
    return "x".join(map(str, value)) if isinstance(value, tuple) else repr(value)
