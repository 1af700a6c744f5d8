"""FCN-8 decoder heads on the VGG16 encoder contract (see fcn/vgg.py).

Both heads take (layer3 (N,H/8,W/8,256), layer4 (N,H/16,W/16,512), layer7 (N,H/32,W/32,4096))
and return logits (N, H, W, num_classes) at exactly the input size `output_hw`, for any H, W:
every transposed convolution upsamples to stride x its input, then is fitted (edge-padded or
cropped at the bottom/right) to the skip connection's size, which absorbs the floor/ceil
rounding of odd sizes such as KITTI's 375 x 1242.
"""

import tensorflow.compat.v1 as tf

from fcn.errors import UserError

# Kernels of the decoders go here; `fcn.losses.l2_penalty` adds them to the loss explicitly.
L2_COLLECTION = "decoder_l2_kernels"
SCOPE = "decoder"


def reference(layer3, layer4, layer7, num_classes, output_hw, init_stddev=0.01, skip_gain=1.0):
    """The reference system's head: wide 1x1, then upsampling with damped skip connections.

    Widths follow the skip connections (512 and 256 on VGG16), so narrow test encoders work.
    """
    c4, c3 = int(layer4.shape[-1]), int(layer3.shape[-1])
    x = _conv1x1(layer7, c4, "conv7_1x1", init_stddev)  # (N, H/32, W/32, 512)
    x = _upsample(x, _hw(layer4), c4, 4, 2, "up4", init_stddev)  # (N, H/16, W/16, 512)
    x = x + (0.01 * skip_gain) * layer4
    x = _upsample(x, _hw(layer3), c3, 8, 2, "up3", init_stddev)  # (N, H/8, W/8, 256)
    x = x + (0.001 * skip_gain) * layer3
    return _upsample(x, output_hw, num_classes, 16, 8, "up_out", init_stddev)  # (N, H, W, C)


def fcn8s(layer3, layer4, layer7, num_classes, output_hw, init_stddev=0.01, skip_gain=1.0):
    """Classic FCN-8s (Long et al.): class scores on each level; pool3/pool4 scaled first."""
    score7 = _conv1x1(layer7, num_classes, "score7", init_stddev)  # (N, H/32, W/32, C)
    score4 = _conv1x1(
        (0.01 * skip_gain) * layer4, num_classes, "score4", init_stddev
    )  # (N, H/16, W/16, C)
    score3 = _conv1x1(
        (0.0001 * skip_gain) * layer3, num_classes, "score3", init_stddev
    )  # (N, H/8, W/8, C)
    x = _upsample(score7, _hw(score4), num_classes, 4, 2, "up4", init_stddev) + score4
    x = _upsample(x, _hw(score3), num_classes, 4, 2, "up3", init_stddev) + score3
    return _upsample(x, output_hw, num_classes, 16, 8, "up_out", init_stddev)


DECODERS = {"reference": reference, "fcn8s": fcn8s}


def build_decoder(
    name, layer3, layer4, layer7, num_classes, output_hw, init_stddev=0.01, skip_gain=1.0
):
    """Logits (N, H, W, num_classes) from the named head, under the variable scope 'decoder'.

    skip_gain multiplies the heads' skip scales. Those damp pool3/pool4 for a pretrained VGG,
    whose activations run to the hundreds; a He-initialised encoder's are near unit scale, and
    at small inputs (layer 7 only 2x7 cells at 64x224) the damped skips leave the masks coarse.
    """
    if name not in DECODERS:
        raise UserError(f"unknown decoder {name!r}; choose one of {sorted(DECODERS)}")
    with tf.variable_scope(SCOPE):
        logits = DECODERS[name](
            layer3, layer4, layer7, num_classes, output_hw, init_stddev, skip_gain
        )
    return tf.identity(logits, name="logits")


def _hw(x):
    return tf.shape(x)[1:3]


def _init(stddev):
    return tf.truncated_normal_initializer(stddev=stddev)


def _conv1x1(x, filters, name, stddev):
    with tf.variable_scope(name):
        cin = x.shape[-1]
        kernel = tf.get_variable("kernel", [1, 1, cin, filters], initializer=_init(stddev))
        bias = tf.get_variable("bias", [filters], initializer=tf.zeros_initializer())
    tf.add_to_collection(L2_COLLECTION, kernel)
    return tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias)


def _upsample(x, target_hw, filters, kernel_size, stride, name, stddev):
    """Transposed conv to stride x the size of x, fitted to the spatial size target_hw."""
    with tf.variable_scope(name):
        cin = x.shape[-1]
        # conv2d_transpose kernels are (k, k, out_channels, in_channels).
        kernel = tf.get_variable(
            "kernel", [kernel_size, kernel_size, filters, cin], initializer=_init(stddev)
        )
        bias = tf.get_variable("bias", [filters], initializer=tf.zeros_initializer())
    tf.add_to_collection(L2_COLLECTION, kernel)
    shape = tf.shape(x)
    out_shape = tf.stack([shape[0], shape[1] * stride, shape[2] * stride, filters])
    y = tf.nn.conv2d_transpose(x, kernel, out_shape, stride, "SAME")
    y = tf.nn.bias_add(y, bias)
    return _fit(y, target_hw, filters)


def _fit(x, hw, channels):
    """Edge-pad (bottom/right) or crop x to spatial size hw; keeps the top-left aligned."""
    hw = tf.convert_to_tensor(hw, tf.int32)
    pad = tf.maximum(hw - tf.shape(x)[1:3], 0)
    x = tf.pad(x, [[0, 0], [0, pad[0]], [0, pad[1]], [0, 0]], mode="SYMMETRIC")
    x = x[:, : hw[0], : hw[1], :]
    static = [None, None, None, channels]
    x.set_shape(static)
    return x
