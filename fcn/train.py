"""The training job: data -> graph -> epochs with validation, checkpoints, overlays -> run folder.

Run folder (runs/<timestamp>/): config.json, split.json, log.jsonl (one line per epoch),
checkpoints/ (latest K), best/ (best validation road IoU), state.json (what a resume starts from,
see fcn.checkpoint), tb/ (TensorBoard), val_overlays/, test/ (a green overlay of every test image
at its original size), summary.json.
"""

import itertools
import json
import math
import os
import signal
import time

import numpy as np
import tensorflow.compat.v1 as tf
from tqdm import tqdm

from fcn import checkpoint, data, decoders, infer, losses, metrics, precision, runs, tboard, vgg
from fcn.augment import Augmenter
from fcn.errors import UserError

# Validation overlays shown in TensorBoard each epoch.
_TB_IMAGES = 3
CHECKPOINT_DIR = checkpoint.LATEST_DIR
BEST_DIR = checkpoint.BEST_DIR


def build_model(sess, config, num_classes):
    """Load the encoder into sess's graph and add decoder, softmax and training ops.

    Returns a dict of named tensors: image_input, keep_prob, logits (N, H, W, C), probs,
    correct_label (N, H, W, C) one-hot, learning_rate, logits_flat, train_op, loss.
    """
    image_input, keep_prob, layer3, layer4, layer7 = vgg.load_vgg(sess, config.vgg_dir)
    frozen = frozen_variables(tf.trainable_variables(), config.freeze)
    tf.set_random_seed(config.seed)
    logits = decoders.build_decoder(
        config.decoder,
        layer3,
        layer4,
        layer7,
        num_classes,
        tf.shape(image_input)[1:3],
        config.init_stddev,
        config.skip_gain,
    )
    probs = tf.nn.softmax(tf.cast(logits, tf.float32), name="probs")
    correct_label = tf.placeholder(tf.float32, [None, None, None, num_classes], "correct_label")
    learning_rate = tf.placeholder(tf.float32, [], "learning_rate")
    prec = precision.resolve(config.precision)
    logits_flat, train_op, loss = losses.optimize(
        logits,
        correct_label,
        learning_rate,
        num_classes,
        l2_scale=config.l2_scale,
        loss_scale=precision.loss_scale_for(prec),
        var_list=[v for v in tf.trainable_variables() if v not in frozen] if frozen else None,
    )
    return dict(
        image_input=image_input,
        keep_prob=keep_prob,
        logits=logits,
        probs=probs,
        correct_label=correct_label,
        learning_rate=learning_rate,
        logits_flat=logits_flat,
        train_op=train_op,
        loss=loss,
    )


def frozen_variables(encoder_variables, freeze):
    """The encoder variables named by `--freeze` ('fc6,fc7': every variable under those scopes).

    A prefix that matches nothing is an error naming the scopes there are, so a typo never
    silently trains everything.
    """
    prefixes = [p.strip().strip("/") for p in freeze.split(",") if p.strip()]
    frozen = []
    for prefix in prefixes:
        hits = [
            v
            for v in encoder_variables
            if v.op.name == prefix or v.op.name.startswith(prefix + "/")
        ]
        if not hits:
            scopes = sorted({v.op.name.split("/")[0] for v in encoder_variables})
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
):
    """One pass of training steps with a tqdm bar showing the running loss; returns the mean.

    learning_rate_value: a number, or a function of the step's index in this pass.

    on_step(loss) runs after every step; it may raise, or return True to end the pass early.
    """
    losses_seen = []
    # disable=None: no bar when stdout is not a terminal, so CI logs stay readable.
    bar = tqdm(batches, total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)
    rate = learning_rate_value if callable(learning_rate_value) else lambda i: learning_rate_value
    for i, (images, labels) in enumerate(bar):
        _, value = sess.run(
            [train_op, loss],
            {
                input_image: images,
                correct_label: labels,
                keep_prob: keep_prob_value,
                learning_rate: rate(i),
            },
        )
        losses_seen.append(float(value))
        bar.set_postfix(loss=f"{np.mean(losses_seen[-20:]):.4f}")
        if on_step is not None and on_step(float(value)):
            break
    bar.close()
    return float(np.mean(losses_seen)) if losses_seen else float("nan")


