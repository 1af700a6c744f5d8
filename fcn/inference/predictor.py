"""The `Predictor`: the one object every use of a trained model predicts through.

Contract (every implementation and every wrapper keeps it, whatever runs underneath: a
TensorFlow session over a training graph, a run folder or an export, and, to come, ONNX Runtime,
TFLite, windowed or multi-scale prediction):

    predict(images, threshold=None) -> (probs, mask)
        images  uint8 RGB: one image (H, W, 3), a batch (N, H, W, 3), or a list of images of
                any sizes (Hi, Wi, 3)
        probs   float32 class probabilities at each image's own size, summing to 1 over C:
                (H, W, C), (N, H, W, C), or a list of (Hi, Wi, C), as the input came
        mask    uint8 class ids at the same sizes: (H, W), (N, H, W) or a list of (Hi, Wi),
                decided by the dataset's task (`decide`): binary datasets threshold the
                positive class's probability (`threshold`, default the run's), multi-class
                ones take the argmax
    predict_each(images, threshold=None) -> [(probs (Hi, Wi, C), mask (Hi, Wi))], in order
    decide(probs, threshold=None) -> mask: the same decision in NumPy, for probabilities
        refined outside the model (DenseCRF): "refine, then decide" exactly as the model does

    What callers need to know: `config` (the run's Config), `spec` (the DatasetSpec: classes,
    palette, task), `network_size` (h, w), `class_names`, `tta` (the --tta copies averaged,
    'none' when off), `precision` (resolved), `backend` (fcn.inference.backends' key),
    `source` (what was loaded, for logs).
    Closing releases what it holds (`close()`, or use it as a context manager).

Images of one size are batched together, at most `batch_size` at a time; each image is resized
to the network size, predicted and upsampled back by the one prediction path in the graph
(fcn.inference.prediction), so every caller sees the pixels training saw.

Precision: one default for every caller (`DEFAULT_PRECISION`, 'auto': bfloat16 on CPUs with
bf16 instructions, float16 on a GPU, else float32), so `evaluate` scores what `infer` writes
and a server serves; each caller may pass another and records the resolved one.
"""

import abc

import numpy as np

from fcn.errors import UserError

DEFAULT_PRECISION = "auto"
DEFAULT_BATCH_SIZE = 8  # images per forward pass


def size_batches(images, batch_size):
    """Consecutive runs of equally sized images, at most batch_size each: [(start, stack)]."""
    start = 0
    while start < len(images):
        end = start + 1
        while (
            end < len(images)
            and end - start < batch_size
            and images[end].shape == images[start].shape
        ):
            end += 1
        yield start, np.stack(images[start:end])
        start = end


def _as_list(images):
    """(list of (H, W, 3) arrays, how to give results back: 'one', 'batch' or 'list')."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            return [images], "one"
        if images.ndim == 4:
            return list(images), "batch"
        raise UserError(
            f"predict takes uint8 images (H, W, 3) or (N, H, W, 3), got shape {images.shape}"
        )
    return list(images), "list"


def _check_image(i, image):
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise UserError(f"image {i}: expected uint8 RGB (H, W, 3), got {shape}")
    if image.dtype != np.uint8:
        raise UserError(f"image {i}: expected uint8 RGB, got {image.dtype}; convert to 0..255")
    if min(image.shape[:2]) < 1:
        raise UserError(f"image {i}: empty image of shape {image.shape}")


def checked_images(images):
    """predict's input as a list of (H, W, 3) uint8 images, each checked (one-line errors)."""
    listed, _ = _as_list(images)
    for i, image in enumerate(listed):
        _check_image(i, image)
    return listed


