"""The decoder of the TensorFlow image segmentation tutorial (pix2pix.upsample blocks), and a
variant without transposed convolutions.

`pix2pix`: from stride 32 down to 2, an upsample block of 512, 256, 128, 64 filters (times
config.decoder_width) (3x3 transposed conv at stride 2 without bias, batch norm, dropout, ReLU),
fitted to its skip and
concatenated with it; then the tutorial's `last` layer, a 3x3 stride-2 transposed conv (with
bias) straight to the class logits, fitted to the input size.

`upsample_conv`: the same blocks with every transposed conv replaced by a bilinear resize to the
target's exact size (the skip's, then the input's) and a 3x3 convolution. Resizing first avoids
the checkerboard pattern that overlapping 3x3 stride-2 transposed convolutions can leave.

For an input (N, H, W, 3), after the block to stride s the map is (N, H/s, W/s, filters + C_s),
C_s the skip's channels; the logits are (N, H, W, num_classes). Kernels use the tutorial's
normal(0, 0.02) init and are L2 penalised (`config.l2_scale`); batch norm uses
config.bn_momentum. config.decoder_dropout is the blocks' dropout rate (the tutorial's blocks
have it off), applied only while training.

Variables (under the decoder scope): up{s}/transpose/kernel (pix2pix) or up{s}/conv/kernel
(upsample_conv), up{s}/bn/... for s = 16, 8, 4, 2; last/kernel|bias.
"""

import tensorflow.compat.v1 as tf

from fcn.models import layers

# (stride the block upsamples to, its filters): the tutorial's up_stack.
UP_STACK = ((16, 512), (8, 256), (4, 128), (2, 64))
KERNEL_SIZE = 3
# The tutorial's kernel initializer: tf.random_normal_initializer(0., 0.02).
INIT_STDDEV = 0.02


def pix2pix(features, num_classes, output_hw, config, is_training):
    """Transposed-convolution blocks, as in the tutorial."""
    return _decode(
        features, num_classes, output_hw, config, is_training, _transpose_up, "transpose"
    )


def upsample_conv(features, num_classes, output_hw, config, is_training):
    """Bilinear resize + 3x3 convolution in place of every transposed convolution."""
    return _decode(features, num_classes, output_hw, config, is_training, _resize_conv_up, "conv")


def _decode(features, num_classes, output_hw, config, is_training, up, up_name):
    """up(x, target_hw, filters, name, use_bias) -> (N, target H, target W, filters), its
    variables under `name`: up_name in the blocks, "last" for the logits."""
    x = features[32]  # (N, H/32, W/32, C32)
    for s, filters in UP_STACK:
        filters = max(1, round(filters * config.decoder_width))  # --decoder-width
        skip = features[s]  # (N, H/s, W/s, Cs)
        with tf.variable_scope(f"up{s}"):
            x = up(x, layers.hw(skip), filters, up_name, use_bias=False)
            x = layers.batch_norm(x, is_training, "bn", momentum=config.bn_momentum)
            x = tf.nn.relu(layers.training_dropout(x, config.decoder_dropout, is_training))
        x = tf.concat([x, skip], axis=-1)  # (N, H/s, W/s, filters + Cs)
    return up(x, output_hw, num_classes, "last", use_bias=True)  # (N, H, W, num_classes)


def _transpose_up(x, target_hw, filters, name, use_bias):
    """3x3 transposed conv at stride 2, fitted to target_hw; variables `name`/kernel|bias."""
    y = layers.conv2d_transpose(
        x, filters, KERNEL_SIZE, 2, name, init=_init(), use_bias=use_bias, l2=True
    )
    return layers.fit(y, target_hw)


def _resize_conv_up(x, target_hw, filters, name, use_bias):
    """Bilinear resize to target_hw (about x2), then a 3x3 conv; variables `name`/kernel|bias."""
    y = layers.resize_bilinear(x, target_hw)
    return layers.conv2d(y, filters, KERNEL_SIZE, name, use_bias=use_bias, init=_init(), l2=True)


def _init():
    return tf.random_normal_initializer(0.0, INIT_STDDEV)