def validate(sess, model, split, spec, config, batch_size=None):
    """Validation loss and metrics on a cached split; returns (scores dict, probs (N,h,w,C))."""
    batch_size = batch_size or config.batch_size
    acc = metrics.ConfusionAccumulator(spec.num_classes)
    road = metrics.ConfusionAccumulator(2)
    total_loss, total_valid, all_probs = 0.0, 0, []
    for start in range(0, len(split.images), batch_size):
        images = split.images[start : start + batch_size]
        labels = split.labels[start : start + batch_size]
        probs, loss = sess.run(
            [model["probs"], model["loss"]],
            {
                model["image_input"]: data.to_input(images, config.normalize),
                model["correct_label"]: data.one_hot(labels, spec.num_classes),
                model["keep_prob"]: 1.0,
            },
        )
        valid = int((labels != data.IGNORE_LABEL).sum())
        total_loss += float(loss) * valid
        total_valid += valid
        acc.update(probs.argmax(-1), labels)
        # Binary road scores on the thresholded probability, never on raw probabilities.
        road_pred = probs[..., spec.positive_class] >= config.threshold
        road_true = np.where(labels == data.IGNORE_LABEL, 255, labels == spec.positive_class)
        road.update(road_pred.astype(np.uint8), road_true.astype(np.uint8))
        all_probs.append(probs)
    per_class = acc.metrics(list(spec.class_names))
    binary = road.metrics(["other", "road"])["classes"]["road"]
    scores = {
        "val_loss": total_loss / max(total_valid, 1),
        "val_iou": binary["iou"],
        "val_precision": binary["precision"],
        "val_recall": binary["recall"],
        "val_f1": binary["f1"],
        "val_mean_iou": per_class["mean_iou"],
        "val_pixel_accuracy": per_class["pixel_accuracy"],
    }
    return scores, np.concatenate(all_probs) if all_probs else None


def write_overlays(folder, split, probs, spec, threshold):
    for ex, image, prob in zip(split.examples, split.images, probs, strict=True):
        out = infer.road_overlay(image, prob[..., spec.positive_class], threshold)
        runs.write_image(os.path.join(folder, ex.name + ".png"), out)


def write_test_overlays(sess, model, examples, out_dir, config, spec, batch_size=None):
    """Green overlay of each image at its original resolution; returns the number written."""
    batch_size = batch_size or config.batch_size
    count = 0
    starts = range(0, len(examples), batch_size)
    for start in tqdm(starts, desc="test overlays", leave=False, disable=None):
        chunk = examples[start : start + batch_size]
        originals = [data.read_image(ex.image_path) for ex in chunk]
        h, w = config.image_shape
        small = np.stack(
            [data.cv2.resize(im, (w, h), interpolation=data.cv2.INTER_AREA) for im in originals]
        )
        probs = infer.predict_probs(
            sess, model["probs"], model["image_input"], model["keep_prob"], small, config.normalize
        )
        for ex, image, prob in zip(chunk, originals, probs, strict=True):
            out = infer.road_overlay(image, prob[..., spec.positive_class], config.threshold)
            runs.write_image(os.path.join(out_dir, ex.name + ".png"), out)
            count += 1
    return count


