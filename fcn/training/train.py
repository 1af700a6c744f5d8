"""The training job: data -> graph -> epochs with validation, checkpoints, overlays -> run folder.

Run folder (runs/<timestamp>/): config.json, dataset.json (the resolved dataset: classes,
palette), class_stats.json (training labels' class pixel counts and loss weights), split.json,
log.jsonl (one line per epoch), checkpoints/ (latest K), best/ (best validation score,
config.best_metric), state.json (what a resume starts from, see fcn.training.checkpoint), tb/
(TensorBoard), val_overlays/ and val_compare/ (at the images' original size), test/ (an overlay
of every test image at its original size), summary.json, index.html (fcn.report).
"""

import contextlib
import dataclasses
import itertools
import math
import os
import signal
import sys
import time
import traceback

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from fcn import data, models, names, precision, report, runs, tfquiet
from fcn.data import sampling, task
from fcn.data.augment import Augmenter
from fcn.errors import UserError, tensorflow_message
from fcn.evaluation import metrics
from fcn.inference import overlays, prediction
from fcn.inference.predictor import SessionPredictor
from fcn.models import encoders, layers, savedmodel, weights
from fcn.training import checkpoint, class_weights, distribute, losses, tboard

# Validation overlays shown in TensorBoard each epoch.
_TB_IMAGES = 3
# Validation images shown as image | ground truth | prediction at the end of training.
_COMPARE_IMAGES = 4
CHECKPOINT_DIR = checkpoint.LATEST_DIR
BEST_DIR = checkpoint.BEST_DIR


@dataclasses.dataclass
class TrainingTensors(prediction.PredictionTensors):
    """The prediction path's tensors (fcn.inference.prediction) and the training ops on top."""

    labels: tf.Tensor = None  # uint8 (N, h, w) class ids, IGNORE_LABEL where unlabelled
    learning_rate: tf.Tensor = None  # float32 scalar, fed every step
    train_op: tf.Operation = None
    loss: tf.Tensor = None  # the fed batch's loss (validation, and one device's training)
    weights: str = ""  # where the encoder's weights came from
    setup: object = None  # fcn.training.distribute.Setup; None on one device
    step_loss: tf.Tensor = None  # fcn.training.distribute: the global batch's loss of a step
    stop_votes: tf.Tensor = None  # fcn.training.distribute: the workers' summed stop requests
    stop_flag: tf.Tensor = None  # fcn.training.distribute: this worker's stop request, fed

    @property
    def training_loss(self):
        """The loss a training step reports: the global batch's under fcn.training.distribute."""
        return self.loss if self.step_loss is None else self.step_loss


def predictor(sess, model, config, spec, batch_size=None):
    """The training session's prediction path as a Predictor (validation, overlays); the
    session stays the trainer's."""
    prec = precision.resolve(config.precision)
    return SessionPredictor(
        sess,
        model,
        config,
        spec,
        prec,
        "the training graph",
        batch_size=batch_size or config.batch_size,
        owns_session=False,
    )


