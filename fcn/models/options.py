"""What a network builder reads: a small frozen options object made from the Config, so encoders
and decoders see the dozen fields they use and nothing else (the Config has ~60)."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    encoder: str = "vgg16"
    decoder: str = "reference"
    width: float = 1.0  # encoder channel multiplier (VGG16 and MobileNetV2)
    decoder_width: float = 1.0  # pix2pix / upsample_conv filter multiplier
    unet_filters: int = 32  # the U-Net's first-stage filters F
    bn_momentum: float = 0.99  # batch norm's moving-statistics momentum
    decoder_dropout: float = 0.5  # pix2pix decoder dropout rate while training
    fc6: str = "conv"  # VGG16 fc6 as a 7x7 convolution or im2col matmul, resolved (no 'auto')
    init_stddev: float = 0.01  # decoder kernels' initial stddev (the reference system's)
    skip_gain: float = 1.0  # FCN-8 skip scales' multiplier
    l2_scale: float = 1e-3  # decoder kernels' L2 penalty
    seed: int = 0  # per-layer initialisation seeds derive from it

    @classmethod
    def from_config(cls, config):
        """The options of a Config (a ModelOptions passes through); fc6 'auto' is resolved to
        the form measured faster at the config's precision (fcn.models.encoders.vgg16)."""
        if isinstance(config, cls):
            return config
        from fcn.models.encoders import vgg16

        names = {f.name for f in dataclasses.fields(cls)} - {"fc6"}
        return cls(fc6=vgg16.fc6_form(config), **{n: getattr(config, n) for n in names})
