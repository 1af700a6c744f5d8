"""Open a trained run (or an export) as a `SessionPredictor`: its config, spec and a session.

A checkpoint's .meta file holds the whole graph (VGG included), so a run folder is
self-contained: the VGG folder it was trained from is not needed to use it.
"""

import os

import tensorflow.compat.v1 as tf

from fcn import config as cfg
from fcn import data, names, precision, runs
from fcn.errors import UserError
from fcn.inference import prediction
from fcn.inference.predictor import DEFAULT_BATCH_SIZE, DEFAULT_PRECISION, SessionPredictor

CHECKPOINTS = names.CHECKPOINTS


def find_checkpoint(run_dir, which="best"):
    """Path prefix of the run's best (or latest) checkpoint; best falls back to latest."""
    folder = runs.RunFolder(run_dir).check_exists()
    order = [which] + [w for w in ("best", "latest") if w != which]
    for w in order:
        prefix = tf.train.latest_checkpoint(folder.checkpoint_dir(w))
        if prefix:  # best/checkpoint may name ../checkpoints/model-N (fcn.training.checkpoint)
            return os.path.normpath(prefix)
    raise UserError(f"run folder {run_dir} has no checkpoint in best/ or checkpoints/; train first")


def run_spec(run_dir, config):
    """The run's DatasetSpec (fcn.runs.RunFolder.read_spec)."""
    return runs.RunFolder(run_dir).read_spec(config)


def export_config(meta):
    """An export's Config, from its export.json."""
    return cfg.Config.from_dict(meta["config"])


def export_spec(meta, config):
    """An export's DatasetSpec, from its export.json the way run_spec reads a run folder."""
    if meta.get("dataset_spec"):
        return data.DatasetSpec.from_dict(meta["dataset_spec"])
    return data.get_spec(config.dataset)


def open_run(
    run_dir,
    which="best",
    precision_name=DEFAULT_PRECISION,
    tta=True,
    batch_size=DEFAULT_BATCH_SIZE,
    threads=None,
):
    """Restore a run's checkpoint into a fresh graph and session -> SessionPredictor (the
    caller closes it); its `checkpoint` is the restored prefix, `tensors` the whole path.
    threads: intra-op threads (None: the machine's cores)."""
    folder = runs.RunFolder(run_dir).check_exists()
    config = folder.read_config()
    spec = folder.read_spec(config)
    prefix = find_checkpoint(run_dir, which)
    graph = tf.Graph()
    prec = precision.resolve(precision_name)
    sess = tf.Session(graph=graph, config=precision.session_config(prec, threads=threads))
    try:
        with graph.as_default():
            tf.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            # best/ holds the weights without the optimizer's slots: restore what it has.
            saved = {name for name, _ in tf.train.list_variables(prefix)}
            weights = [v for v in tf.global_variables() if v.op.name in saved]
            tf.train.Saver(weights).restore(sess, prefix)
            tensors = prediction.PredictionTensors.from_graph(graph, spec, config)
    except (KeyError, ValueError, tf.errors.OpError) as e:
        sess.close()
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot restore {prefix}: {first[:200]}") from None
    restored = SessionPredictor(sess, tensors, config, spec, prec, prefix, tta, batch_size)
    restored.checkpoint = prefix
    return restored


def open_predictor(
    path,
    precision_name=DEFAULT_PRECISION,
    which="best",
    tta=True,
    batch_size=DEFAULT_BATCH_SIZE,
    threads=None,
):
    """A training run (its `which` checkpoint) or an export folder as a SessionPredictor: both
    hold the same prediction path, so they give the same pixels. tta False predicts each image
    alone where the run was trained with --tta. Other backends: fcn.inference.backends."""
    if is_export(path):
        return open_export(path, precision_name, tta, batch_size, threads)
    return open_run(path, which, precision_name, tta, batch_size, threads)


def open_export(
    path, precision_name=DEFAULT_PRECISION, tta=True, batch_size=DEFAULT_BATCH_SIZE, threads=None
):
    """An export folder (`python main.py export`) as a SessionPredictor."""
    prec = precision.resolve(precision_name)
    meta = read_metadata(path)
    config = export_config(meta)
    spec = export_spec(meta, config)
    graph = tf.Graph()
    sess = tf.Session(graph=graph, config=precision.session_config(prec, threads=threads))
    try:
        with graph.as_default():
            tf.saved_model.loader.load(sess, [names.EXPORT_TAG], path)
            found = {k: graph.get_tensor_by_name(v) for k, v in meta["tensors"].items()}
            tensors = prediction.PredictionTensors(**found)
    except (KeyError, ValueError, TypeError, OSError, tf.errors.OpError) as e:
        sess.close()
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load the export {path}: {first[:200]}; re-export it") from None
    return SessionPredictor(sess, tensors, config, spec, prec, path, tta, batch_size)


def is_export(path):
    """True for a folder written by `python main.py export` (a SavedModel beside export.json)."""
    return os.path.isfile(os.path.join(path, names.EXPORT_METADATA_FILE)) and os.path.isfile(
        os.path.join(path, "saved_model.pb")
    )


def read_metadata(path):
    """export.json of an export folder, checked to be of the format this version reads."""
    meta = runs.read_json(os.path.join(path, names.EXPORT_METADATA_FILE))
    fmt, version = names.EXPORT_FORMAT, names.EXPORT_FORMAT_VERSION
    if meta.get("format") != fmt or meta.get("version") != version:
        raise UserError(
            f"{path}/{names.EXPORT_METADATA_FILE} is not a version-{version} {fmt} file; "
            "re-export the run with `python main.py export`"
        )
    return meta