def build_model(sess, config, num_classes, log=None, spec=None, loss_weights=None, setup=None):
    """Build encoder, decoder, the prediction path and the training ops in sess's graph, then
    initialise the variables and load the encoder's pretrained weights (fcn.models).

    spec: the resolved dataset (default: config.dataset's descriptor). loss_weights: per-class
    weights (C,) for the weighted losses (config.loss), from fcn.training.class_weights.

    setup: a fcn.training.distribute.Setup to train on several devices or workers (None: one device,
    the graph exactly as always). There the prediction path and `loss` (validation) run in
    cross-replica context on the mirrored variables, and the training step is the replicas'
    (`_replica_train_op`); its global-batch loss is `step_loss`, its stop request `stop_votes`.

    Returns TrainingTensors: the prediction path's, labels, learning_rate, train_op, loss, and
    `weights`, where the encoder's weights came from.
    """
    spec = spec or data.get_spec(config.dataset)
    source, arrays, config = models.read_weights(config)
    tf.set_random_seed(config.seed)
    built = {}

    def network(x, is_training, keep_prob):
        built.update(models.build_network(x, config, num_classes, is_training, keep_prob))
        return built["logits"]

    # Variables made under a strategy's scope are mirrored on every replica of this worker.
    with setup.strategy.scope() if setup else contextlib.nullcontext():
        model = prediction.build(network, config, spec)
    encoder_variables = built["encoder_variables"]
    # Everything the network owns (weights and batch-norm statistics): what best/ and exports keep.
    for v in tf.global_variables():
        tf.add_to_collection(tf.GraphKeys.MODEL_VARIABLES, v)
    trainable = [v for v in encoder_variables if v in tf.trainable_variables()]
    frozen = frozen_variables(trainable, config.freeze)
    labels = tf.placeholder(tf.uint8, [None, None, None], names.LABELS)
    learning_rate = tf.placeholder(tf.float32, [], names.LEARNING_RATE)
    data_loss = losses.segmentation_loss(
        config.loss,
        model.logits,
        labels,
        num_classes,
        class_weights=loss_weights,
        gamma=config.focal_gamma,
        alpha=config.focal_alpha,
    )
    loss = tf.identity(data_loss, name=names.LOSS)
    prec = precision.resolve(config.precision)
    var_list = [v for v in tf.trainable_variables() if v not in frozen] if frozen else None
    fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model)}
    if setup is None:
        train_op = losses.minimize(
            loss,
            learning_rate,
            config.l2_scale,
            loss_scale=precision.loss_scale_for(prec),
            var_list=var_list,
        )
    else:
        replica = _replica_train_op(
            setup, config, num_classes, model, labels, learning_rate, loss_weights, var_list
        )
        train_op = replica.pop("train_op")
        fields.update(replica, setup=setup)
    sess.run(tf.global_variables_initializer())
    source = models.assign_weights(
        sess, encoder_variables, arrays, source, log=log or (lambda *a: None)
    )
    del arrays  # up to 540 MB of VGG16 weights
    return TrainingTensors(
        **fields,
        labels=labels,
        learning_rate=learning_rate,
        train_op=train_op,
        loss=loss,
        weights=source,
    )


def _replica_train_op(
    setup, config, num_classes, model, labels, learning_rate, loss_weights, var_list
):
    """The synchronous training step of fcn.training.distribute: every replica runs the network on
    its
    shard of the fed image_input (B/W, h, w, 3) and labels, with the prediction path's variables
    (reused, so checkpoints keep the single-device names), and minimises loss / replicas: the v1
    optimizer sums the replicas' gradients, so that is the gradient of the global batch's mean.

    Returns {train_op, step_loss (the global batch's loss), stop_votes, stop_flag}.
    """
    graph = tf.get_default_graph()
    # The prediction path's batch-norm updates are not training's: each replica makes its own.
    graph.clear_collection(tf.GraphKeys.UPDATE_OPS)
    prec = precision.resolve(config.precision)
    with setup.strategy.scope():
        tf.train.get_or_create_global_step()  # mirrored, made once in cross-replica context

    def step(images, shard_labels, replicas):
        # Reusing the network adds its decoder kernels to the L2 collection again; the penalty
        # must count each once.
        l2_kernels = graph.get_collection_ref(layers.L2_COLLECTION)
        n_kernels = len(l2_kernels)
        with tf.variable_scope(tf.get_variable_scope(), reuse=True, auxiliary_name_scope=False):
            out = models.build_network(
                prediction.normalize(images, config.normalize),
                config,
                num_classes,
                model.is_training,
                model.keep_prob,
            )
        del l2_kernels[n_kernels:]
        shard_loss = losses.segmentation_loss(
            config.loss,
            out["logits"],
            shard_labels,
            num_classes,
            class_weights=loss_weights,
            gamma=config.focal_gamma,
            alpha=config.focal_alpha,
        )
        train_op = losses.minimize(
            shard_loss / replicas,
            learning_rate,
            config.l2_scale / replicas,
            loss_scale=precision.loss_scale_for(prec),
            var_list=var_list,
        )
        return train_op, shard_loss

    stop_flag = tf.placeholder_with_default(0.0, [], "stop_flag")
    train_op, step_loss, stop_votes = distribute.replica_step(
        setup, model.image_input, labels, step, stop_flag
    )
    return dict(train_op=train_op, step_loss=step_loss, stop_votes=stop_votes, stop_flag=stop_flag)


