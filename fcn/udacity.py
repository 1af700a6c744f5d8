"""FCN-8 heads on the Udacity interface's three maps (main.layers): layer3, layer4, layer7.

A thin adapter over fcn.models.decoders.fcn8 (the one definition of the heads), for code that
holds VGG's three interface tensors rather than an encoder's features by stride.
"""

import tensorflow.compat.v1 as tf

from fcn.errors import UserError
from fcn.models import decoders as _decoders
from fcn.models import layers
from fcn.models.decoders import fcn8
from fcn.models.options import ModelOptions

L2_COLLECTION = layers.L2_COLLECTION
SCOPE = _decoders.SCOPE
# The heads that need only strides 8, 16 and 32.
DECODERS = {"reference": fcn8.reference, "fcn8s": fcn8.fcn8s}


def build_decoder(
    name, layer3, layer4, layer7, num_classes, output_hw, init_stddev=0.01, skip_gain=1.0
):
    """Logits (N, H, W, num_classes) from the named head, under the variable scope 'decoder'.

    skip_gain multiplies the heads' skip scales (see fcn.models.decoders.fcn8).
    """
    if name not in DECODERS:
        raise UserError(f"unknown decoder {name!r}; choose one of {sorted(DECODERS)}")
    options = ModelOptions(init_stddev=init_stddev, skip_gain=skip_gain)
    features = {8: layer3, 16: layer4, 32: layer7}
    with tf.variable_scope(SCOPE):
        logits = DECODERS[name](features, num_classes, output_hw, options)
    return tf.identity(logits, name="logits")


def _fit(x, hw, channels):
    """layers.fit, with the static channel count of the old signature."""
    y = layers.fit(x, hw)
    y.set_shape([None, None, None, channels])
    return y
