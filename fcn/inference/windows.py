"""Windowed (slide) and multi-scale prediction: wrappers of any Predictor that keep its contract.

The inner Predictor (fcn.inference.predictor) squeezes each image into its network size (h, w).
That suits KITTI; a scene many times the network size (an aerial mosaic) must instead be seen at
the scale the model was trained on. These wrappers give any Predictor that, and keep the
contract: predict, predict_each, decide (the inner's) and what callers need to know (config,
spec, network_size, class_names, tta, precision, backend, source: the inner's) are the same; close()
closes the inner predictor.

Scale (both wrappers): an image (H, W) is resized to (round(H*s), round(W*s)) (at least 1
pixel) with cv2 INTER_AREA when shrinking and INTER_LINEAR when growing (as training's cache
and the path's upsampling), predicted there, and its class probabilities resized back to
(H, W) the same way (INTER_LINEAR up, INTER_AREA down: both weigh with weights summing to 1,
so the probabilities still sum to 1).

SlidePredictor(inner, overlap, scale): the (scaled) image is cut into windows of the network
size (h, w):
- windows start every stride = max(1, round(h * (1 - overlap))) rows (columns: w) from 0, and
  the last row and column of windows are flush with the bottom and right edges (start L - h),
  so a side of L >= h has ceil((L - h) / stride) + 1 windows (mmsegmentation's slide grid).
  Every window has the network size, so the inner predictor's resize is the identity; they are
  predicted `inner.batch_size` at a time.
- padding: a side shorter than the window is padded at the bottom/right up to the window by
  mirroring (cv2.BORDER_REFLECT_101, augmentation's border: fcn.data.augment.IMAGE_BORDER).
  Not a constant: a black band is a dark object to the network and biases the pixels beside
  it, while the mirror continues the scene, as training's shifts and rotations showed it. The
  padding's probabilities are cropped away.
- blending: window k weighs its pixel (y, x) by w_k = t_h(y) * t_w(x), a tent with a floor,
      t_n(i) = FLOOR + (1 - FLOOR) * (1 - |2 (i + 0.5) / n - 1|),  i = 0..n-1,  FLOOR = 0.1,
  largest at the window's centre, falling towards its edges (where the network saw the least
  context) and never 0, so every pixel has weight. A pixel's probabilities are
      p = sum_k p_k * (w_k / W),  W = sum_k w_k over the windows covering it:
  the (H, W) weight sum W is laid out first (it needs no prediction), then each window's
  p_k * w_k / W is added into one (H, W, C) float32 sum (memory: the image's size, not a stack
  of windows). A pixel covered by one window gets w_k / W = 1 exactly, so without overlap each
  window's output is that window's prediction, bit for bit.

MultiScalePredictor(inner, scales, predict, overlap): the mean of the class probabilities of
the image predicted at each scale (DeepLab's eval_scales), each at the image's size first.
`slide` slides each scale (the windows see the scene at s times its resolution); `whole`
resizes the image by s and lets the inner predictor take its own whole-image path. Note that
a SessionPredictor's path squeezes any image into the network size, so for it whole-image
scales differ only in that resampling: scales change what the network sees with `slide`.

TTA is the inner predictor's (its graph averages each window's flipped copies). `wrap` returns
what the --predict, --overlap and --scales flags ask for; whole at scale 1 is the predictor
itself, today's path untouched.
"""

import cv2
import numpy as np

from fcn import checks
from fcn import config as cfg
from fcn.data.augment import IMAGE_BORDER
from fcn.inference.predictor import Predictor, checked_images

PREDICT_MODES = cfg.PREDICT_MODES  # whole, slide
DEFAULT_OVERLAP = cfg.DEFAULT_OVERLAP
WEIGHT_FLOOR = 0.1  # the window-edge weight relative to its centre's 1