def frozen_variables(encoder_variables, freeze):
    """The encoder variables named by `--freeze` ('fc6,fc7': every variable under those scopes,
    relative to the encoder's scope).

    A prefix that matches nothing is an error naming the scopes there are, so a typo never
    silently trains everything.
    """
    prefixes = [p.strip().strip("/") for p in freeze.split(",") if p.strip()]
    relative = {v: weights.relative_name(v, encoders.SCOPE) for v in encoder_variables}
    frozen = []
    for prefix in prefixes:
        hits = [
            v for v, name in relative.items() if name == prefix or name.startswith(prefix + "/")
        ]
        if not hits:
            scopes = sorted({name.split("/")[0] for name in relative.values()})
            raise UserError(
                f"--freeze {prefix!r} matches no encoder variable; the encoder's scopes are "
                f"{', '.join(scopes)}"
            )
        frozen += [v for v in hits if v not in frozen]
    return frozen


def initialize_new_variables(sess):
    """Initialise only what the SavedModel did not bring: the loaded VGG weights stay."""
    names = set(n.decode() for n in sess.run(tf.report_uninitialized_variables()))
    new = [v for v in tf.global_variables() if v.op.name in names]
    sess.run(tf.variables_initializer(new))


def run_epoch(
    sess,
    batches,
    train_op,
    loss,
    input_image,
    correct_label,
    keep_prob,
    learning_rate,
    keep_prob_value,
    learning_rate_value,
    total=None,
    desc="train",
    on_step=None,
    extra_feed=None,
    extra_fetch=None,
):
    """One pass of training steps with a tqdm bar showing the running loss; returns the mean.

    learning_rate_value: a number, or a function of the step's index in this pass.

    on_step(loss) runs after every step; it may raise, or return True to end the pass early.
    extra_feed: more feeds for every step (the training flag of batch norm and dropout), or a
    function returning them, called before each step.
    extra_fetch: a tensor fetched with every step and passed on: on_step(loss, its value)
    (fcn.training.distribute's stop votes).
    """
    losses_seen = []
    # disable=None: no bar when stdout is not a terminal, so CI logs stay readable.
    bar = tqdm(batches, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)
    rate = learning_rate_value if callable(learning_rate_value) else lambda i: learning_rate_value
    more = extra_feed if callable(extra_feed) else lambda: extra_feed or {}
    fetches = [train_op, loss] + ([] if extra_fetch is None else [extra_fetch])
    for i, (images, labels) in enumerate(bar):
        _, value, *extra = sess.run(
            fetches,
            {
                input_image: images,
                correct_label: labels,
                keep_prob: keep_prob_value,
                learning_rate: rate(i),
                **more(),
            },
        )
        losses_seen.append(float(value))
        bar.set_postfix(loss=f"{np.mean(losses_seen[-20:]):.4f}")
        if on_step is not None and on_step(float(value), *extra):
            break
    bar.close()
    return float(np.mean(losses_seen)) if losses_seen else float("nan")


