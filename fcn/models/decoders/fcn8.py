"""FCN-8 heads (Long et al.) on strides 8, 16 and 32 of any encoder.

`reference` is the head of the reference (Udacity) system: a wide 1x1 convolution, then
transposed convolutions with damped skip connections. `fcn8s` is the classic one: class scores
on each level, pool3/pool4 scaled first. The skip scales damp a pretrained VGG's activations
(which run to the hundreds); `config.skip_gain` multiplies them for encoders whose maps are near
unit scale. Kernels use the reference's truncated normal (`config.init_stddev`) and are L2
penalised (`config.l2_scale`).
"""

import tensorflow.compat.v1 as tf

from fcn.models import layers


def reference(features, num_classes, output_hw, config, is_training=None):
    """Widths follow the skip connections (512 and 256 on VGG16), so any encoder works."""
    l3, l4, l7 = features[8], features[16], features[32]
    gain, init = config.skip_gain, _init(config.init_stddev)
    c4, c3 = int(l4.shape[-1]), int(l3.shape[-1])
    x = layers.conv2d(l7, c4, 1, "conv7_1x1", init=init, l2=True)  # (N, H/32, W/32, C4)
    x = _up(x, layers.hw(l4), c4, 4, 2, "up4", init) + (0.01 * gain) * l4  # (N, H/16, W/16, C4)
    x = _up(x, layers.hw(l3), c3, 8, 2, "up3", init) + (0.001 * gain) * l3  # (N, H/8, W/8, C3)
    return _up(x, output_hw, num_classes, 16, 8, "up_out", init)  # (N, H, W, classes)


def fcn8s(features, num_classes, output_hw, config, is_training=None):
    """Class scores at strides 32, 16 and 8, summed while upsampling."""
    l3, l4, l7 = features[8], features[16], features[32]
    gain, init = config.skip_gain, _init(config.init_stddev)
    score7 = layers.conv2d(l7, num_classes, 1, "score7", init=init, l2=True)  # (N, H/32, W/32, C)
    score4 = layers.conv2d((0.01 * gain) * l4, num_classes, 1, "score4", init=init, l2=True)
    score3 = layers.conv2d((0.0001 * gain) * l3, num_classes, 1, "score3", init=init, l2=True)
    x = _up(score7, layers.hw(score4), num_classes, 4, 2, "up4", init) + score4  # H/16
    x = _up(x, layers.hw(score3), num_classes, 4, 2, "up3", init) + score3  # H/8
    return _up(x, output_hw, num_classes, 16, 8, "up_out", init)


def _init(stddev):
    return tf.truncated_normal_initializer(stddev=stddev)


def _up(x, target_hw, filters, kernel_size, stride, name, init):
    """Transposed conv to stride x the size of x, fitted to target_hw."""
    y = layers.conv2d_transpose(x, filters, kernel_size, stride, name, init=init, l2=True)
    return layers.fit(y, target_hw)
