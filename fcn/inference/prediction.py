"""The one prediction path: resize, normalise, predict, upsample back, decide the class.

Validation, `evaluate`, `infer`, `export` and `helper.gen_test_output` all run these ops, so a
served model sees exactly the pixels it was trained on. Built into the training graph by
`build` (and so saved with every checkpoint and frozen into every export):

    images       uint8 (N, H, W, 3) RGB, any H, W (one size per batch)
      -> to_network_size: OpenCV INTER_AREA's exact weights as two matmuls (training caches
         its images with cv2.resize INTER_AREA), rounded to whole levels as cv2 does
    image_input  float32 (N, h, w, 3) raw 0..255 at config.image_shape (training feeds it)
      -> normalize (config.normalize) -> network -> logits (N, h, w, C) -> probs (softmax;
         with config.tta, the mean over the image's flipped copies: fcn.inference.tta)
    probs_full   float32 (N, H, W, C): probs upsampled bilinearly (cv2 INTER_LINEAR geometry)
    mask         uint8 (N, H, W): binary datasets threshold the positive class's probability
                 (`threshold`, default the config's), multi-class ones take the argmax
"""

import dataclasses

import tensorflow.compat.v1 as tf

from fcn import names
from fcn.inference import tta


def area_weights(in_size, out_size, use_area):
    """(out, in) float32 matrix of OpenCV's INTER_AREA along one axis, as tensors.

    Downscaling: output i averages the source interval [i*s, (i+1)*s), s = in/out, each source
    pixel weighted by its overlap / s (what cv2.resize INTER_AREA computes). OpenCV averages
    areas only when neither axis grows (`use_area`, a bool tensor); otherwise it uses its own
    two-tap interpolation on both axes, which this follows within one level (cv2 computes it
    in fixed point; tests/test_prediction.py checks images smaller than the network). The
    same size gives the identity. fcn.inference.host_stages.area_weights is its NumPy twin.
    """
    in_f = tf.cast(in_size, tf.float64)
    out_f = tf.cast(out_size, tf.float64)
    scale = in_f / out_f
    i = tf.range(out_size, dtype=tf.float64)[:, None]  # (out, 1)
    j = tf.range(in_size, dtype=tf.float64)[None, :]  # (1, in)
    lo, hi = i * scale, (i + 1) * scale
    overlap = tf.maximum(tf.minimum(hi, j + 1) - tf.maximum(lo, j), 0.0)  # (out, in)
    area = overlap / scale
    # OpenCV's INTER_AREA upscaling: source sx = floor(i*s) and sx+1 with weights 1-f, f where
    # f = frac((i+1) - (sx+1)/s) if positive, else 0; the right neighbour clamps to the edge.
    # sx in integers: where i*s is a whole number, TensorFlow's float64 product at run time
    # can land below it (18 * 160/192 gave floor 14, not cv2's 15: a pixel's neighbour).
    i_int = tf.range(out_size, dtype=tf.int64)[:, None]  # (out, 1)
    sx = i_int * tf.cast(in_size, tf.int64) // tf.cast(out_size, tf.int64)
    sx = tf.cast(sx, tf.float64)
    f = (i + 1.0) - (sx + 1.0) / scale
    f = tf.where(f <= 0.0, tf.zeros_like(f), f - tf.floor(f))
    right = tf.minimum(sx + 1.0, in_f - 1.0)
    linear = (
        tf.cast(tf.equal(j, sx), tf.float64) * (1.0 - f)
        + tf.cast(tf.equal(j, right), tf.float64) * f
    )
    return tf.cast(tf.cond(use_area, lambda: area, lambda: linear), tf.float32)


