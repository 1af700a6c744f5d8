"""Open a trained run (or an export) for prediction: its config and a session with the graph.

A checkpoint's .meta file holds the whole graph (VGG included), so a run folder is
self-contained: the VGG folder it was trained from is not needed to use it.
"""

import dataclasses
import os

import tensorflow.compat.v1 as tf

from fcn import config as cfg
from fcn import data, names, precision, runs
from fcn.errors import UserError

# Tensor names the training graph defines (fcn.prediction.build).
INPUT_TENSOR = names.tensor(names.IMAGE_INPUT)
KEEP_PROB_TENSOR = names.tensor(names.KEEP_PROB)
LOGITS_TENSOR = names.tensor(names.LOGITS)
PROBS_TENSOR = names.tensor(names.PROBS)
CHECKPOINTS = names.CHECKPOINTS


class _OwnsSession:
    """Closes its session; usable as a context manager."""

    def close(self):
        self.sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclasses.dataclass
class Restored(_OwnsSession):
    config: cfg.Config
    spec: data.DatasetSpec
    sess: tf.Session
    image_input: tf.Tensor  # (N, h, w, 3) float32 raw 0..255 at the network size
    keep_prob: tf.Tensor
    logits: tf.Tensor  # (N, h, w, C)
    probs: tf.Tensor  # (N, h, w, C) softmax
    checkpoint: str
    images: tf.Tensor = None  # uint8 (N, H, W, 3), any size: the prediction path's input
    probs_full: tf.Tensor = None  # (N, H, W, C)
    mask: tf.Tensor = None  # uint8 (N, H, W)
    threshold: tf.Tensor = None


def find_checkpoint(run_dir, which="best"):
    """Path prefix of the run's best (or latest) checkpoint; best falls back to latest."""
    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} does not exist; pass a folder from runs/")
    order = [which] + [w for w in ("best", "latest") if w != which]
    for w in order:
        prefix = tf.train.latest_checkpoint(os.path.join(run_dir, CHECKPOINTS[w]))
        if prefix:
            return prefix
    raise UserError(f"run folder {run_dir} has no checkpoint in best/ or checkpoints/; train first")


def run_spec(run_dir, config):
    """The run's DatasetSpec: its dataset.json (classes and palette as trained, so no data is
    needed), else (a run from before it was written) the dataset's static spec."""
    path = os.path.join(run_dir, names.DATASET_FILE)
    if os.path.isfile(path):
        return data.DatasetSpec.from_dict(runs.read_json(path))
    return data.get_spec(config.dataset)


def export_spec(meta, config):
    """An export's DatasetSpec, from its export.json the way run_spec reads a run folder."""
    if meta.get("dataset_spec"):
        return data.DatasetSpec.from_dict(meta["dataset_spec"])
    return data.get_spec(config.dataset)


def open_run(run_dir, which="best", precision_name="float32"):
    """Restore a run's checkpoint into a fresh graph and session (the caller closes it)."""
    config = cfg.Config.from_dict(runs.read_json(os.path.join(run_dir, names.CONFIG_FILE)))
    spec = run_spec(run_dir, config)
    prefix = find_checkpoint(run_dir, which)
    graph = tf.Graph()
    prec = precision.resolve(precision_name)
    sess = tf.Session(graph=graph, config=precision.session_config(prec))
    try:
        with graph.as_default():
            tf.train.import_meta_graph(prefix + ".meta", clear_devices=True)
            # best/ holds the weights without the optimizer's slots: restore what it has.
            saved = {name for name, _ in tf.train.list_variables(prefix)}
            weights = [v for v in tf.global_variables() if v.op.name in saved]
            tf.train.Saver(weights).restore(sess, prefix)
            get = graph.get_tensor_by_name
            restored = Restored(
                config,
                spec,
                sess,
                get(INPUT_TENSOR),
                get(KEEP_PROB_TENSOR),
                get(LOGITS_TENSOR),
                get(PROBS_TENSOR),
                prefix,
                get(names.tensor(names.IMAGES)),
                get(names.tensor(names.PROBS_FULL)),
                get(names.tensor(names.MASK)),
                get(names.tensor(names.THRESHOLD)),
            )
    except (KeyError, ValueError, tf.errors.OpError) as e:
        sess.close()
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot restore {prefix}: {first[:200]}") from None
    return restored


# A run or an export behind one predict(): both hold the same prediction path.


@dataclasses.dataclass
class Model(_OwnsSession):
    config: cfg.Config
    spec: data.DatasetSpec
    sess: object
    tensors: dict  # images, probs_full, mask, threshold: the prediction path (fcn.prediction)
    source: str  # what was loaded, for the log

    tta: bool = True  # average the --tta copies the path was trained with (False: the image alone)

    def predict(self, images, threshold=None, batch_size=8):
        """RGB uint8 images of any sizes -> [(probs_full (H, W, C), mask (H, W))]."""
        from fcn import prediction

        return prediction.predict_arrays(
            self.sess, self.tensors, images, batch_size, threshold, self.tta
        )

    @property
    def tta_name(self):
        """The --tta set the predictions average ('none' when switched off)."""
        return self.config.tta if self.tta else "none"


def open_model(path, precision_name="auto", which="best", tta=True):
    """A training run (its `which` checkpoint) or an export folder, ready to predict: both
    hold the same prediction path, so they give the same pixels. tta False predicts each image
    alone where the run was trained with --tta."""
    from fcn import precision

    prec = precision.resolve(precision_name)
    if is_export(path):
        model = _open_export(path, prec)
    else:
        r = open_run(path, which=which, precision_name=prec)
        tensors = dict(images=r.images, probs_full=r.probs_full, mask=r.mask, threshold=r.threshold)
        if r.config.tta != "none":
            tensors["tta"] = r.sess.graph.get_tensor_by_name(names.tensor(names.TTA))
        model = Model(r.config, r.spec, r.sess, tensors, r.checkpoint)
    model.tta = tta
    return model


def _open_export(path, prec):
    import tensorflow.compat.v1 as tf

    from fcn import precision

    meta = read_metadata(path)
    config = cfg.Config.from_dict(meta["config"])
    spec = export_spec(meta, config)
    graph = tf.Graph()
    sess = tf.Session(graph=graph, config=precision.session_config(prec))
    try:
        with graph.as_default():
            tf.saved_model.loader.load(sess, [names.EXPORT_TAG], path)
            tensors = {k: graph.get_tensor_by_name(v) for k, v in meta["tensors"].items()}
    except (KeyError, ValueError, OSError, tf.errors.OpError) as e:
        sess.close()
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot load the export {path}: {first[:200]}; re-export it") from None
    return Model(config, spec, sess, tensors, path)


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
