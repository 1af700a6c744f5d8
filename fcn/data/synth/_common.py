"""Helpers shared by the synthetic dataset kinds: argument checks, per-image random streams,
image sizes, staged (all-or-nothing) output folders, textures, the camera response and writers.

Every kind renders a float32 RGB picture (0..255) together with a per-pixel "grain" map (how
rough the surface under each pixel is), then `camera_response` lays one shared noise field over
it scaled by the grain, blurs, and applies a lighting curve. Classes therefore differ in texture
statistics as well as colour, and colours of different classes overlap.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import math
import multiprocessing
import operator
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fcn.errors import UserError

SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = 0, 1, 2  # enter the per-image seed: splits never interact
MIN_SIDE = 24  # smaller frames leave no room for the objects every kind draws
SHIFT = 4  # fractional bits of polygon vertices handed to cv2, for sub-pixel edges
_JPEG_QUALITY = 92
# Fewer images than this are rendered in this process: starting the workers costs ~1 s.
_PARALLEL_MIN = 64


def check_int(name, value, minimum):
    try:
        number = operator.index(value)
    except TypeError:
        raise UserError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise UserError(f"{name} must be at least {minimum}, got {number}")
    return number


def check_sizes(sizes):
    """None (the kind's own size mix) or a non-empty tuple of (height, width) pairs."""
    if sizes is None:
        return None
    try:
        sizes = tuple((operator.index(h), operator.index(w)) for h, w in sizes)
    except (TypeError, ValueError):
        raise UserError(f"sizes must be (height, width) pairs, got {sizes!r}") from None
    if not sizes or min(min(s) for s in sizes) < MIN_SIDE:
        raise UserError(f"sizes must be non-empty (height, width) pairs of at least {MIN_SIDE}")
    return sizes


def parallel_map(fn, jobs):
    """[fn(*job) for job in jobs], in that order, rendered by one worker process per core when
    there are many. Every image draws from its own generator (`image_rng`), so the files are
    byte-identical however they are shared out. fn must be a module-level function; the workers
    are spawned, not forked: the parent may already hold TensorFlow's threads (`demo`)."""
    jobs = list(jobs)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if len(jobs) < _PARALLEL_MIN or cores < 2:
        return [fn(*job) for job in jobs]
    context = multiprocessing.get_context("spawn")
    # Chunks of several images: each worker writes its own files, little crosses the pipe.
    chunk = max(1, len(jobs) // (8 * cores))
    with concurrent.futures.ProcessPoolExecutor(cores, mp_context=context) as pool:
        return list(pool.map(fn, *zip(*jobs, strict=True), chunksize=chunk))


def image_rng(kind_code, seed, split, i):
    # One generator per image: output never depends on generation order, and kinds differ.
    return np.random.default_rng([seed, kind_code, split, i])


def pick_size(rng, sizes, i, longs, aspects, tiny=(40, 64), tiny_share=0.05):
    """(height, width): sizes[i % n] when sizes are given, else drawn: a long side from longs
    (multiples of 8), an aspect (height / width, < 1 is landscape) and a few tiny frames."""
    if sizes is not None:
        return sizes[i % len(sizes)]
    lo, hi = tiny if rng.random() < tiny_share else longs
    long_side = 8 * int(rng.integers(lo // 8, hi // 8 + 1))
    aspect = float(aspects[int(rng.integers(len(aspects)))])
    if aspect <= 1:
        h, w = long_side * aspect, long_side
    else:
        h, w = long_side, long_side / aspect
    return max(MIN_SIDE, 2 * round(h / 2)), max(MIN_SIDE, 2 * round(w / 2))


@contextlib.contextmanager
def staged(out, names):
    """Yield a hidden folder inside out; on success move its <name> folders to out/<name>.

    An interrupted or failed run leaves nothing behind, and an existing dataset is never
    overwritten.
    """
    out = Path(out)
    for name in names:
        if (out / name).exists():
            raise UserError(f"{out / name} already exists: pick another --out or delete it")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".synth-", dir=out))
    try:
        yield tmp
        for name in names:
            (tmp / name).chmod(0o755)
            try:
                (tmp / name).rename(out / name)
            except OSError as err:  # another run created it meanwhile
                raise UserError(f"{out / name} already exists: pick another --out") from err
        tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def smooth_noise(rng, height, width, cell):
    """(height, width) float32 noise of roughly unit size, varying over about cell pixels."""
    cell = max(float(cell), 1.0)
    small = rng.standard_normal((math.ceil(height / cell) + 2, math.ceil(width / cell) + 2)).astype(
        np.float32
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def fill(canvases, polys, values, origin=(0, 0)):
    """cv2.fillPoly each (canvas, value) pair with the same polygons (lists of (n, 2) points).

    origin (x, y), whole pixels: the canvases are windows of a larger picture starting there
    and the polygons are in the picture's coordinates. The shift is applied to the fixed-point
    vertices (cv2's offset), so a window gets exactly the pixels the whole picture would."""
    pts = [np.round(np.clip(p, -1e5, 1e5) * (1 << SHIFT)).astype(np.int32) for p in polys]
    offset = (-int(origin[0]) << SHIFT, -int(origin[1]) << SHIFT)
    for canvas, value in zip(canvases, values, strict=True):
        if isinstance(value, (tuple, list, np.ndarray)):
            value = tuple(float(v) for v in value)
        else:
            value = float(value)
        cv2.fillPoly(canvas, pts, value, cv2.LINE_8, SHIFT, offset)


def window(shape, polys, margin=2):
    """(rows slice, columns slice, origin (x, y)) of the pixels of a (H, W, ...) picture that
    polys ((n, 2) x, y points) can touch, with margin pixels around; None when off the picture."""
    pts = np.concatenate([np.clip(p, -1e5, 1e5) for p in polys])
    x0, y0 = (max(0, math.floor(v) - margin) for v in pts.min(axis=0))
    x1, y1 = (math.ceil(v) + margin + 1 for v in pts.max(axis=0))
    x1, y1 = min(shape[1], x1), min(shape[0], y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return slice(y0, y1), slice(x0, x1), (x0, y0)


def ellipse_poly(cx, cy, ax, ay, angle=0.0, n=24):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = ax * np.cos(t), ay * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=-1)


def camera_response(rng, img, grain, noise_cell=3.0, sensor=(2, 10), blur=0.5):
    """Surface texture and sensor noise, lens blur, then lighting: gain, gamma, contrast, cast.

    img: (H, W, 3) float32 RGB 0..255, changed in place; grain: (H, W) float32 texture strength.
    Returns (H, W, 3) uint8 RGB.
    """
    height, width = grain.shape
    white = rng.random((height, width), dtype=np.float32) - np.float32(0.5)
    medium = smooth_noise(rng, height, width, noise_cell)
    img *= (1 + grain * (1.6 * white + 0.8 * medium))[..., None]
    img += (white * np.float32(rng.uniform(*sensor)))[..., None]
    image = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < blur:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 0.9))
    # Lighting as one lookup table per channel (much cheaper than float maths per pixel).
    level = (np.arange(256, dtype=np.float64)[:, None] + 0.5) / 256
    gain = rng.uniform(0.7, 1.25) * (1 + rng.normal(0, 0.05, 3))
    curve = (level ** rng.uniform(0.8, 1.25) * gain - 0.5) * rng.uniform(0.8, 1.15) + 0.5
    lut = np.clip(curve * 255 + 0.5, 0, 255).astype(np.uint8)  # (256, 3)
    return cv2.LUT(image, lut[None])


def write_png(path, array):
    """RGB (H, W, 3) or single-channel (H, W) uint8 PNG, fast compression."""
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1]
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array, params):
        raise OSError(f"could not write {path}")


def write_jpeg(path, array):
    """RGB (H, W, 3) or grayscale (H, W) uint8 JPEG (grayscale stays 1 channel)."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), array, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
        raise OSError(f"could not write {path}")


def write_palette_png(path, index, palette):
    """Mode "P" PNG whose palette index is the class id; palette: list of (r, g, b)."""
    img = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    flat = [c for rgb in palette for c in rgb]
    img.putpalette(flat + [0] * (768 - len(flat)))
    img.save(path, optimize=False, compress_level=1)


def instance_ids(label_ids, instance_labels):
    """Cityscapes' _gtFine_instanceIds (H, W) uint16 from label ids (H, W): each 8-connected
    region of a label in instance_labels is one instance, label id * 1000 + n (n = 0, 1, ...);
    every other pixel keeps its label id."""
    out = label_ids.astype(np.uint16)
    for label in instance_labels:
        count, regions = cv2.connectedComponents((label_ids == label).astype(np.uint8), 8)
        for n in range(1, count):
            out[regions == n] = label * 1000 + n - 1
    return out
