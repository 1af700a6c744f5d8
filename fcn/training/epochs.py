"""The epoch loop: training steps with a progress bar, then validation, the log line,
TensorBoard, the best and latest checkpoints; stop requests, non-finite losses and TensorFlow
errors end it with the run folder resumable."""

import contextlib
import dataclasses
import itertools
import math
import os
import signal
import time
import traceback

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from fcn import data, names, precision, runs, tfquiet
from fcn.data import sampling
from fcn.data.augment import Augmenter
from fcn.errors import UserError, tensorflow_message
from fcn.inference import overlays
from fcn.training import checkpoint, distribute, tboard, validation

# Validation overlays shown in TensorBoard each epoch.
_TB_IMAGES = 3


@dataclasses.dataclass(frozen=True)
class StepTensors:
    """What a training step runs and feeds in the graph."""

    train_op: tf.Operation
    loss: tf.Tensor  # float32 scalar, the step's loss (shown in the bar, averaged)
    images: tf.Tensor  # the fed batch: (N, h, w, 3)
    labels: tf.Tensor  # the fed batch's labels: (N, h, w) uint8 class ids, or one-hot (Udacity)
    keep_prob: tf.Tensor
    learning_rate: tf.Tensor
    # Fetched with every step and passed on as on_step(loss, its value): the stop votes of
    # fcn.training.distribute.
    extra_fetch: tf.Tensor = None

    @classmethod
    def of(cls, model):
        """The steps of a fcn.training.build.TrainingTensors."""
        return cls(
            model.train_op,
            model.training_loss,
            model.image_input,
            model.labels,
            model.keep_prob,
            model.learning_rate,
            model.stop_votes,
        )


@dataclasses.dataclass(frozen=True)
class StepValues:
    """What is fed to a step besides the batch."""

    keep_prob: float
    learning_rate: object  # a number, or a function of the step's index in this pass
    # More feeds for every step (batch norm's and dropout's training flag), or a function
    # returning them, called before each step.
    extra_feed: object = None


def run_epoch(sess, batches, tensors, values, total=None, desc="train", on_step=None):
    """One pass of training steps over `batches` ((images, labels) pairs) with a tqdm bar showing
    the running loss; returns the mean loss.

    tensors: StepTensors; values: StepValues. on_step(loss) runs after every step (with the
    value of tensors.extra_fetch as a second argument when there is one); it may raise, or
    return True to end the pass early.
    """
    losses_seen = []
    # disable=None: no bar when stdout is not a terminal, so CI logs stay readable.
    bar = tqdm(batches, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)
    rate = values.learning_rate
    rate = rate if callable(rate) else lambda i, value=rate: value
    extra = values.extra_feed
    more = extra if callable(extra) else lambda: extra or {}
    fetches = [tensors.train_op, tensors.loss]
    if tensors.extra_fetch is not None:
        fetches.append(tensors.extra_fetch)
    for i, (images, labels) in enumerate(bar):
        _, value, *fetched = sess.run(
            fetches,
            {
                tensors.images: images,
                tensors.labels: labels,
                tensors.keep_prob: values.keep_prob,
                tensors.learning_rate: rate(i),
                **more(),
            },
        )
        losses_seen.append(float(value))
        bar.set_postfix(loss=f"{np.mean(losses_seen[-20:]):.4f}")
        if on_step is not None and on_step(float(value), *fetched):
            break
    bar.close()
    return float(np.mean(losses_seen)) if losses_seen else float("nan")


def fit(sess, model, config, spec, splits, ckpts, progress, history, writer, log):
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
    metric = validation.best_metric(config, spec)
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
                    StepTensors.of(model),
                    StepValues(
                        config.keep_prob,
                        lambda i, epoch=epoch, first=progress.batch, steps=steps_per_epoch: (
                            learning_rate_at(config, epoch, (first + i) / steps)
                        ),
                        feed if setup else {model.is_training: True},
                    ),
                    steps_per_epoch - progress.batch,
                    desc=f"epoch {epoch}/{config.epochs}",
                    on_step=on_step,
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
            last = epoch == config.epochs
            if len(val_split.images) and (last or epoch % config.val_every == 0):
                scores, masks = validation.validate(sess, model, val_split, spec, config)
                record.update(scores)
            history.append(record)
            # The log line goes first: a resume drops it again if the checkpoint never came.
            runs.RunFolder(ckpts.run_dir).append_log(record)
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
            if masks is not None and (
                last or (config.overlay_every and epoch % config.overlay_every == 0)
            ):
                folder = os.path.join(ckpts.run_dir, names.VAL_OVERLAYS_DIR, f"epoch_{epoch:03d}")
                path = validation.predictor(sess, model, config, spec)
                validation.write_overlays(path, folder, val_split.examples, spec)
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
            runs.RunFolder(ckpts.run_dir).write_failed(record)
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