def to_network_size(images, image_shape):
    """uint8 (N, H, W, 3) -> float32 (N, h, w, 3) whole levels 0..255, as cv2 INTER_AREA."""
    h, w = image_shape
    x = tf.cast(images, tf.float32)
    size = tf.shape(images)[1:3]

    def resize():
        use_area = tf.logical_and(size[0] >= h, size[1] >= w)
        rows = area_weights(size[0], h, use_area)  # (h, H)
        cols = area_weights(size[1], w, use_area)  # (w, W)
        y = tf.einsum("ih,nhwc->niwc", rows, x)  # (N, h, W, 3)
        y = tf.einsum("jw,niwc->nijc", cols, y)  # (N, h, w, 3)
        # cv2 rounds to the nearest level (ties to even) and saturates.
        return tf.clip_by_value(tf.round(y), 0.0, 255.0)

    same = tf.reduce_all(tf.equal(size, tf.constant([h, w])))
    out = tf.cond(same, lambda: x, resize)
    out.set_shape([None, h, w, 3])
    return out


def normalize(x, mode):
    """Raw 0..255 (what every encoder expects; each preprocesses in its graph), or the
    reference's 'centered' x/255 - 0.5."""
    return x / 255.0 - 0.5 if mode == "centered" else x


def upsample(probs, size):
    """(N, h, w, C) -> (N, H, W, C) bilinear with half-pixel centres (cv2 INTER_LINEAR)."""
    return tf.image.resize_bilinear(probs, size, half_pixel_centers=True)


def decide(probs, spec, threshold):
    """(N, H, W, C) probabilities -> (N, H, W) uint8 class ids: a binary dataset thresholds
    the positive class (never argmax, so scores equal what the saved masks show)."""
    if spec.task == "binary":
        pos = spec.positive_class
        positive = probs[..., pos] >= threshold
        return tf.cast(tf.where_v2(positive, pos, 1 - pos), tf.uint8)
    return tf.cast(tf.argmax(probs, axis=-1), tf.uint8)


@dataclasses.dataclass
class PredictionTensors:
    """The prediction path's tensors (shapes in the module docstring), built by `build` or
    found by name (fcn.names) in a restored graph. `threshold` is None where the graph reads
    none (a multi-class export), `tta` where the run averages no copies, `positive_prob` for
    multi-class datasets; a frozen export has only images, probs_full, mask and those."""

    images: tf.Tensor  # uint8 (N, H, W, 3), any size
    probs_full: tf.Tensor  # float32 (N, H, W, C)
    mask: tf.Tensor  # uint8 (N, H, W)
    image_input: tf.Tensor = None  # float32 (N, h, w, 3) raw 0..255 at the network size
    keep_prob: tf.Tensor = None
    is_training: tf.Tensor = None
    threshold: tf.Tensor = None
    logits: tf.Tensor = None  # (N, h, w, C)
    probs: tf.Tensor = None  # float32 (N, h, w, C)
    tta: tf.Tensor = None  # bool switch, default True
    positive_prob: tf.Tensor = None  # float32 (N, H, W)

    @classmethod
    def from_graph(cls, graph, spec, config):
        """The tensors of a training graph imported from a checkpoint's .meta file."""

        def get(name):
            return graph.get_tensor_by_name(names.tensor(name))

        positive = (
            get(names.positive_prob_name(spec.class_names[spec.positive_class]))
            if spec.task == "binary"
            else None
        )
        return cls(
            images=get(names.IMAGES),
            probs_full=get(names.PROBS_FULL),
            mask=get(names.MASK),
            image_input=get(names.IMAGE_INPUT),
            keep_prob=get(names.KEEP_PROB),
            is_training=get(names.IS_TRAINING),
            threshold=get(names.THRESHOLD),
            logits=get(names.LOGITS),
            probs=get(names.PROBS),
            tta=get(names.TTA) if config.tta != "none" else None,
            positive_prob=positive,
        )