def validate(sess, model, split, spec, config, batch_size=None):
    """Validation loss and scores on a cached split through the prediction path.

    Returns (scores dict, masks (N, h, w) uint8). Scores: val_loss, val_mean_iou,
    val_pixel_accuracy, val_classes {name: {iou, precision, recall, f1}}, and for binary
    datasets the positive class's val_iou, val_precision, val_recall, val_f1 (on the
    thresholded prediction, never on raw probabilities).
    """
    batch_size = batch_size or config.batch_size
    path = predictor(sess, model, config, spec, batch_size)
    acc = metrics.ConfusionAccumulator(spec.num_classes)
    total_loss, total_valid, masks = 0.0, 0, []
    for start in range(0, len(split.images), batch_size):
        images = split.images[start : start + batch_size]
        labels = split.labels[start : start + batch_size]
        # The cached images are at the network size, so the path's resize and upsampling are
        # identities; the loss comes from the same forward pass.
        _, mask, loss = path.run_batch(images, fetch=[model.loss], feed={model.labels: labels})
        valid = int((labels != spec.ignore_label).sum())
        total_loss += float(loss) * valid
        total_valid += valid
        acc.update(mask, labels)
        masks.append(mask)
    per_class = acc.metrics(list(spec.class_names))
    scores = {
        "val_loss": total_loss / max(total_valid, 1),
        "val_mean_iou": per_class["mean_iou"],
        "val_pixel_accuracy": per_class["pixel_accuracy"],
        "val_classes": per_class["classes"],
    }
    if spec.task == "binary":
        positive = per_class["classes"][spec.positive_name]
        for key in ("iou", "precision", "recall", "f1"):
            scores[f"val_{key}"] = positive[key]
    return scores, np.concatenate(masks) if masks else None


def best_metric(config, spec):
    """The validation score that picks the best checkpoint (config.best_metric, resolved)."""
    if config.best_metric != "auto":
        return config.best_metric
    return task.selection_metric(spec)


def write_overlays(path, folder, examples, spec):
    """An overlay of each validation image at its original size through `path`, the training
    graph's Predictor (the cached split is at the network size, too small to judge: 320x96 in
    the demo)."""
    paths = [ex.image_path for ex in examples]
    for ex, (image, _, mask) in zip(examples, path.predict_files(paths), strict=True):
        runs.write_image(os.path.join(folder, ex.name + ".png"), overlays.paint(image, mask, spec))


def write_comparisons(path, folder, examples, spec):
    """image | ground truth | prediction side by side at the original size, for a few
    validation images; ignore pixels of the ground truth are left unpainted."""
    paths = [ex.image_path for ex in examples]
    for ex, (image, _, mask) in zip(examples, path.predict_files(paths), strict=True):
        label = data.read_label(ex, spec, warn=None)
        truth = overlays.paint(image, label, spec)
        predicted = overlays.paint(image, mask, spec)
        gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
        row = np.concatenate([image, gap, truth, gap, predicted], axis=1)
        runs.write_image(os.path.join(folder, ex.name + ".png"), row)


def write_test_overlays(path, examples, out_dir, spec):
    """An overlay of each image at its original resolution; returns the number written."""
    count = 0
    results = path.predict_files([ex.image_path for ex in examples])
    for ex, (image, _, mask) in tqdm(
        zip(examples, results, strict=True),
        total=len(examples),
        desc="test overlays",
        leave=False,
        disable=None,
    ):
        runs.write_image(os.path.join(out_dir, ex.name + ".png"), overlays.paint(image, mask, spec))
        count += 1
    return count


def _log_overlays(writer, step, split, masks, spec):
    images = [
        overlays.paint(image, mask, spec) for image, mask in zip(split.images, masks, strict=False)
    ]
    writer.add_summary(tboard.image_summary("val_overlays", images), step)


