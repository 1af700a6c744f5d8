"""The training job: data -> graph -> epochs with validation, checkpoints, overlays -> run folder.

Run folder (runs/<timestamp>/): config.json, dataset.json (the resolved dataset: classes,
palette), class_stats.json (training labels' class pixel counts and loss weights), split.json,
log.jsonl (one line per epoch), checkpoints/ (latest K), best/ (best validation score,
config.best_metric), state.json (what a resume starts from, see fcn.training.checkpoint), tb/
(TensorBoard), val_overlays/ and val_compare/ (at the images' original size), test/ (an overlay
of every test image at its original size), summary.json, index.html (fcn.report).

The stages live beside it: build (the network and training ops), epochs (the loop), validation
(scores and overlays through the Predictor).
"""

import os
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

from fcn import data, models, names, precision, report, runs
from fcn.models import savedmodel
from fcn.training import build, checkpoint, class_weights, distribute, epochs, validation

# Validation images shown as image | ground truth | prediction at the end of training.
_COMPARE_IMAGES = 4
CHECKPOINT_DIR = checkpoint.LATEST_DIR
BEST_DIR = checkpoint.BEST_DIR


def train(config, log=print, resume_dir=None):
    """Train per `config`; returns (run_dir, summary dict).

    resume_dir: an interrupted run to continue, with its config (`checkpoint.resume_config`):
    the same split, weights, optimizer and random state, from the checkpoint state.json names.
    All inputs are checked before a run folder exists, so bad data ends the job with nothing
    half-written.
    """
    setup = distribute.make(config)  # None: one device, as always
    if setup is not None:
        log = _worker_log(setup, log)
        log(setup.describe())
    spec = data.resolve_spec(config.dataset, config.data_dir, config.classes, config.voc_aug)
    state = checkpoint.read_state(resume_dir) if resume_dir else None
    train_ex, val_ex, official = _choose_split(config, spec, resume_dir, log)
    source = models.check_weights_source(config)
    if source != models.RANDOM and config.encoder == "vgg16" and os.path.isdir(source):
        savedmodel.check_saved_model(source)
    prec = precision.resolve(config.precision)
    log(
        f"{len(train_ex)} training / {len(val_ex)} validation images at "
        f"{config.image_shape[0]}x{config.image_shape[1]}, {config.encoder} + {config.decoder}, "
        f"precision {prec}"
    )

    # Decoding every pair up front also validates the whole dataset: unreadable files, sizes of
    # image and label, label colours.
    t0 = time.time()
    clahe = (config.clahe_clip, config.clahe_grid) if config.clahe_prob > 0 else None
    train_split = data.load_split(train_ex, config.image_shape, spec, clahe=clahe)
    val_split = data.load_split(val_ex, config.image_shape, spec)
    log(f"decoded and cached the data in {time.time() - t0:.1f}s")
    stats, loss_weights = _class_statistics(config, spec, train_split, log)

    graph = tf.Graph()
    session_config = precision.session_config(prec, config.xla)
    with graph.as_default(), distribute.session(setup, session_config) as sess:
        # Bad encoder weights fail here, still before the run folder is made.
        model = build.build_model(sess, config, spec.num_classes, log, spec, loss_weights, setup)
        if setup is not None and not setup.is_chief:
            return _follow(sess, model, config, spec, train_split, resume_dir, state, log)
        if resume_dir:
            run_dir = resume_dir
            ckpts = checkpoint.Checkpoints(run_dir, config.keep_checkpoints, state)
            ckpts.restore(sess, state["checkpoint"], _describe(config, spec))
            progress = checkpoint.Progress.from_state(state)
            folder = runs.RunFolder(run_dir)
            folder.clear_failed()  # a failure that this resume retries
            # --epochs may have been raised: the saved config always tells how the run ends.
            folder.write_config(config)
            log(f"resuming {run_dir} from {state['checkpoint']} (epoch {progress.epoch + 1})")
        else:
            run_dir = _start_run(config, spec, train_ex, val_ex, official, stats)
            ckpts = checkpoint.Checkpoints(run_dir, config.keep_checkpoints)
            progress = checkpoint.Progress()
            log(f"run folder: {run_dir}")
        history = checkpoint.history_upto(run_dir, progress.epoch)
        writer = tf.summary.FileWriter(os.path.join(run_dir, names.TB_DIR), graph)
        splits = (train_split, val_split)
        epochs.fit(sess, model, config, spec, splits, ckpts, progress, history, writer, log)
        n_test = 0
        if config.test_overlays:
            test_ex = data.list_test_images(config.data_dir, spec)
            test_dir = os.path.join(run_dir, names.TEST_DIR)
            n_test = validation.write_test_overlays(
                validation.predictor(sess, model, config, spec), test_ex, test_dir, spec
            )
            log(f"wrote {n_test} test overlays to {test_dir}")
        if len(val_split.images):
            folder = os.path.join(run_dir, names.VAL_COMPARE_DIR)
            path = validation.predictor(sess, model, config, spec)
            validation.write_comparisons(path, folder, val_ex[:_COMPARE_IMAGES], spec)
        writer.close()

    final = history[-1] if history else {}
    best = progress.best_iou if progress.best_epoch else None
    metric = validation.best_metric(config, spec)
    summary = {
        "epochs": config.epochs,
        "dataset": spec.name,
        "task": spec.task,
        "encoder": config.encoder,
        "decoder": config.decoder,
        "loss": config.loss,
        "class_weights": stats["method"],
        "weights": model.weights,
        "best_metric": metric,
        "best_score": best,
        "best_epoch": progress.best_epoch,
        "final_score": final.get(metric),
        "final_val_mean_iou": final.get("val_mean_iou"),
        "final_val_classes": final.get("val_classes"),
        "final_train_loss": final.get("train_loss"),
        "train_seconds": progress.train_seconds,
        "train_images": len(train_ex),
        "val_images": len(val_ex),
        "test_overlays": n_test,
        "precision": prec,
    }
    if spec.task == "binary":  # the positive class's figures (KITTI: road)
        summary.update(
            positive_class=spec.positive_name,
            best_val_iou=best if metric == "val_iou" else None,
            final_val_iou=final.get("val_iou"),
            final_val_precision=final.get("val_precision"),
            final_val_recall=final.get("val_recall"),
        )
    runs.RunFolder(run_dir).write_summary(summary)
    report.refresh(run_dir, log)
    return run_dir, summary


