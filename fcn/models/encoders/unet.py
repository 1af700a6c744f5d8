"""The small from-scratch U-Net encoder of the Dice-loss U-Net lab, on the encoder contract.

Four stages of (3x3 conv + batch norm + ReLU) x 2, each followed by a 2x2 max pool, with F, 2F,
4F, 8F filters (F = config.unet_filters); then a fifth pool and a bridge (the U-Net bottleneck,
the same two conv + BN + ReLU, 16F filters). Input is scaled x/255 in the graph.

The contract wants maps at strides 2..32, so the pooled output of stage k is the stride-2^k map;
the first stage's output before its pool is the optional full-resolution map, the skip that
lets the U-Net decoder place boundaries on the right pixel. For an H x W input:
    1: stage1         (N, H, W, F)
    2: stage1 pooled (N, ceil(H/2),  ceil(W/2),  F)
    4: stage2 pooled (N, ceil(H/4),  ceil(W/4),  2F)
    8: stage3 pooled (N, ceil(H/8),  ceil(W/8),  4F)
   16: stage4 pooled (N, ceil(H/16), ceil(W/16), 8F)
   32: bridge        (N, ceil(H/32), ceil(W/32), 16F), after a fifth pool of the stride-16 map

Variables (relative to the enclosing scope): stage{k}/conv{i}/kernel and stage{k}/bn{i}/gamma,
beta, moving_mean, moving_variance for k = 1..4, i = 1, 2; bridge/conv{i}, bridge/bn{i}. The
convolutions have no bias: the batch norm after each one has its own offset (beta).
"""

import tensorflow.compat.v1 as tf

from fcn.errors import UserError
from fcn.models import layers

# Nothing published to load: the lab trains this network from scratch.
WEIGHT_FORMATS = ()
# Filters of stages 1..4 and the bridge, in multiples of config.unet_filters.
STAGE_MULTIPLIERS = (1, 2, 4, 8)
BRIDGE_MULTIPLIER = 16


def build(images, config, is_training, keep_prob):
    """The encoder contract (fcn.models.encoders): He-initialised, batch norm with
    config.bn_momentum. keep_prob is not used: the lab's U-Net has no dropout."""
    del keep_prob
    x = images / 255.0  # (N, H, W, 3) in 0..1
    features = {}
    for k, multiplier in enumerate(STAGE_MULTIPLIERS, start=1):
        x = _double_conv(x, config.unet_filters * multiplier, f"stage{k}", config, is_training)
        if k == 1:
            features[1] = x  # (N, H, W, F): the full-resolution skip
        x = layers.max_pool(x, f"pool{k}")
        features[2**k] = x  # (N, H/2^k, W/2^k, F * multiplier)
    x = layers.max_pool(x, "pool5")  # (N, H/32, W/32, 8F)
    features[32] = _double_conv(
        x, config.unet_filters * BRIDGE_MULTIPLIER, "bridge", config, is_training
    )  # (N, H/32, W/32, 16F)
    return features


def _double_conv(x, filters, name, config, is_training):
    """(3x3 conv, no bias + batch norm + ReLU) x 2 under scope `name`: conv1, bn1, conv2, bn2."""
    with tf.variable_scope(name):
        for i in (1, 2):
            x = layers.conv2d(x, filters, 3, f"conv{i}", use_bias=False)
            x = layers.batch_norm(x, is_training, f"bn{i}", momentum=config.bn_momentum)
            x = tf.nn.relu(x)
    return x


def read_weights(path):
    """There are no published weights for this encoder: it trains from scratch."""
    raise UserError(
        f"the unet encoder has no pretrained weights and trains from scratch, so {path} cannot "
        "be loaded into it; use --weights random"
    )
