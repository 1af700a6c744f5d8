"""Layer primitives shared by every encoder and decoder: tf.nn ops on tf.compat.v1 variables.

No builder opens a session or reads a file. Variables are created with `tf.get_variable`, so the
enclosing `tf.variable_scope` names them (and `reuse` shares them). Shapes are NHWC.
"""

import tensorflow.compat.v1 as tf

from fcn import names

# Decoder kernels go here; `fcn.training.losses.l2_penalty` adds them to the loss explicitly.
L2_COLLECTION = "decoder_l2_kernels"
# Keras's batch-norm defaults (its pretrained MobileNetV2 was trained with them).
BN_MOMENTUM = 0.999
BN_EPSILON = 1e-3


def he_init(seed=None, scale=1.0):
    """He (variance scaling 2.0, fan_in): keeps activation variance through ReLU layers."""
    return tf.variance_scaling_initializer(2.0 * scale**2, "fan_in", "truncated_normal", seed=seed)


def conv2d(x, filters, kernel_size, name, stride=1, use_bias=True, init=None, l2=False, dilation=1):
    """SAME convolution; kernel (k, k, C_in, filters) under scope `name`/kernel, bias /bias."""
    with tf.variable_scope(name):
        cin = int(x.shape[-1])
        kernel = tf.get_variable(
            "kernel", [kernel_size, kernel_size, cin, filters], initializer=init or he_init()
        )
        if l2:
            tf.add_to_collection(L2_COLLECTION, kernel)
        y = tf.nn.conv2d(x, kernel, stride, "SAME", dilations=dilation)
        if use_bias:
            bias = tf.get_variable("bias", [filters], initializer=tf.zeros_initializer())
            y = tf.nn.bias_add(y, bias)
    return y


def depthwise_conv2d(x, kernel_size, name, stride=1, init=None):
    """SAME depthwise convolution, kernel (k, k, C, 1) under `name`/depthwise_kernel, no bias."""
    with tf.variable_scope(name):
        cin = int(x.shape[-1])
        kernel = tf.get_variable(
            "depthwise_kernel", [kernel_size, kernel_size, cin, 1], initializer=init or he_init()
        )
    return tf.nn.depthwise_conv2d(x, kernel, [1, stride, stride, 1], "SAME")


def conv2d_transpose(x, filters, kernel_size, stride, name, init=None, use_bias=True, l2=False):
    """Transposed convolution to exactly stride x the input's size (N, h*s, w*s, filters).

    The kernel is (k, k, filters, C_in), as tf.nn.conv2d_transpose wants it.
    """
    with tf.variable_scope(name):
        cin = int(x.shape[-1])
        kernel = tf.get_variable(
            "kernel", [kernel_size, kernel_size, filters, cin], initializer=init or he_init()
        )
        if l2:
            tf.add_to_collection(L2_COLLECTION, kernel)
        shape = tf.shape(x)
        out_shape = tf.stack([shape[0], shape[1] * stride, shape[2] * stride, filters])
        y = tf.nn.conv2d_transpose(x, kernel, out_shape, stride, "SAME")
        y.set_shape([None, None, None, filters])
        if use_bias:
            bias = tf.get_variable("bias", [filters], initializer=tf.zeros_initializer())
            y = tf.nn.bias_add(y, bias)
    return y


