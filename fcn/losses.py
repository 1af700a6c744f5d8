"""Losses and the optimizer op. Labels are uint8 class ids (N, H, W) with IGNORE_LABEL (255) for
unlabelled pixels; one-hot labels appear only in `optimize`, the Udacity contract."""

import tensorflow.compat.v1 as tf

from fcn import names
from fcn.models.layers import L2_COLLECTION

IGNORE_LABEL = 255


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