def _log_scalars(writer, step, values):
    summary = tf.Summary(
        value=[
            tf.Summary.Value(tag=k, simple_value=float(v))
            for k, v in values.items()
            if isinstance(v, (int, float)) and math.isfinite(v)
        ]
    )
    writer.add_summary(summary, step)
    writer.flush()


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
        model = build_model(sess, config, spec.num_classes, log, spec, loss_weights, setup)
        if setup is not None and not setup.is_chief:
            return _follow(sess, model, config, spec, train_split, resume_dir, state, log)
        if resume_dir:
            run_dir = resume_dir
            ckpts = checkpoint.Checkpoints(run_dir, config.keep_checkpoints, state)
            ckpts.restore(sess, state["checkpoint"], _describe(config, spec))
            progress = checkpoint.Progress.from_state(state)
            with contextlib.suppress(FileNotFoundError):  # a failure that this resume retries
                os.remove(os.path.join(run_dir, names.FAILED_FILE))
            # --epochs may have been raised: the saved config always tells how the run ends.
            runs.RunFolder(run_dir).write_config(config)
            log(f"resuming {run_dir} from {state['checkpoint']} (epoch {progress.epoch + 1})")
        else:
            run_dir = _start_run(config, spec, train_ex, val_ex, official, stats)
            ckpts = checkpoint.Checkpoints(run_dir, config.keep_checkpoints)
            progress = checkpoint.Progress()
            log(f"run folder: {run_dir}")
        history = checkpoint.history_upto(run_dir, progress.epoch)
        writer = tf.summary.FileWriter(os.path.join(run_dir, names.TB_DIR), graph)
        splits = (train_split, val_split)
        _fit(sess, model, config, spec, splits, ckpts, progress, history, writer, log)
        n_test = 0
        if config.test_overlays:
            test_ex = data.list_test_images(config.data_dir, spec)
            test_dir = os.path.join(run_dir, names.TEST_DIR)
            n_test = write_test_overlays(
                predictor(sess, model, config, spec), test_ex, test_dir, spec
            )
            log(f"wrote {n_test} test overlays to {test_dir}")
        if len(val_split.images):
            folder = os.path.join(run_dir, names.VAL_COMPARE_DIR)
            path = predictor(sess, model, config, spec)
            write_comparisons(path, folder, val_ex[:_COMPARE_IMAGES], spec)
        writer.close()

    final = history[-1] if history else {}
    best = progress.best_iou if progress.best_epoch else None
    metric = best_metric(config, spec)
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
    _fit(sess, model, config, spec, (train_split, None), ckpts, progress, [], None, log)
    log(f"finished epoch {config.epochs} of {config.epochs}")
    worker = model.setup.worker_index
    return None, {"worker": worker, "train_seconds": progress.train_seconds}