def build(network, config, spec):
    """The prediction path around `network` in the default graph -> PredictionTensors.

    network(x float32 (N, h, w, 3) normalised, is_training, keep_prob) -> logits (N, h, w, C).
    With config.tta the `tta` switch (bool, default True) is built; for binary datasets
    positive_prob (N, H, W).
    """
    images = tf.placeholder(tf.uint8, [None, None, None, 3], name=names.IMAGES)
    resized = to_network_size(images, config.image_shape)
    image_input = tf.placeholder_with_default(
        resized, [None, None, None, 3], name=names.IMAGE_INPUT
    )
    keep_prob = tf.placeholder_with_default(1.0, [], name=names.KEEP_PROB)
    is_training = tf.placeholder_with_default(False, [], name=names.IS_TRAINING)
    threshold = tf.placeholder_with_default(float(config.threshold), [], name=names.THRESHOLD)
    x = normalize(image_input, config.normalize)  # (N, h, w, 3)
    averaging = None
    if config.tta == "none":
        logits = network(x, is_training, keep_prob)
        probs = tf.nn.softmax(tf.cast(logits, tf.float32))
    else:
        # Predicting, the network sees the K copies as one batch (K*N, h, w, 3); training
        # steps (is_training) run the batch alone. The copy list starts with the image itself,
        # so the first N logits are always its own (the loss's and the LOGITS tensor's).
        # Feeding `tta` False predicts the image alone (`infer --no-tta`: K times quicker).
        averaging = tf.placeholder_with_default(True, [], name=names.TTA)
        stacked = tf.logical_and(tf.logical_not(is_training), averaging)
        n = tf.shape(image_input)[0]
        copies = tf.cond(stacked, lambda: tta.stack(x, config.tta), lambda: x)
        logits_all = network(copies, is_training, keep_prob)  # (K*N or N, h, w, C)
        logits = logits_all[:n]
        probs_all = tf.nn.softmax(tf.cast(logits_all, tf.float32))
        probs = tf.cond(stacked, lambda: tta.merge(probs_all, n, config.tta), lambda: probs_all)
    logits = tf.identity(logits, name=names.LOGITS)
    probs = tf.identity(probs, name=names.PROBS)  # (N, h, w, C)
    full = tf.identity(upsample(probs, tf.shape(images)[1:3]), name=names.PROBS_FULL)
    mask = tf.identity(decide(full, spec, threshold), name=names.MASK)
    positive = None
    if spec.task == "binary":
        name = names.positive_prob_name(spec.class_names[spec.positive_class])
        positive = tf.identity(full[..., spec.positive_class], name=name)
    return PredictionTensors(
        images=images,
        probs_full=full,
        mask=mask,
        image_input=image_input,
        keep_prob=keep_prob,
        is_training=is_training,
        threshold=threshold,
        logits=logits,
        probs=probs,
        tta=averaging,
        positive_prob=positive,
    )


class Stages:
    """The path's resize and upsample/decide stages in a graph of their own, for a network that
    lives in a foreign graph (the Udacity `helper.gen_test_output` gets only a logits tensor)."""

    def __init__(self, image_shape, spec, threshold, normalize_mode="raw"):
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._images = tf.placeholder(tf.uint8, [None, None, None, 3])
            self._network_in = normalize(to_network_size(self._images, image_shape), normalize_mode)
            self._logits = tf.placeholder(tf.float32, [None, None, None, None])
            self._size = tf.placeholder(tf.int32, [2])
            self._threshold = tf.placeholder_with_default(float(threshold), [])
            # Fed directly by a network that ends in its softmax (TFLite: fcn.inference.tflite).
            self._probs = tf.placeholder_with_default(tf.nn.softmax(self._logits), [None] * 4)
            self._full = upsample(self._probs, self._size)
            self._mask = decide(self._full, spec, self._threshold)
        self.sess = tf.Session(graph=self.graph)

    def to_network(self, images):
        """uint8 (N, H, W, 3) -> the network's float32 input (N, h, w, 3)."""
        return self.sess.run(self._network_in, {self._images: images})

    def finish(self, logits, size, threshold=None, probs=None):
        """Logits (N, h, w, C) -> (probs_full (N, H, W, C), mask (N, H, W)) at size (H, W);
        or, with logits None, the network-size probabilities `probs` (N, h, w, C)."""
        feed = {self._size: size}
        feed.update({self._logits: logits} if probs is None else {self._probs: probs})
        if threshold is not None:
            feed[self._threshold] = threshold
        return self.sess.run([self._full, self._mask], feed)

    def close(self):
        self.sess.close()