class Predictor(abc.ABC):
    """uint8 RGB images of any size -> (probs, mask); the contract is the module docstring's.

    Subclasses implement `_predict_batch` (one stack of equally sized images) and set the
    attributes below; the batching, the shapes and the NumPy decision are written here once.
    """

    config = None  # fcn.config.Config of the run (None for a network in a foreign graph)
    spec = None  # fcn.data.DatasetSpec
    network_size = None  # (h, w)
    threshold = 0.5  # the positive-class threshold of binary datasets, when none is passed
    tta = "none"  # the --tta copies averaged
    precision = "float32"  # resolved compute precision
    backend = "tf"  # what runs it: fcn.inference.backends' key (tf, onnxruntime-int8, ...)
    source = ""  # what was loaded, for the log
    batch_size = DEFAULT_BATCH_SIZE

    @property
    def class_names(self):
        return tuple(self.spec.class_names)

    def default_threshold(self, threshold=None):
        return float(self.threshold if threshold is None else threshold)

    @abc.abstractmethod
    def _predict_batch(self, batch, threshold):
        """uint8 (N, H, W, 3) -> (float32 (N, H, W, C), uint8 (N, H, W))."""

    def predict_each(self, images, threshold=None):
        """[(probs (H, W, C), mask (H, W))] of each image, in order."""
        images = checked_images(images)
        threshold = self.default_threshold(threshold)
        out = []
        for _, batch in size_batches(images, self.batch_size):
            probs, mask = self._predict_batch(batch, threshold)
            out.extend(zip(probs, mask, strict=True))
        return out

    def predict(self, images, threshold=None):
        """(probs, mask) shaped as the input came: one image, a batch, or a list."""
        listed, kind = _as_list(images)
        results = self.predict_each(listed, threshold)
        probs = [p for p, _ in results]
        masks = [m for _, m in results]
        if kind == "one":
            return probs[0], masks[0]
        if kind == "batch":
            return np.stack(probs), np.stack(masks)
        return probs, masks

    def predict_files(self, paths):
        """Yield (image, probs (H, W, C), mask (H, W)) per image file, in order, reading a
        batch's worth at a time (RGBA, grey and 16-bit files are converted to RGB)."""
        from fcn import data

        for start in range(0, len(paths), self.batch_size):
            chunk = paths[start : start + self.batch_size]
            images = [data.read_image(p, warn=None) for p in chunk]
            for image, (probs, mask) in zip(images, self.predict_each(images), strict=True):
                yield image, probs, mask

    def decide(self, probs, threshold=None):
        """(..., C) probabilities -> (...) uint8 class ids, as the graph decides."""
        from fcn.data import task

        return task.decide(probs, self.spec, self.default_threshold(threshold))

    def close(self):  # noqa: B027 - not abstract: a predictor may hold nothing
        """Release what the predictor holds (a session, a runtime)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SessionPredictor(Predictor):
    """The prediction path's tensors in a TensorFlow session: a training graph (validation), a
    restored run, or a loaded export.

    tensors: fcn.inference.prediction.PredictionTensors (images, probs_full, mask; threshold
    where the graph reads one; tta where the run averages copies). use_tta False feeds the
    graph's `tta` switch False, so each image is predicted alone.
    owns_session: close() closes the session (a restored run or export); a training graph's
    session stays the trainer's.
    """

    def __init__(
        self,
        sess,
        tensors,
        config,
        spec,
        precision="float32",
        source="",
        use_tta=True,
        batch_size=DEFAULT_BATCH_SIZE,
        owns_session=True,
    ):
        self.sess = sess
        self.tensors = tensors
        self.config = config
        self.spec = spec
        self.network_size = tuple(config.image_shape)
        self.threshold = float(config.threshold)
        self.precision = precision
        self.source = source
        self.use_tta = use_tta
        self.batch_size = batch_size
        self._owns_session = owns_session

    @property
    def tta(self):
        return self.config.tta if self.use_tta else "none"

    def _predict_batch(self, batch, threshold):
        return self.run_batch(batch, threshold)

    def run_batch(self, batch, threshold=None, fetch=(), feed=None):
        """uint8 (N, H, W, 3) -> [probs (N, H, W, C), mask (N, H, W), *fetch's values] in one
        session run: training's validation takes its loss from the same forward pass (`feed`
        gives the labels)."""
        t = self.tensors
        feeds = {t.images: batch, **(feed or {})}
        if t.threshold is not None:  # a multi-class export's argmax never reads one
            feeds[t.threshold] = self.default_threshold(threshold)
        if not self.use_tta and t.tta is not None:
            feeds[t.tta] = False
        return self.sess.run([t.probs_full, t.mask, *fetch], feeds)

    def close(self):
        if self._owns_session:
            self.sess.close()


class LogitsPredictor(Predictor):
    """A network that lives in a foreign graph, known only by its tensors (the Udacity
    `helper.gen_test_output` gets a session, a logits tensor, keep_prob and the input): the
    prediction path's resize and upsample/decide stages run in a graph of their own around it
    (fcn.inference.prediction.Stages), so its pixels are the path's."""

    def __init__(self, sess, logits, keep_prob, image_input, image_shape, spec, threshold=0.5):
        from fcn.inference import prediction

        self.sess, self.logits, self.keep_prob, self.image_input = (
            sess,
            logits,
            keep_prob,
            image_input,
        )
        self.spec = spec
        self.network_size = tuple(image_shape)
        self.threshold = float(threshold)
        self.source = "the caller's graph"
        self._stages = prediction.Stages(image_shape, spec, self.threshold)

    def _predict_batch(self, batch, threshold):
        h, w = self.network_size
        x = self._stages.to_network(batch)
        out = self.sess.run(self.logits, {self.keep_prob: 1.0, self.image_input: x})
        # The Udacity logits are often flattened to (N*h*w, C).
        out = np.reshape(out, (len(batch), h, w, -1))
        return self._stages.finish(out, batch.shape[1:3], threshold)

    def close(self):
        self._stages.close()
