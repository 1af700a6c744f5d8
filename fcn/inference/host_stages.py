"""The prediction path's outer stages on the host, in OpenCV and NumPy, for a backend whose file
holds the network alone (TFLite: fcn.inference.tflite). Same interface as
fcn.inference.prediction.Stages, without a TensorFlow session per call:

    to_network(images uint8 (N, H, W, 3)) -> float32 (N, h, w, 3), normalised
        the graph's resize (prediction.to_network_size: OpenCV's INTER_AREA weights, rounded to
        whole levels) in NumPy: `area_weights` gives the graph's weight matrices exactly, and
        the two products differ from the graph's float32 sums only in their last bits (a
        level flips only where a sum lands within those bits of a .5); an image already of
        the network size is only cast.
    finish(logits (N, h, w, C), size (H, W), threshold, probs=None)
        -> (probs_full float32 (N, H, W, C), mask uint8 (N, H, W))
        softmax in float32 (or the network's own probabilities, `probs`), upsampled as the
        graph's resize_bilinear(half_pixel_centers=True) computes it (`upsample`: the same
        float32 operations in the same order, so bit for bit; cv2.resize INTER_LINEAR has the
        same geometry but rounded coefficients, 1e-6 off), and decided as
        fcn.data.task.decide.

In a TensorFlow session of their own (prediction.Stages) the two stages took 3.2 ms for a
192 x 192 image, 8.2 ms for a 256 x 200 one and 25.8 ms for a KITTI frame with MobileNetV2's
network taking ~20-30 ms in TFLite; measured figures here are in docs/performance.md.
"""

import functools

import numpy as np

from fcn.data import task


@functools.lru_cache(maxsize=16)  # per image size: a KITTI frame's take 12 ms to compute
def area_weights(in_size, out_size, use_area):
    """(out, in) float32 matrix of prediction.area_weights in NumPy, computed in float64 and
    cast as there: OpenCV's INTER_AREA average when neither side of the image grows
    (`use_area`), else cv2's two-tap interpolation (prediction.area_weights' docstring).
    Cached: read-only, shared by every call with those sizes."""
    scale = in_size / out_size
    i = np.arange(out_size, dtype=np.float64)[:, None]  # (out, 1)
    j = np.arange(in_size, dtype=np.float64)[None, :]  # (1, in)
    if use_area:
        overlap = np.minimum((i + 1) * scale, j + 1) - np.maximum(i * scale, j)
        return _frozen((np.maximum(overlap, 0.0) / scale).astype(np.float32))
    sx = (np.arange(out_size)[:, None] * in_size // out_size).astype(np.float64)  # the graph's
    f = (i + 1.0) - (sx + 1.0) / scale
    f = np.where(f <= 0.0, 0.0, f - np.floor(f))
    right = np.minimum(sx + 1.0, in_size - 1.0)
    return _frozen(((j == sx) * (1.0 - f) + (j == right) * f).astype(np.float32))


def _frozen(array):
    array.flags.writeable = False
    return array


def to_network_size(images, image_shape):
    """uint8 (N, H, W, 3) -> float32 (N, h, w, 3) whole levels, as the graph's resize."""
    h, w = image_shape
    x = images.astype(np.float32)
    size = images.shape[1:3]
    if tuple(size) == (h, w):
        return x
    use_area = size[0] >= h and size[1] >= w
    rows, cols = area_weights(size[0], h, use_area), area_weights(size[1], w, use_area)
    out = np.empty((len(x), h, w, 3), np.float32)
    for k, image in enumerate(x):  # two 2-D BLAS products an image (NumPy's 3-D ones: 15x)
        y = (rows @ image.reshape(size[0], -1)).reshape(h, size[1], 3)  # (h, W, 3)
        y = np.ascontiguousarray(y.transpose(0, 2, 1)).reshape(h * 3, size[1]) @ cols.T
        out[k] = y.reshape(h, 3, w).transpose(0, 2, 1)  # (h, w, 3)
    return np.clip(np.round(out, out=out), 0.0, 255.0, out=out)  # ties to even, as cv2


def softmax(logits):
    """float32 softmax over the last axis, shifted by the maximum (as tf.nn.softmax).

    The maximum and the sum run as a loop over the C channels: NumPy reduces a short last axis
    (C = 2) pixel by pixel, 2.6 ms for one 192 x 192 map where the loop takes 0.1 ms."""
    z = logits.astype(np.float32, copy=False)
    top = z[..., 0].copy()  # (..., ) the per-pixel maximum
    for c in range(1, z.shape[-1]):
        np.maximum(top, z[..., c], out=top)
    e = np.exp(z - top[..., None])
    total = e[..., 0].copy()
    for c in range(1, z.shape[-1]):
        total += e[..., c]
    e /= total[..., None]
    return e


def _taps(in_size, out_size):
    """TensorFlow's half-pixel bilinear taps along one axis: (lower, upper) source indices
    (out,) and the float32 weight of the upper one."""
    scale = np.float32(in_size) / np.float32(out_size)
    src = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype(np.intp)
    upper = np.minimum(np.ceil(src), in_size - 1).astype(np.intp)
    return lower, upper, (src - floor).astype(np.float32)


def upsample(probs, size):
    """float32 (N, h, w, C) -> (N, H, W, C): along the columns, then the rows, each output
    a + (b - a) * t of its two taps, as resize_bilinear's kernel. The gathers run on a
    (N, C, h, w) copy, where each is a contiguous row (on (..., C) they cost 3x)."""
    (h, w), (height, width) = probs.shape[1:3], size
    rows_lo, rows_hi, ty = _taps(h, height)
    cols_lo, cols_hi, tx = _taps(w, width)
    planes = np.ascontiguousarray(probs.transpose(0, 3, 1, 2))  # (N, C, h, w)
    left, out = planes[..., cols_lo], planes[..., cols_hi]  # (N, C, h, W)
    out -= left
    out *= tx
    out += left
    top, full = out[:, :, rows_lo], out[:, :, rows_hi]  # (N, C, H, W)
    full -= top
    full *= ty[:, None]
    full += top
    return np.ascontiguousarray(full.transpose(0, 2, 3, 1))


class HostStages:
    """The resize and upsample/decide stages for network size `image_shape` (h, w)."""

    def __init__(self, image_shape, spec, threshold, normalize_mode="raw"):
        self.image_shape = tuple(image_shape)
        self.spec = spec
        self.threshold = float(threshold)
        self.normalize_mode = normalize_mode

    def to_network(self, images):
        """uint8 (N, H, W, 3) -> the network's float32 input (N, h, w, 3)."""
        x = to_network_size(np.asarray(images), self.image_shape)
        # fcn.inference.prediction.normalize's two modes, without importing TensorFlow.
        return x / np.float32(255.0) - np.float32(0.5) if self.normalize_mode == "centered" else x

    def finish(self, logits, size, threshold=None, probs=None):
        """Logits (N, h, w, C) -> (probs_full (N, H, W, C), mask (N, H, W)) at size (H, W);
        or, with logits None, the network-size probabilities `probs` (N, h, w, C)."""
        p = softmax(logits) if probs is None else probs.astype(np.float32, copy=False)
        size = tuple(int(s) for s in size)
        if p.shape[1:3] != size:
            p = upsample(p, size)
        threshold = self.threshold if threshold is None else float(threshold)
        return p, task.decide(p, self.spec, threshold)

    def close(self):
        """Nothing to release (the interface of prediction.Stages)."""
