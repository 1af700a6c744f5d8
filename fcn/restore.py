"""Open a trained run for inference: its config and a session with the restored graph.

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
CHECKPOINTS = {"best": names.BEST_DIR, "latest": names.LATEST_DIR}


@dataclasses.dataclass
class Restored:
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

    def close(self):
        self.sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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


def open_run(run_dir, which="best", precision_name="float32"):
    """Restore a run's checkpoint into a fresh graph and session (the caller closes it)."""
    config = cfg.Config.from_dict(runs.read_json(os.path.join(run_dir, names.CONFIG_FILE)))
    spec = data.get_spec(config.dataset)
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
