"""The U-Net expanding path (Ronneberger et al.) on the stride-2..32 maps of any encoder.

From stride 32 down to 2, each stage doubles the resolution with a 2x2 stride-2 transposed
convolution, fits it to its skip (odd sizes), concatenates the skip and applies (3x3 conv + batch
norm + ReLU) x 2. Every stage's width is its skip's channel count, as in the U-Net paper (where
the up-convolution halves the channels to match the skip); on the unet encoder that is 8F, 4F,
2F, F (F = config.unet_filters). The last x2 step, to the input size, is such a stage too when
the encoder gives a full-resolution map (features[1]: the unet encoder's first stage before its
pool, as in the paper): its skip is what puts the boundaries on the right pixel. Encoders without
one (VGG16, MobileNetV2) get a transposed conv + batch norm + ReLU there, as wide as the stride-2
skip, with no skip; the batch norm keeps it and the 1x1 convolution after it from collapsing into
one linear map. A 1x1 convolution gives the class logits.

2x2 transposed convolutions at stride 2 do not overlap, so they leave no checkerboard pattern.
Kernels are He-initialised and L2 penalised (`config.l2_scale`); batch norm uses
config.bn_momentum. With config.decoder_dropout > 0 each stage's output is dropped out while
training only.

Variables (under the decoder scope): up{s}/transpose/kernel|bias, up{s}/conv{i}/kernel,
up{s}/bn{i}/... for s = 16, 8, 4, 2 (and 1 with a full-resolution skip) and i = 1, 2;
without one, up1/transpose/kernel|bias, up1/bn/...; logits/kernel|bias.
"""

import tensorflow.compat.v1 as tf

from fcn.models import layers

# The skip strides, from the deepest: each stage upsamples to one of them.
SKIP_STRIDES = (16, 8, 4, 2)
UP_KERNEL = 2


def build(features, num_classes, output_hw, config, is_training):
    """features {(1,) 2..32: maps} -> logits (N, H, W, num_classes) at output_hw."""
    x = features[32]  # (N, H/32, W/32, C32)
    for s in SKIP_STRIDES + ((1,) if 1 in features else ()):
        x = _stage(x, features[s], f"up{s}", config, is_training)  # (N, H/s, W/s, Cs)
    if 1 not in features:
        filters = int(features[2].shape[-1])
        with tf.variable_scope("up1"):
            x = layers.conv2d_transpose(x, filters, UP_KERNEL, 2, "transpose", l2=True)
            x = _bn_relu(layers.fit(x, output_hw), is_training, "bn", config)  # (N, H, W, C2)
    x = layers.fit(x, output_hw)  # a no-op unless the full-resolution skip is another size
    return layers.conv2d(x, num_classes, 1, "logits", l2=True)  # (N, H, W, num_classes)


def _stage(x, skip, name, config, is_training):
    """Up x2, fit to the skip (N, h, w, Cs), concatenate it, (3x3 conv + BN + ReLU) x 2."""
    filters = int(skip.shape[-1])
    with tf.variable_scope(name):
        x = layers.conv2d_transpose(x, filters, UP_KERNEL, 2, "transpose", l2=True)
        x = tf.concat([layers.fit(x, layers.hw(skip)), skip], axis=-1)  # (N, h, w, 2Cs)
        for i in (1, 2):
            x = layers.conv2d(x, filters, 3, f"conv{i}", use_bias=False, l2=True)
            x = _bn_relu(x, is_training, f"bn{i}", config)
        return layers.training_dropout(x, config.decoder_dropout, is_training)  # (N, h, w, Cs)


def _bn_relu(x, is_training, name, config):
    return tf.nn.relu(layers.batch_norm(x, is_training, name, momentum=config.bn_momentum))
