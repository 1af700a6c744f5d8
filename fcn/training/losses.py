"""Losses and the optimizer op. Labels are uint8 class ids (N, H, W) with IGNORE_LABEL (255) for
unlabelled pixels; one-hot labels appear only in `optimize`, the Udacity contract.

`segmentation_loss` picks a training loss by name (config.loss): ce, weighted_ce, dice, focal,
dice_focal. Ignore pixels never count in any of them (sums, denominators, Dice's intersections and
cardinalities), and an all-ignored batch gives 0 with finite (zero) gradients. Class weights
come from fcn.training.class_weights.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from fcn import names
from fcn.errors import UserError
from fcn.models.layers import L2_COLLECTION
from fcn.training import class_weights as _class_weights

IGNORE_LABEL = 255
# Same order as fcn.config.LOSSES, which repeats them so that --help needs no TensorFlow.
LOSSES = ("ce", "weighted_ce", "dice", "focal", "dice_focal")
CLASS_WEIGHTS = _class_weights.CHOICES
# Dice's smoothing term, added to numerator and denominator (segmentation_models' smooth = 1).
# Over a batch the sums are pixel counts (thousands), so 1 hardly moves a present class's score,
# while a class absent from both labels and prediction scores (0 + 1) / (0 + 1) = 1 instead of
# 0/0, and one predicted but absent scores 1 / (sum p + 1), which the gradient pushes towards 1.
DICE_SMOOTH = 1.0
# Floor of focal loss's (1 - p_t): d/dx x^gamma is infinite at x = 0 for gamma < 1, and a
# confident correct pixel has p_t == 1.0 exactly in float32; at the floor the term is ~0.
_FOCAL_FLOOR = 1e-30


def masked_cross_entropy(logits_flat, labels_flat):
    """Mean softmax cross-entropy over valid pixels only: (P, C), (P, C) one-hot -> scalar.

    A void pixel (KITTI black) has an all-zero label row: it adds nothing to the sum and is not
    counted in the mean. An all-void batch gives 0, not NaN.
    """
    labels_flat = tf.cast(labels_flat, logits_flat.dtype)
    per_pixel = tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=tf.stop_gradient(labels_flat), logits=logits_flat
    )  # (P,)
    valid = tf.cast(tf.reduce_sum(labels_flat, axis=-1) > 0, per_pixel.dtype)  # (P,)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def sparse_cross_entropy(logits, labels):
    """Mean softmax cross-entropy over labelled pixels: logits (N, H, W, C), labels (N, H, W)
    class ids with IGNORE_LABEL left out of sum and count. An all-ignored batch gives 0."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, IGNORE_LABEL)  # (N, H, W)
    safe = tf.where_v2(valid, labels, 0)  # any class id: its term is masked out below
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    valid = tf.cast(valid, tf.float32)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def segmentation_loss(name, logits, labels, num_classes, class_weights=None, gamma=2.0, alpha=0.25):
    """The training loss `name` (one of LOSSES) as a float32 scalar.

    logits (N, H, W, C) of any float dtype (computed in float32); labels (N, H, W) uint8 class
    ids with IGNORE_LABEL; class_weights a NumPy (C,) array or None (needed by weighted_ce,
    optional for dice, focal and dice_focal, refused by ce). gamma, alpha: focal loss's.
    """
    if name not in LOSSES:
        raise UserError(f"--loss {name!r} is not one of {list(LOSSES)}")
    if name == "ce":
        if class_weights is not None:
            raise UserError("--loss ce takes no class weights; use --loss weighted_ce")
        return sparse_cross_entropy(logits, labels)
    if name == "weighted_ce" and class_weights is None:
        raise UserError("--loss weighted_ce needs --class-weights inverse, median or enet")
    weights = _weights_tensor(class_weights, num_classes)
    if name == "weighted_ce":
        return weighted_cross_entropy(logits, labels, weights)
    if name == "dice":
        return dice_loss(logits, labels, num_classes, weights)
    if name == "focal":
        return focal_loss(logits, labels, num_classes, weights, gamma, alpha)
    return dice_loss(logits, labels, num_classes, weights) + focal_loss(
        logits, labels, num_classes, weights, gamma, alpha
    )


def weighted_cross_entropy(logits, labels, class_weights):
    """sum_i w[y_i] * ce_i / sum_i w[y_i] over labelled pixels (PyTorch's weighted mean, so the
    loss does not change when all weights are scaled): logits (N, H, W, C), labels (N, H, W),
    class_weights (C,) float32 tensor. 0 when no labelled pixel has a nonzero weight."""
    logits, safe, valid = _prepare(logits, labels)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    return _weighted_mean(per_pixel, valid * tf.gather(class_weights, safe))


def dice_loss(logits, labels, num_classes, class_weights=None):
    """Soft Dice over the whole batch: 1 - mean_c D_c, D_c = (2 sum p_c g_c + s) / (sum p_c +
    sum g_c + s) with softmax p, one-hot g and s = DICE_SMOOTH, sums over labelled pixels.
    With class_weights (C,) the mean is sum_c w_c D_c / sum_c w_c, written as
    sum_c w_c (1 - D_c) / sum_c w_c so that all-zero weights give 0."""
    logits, safe, valid = _prepare(logits, labels)
    mask = valid[..., None]  # (N, H, W, 1)
    probs = tf.nn.softmax(logits) * mask  # (N, H, W, C), ignore pixels zeroed
    truth = tf.one_hot(safe, num_classes, dtype=tf.float32) * mask  # (N, H, W, C)
    axes = [0, 1, 2]
    intersection = tf.reduce_sum(probs * truth, axis=axes)  # (C,)
    cardinality = tf.reduce_sum(probs, axis=axes) + tf.reduce_sum(truth, axis=axes)  # (C,)
    dice = (2.0 * intersection + DICE_SMOOTH) / (cardinality + DICE_SMOOTH)  # (C,)
    if class_weights is None:
        return 1.0 - tf.reduce_mean(dice)
    return tf.math.divide_no_nan(
        tf.reduce_sum(class_weights * (1.0 - dice)), tf.reduce_sum(class_weights)
    )