def _fit(sess, model, config, spec, splits, ckpts, progress, history, writer, log):
    """Epochs progress.epoch + 1 .. config.epochs: train, validate, log, checkpoint.

    Ctrl-C or SIGTERM ends the loop after the current step with a checkpoint (`Interrupted`); a
    non-finite loss ends it at once, leaving the last good checkpoint as it was.

    Under fcn.training.distribute (model.setup) each worker feeds its slice of whole global batches;
    a stop request is voted on with every step, so all workers stop after the same one; only
    the chief validates and writes (checkpoints, log, TensorBoard, overlays); a lost peer ends
    the job with the last complete checkpoint intact.
    """
    train_split, val_split = splits
    setup = model.setup
    chief = setup is None or setup.is_chief
    augmenter = Augmenter.from_config(config)
    order_rng = np.random.default_rng(config.seed + 1)
    if progress.rng:
        augmenter.set_state(progress.rng["augment"])
        order_rng.bit_generator.state = progress.rng["order"]
    # The epoch's images (fcn.data.sampling): uniform, or repeat factors that vary its length.
    sampler = sampling.Sampler.from_config(
        config, train_split, spec.class_names, log if chief else None
    )
    metric = best_metric(config, spec)
    global_step = tf.train.get_global_step()
    voted = [False]  # a distributed stop request was voted for (on_step)
    seconds_before, t_start = progress.train_seconds, time.time()
    with checkpoint.StopRequest() as stop, _failed_step(config, ckpts, progress, setup):
        for epoch in range(progress.epoch + 1, config.epochs + 1):
            progress.rng = _rng_states(augmenter, order_rng)
            order = sampler.order(order_rng)  # drawn from the saved state: resumes replay it
            steps_per_epoch = distribute.steps_per_epoch(len(order), config.batch_size, setup)
            batches = data.epoch_batches(train_split, config.batch_size, augmenter, order=order)
            if setup:
                batches = distribute.shard_batches(batches, setup, config.batch_size)
            # A resumed epoch replays its batches from the saved random state, skipping those done.
            batches = data.prefetch(itertools.islice(batches, progress.batch, None))

            def on_step(loss_value, votes=0.0, epoch=epoch, steps_per_epoch=steps_per_epoch):
                progress.batch += 1
                progress.epoch_losses.append(loss_value)
                if not math.isfinite(loss_value):
                    raise UserError(
                        f"the training loss became {loss_value} at epoch {epoch}, step "
                        f"{progress.batch}/{steps_per_epoch}, so training stopped; "
                        f"{_last_good(ckpts)}; lower --learning-rate "
                        f"(now {config.learning_rate:g}) or check the data"
                    )
                if setup:  # every worker got the same votes from this step
                    voted[0] = voted[0] or votes > 0
                    return voted[0]
                return stop.requested

            t_epoch = time.time()

            def feed():  # this worker's stop request goes into every step's vote
                return {model.is_training: True, model.stop_flag: float(stop.requested)}

            with distribute.lost_peer(setup, _last_good(ckpts) if chief else ""):
                run_epoch(
                    sess,
                    batches,
                    model.train_op,
                    model.training_loss,
                    model.image_input,
                    model.labels,
                    model.keep_prob,
                    model.learning_rate,
                    config.keep_prob,
                    lambda i, epoch=epoch, first=progress.batch, steps=steps_per_epoch: (
                        learning_rate_at(config, epoch, (first + i) / steps)
                    ),
                    steps_per_epoch - progress.batch,
                    desc=f"epoch {epoch}/{config.epochs}",
                    on_step=on_step,
                    extra_feed=feed if setup else {model.is_training: True},
                    extra_fetch=model.stop_votes,
                )
            step = int(sess.run(global_step))
            progress.train_seconds = seconds_before + time.time() - t_start
            if progress.batch < steps_per_epoch:  # a stop request ended the epoch early
                if chief:
                    ckpts.save(sess, step, progress)
                raise _stopped(stop.signum, ckpts, f"at step {progress.batch} of epoch {epoch}")
            if not chief:  # the chief validates and writes; this worker goes on to the next epoch
                progress.epoch, progress.batch, progress.epoch_losses = epoch, 0, []
                if voted[0]:
                    raise _stopped(stop.signum, ckpts, f"after epoch {epoch}")
                continue

            record = {
                "epoch": epoch,
                "train_loss": float(np.mean(progress.epoch_losses)),
                "learning_rate": learning_rate_at(config, epoch, 1.0),
                "seconds": time.time() - t_epoch,
            }
            masks = None
            if len(val_split.images):
                scores, masks = validate(sess, model, val_split, spec, config)
                record.update(scores)
            history.append(record)
            # The log line goes first: a resume drops it again if the checkpoint never came.
            checkpoint.append_log(ckpts.run_dir, record)
            log(_format_record(record, spec))
            score = record.get(metric)
            score = float("nan") if score is None else score
            if math.isfinite(score) and score > progress.best_iou:
                ckpts.save_best(sess, step)
                progress.best_iou, progress.best_epoch = score, epoch
            progress.epoch, progress.batch, progress.epoch_losses = epoch, 0, []
            progress.rng = _rng_states(augmenter, order_rng)
            ckpts.save(sess, step, progress)
            if masks is not None:  # a few validation overlays in TensorBoard's Images tab
                _log_overlays(writer, step, val_split, masks[:_TB_IMAGES], spec)
            _log_scalars(writer, step, record)
            last = epoch == config.epochs
            if masks is not None and (
                last or (config.overlay_every and epoch % config.overlay_every == 0)
            ):
                folder = os.path.join(ckpts.run_dir, names.VAL_OVERLAYS_DIR, f"epoch_{epoch:03d}")
                path = predictor(sess, model, config, spec)
                write_overlays(path, folder, val_split.examples, spec)
            if voted[0] if setup else stop.requested:
                raise _stopped(stop.signum, ckpts, f"after epoch {epoch}")