def _class_statistics(config, spec, train_split, log):
    """Class pixel counts of the training labels, printed once, and the loss's class weights
    (None when the loss is unweighted). Returns (stats dict for class_stats.json, weights)."""
    method = class_weights.resolve(config.class_weights, config.loss)
    stats = class_weights.pixel_stats(train_split.labels, spec.num_classes, spec.ignore_label)
    weights = class_weights.compute(stats, method)
    for line in class_weights.describe(stats, weights, spec.class_names):
        log(line)
    record = {
        "method": method,
        "class_names": list(spec.class_names),
        "pixels": stats["pixels"].tolist(),
        "image_pixels": stats["image_pixels"].tolist(),
        "images": stats["images"].tolist(),
        "total": int(stats["total"]),
        "weights": [float(w) for w in weights],
    }
    return record, (None if method == "none" else weights)


def _choose_split(config, spec, resume_dir, log):
    """(train, val, official) examples: the dataset's official validation split (at most
    --val-count of it, a seeded choice) or a seeded, stratified one carved out of training; a
    resumed run reuses the split it saved."""
    train_ex, official_val = data.list_splits(config.data_dir, spec)
    official = official_val is not None
    if resume_dir:
        return (*checkpoint.read_split(resume_dir, train_ex + (official_val or [])), official)
    if official:
        val_ex = official_val
        if 0 < config.val_count < len(val_ex):
            chosen = np.random.default_rng(config.seed).choice(
                len(val_ex), config.val_count, replace=False
            )
            val_ex = [val_ex[i] for i in sorted(chosen)]
        log(f"validating on {len(val_ex)} of the {len(official_val)} official validation images")
    else:
        train_ex, val_ex, note = data.split_train_val(train_ex, config.val_count, config.seed)
        if note:
            log(note)
    if config.max_train_images:
        train_ex = train_ex[: config.max_train_images]
    return train_ex, val_ex, official


def _start_run(config, spec, train_ex, val_ex, official, class_stats):
    folder = runs.RunFolder.create(config.runs_dir)
    folder.write_config(config)
    folder.write_spec(spec)
    folder.write_class_stats(class_stats)
    folder.write_split([e.name for e in train_ex], [e.name for e in val_ex], config.seed, official)
    return folder.path


def _worker_log(setup, log):
    """The chief logs as usual; the other workers to stderr, each line naming the worker."""
    if setup.is_chief:
        return log
    return lambda *parts: print(f"[worker {setup.worker_index}]", *parts, file=sys.stderr)


def _follow(sess, model, config, spec, train_split, resume_dir, state, log):
    """A worker other than the chief: the same steps on its slice of every global batch. It
    writes nothing (the chief writes the run folder); on --resume it restores the chief's
    checkpoint from the run folder, which every worker must see. Returns (None, summary)."""
    ckpts, progress = None, checkpoint.Progress()
    if resume_dir:
        saver = checkpoint.Checkpoints(resume_dir, config.keep_checkpoints, state)
        saver.restore(sess, state["checkpoint"], _describe(config, spec))
        progress = checkpoint.Progress.from_state(state)
    epochs.fit(sess, model, config, spec, (train_split, None), ckpts, progress, [], None, log)
    log(f"finished epoch {config.epochs} of {config.epochs}")
    worker = model.setup.worker_index
    return None, {"worker": worker, "train_seconds": progress.train_seconds}


def _describe(config, spec):
    return f"{config.encoder} + {config.decoder}, {spec.num_classes} classes"