def focal_loss(logits, labels, num_classes, class_weights=None, gamma=2.0, alpha=0.25):
    """Softmax focal loss (Lin et al. 2017, the multi-class form of segmentation_models'
    CategoricalFocalLoss): per pixel -alpha (1 - p_t)^gamma ln p_t, p_t the true class's
    probability; the mean over labelled pixels, or with class_weights (C,) the weighted mean
    sum_i w[y_i] f_i / sum_i w[y_i] as in weighted_cross_entropy. Unlike segmentation_models,
    the mean is per pixel, not also over the C channels. gamma = 0, alpha = 1 is ce."""
    logits, safe, valid = _prepare(logits, labels)
    truth = tf.one_hot(safe, num_classes, dtype=tf.float32)  # (N, H, W, C)
    # ln p_t from log_softmax: finite however wrong the pixel (ln p_t = -200, not ln 0 = -inf).
    log_pt = tf.reduce_sum(tf.nn.log_softmax(logits) * truth, axis=-1)  # (N, H, W)
    # 1 - p_t = -expm1(ln p_t): exact near p_t = 1, where 1 - exp() loses all digits.
    modulator = tf.pow(tf.maximum(-tf.math.expm1(log_pt), _FOCAL_FLOOR), gamma)
    per_pixel = -alpha * modulator * log_pt  # (N, H, W)
    pixel_weights = valid
    if class_weights is not None:
        pixel_weights = valid * tf.gather(class_weights, safe)
    return _weighted_mean(per_pixel, pixel_weights)


def _prepare(logits, labels):
    """float32 logits (N, H, W, C); labels as int32 (N, H, W) with ignore pixels set to class 0
    (their terms are masked out); the labelled-pixel mask float32 (N, H, W)."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.cast(labels, tf.int32)
    valid = tf.not_equal(labels, IGNORE_LABEL)
    safe = tf.where_v2(valid, labels, 0)
    return logits, safe, tf.cast(valid, tf.float32)


def _weighted_mean(per_pixel, pixel_weights):
    """sum(w * x) / sum(w), 0 (with zero gradients) when sum(w) is 0: an all-ignored batch.
    Ignore pixels have w = 0; tf.where, not a product, so that a non-finite term there (never
    expected) cannot leak into the sum as 0 * inf = NaN."""
    terms = tf.where_v2(pixel_weights > 0, pixel_weights * per_pixel, 0.0)
    return tf.math.divide_no_nan(tf.reduce_sum(terms), tf.reduce_sum(pixel_weights))


def _weights_tensor(class_weights, num_classes):
    """A NumPy (C,) array -> float32 constant (C,); None stays None."""
    if class_weights is None:
        return None
    array = np.asarray(class_weights, np.float32)
    if array.shape != (num_classes,):
        raise ValueError(f"class_weights has shape {array.shape}, expected ({num_classes},)")
    return tf.constant(array, name="class_weights")


def l2_penalty(scale):
    """scale * sum of squared decoder kernels / 2 (tf.nn.l2_loss), or 0 if scale is 0."""
    kernels = tf.get_collection(L2_COLLECTION)
    if not scale or not kernels:
        return tf.constant(0.0)
    return scale * tf.add_n([tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels])


def minimize(loss, learning_rate, l2_scale=0.0, loss_scale=None, var_list=None):
    """Adam on loss + the explicit L2 penalty; batch-norm statistics update with every step.

    loss_scale: 'dynamic' wraps Adam for float16 training. var_list: the variables to train
    (default: all trainable ones).
    """
    total = loss + l2_penalty(l2_scale)
    optimizer = tf.train.AdamOptimizer(learning_rate)
    if loss_scale:
        optimizer = tf.train.experimental.MixedPrecisionLossScaleOptimizer(optimizer, loss_scale)
    global_step = tf.train.get_or_create_global_step()
    with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
        return optimizer.minimize(
            total, global_step=global_step, var_list=var_list, name=names.TRAIN_OP
        )


def optimize(
    nn_last_layer,
    correct_label,
    learning_rate,
    num_classes,
    l2_scale=0.0,
    loss_scale=None,
    var_list=None,
):
    """(logits (P, C), train_op, cross-entropy loss) with Adam; the Udacity contract.

    correct_label is one-hot (N, H, W, C), all-zero rows for void pixels. The returned loss is
    the data term (what users compare between runs); the train op minimises it plus the
    explicit L2 penalty.
    """
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name="logits_flat")
    labels = tf.reshape(correct_label, (-1, num_classes))
    cross_entropy_loss = tf.identity(
        masked_cross_entropy(tf.cast(logits, tf.float32), labels), name=names.LOSS
    )
    train_op = minimize(cross_entropy_loss, learning_rate, l2_scale, loss_scale, var_list)
    return logits, train_op, cross_entropy_loss
