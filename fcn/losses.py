"""Losses and the optimizer op. Labels are one-hot (N, H, W, C); void pixels are all-zero rows."""

import tensorflow.compat.v1 as tf

from fcn.decoders import L2_COLLECTION


def masked_cross_entropy(logits_flat, labels_flat):
    """Mean softmax cross-entropy over valid pixels only: (P, C), (P, C) -> scalar.

    A void pixel (KITTI black) has an all-zero label row: it adds nothing to the sum and is not
    counted in the mean. An all-void batch gives 0, not NaN.
    """
    labels_flat = tf.cast(labels_flat, logits_flat.dtype)
    per_pixel = tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=tf.stop_gradient(labels_flat), logits=logits_flat
    )  # (P,)
    valid = tf.cast(tf.reduce_sum(labels_flat, axis=-1) > 0, per_pixel.dtype)  # (P,)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def l2_penalty(scale):
    """scale * sum of squared decoder kernels / 2 (tf.nn.l2_loss), or 0 if scale is 0."""
    kernels = tf.get_collection(L2_COLLECTION)
    if not scale or not kernels:
        return tf.constant(0.0)
    return scale * tf.add_n([tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels])


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

    The returned loss is the data term (what users compare between runs); the train op minimises
    it plus the explicit L2 penalty. loss_scale: 'dynamic' wraps Adam for float16 training.
    var_list: the variables to train (default: all trainable ones).
    """
    logits = tf.reshape(nn_last_layer, (-1, num_classes), name="logits_flat")
    labels = tf.reshape(correct_label, (-1, num_classes))
    cross_entropy_loss = tf.identity(
        masked_cross_entropy(tf.cast(logits, tf.float32), labels), name="cross_entropy_loss"
    )
    total = cross_entropy_loss + l2_penalty(l2_scale)
    optimizer = tf.train.AdamOptimizer(learning_rate)
    if loss_scale:
        optimizer = tf.train.experimental.MixedPrecisionLossScaleOptimizer(optimizer, loss_scale)
    global_step = tf.train.get_or_create_global_step()
    train_op = optimizer.minimize(
        total, global_step=global_step, var_list=var_list, name="train_op"
    )
    return logits, train_op, cross_entropy_loss