@contextlib.contextmanager
def _failed_step(config, ckpts, progress, setup):
    """A TensorFlow error in a training step or a validation (any tf.errors.OpError) becomes one
    `error:` line (exit 2): where, which op, TensorFlow's message, what to try. The run folder
    stays resumable when a checkpoint was saved, and is marked failed (failed.json) either way;
    --verbose also prints the whole trace."""
    try:
        yield
    except tf.errors.OpError as e:
        if tfquiet.verbose():
            traceback.print_exc()
        message = tensorflow_message(e)
        where = f"epoch {progress.epoch + 1}, after {progress.batch} step(s)"
        what = f"{type(e).__name__}" + (f" in {e.op.name}" if e.op is not None else "")
        record = {"error": f"{what}: {message}", "epoch": progress.epoch + 1}
        record["batch"] = progress.batch
        if ckpts is None:  # a worker other than the chief: the chief keeps the run folder
            state = "the chief's run folder keeps its last checkpoint"
        elif ckpts.latest:
            state = f"{_last_good(ckpts)}; {checkpoint.resume_hint(ckpts.run_dir)} once fixed"
        else:
            state = f"{ckpts.run_dir} has no checkpoint yet and is marked failed"
        if ckpts is not None:
            runs.write_json(os.path.join(ckpts.run_dir, names.FAILED_FILE), record)
        tries = []  # what a new run may change
        if precision.resolve(config.precision) != "float32":
            tries.append(f"--precision float32 (this run: {precision.resolve(config.precision)})")
        if config.xla:
            tries.append("--no-xla")
        if setup is not None:
            tries.append("one device (no TF_CONFIG, no --devices)")
        hint = f"a new run with {' or '.join(tries)}, or " if tries else ""
        raise UserError(
            f"training failed in TensorFlow at {where}: {what}: {message}; {state}; "
            f"try {hint}--verbose for the whole trace"
        ) from None


def learning_rate_at(config, epoch, fraction=0.0):
    """The learning rate `fraction` of the way through `epoch` (1-based): constant (the
    reference), or a per-step cosine decay from config.learning_rate at the first step towards 0
    at the last, which settles a short run's final weights."""
    if config.lr_schedule == "constant" or config.epochs < 1:
        return config.learning_rate
    done = (epoch - 1 + fraction) / config.epochs
    return 0.5 * config.learning_rate * (1 + math.cos(math.pi * done))


def _rng_states(augmenter, order_rng):
    return {"augment": augmenter.state(), "order": order_rng.bit_generator.state}


def _describe(config, spec):
    return f"{config.encoder} + {config.decoder}, {spec.num_classes} classes"


def _last_good(ckpts):
    if not ckpts.latest:
        return "no checkpoint was saved before it"
    return f"the last good checkpoint {os.path.join(ckpts.run_dir, ckpts.latest)} is kept"


def _stopped(signum, ckpts, where):
    if signum is None:  # fcn.training.distribute: another worker was asked to stop
        signum, name = signal.SIGTERM, "another worker's stop request"
    else:
        name = signal.Signals(signum).name
    if ckpts is None:  # a worker other than the chief, which saved the checkpoint
        return checkpoint.Interrupted(
            f"stopped by {name} {where}; the chief saved the checkpoint; resume every worker "
            "with `python main.py train --resume RUN_DIR` on the chief's run folder",
            signum,
        )
    return checkpoint.Interrupted(
        f"stopped by {name} {where}; saved {os.path.join(ckpts.run_dir, ckpts.latest)}; "
        f"{checkpoint.resume_hint(ckpts.run_dir)}",
        signum,
    )


def _format_record(r, spec):
    parts = [f"epoch {r['epoch']:3d}", f"loss {r['train_loss']:.4f}"]
    for key, label in (
        ("val_loss", "val loss"),
        ("val_iou", f"{spec.positive_name} IoU"),
        ("val_precision", "precision"),
        ("val_recall", "recall"),
        ("val_mean_iou", "mean IoU"),
    ):
        if r.get(key) is not None:
            parts.append(f"{label} {r[key]:.4f}")
    parts.append(f"{r['seconds']:.0f}s")
    return " | ".join(parts)
