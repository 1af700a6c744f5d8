"""Segmentation networks: an encoder (feature maps by stride) and a decoder (logits at the input
size), any encoder with any decoder. See encoders/__init__.py and decoders/__init__.py for the
contract between them; this module only wires them together and loads pretrained weights."""

import os

from fcn.errors import UserError
from fcn.models import decoders, encoders
from fcn.models.options import ModelOptions

RANDOM = "random"


def build_network(images, config, num_classes, is_training, keep_prob):
    """images float32 (N, H, W, 3) raw 0..255 -> dict(features {stride: map}, logits (N, H, W,
    num_classes), encoder_variables: every global variable of the encoder, batch-norm statistics
    included). Pure: builds ops and variables in the default graph, opens no session.

    config: a Config or ModelOptions; the builders get the ModelOptions."""
    import tensorflow.compat.v1 as tf

    config = ModelOptions.from_config(config)
    encoder = encoders.get(config.encoder)
    decoder = decoders.get(config.decoder)
    with tf.variable_scope(encoders.SCOPE):
        features = encoder.build(images, config, is_training, keep_prob)
    # Taken now: the optimizer later adds its slots under the same scope.
    encoder_variables = tf.global_variables(scope=encoders.SCOPE + "/")
    missing = [s for s in encoders.STRIDES if s not in features]
    if missing:
        raise ValueError(f"encoder {config.encoder} returned no features at strides {missing}")
    with tf.variable_scope(decoders.SCOPE):
        logits = decoder(features, num_classes, tf.shape(images)[1:3], config, is_training)
    return dict(features=features, logits=logits, encoder_variables=encoder_variables)


def weights_source(config):
    """Where the encoder's weights come from: a path, or RANDOM.

    --weights wins; without it the vgg16 encoder reads --vgg-dir (the Udacity SavedModel, as
    before) and the others start random.
    """
    if config.weights:
        return config.weights
    return config.vgg_dir if config.encoder == "vgg16" else RANDOM


def check_weights_source(config):
    """A missing weights file or folder is a one-line error before anything is built."""
    source = weights_source(config)
    if source != RANDOM and not os.path.exists(source):
        flag = "--weights" if config.weights else "--vgg-dir"
        raise UserError(
            f"{flag} {source} does not exist; give a SavedModel folder or an .h5 file of "
            f"{config.encoder} weights, or --weights random"
        )
    return source


def read_weights(config):
    """(source, {relative name: array} or None for random): the encoder's pretrained weights,
    read before the graph is built, and the config adjusted to them (an encoder may read its
    width from the weights' shapes: `fit_config`)."""
    source = check_weights_source(config)
    if source == RANDOM:
        return source, None, config
    encoder = encoders.get(config.encoder)
    arrays = encoder.read_weights(source)
    if hasattr(encoder, "fit_config"):
        config = encoder.fit_config(config, arrays)
    return source, arrays, config


def assign_weights(sess, encoder_variables, arrays, source, log=print):
    """Load arrays from `read_weights` into the initialised encoder; returns a description of
    the source for logs and run summaries."""
    if arrays is None:
        return "random (He) initialisation"
    from fcn.models import weights

    n = weights.assign(sess, encoder_variables, arrays, encoders.SCOPE, source)
    log(f"loaded {n} encoder weight arrays from {source}")
    return source
