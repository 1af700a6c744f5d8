"""Decoders: feature maps by stride in, logits at exactly the input size out.

    build(features, num_classes, output_hw, options, is_training) -> logits  (options:
        fcn.models.options.ModelOptions)
        features     {stride: (N, ceil(H/s), ceil(W/s), C_s)} for strides 2..32, from any encoder
                     (see fcn.models.encoders); a decoder reads channel counts from the shapes
        output_hw    int32 (2,) tensor: the input's (H, W)
        returns      float (N, H, W, num_classes) logits, for any H, W

Each upsampling is fitted to its skip connection with `fcn.models.layers.fit`, so odd sizes
(KITTI's 375 x 1242) come out exact. Every decoder builds under the variable scope SCOPE. A new
decoder is one module here plus one line in DECODERS.
"""

import importlib

from fcn import names
from fcn.errors import UserError

SCOPE = names.DECODER_SCOPE
# name -> (module, builder function) under fcn.models.decoders.
DECODERS = {
    "reference": ("fcn8", "reference"),
    "fcn8s": ("fcn8", "fcn8s"),
    "unet": ("unet", "build"),
    "pix2pix": ("pix2pix", "pix2pix"),
    "upsample_conv": ("pix2pix", "upsample_conv"),
}


def get(name):
    """The decoder builder called `name`; an unknown name lists the valid ones."""
    if name not in DECODERS:
        raise UserError(f"unknown decoder {name!r}; choose one of {sorted(DECODERS)}")
    module, function = DECODERS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)
