"""The U-Net expanding path (Ronneberger et al.) on the stride-2..32 maps of any encoder.

From stride 32 down to 2, each stage doubles the resolution with a 2x2 stride-2 transposed
convolution, fits it to its skip (odd sizes), concatenates the skip and applies (3x3 conv + batch
norm + ReLU) x 2. Every stage's width is its skip's channel count, as in the U-Net paper (where
the up-convolution halves the channels to match the skip); on the unet encoder that is 8F, 4F,
2F, F (F = config.unet_filters). The encoder's stride-1 map does not exist in the contract, so
the last x2 step (a transposed conv + batch norm + ReLU, still F wide, fitted to the input size)
has no skip; a 1x1 convolution then gives the class logits. The batch norm there keeps the
transposed conv and the 1x1 conv from collapsing into one linear map.

2x2 transposed convolutions at stride 2 do not overlap, so they leave no checkerboard pattern.
Kernels are He-initialised and L2 penalised (`config.l2_scale`); batch norm uses
config.bn_momentum. With config.decoder_dropout > 0 each stage's output is dropped out while
training only.

Variables (under the decoder scope): up{s}/transpose/kernel|bias, up{s}/conv{i}/kernel,
up{s}/bn{i}/... for s = 16, 8, 4, 2 and i = 1, 2; up1/transpose/kernel|bias, up1/bn/...;
logits/kernel|bias.
"""

import tensorflow.compat.v1 as tf

from fcn.models import layers

# The skip strides, from the deepest: each stage upsamples to one of them.
SKIP_STRIDES = (16, 8, 4, 2)
UP_KERNEL = 2


def build(features, num_classes, output_hw, config, is_training):
    """features {2..32: maps} -> logits (N, H, W, num_classes) at output_hw."""
    x = features[32]  # (N, H/32, W/32, C32)
    for s in SKIP_STRIDES:
        skip = features[s]  # (N, H/s, W/s, Cs)
        filters = int(skip.shape[-1])
        with tf.variable_scope(f"up{s}"):
            x = layers.conv2d_transpose(x, filters, UP_KERNEL, 2, "transpose", l2=True)
            x = tf.concat([layers.fit(x, layers.hw(skip)), skip], axis=-1)  # (N, H/s, W/s, 2Cs)
            for i in (1, 2):
                x = layers.conv2d(x, filters, 3, f"conv{i}", use_bias=False, l2=True)
                x = _bn_relu(x, is_training, f"bn{i}", config)
            x = layers.training_dropout(x, config.decoder_dropout, is_training)  # (N, H/s, W/s, Cs)
    filters = int(features[2].shape[-1])
    with tf.variable_scope("up1"):
        x = layers.conv2d_transpose(x, filters, UP_KERNEL, 2, "transpose", l2=True)
        x = _bn_relu(layers.fit(x, output_hw), is_training, "bn", config)  # (N, H, W, C2)
    return layers.conv2d(x, num_classes, 1, "logits", l2=True)  # (N, H, W, num_classes)


def _bn_relu(x, is_training, name, config):
    return tf.nn.relu(layers.batch_norm(x, is_training, name, momentum=config.bn_momentum))
