"""Encoders: raw RGB images in, feature maps keyed by stride out.

The contract every encoder keeps and every decoder relies on (and nothing else):

    build(images, options, is_training, keep_prob) -> {stride: features}  (options:
        fcn.models.options.ModelOptions)
        images       float32 (N, H, W, 3), raw RGB in 0..255, any H, W >= 32; each encoder does
                     its own preprocessing (VGG: RGB->BGR minus the ImageNet mean; MobileNetV2:
                     x/127.5 - 1; U-Net: x/255) inside the graph
        is_training  bool scalar tensor: batch norm uses batch statistics while it is true
        keep_prob    float32 scalar tensor: dropout keep probability (1.0 at prediction)
        returns      {2: ..., 4: ..., 8: ..., 16: ..., 32: ...}, each float (N, ceil(H/s),
                     ceil(W/s), C_s) with a static channel count C_s (read it from .shape[-1]);
                     optionally also 1: a full-resolution map (N, H, W, C_1), from an encoder
                     that computes one before it first downsamples (unet). Decoders that can
                     use it (unet) take it as their last skip; the others ignore it.

    read_weights(path) -> {variable name relative to the encoder scope: ndarray}
        pretrained weights from a file or folder (which kinds: WEIGHT_FORMATS); a mismatch of
        names or shapes is found by `fcn.models.weights.assign`, which names every difference

Every encoder builds under the variable scope SCOPE, so `--freeze` prefixes and weight names are
relative to it (`fc6` is `encoder/fc6/...`). A new encoder is one module here plus one line in
ENCODERS.
"""

import importlib

from fcn import names
from fcn.errors import UserError

SCOPE = names.ENCODER_SCOPE
STRIDES = (2, 4, 8, 16, 32)
# name -> module under fcn.models.encoders, imported when chosen (TensorFlow stays unloaded for
# commands that only list names).
ENCODERS = {"vgg16": "vgg16", "mobilenet_v2": "mobilenet_v2", "unet": "unet"}


def get(name):
    """The encoder module called `name`; an unknown name lists the valid ones."""
    if name not in ENCODERS:
        raise UserError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
    return importlib.import_module(f"{__name__}.{ENCODERS[name]}")
