"""DenseCRF refinement of class probabilities (Kraehenbuehl & Koltun 2011), any number of classes.

The prediction path gives probabilities (H, W, C) at the image's own size; `refine` runs
mean-field inference of a fully connected CRF over them with two pairwise kernels and returns
probabilities of the same shape. The decision after it is the prediction path's own
(`Predictor.decide`: the threshold for binary datasets, argmax for multiclass), so a refined
mask is decided exactly like an unrefined one. Needs pydensecrf2 (an optional extra).
"""

import numpy as np

from fcn.errors import UserError

ITERATIONS = 5
# An appearance-free smoothness kernel and an appearance (bilateral) kernel, with pydensecrf's
# documented defaults; sxy in pixels, srgb in colour levels.
GAUSSIAN = dict(sxy=3, compat=3)
BILATERAL = dict(sxy=80, srgb=13, compat=10)
# Unary energy is -log p: clipping keeps p = 0 from being an infinite cost.
_MIN_PROB = 1e-5


def densecrf_module():
    """pydensecrf.densecrf, or a UserError saying how to install it."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        raise UserError("--crf needs the DenseCRF package: pip install pydensecrf2") from None
    return dcrf


def refine(image, probs, iterations=ITERATIONS):
    """RGB uint8 (H, W, 3) and probabilities float32 (H, W, C), C >= 2 -> refined (H, W, C)
    float32, each pixel's C values summing to 1."""
    image, probs = np.asarray(image), np.asarray(probs)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if probs.ndim != 3 or probs.shape[:2] != image.shape[:2] or probs.shape[2] < 2:
        raise ValueError(f"probs must be (H, W, C>=2) at the image size, got {probs.shape}")
    dcrf = densecrf_module()
    h, w, c = probs.shape
    crf = dcrf.DenseCRF2D(w, h, c)
    unary = -np.log(np.clip(probs, _MIN_PROB, 1.0)).transpose(2, 0, 1).reshape(c, -1)  # (C, HW)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, np.float32))
    crf.addPairwiseGaussian(**GAUSSIAN)
    crf.addPairwiseBilateral(rgbim=np.ascontiguousarray(image), **BILATERAL)
    q = np.asarray(crf.inference(iterations), np.float32)  # (C, H*W), normalised per pixel
    return np.ascontiguousarray(q.reshape(c, h, w).transpose(1, 2, 0))
