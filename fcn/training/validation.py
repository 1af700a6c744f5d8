"""What training predicts: validation scores each epoch, and overlays of validation and test images
at their original size, all through the training session's Predictor."""

import os

import numpy as np
from tqdm import tqdm

from fcn import data, precision, runs
from fcn.data import task
from fcn.evaluation import metrics
from fcn.inference import overlays
from fcn.inference.predictor import SessionPredictor


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