def batch_norm(x, is_training, name, momentum=BN_MOMENTUM, epsilon=BN_EPSILON):
    """Batch norm: batch statistics while `is_training` (a bool tensor, or a Python bool for a
    graph of one mode), moving ones otherwise.

    Variables gamma, beta, moving_mean, moving_variance (Keras's names, so its weights load by
    name); the moving statistics are not trainable but are global variables, so checkpoints and
    exports carry them. Their update ops go to tf.GraphKeys.UPDATE_OPS;
    `fcn.training.losses.optimize`
    runs them with every training step (at prediction nothing runs them).
    """
    with tf.variable_scope(name):
        c = int(x.shape[-1])
        gamma = tf.get_variable("gamma", [c], initializer=tf.ones_initializer())
        beta = tf.get_variable("beta", [c], initializer=tf.zeros_initializer())
        # Mirrored on every replica under tf.distribute (fcn.training.distribute), updated with the
        # mean
        # of the replicas' updates (aggregation MEAN; an assign in replica context needs one);
        # on one device the aggregation changes nothing.
        moving_mean = tf.get_variable(
            "moving_mean",
            [c],
            initializer=tf.zeros_initializer(),
            trainable=False,
            aggregation=tf.VariableAggregation.MEAN,
        )
        moving_variance = tf.get_variable(
            "moving_variance",
            [c],
            initializer=tf.ones_initializer(),
            trainable=False,
            aggregation=tf.VariableAggregation.MEAN,
        )

        # Fused kernels (one op forward, one backward, where tf.nn.moments +
        # batch_normalization is ~15 element-wise ops and their gradients: MobileNetV2's 52
        # batch norms cost about half the op time in that form), with the batch's moments while
        # training and the moving ones otherwise. A tf.cond, so a step computes only its branch:
        # computing both and selecting cost a second normalisation and a copy of every map,
        # 6-11% of a MobileNetV2 step (docs/performance.md). The export
        # (fcn.inference.serving_graph) keeps only the moving-statistics branch. The batch
        # branch's variance is the unbiased estimate, as Keras updates the moving variance; the
        # moving branch hands the moving statistics on, so its updates would change nothing.
        def batch_branch():
            return tf.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon, is_training=True)

        def moving_branch():
            y, _, _ = tf.nn.fused_batch_norm(
                x, gamma, beta, moving_mean, moving_variance, epsilon=epsilon, is_training=False
            )
            return y, tf.identity(moving_mean), tf.identity(moving_variance)

        if isinstance(is_training, bool):  # a graph built for one mode only
            y, mean, variance = (batch_branch if is_training else moving_branch)()
        else:
            y, mean, variance = tf.cond(
                is_training, batch_branch, moving_branch, name=names.BATCH_OR_MOVING
            )
        decay = 1.0 - momentum
        for moving, value in ((moving_mean, mean), (moving_variance, variance)):
            update = tf.assign_sub(moving, decay * (moving - value))
            tf.add_to_collection(tf.GraphKeys.UPDATE_OPS, update)
    return y


def dropout(x, keep_prob):
    """Dropout with a keep-probability tensor (1.0 at prediction)."""
    return tf.nn.dropout(x, rate=1.0 - keep_prob)


def training_dropout(x, rate, is_training):
    """Dropout at `rate` while is_training (a bool tensor), the identity at prediction; no ops
    at all for rate 0."""
    if not rate:
        return x
    return dropout(x, tf.where(is_training, 1.0 - rate, 1.0))


def max_pool(x, name):
    """2x2 max pool, stride 2, SAME: (N, h, w, C) -> (N, ceil(h/2), ceil(w/2), C)."""
    return tf.nn.max_pool2d(x, 2, 2, "SAME", name=name)


def hw(x):
    """Spatial size of x as an int32 tensor (2,)."""
    return tf.shape(x)[1:3]


def fit(x, size):
    """Edge-pad (bottom/right, SYMMETRIC) or crop x to spatial `size`; top-left stays aligned.

    Every upsampling in a decoder is fitted to its skip connection (and the last to the input),
    which absorbs the floor/ceil rounding of odd sizes such as KITTI's 375 x 1242.
    """
    size = tf.convert_to_tensor(size, tf.int32)
    pad = tf.maximum(size - tf.shape(x)[1:3], 0)
    y = tf.pad(x, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]], mode="SYMMETRIC")
    y = y[:, : size[0], : size[1], :]
    y.set_shape([None, None, None, x.shape[-1]])
    return y


def resize_bilinear(x, size):
    """Bilinear resize with half-pixel centres (OpenCV INTER_LINEAR's geometry)."""
    return tf.image.resize_bilinear(x, size, half_pixel_centers=True)