def window_starts(length, window, stride):
    """Starts of the windows along a side of `length` >= window: 0, stride, 2 stride, ..., the
    last flush with the end (length - window)."""
    count = -(-(length - window) // stride) + 1  # ceil((length - window) / stride) + 1
    return [min(i * stride, length - window) for i in range(count)]


def edge_weights(n, floor=WEIGHT_FLOOR):
    """(n,) float32 tent with a floor: 1 at the centre, `floor` + (1 - floor) / n at the ends."""
    tent = 1.0 - np.abs(2.0 * (np.arange(n) + 0.5) / n - 1.0)
    return (floor + (1.0 - floor) * tent).astype(np.float32)


def scaled_size(size, scale):
    """(H, W) times scale, rounded, at least 1 pixel a side."""
    return tuple(max(1, round(side * scale)) for side in size)


def resize(array, size):
    """(H, W, ...) image or probabilities -> (h, w, ...): INTER_AREA when shrinking, else
    INTER_LINEAR; the same array when the size is already right."""
    h, w = size
    if array.shape[:2] == (h, w):
        return array
    shrink = h <= array.shape[0] and w <= array.shape[1]
    out = cv2.resize(array, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return out.reshape(h, w, *array.shape[2:])  # cv2 drops a single channel's axis


class _Wrapper(Predictor):
    """A Predictor around `inner`: what callers need to know and the decision are the inner's;
    subclasses give `_at_scale` (uint8 (h, w, 3) -> float32 (h, w, C)), run at `scale`."""

    scale = 1.0

    def __init__(self, inner):
        self.inner = inner

    config = property(lambda self: self.inner.config)
    spec = property(lambda self: self.inner.spec)
    network_size = property(lambda self: tuple(self.inner.network_size))
    threshold = property(lambda self: self.inner.threshold)
    tta = property(lambda self: self.inner.tta)
    precision = property(lambda self: self.inner.precision)
    backend = property(lambda self: self.inner.backend)
    source = property(lambda self: self.inner.source)
    batch_size = property(lambda self: self.inner.batch_size)

    def probs(self, image, threshold=None):
        """uint8 (H, W, 3) -> float32 (H, W, C) class probabilities at the image's size."""
        size = image.shape[:2]
        return resize(self._at_scale(resize(image, scaled_size(size, self.scale)), threshold), size)

    def predict_each(self, images, threshold=None):
        # One image at a time: memory follows one image, not a batch of scenes.
        threshold = self.default_threshold(threshold)
        out = []
        for image in checked_images(images):
            probs = self.probs(image, threshold)
            out.append((probs, self.decide(probs, threshold)))
        return out

    def _predict_batch(self, batch, threshold):
        results = self.predict_each(list(batch), threshold)
        return np.stack([p for p, _ in results]), np.stack([m for _, m in results])

    def decide(self, probs, threshold=None):
        return self.inner.decide(probs, self.default_threshold(threshold))

    def close(self):
        self.inner.close()


class ScaledPredictor(_Wrapper):
    """The inner predictor's whole-image path on the image resized by `scale`."""

    def __init__(self, inner, scale=1.0):
        checks.raise_first([checks.scales([scale])])
        super().__init__(inner)
        self.scale = float(scale)

    def _at_scale(self, image, threshold):
        return self.inner.predict(image, threshold)[0]


class SlidePredictor(_Wrapper):
    """Sliding windows of the network size, blended (the module docstring), at `scale`."""

    def __init__(self, inner, overlap=DEFAULT_OVERLAP, scale=1.0):
        checks.raise_first([checks.overlap(overlap), checks.scales([scale])])
        super().__init__(inner)
        self.overlap, self.scale = float(overlap), float(scale)
        h, w = self.network_size
        self.stride = (max(1, round(h * (1 - overlap))), max(1, round(w * (1 - overlap))))
        self.weight = np.outer(edge_weights(h), edge_weights(w))  # (h, w) float32

    def corners(self, size):
        """(y, x) of every window over an image of `size` (H, W) >= the window, row by row."""
        (h, w), (sh, sw) = self.network_size, self.stride
        rows, cols = window_starts(size[0], h, sh), window_starts(size[1], w, sw)
        return [(y, x) for y in rows for x in cols]

    def _at_scale(self, image, threshold):
        h, w = self.network_size
        height, width = image.shape[:2]
        padded = height < h or width < w
        if padded:
            image = cv2.copyMakeBorder(
                image, 0, max(h - height, 0), 0, max(w - width, 0), IMAGE_BORDER
            )
        corners = self.corners(image.shape[:2])
        total = np.zeros(image.shape[:2], np.float32)  # W: the summed window weights
        for y, x in corners:
            total[y : y + h, x : x + w] += self.weight
        out = None  # (H, W, C) float32, C from the first batch
        step = self.inner.batch_size
        for start in range(0, len(corners), step):
            chunk = corners[start : start + step]
            windows = np.stack([image[y : y + h, x : x + w] for y, x in chunk])  # (n, h, w, 3)
            probs = self.inner.predict(windows, threshold)[0]  # (n, h, w, C)
            if out is None:
                out = np.zeros((*image.shape[:2], probs.shape[-1]), np.float32)
            for (y, x), p in zip(chunk, probs, strict=True):
                share = self.weight / total[y : y + h, x : x + w]  # w_k / W, (h, w)
                out[y : y + h, x : x + w] += p * share[..., None]
        return np.ascontiguousarray(out[:height, :width]) if padded else out


class MultiScalePredictor(_Wrapper):
    """The mean of the class probabilities at each of `scales`, each `predict`ed whole or slid
    (with `overlap`) and resized back to the image's size (the module docstring)."""

    def __init__(self, inner, scales=(0.5, 1.0, 1.5), predict="whole", overlap=DEFAULT_OVERLAP):
        checks.raise_first(
            [checks.scales(scales), checks.one_of("--predict", predict, PREDICT_MODES)]
        )
        super().__init__(inner)
        self.scales = tuple(float(s) for s in scales)
        self.members = [_at(inner, predict, overlap, s) for s in self.scales]

    def probs(self, image, threshold=None):
        total = None  # (H, W, C) float32
        for member in self.members:
            p = member.probs(image, threshold)
            total = p.astype(np.float32, copy=True) if total is None else total + p
        return total / np.float32(len(self.members))


def _at(inner, predict, overlap, scale):
    if predict == "slide":
        return SlidePredictor(inner, overlap, scale)
    return ScaledPredictor(inner, scale)


def chosen(opts, config):
    """(predict, overlap, scales): the options' where given, else the run's own (its Config's
    predict, overlap and scales; a config without them, or none, predicts whole)."""
    return tuple(
        given if given is not None else getattr(config, name, default)
        for name, given, default in (
            ("predict", opts.predict, "whole"),
            ("overlap", opts.overlap, DEFAULT_OVERLAP),
            ("scales", opts.scales, (1.0,)),
        )
    )


def wrap(predictor, predict="whole", overlap=DEFAULT_OVERLAP, scales=(1.0,)):
    """The predictor as --predict, --overlap and --scales ask (`chosen` fills in the run's):
    itself for whole at scale 1 (today's path), a SlidePredictor or ScaledPredictor for one
    scale, else a MultiScalePredictor. Closing the result closes `predictor`."""
    scales = tuple(float(s) for s in scales)
    problems = [checks.one_of("--predict", predict, PREDICT_MODES), checks.overlap(overlap)]
    checks.raise_first(problems + [checks.scales(scales)])
    if len(scales) > 1:
        return MultiScalePredictor(predictor, scales, predict, overlap)
    if predict == "whole" and scales[0] == 1.0:
        return predictor
    return _at(predictor, predict, overlap, scales[0])


def settings(predict="whole", overlap=DEFAULT_OVERLAP, scales=(1.0,)):
    """What a prediction used, for metrics.json: overlap is None for whole images."""
    return dict(
        predict=predict,
        overlap=float(overlap) if predict == "slide" else None,
        scales=[float(s) for s in scales],
    )


def describe(predict="whole", overlap=DEFAULT_OVERLAP, scales=(1.0,)):
    """'' for today's path, else e.g. ', slide with overlap 0.25 at scales 0.5,1' for logs."""
    if predict == "whole" and tuple(scales) == (1.0,):
        return ""
    what = f"slide with overlap {overlap:g}" if predict == "slide" else "whole"
    return f", {what} at scale{'s' if len(scales) > 1 else ''} " + ",".join(
        f"{s:g}" for s in scales
    )
