"""The training input pipeline: decode and resize once into a cache, then shuffled, augmented
batches of (raw images, class-id labels), prefetched in a thread."""

import dataclasses
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from fcn.data import augment
from fcn.data.datasets import read_label
from fcn.data.descriptors import KITTI_ROAD
from fcn.data.images import read_image
from fcn.errors import UserError

# A bad dataset is reported in one line: the first problem in full, then this many more names.
_MORE_BAD_NAMES = 3


def load_example(example, image_shape, spec=KITTI_ROAD, warn=print):
    """(image (h, w, 3) uint8, label (h, w) uint8 class ids or None) at the network's input
    size."""
    image = read_image(example.image_path, warn, grey_ok=spec.grey_images)
    h, w = image_shape
    label = None
    if example.label_path:
        label = read_label(example, spec, warn)
        if label.shape[:2] != image.shape[:2]:
            raise UserError(
                f"image {example.image_path} is {image.shape[1]}x{image.shape[0]} but its label "
                f"{example.label_path} is {label.shape[1]}x{label.shape[0]}; they must match"
            )
        # Nearest neighbour, as class indices must never be blended, sampled at pixel centres
        # (NEAREST_EXACT) so that the label stays aligned with the INTER_AREA image: plain
        # NEAREST samples each cell's corner, a shift of (scale - 1) / 2 source pixels that costs
        # small objects (a 10 px roof) several points of IoU.
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return image, label


@dataclasses.dataclass
class CachedSplit:
    """A split decoded, resized (and CLAHE'd) once: (N, h, w, 3) / (N, h, w) uint8 arrays."""

    examples: list
    images: np.ndarray
    labels: np.ndarray
    images_clahe: np.ndarray = None


def load_split(examples, image_shape, spec=KITTI_ROAD, clahe=None, threads=None):
    """Decode a split in parallel (OpenCV releases the GIL). clahe=(clip, grid) also caches the
    equalised images for augmentation."""
    if not examples:
        h, w = image_shape
        return CachedSplit([], np.zeros((0, h, w, 3), np.uint8), np.zeros((0, h, w), np.uint8))

    def work(ex):
        try:
            image, label = load_example(ex, image_shape, spec)
        except UserError as e:
            return e
        eq = augment.clahe(image, *clahe) if clahe else None
        return image, label, eq

    with ThreadPoolExecutor(threads or os.cpu_count()) as pool:
        results = list(pool.map(work, examples))
    # Every pair is checked before one error is raised, so a user fixes the data in one go.
    bad = [(ex, r) for ex, r in zip(examples, results, strict=True) if isinstance(r, UserError)]
    if len(bad) == 1:
        raise bad[0][1]
    if bad:
        more = ", ".join(ex.name for ex, _ in bad[1 : 1 + _MORE_BAD_NAMES])
        raise UserError(
            f"{len(bad)} of {len(examples)} pairs are unusable; first: {bad[0][1]} "
            f"(the others include {more})"
        )
    images = np.stack([r[0] for r in results])
    labels = np.stack([r[1] for r in results])
    images_clahe = np.stack([r[2] for r in results]) if clahe else None
    return CachedSplit(list(examples), images, labels, images_clahe)


def to_input(images):
    """uint8 (B, h, w, 3) -> the float32 raw 0..255 network input (normalising is in-graph)."""
    return images.astype(np.float32)


def epoch_batches(split, batch_size, augmenter=None, rng=None, order=None):
    """Yield (images float32 (B, h, w, 3) raw 0..255, labels uint8 (B, h, w) class ids with
    IGNORE_LABEL) over a shuffled epoch, or over order (the image indices a sampler drew:
    fcn.data.sampling; repeat factors make it longer or shorter than the split)."""
    if order is None:
        n = len(split.images)
        order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        images, labels = [], []
        for i in idx:
            image, label = split.images[i], split.labels[i]
            if augmenter is not None:
                eq = split.images_clahe[i] if split.images_clahe is not None else None
                image, label = augmenter(image, label, eq)
            images.append(image)
            labels.append(label)
        yield to_input(np.stack(images)), np.stack(labels)


def prefetch(iterable, depth=2):
    """Run a generator in a background thread, `depth` items ahead, so the step never waits."""
    q = queue.Queue(maxsize=depth)
    done = object()
    error = []

    def worker():
        try:
            for item in iterable:
                q.put(item)
        except BaseException as e:  # re-raised in the consumer
            error.append(e)
        finally:
            q.put(done)

    threading.Thread(target=worker, daemon=True).start()
    while True:
        item = q.get()
        if item is done:
            if error:
                raise error[0]
            return
        yield item