def _log_overlays(writer, step, split, probs, spec, threshold):
    images = [
        infer.road_overlay(image, prob[..., spec.positive_class], threshold)
        for image, prob in zip(split.images, probs, strict=False)
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
    spec = data.get_spec(config.dataset)
    state = checkpoint.read_state(resume_dir) if resume_dir else None
    train_ex, val_ex = _choose_split(config, spec, resume_dir, log)
    vgg.check_vgg_dir(config.vgg_dir)
    prec = precision.resolve(config.precision)
    log(
        f"{len(train_ex)} training / {len(val_ex)} validation images at "
        f"{config.image_shape[0]}x{config.image_shape[1]}, precision {prec}"
    )

    # Decoding every pair up front also validates the whole dataset: unreadable files, sizes of
    # image and label, label colours.
    t0 = time.time()
    clahe = (config.clahe_clip, config.clahe_grid) if config.clahe_prob > 0 else None
    train_split = data.load_split(train_ex, config.image_shape, spec, clahe=clahe)
    val_split = data.load_split(val_ex, config.image_shape, spec)
    log(f"decoded and cached the data in {time.time() - t0:.1f}s")

    graph = tf.Graph()
    with graph.as_default(), tf.Session(config=precision.session_config(prec, config.xla)) as sess:
        # A bad VGG SavedModel fails here, still before the run folder is made.
        model = build_model(sess, config, spec.num_classes)
        initialize_new_variables(sess)
        if resume_dir:
            run_dir = resume_dir
            ckpts = checkpoint.Checkpoints(run_dir, config.keep_checkpoints, state)
            ckpts.restore(sess, state["checkpoint"], _describe(config, spec))
            progress = checkpoint.Progress.from_state(state)
            # --epochs may have been raised: the saved config always tells how the run ends.
            runs.write_json(os.path.join(run_dir, "config.json"), json.loads(config.to_json()))
            log(f"resuming {run_dir} from {state['checkpoint']} (epoch {progress.epoch + 1})")
        else:
            run_dir = _start_run(config, train_ex, val_ex)
            ckpts = checkpoint.Checkpoints(run_dir, config.keep_checkpoints)
            progress = checkpoint.Progress()
            log(f"run folder: {run_dir}")
        history = checkpoint.history_upto(run_dir, progress.epoch)
        writer = tf.summary.FileWriter(os.path.join(run_dir, "tb"), graph)
        splits = (train_split, val_split)
        _fit(sess, model, config, spec, splits, ckpts, progress, history, writer, log)
        n_test = 0
        if config.test_overlays:
            test_ex = data.list_test_images(config.data_dir, spec)
            n_test = write_test_overlays(
                sess, model, test_ex, os.path.join(run_dir, "test"), config, spec
            )
            log(f"wrote {n_test} test overlays to {os.path.join(run_dir, 'test')}")
        writer.close()

    final = history[-1] if history else {}
    summary = {
        "epochs": config.epochs,
        "best_val_iou": progress.best_iou if progress.best_epoch else None,
        "best_epoch": progress.best_epoch,
        "final_val_iou": final.get("val_iou"),
        "final_val_precision": final.get("val_precision"),
        "final_val_recall": final.get("val_recall"),
        "final_train_loss": final.get("train_loss"),
        "train_seconds": progress.train_seconds,
        "train_images": len(train_ex),
        "val_images": len(val_ex),
        "test_overlays": n_test,
        "precision": prec,
    }
    runs.write_json(os.path.join(run_dir, "summary.json"), summary)
    return run_dir, summary


def _choose_split(config, spec, resume_dir, log):
    """(train, val) examples: the seeded split, or the one the resumed run saved."""
    examples = data.list_pairs(config.data_dir, spec)
    if resume_dir:
        return checkpoint.read_split(resume_dir, examples)
    train_ex, val_ex, note = data.split_train_val(examples, config.val_count, config.seed)
    if note:
        log(note)
    if config.max_train_images:
        train_ex = train_ex[: config.max_train_images]
    return train_ex, val_ex


def _start_run(config, train_ex, val_ex):
    run_dir = runs.new_run_dir(config.runs_dir)
    runs.write_json(os.path.join(run_dir, "config.json"), json.loads(config.to_json()))
    runs.write_json(
        os.path.join(run_dir, checkpoint.SPLIT_FILE),
        {"train": [e.name for e in train_ex], "val": [e.name for e in val_ex], "seed": config.seed},
    )
    return run_dir


def _fit(sess, model, config, spec, splits, ckpts, progress, history, writer, log):
    """Epochs progress.epoch + 1 .. config.epochs: train, validate, log, checkpoint.

    Ctrl-C or SIGTERM ends the loop after the current step with a checkpoint (`Interrupted`); a
    non-finite loss ends it at once, leaving the last good checkpoint as it was.
    """
    train_split, val_split = splits
    augmenter = Augmenter(config.clahe_prob, config.flip_prob, config.seed)
    order_rng = np.random.default_rng(config.seed + 1)
    if progress.rng:
        augmenter.set_state(progress.rng["augment"])
        order_rng.bit_generator.state = progress.rng["order"]
    steps_per_epoch = math.ceil(len(train_split.images) / config.batch_size)
    global_step = tf.train.get_global_step()
    seconds_before, t_start = progress.train_seconds, time.time()
    with checkpoint.StopRequest() as stop:
        for epoch in range(progress.epoch + 1, config.epochs + 1):
            progress.rng = _rng_states(augmenter, order_rng)
            batches = data.epoch_batches(
                train_split,
                config.batch_size,
                spec.num_classes,
                augmenter,
                order_rng,
                config.normalize,
            )
            # A resumed epoch replays its batches from the saved random state, skipping those done.
            batches = data.prefetch(itertools.islice(batches, progress.batch, None))

            def on_step(loss_value, epoch=epoch):
                progress.batch += 1
                progress.epoch_losses.append(loss_value)
                if not math.isfinite(loss_value):
                    raise UserError(
                        f"the training loss became {loss_value} at epoch {epoch}, step "
                        f"{progress.batch}/{steps_per_epoch}, so training stopped; "
                        f"{_last_good(ckpts)}; lower --learning-rate "
                        f"(now {config.learning_rate:g}) or check the data"
                    )
                return stop.requested

            t_epoch = time.time()
            run_epoch(
                sess,
                batches,
                model["train_op"],
                model["loss"],
                model["image_input"],
                model["correct_label"],
                model["keep_prob"],
                model["learning_rate"],
                config.keep_prob,
                lambda i, epoch=epoch, first=progress.batch: learning_rate_at(
                    config, epoch, (first + i) / steps_per_epoch
                ),
                steps_per_epoch - progress.batch,
                desc=f"epoch {epoch}/{config.epochs}",
                on_step=on_step,
            )
            step = int(sess.run(global_step))
            progress.train_seconds = seconds_before + time.time() - t_start
            if progress.batch < steps_per_epoch:  # a stop request ended the epoch early
                ckpts.save(sess, step, progress)
                raise _stopped(stop.signum, ckpts, f"at step {progress.batch} of epoch {epoch}")

            record = {
                "epoch": epoch,
                "train_loss": float(np.mean(progress.epoch_losses)),
                "seconds": time.time() - t_epoch,
            }
            probs = None
            if len(val_split.images):
                scores, probs = validate(sess, model, val_split, spec, config)
                record.update(scores)
            history.append(record)
            # The log line goes first: a resume drops it again if the checkpoint never came.
            checkpoint.append_log(ckpts.run_dir, record)
            log(_format_record(record))
            val_iou = record.get("val_iou", float("nan"))
            if math.isfinite(val_iou) and val_iou > progress.best_iou:
                ckpts.save_best(sess, step)
                progress.best_iou, progress.best_epoch = val_iou, epoch
            progress.epoch, progress.batch, progress.epoch_losses = epoch, 0, []
            progress.rng = _rng_states(augmenter, order_rng)
            ckpts.save(sess, step, progress)
            if probs is not None:  # a few validation overlays in TensorBoard's Images tab
                _log_overlays(writer, step, val_split, probs[:_TB_IMAGES], spec, config.threshold)
            _log_scalars(writer, step, record)
            last = epoch == config.epochs
            if probs is not None and (
                last or (config.overlay_every and epoch % config.overlay_every == 0)
            ):
                folder = os.path.join(ckpts.run_dir, "val_overlays", f"epoch_{epoch:03d}")
                write_overlays(folder, val_split, probs, spec, config.threshold)
            if stop.requested:
                raise _stopped(stop.signum, ckpts, f"after epoch {epoch}")


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
    return f"decoder {config.decoder!r}, {spec.num_classes} classes, VGG {config.vgg_dir}"


def _last_good(ckpts):
    if not ckpts.latest:
        return "no checkpoint was saved before it"
    return f"the last good checkpoint {os.path.join(ckpts.run_dir, ckpts.latest)} is kept"


def _stopped(signum, ckpts, where):
    name = signal.Signals(signum).name
    return checkpoint.Interrupted(
        f"stopped by {name} {where}; saved {os.path.join(ckpts.run_dir, ckpts.latest)}; "
        f"{checkpoint.resume_hint(ckpts.run_dir)}",
        signum,
    )


def _format_record(r):
    parts = [f"epoch {r['epoch']:3d}", f"loss {r['train_loss']:.4f}"]
    for key, label in (
        ("val_loss", "val loss"),
        ("val_iou", "road IoU"),
        ("val_precision", "precision"),
        ("val_recall", "recall"),
    ):
        if key in r:
            parts.append(f"{label} {r[key]:.4f}")
    parts.append(f"{r['seconds']:.0f}s")
    return " | ".join(parts)
