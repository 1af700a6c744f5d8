"""FCN-8 semantic segmentation on a VGG16 encoder (tf.compat.v1 graph mode)."""

__version__ = "1.0.0"
