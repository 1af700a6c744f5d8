"""Slide prediction of a scene read strip by strip: the SlidePredictor's answer, in bounded memory.

`slide_rows(slide, read, size)` yields the class probabilities of a scene of `size` (H, W)
block of rows by block of rows, top to bottom, reading the scene through `read(top, bottom)`
-> (uint8 RGB (n, W, 3), bool valid (n, W)) only as the windows reach it. It keeps the
contract of fcn.inference.windows.SlidePredictor (scale 1) exactly:

- the same windows (`slide.corners` over the padded size), taken `slide.batch_size` at a time
  in the same row-major order, so the inner predictor sees the same batches;
- the same padding: a scene narrower than the window is mirrored on the right strip by strip
  (cv2.BORDER_REFLECT_101 works along each row, so a strip's padding is the whole image's); a
  scene shorter than the window is one strip, read whole and padded as the SlidePredictor pads;
- the same blend, bit for bit: a row's weight sum W is summed over the windows covering it in
  the same order, and each window adds p_k * w_k / W into a float32 sum as the SlidePredictor
  adds it. Rows above the next window's start are complete (later windows start lower), so
  they are given out and dropped.

Memory: the rows between the first and last window of a batch plus one window height, i.e.
(h + stride * (batch_size / windows per row + 1)) rows of the scene's width, for the image
(uint8 x 3), the sum (float32 x C) and W (float32); not the scene.

Nodata: a window without one valid pixel is not predicted. It covers no valid pixel, so no valid
pixel's W or sum changes: valid pixels get exactly the SlidePredictor's answer, and the pixels
such windows alone cover get probability 0 (the caller writes nodata there).
"""

import bisect

import cv2
import numpy as np

from fcn.data.augment import IMAGE_BORDER


class _Rows:
    """Rows [top, top + len(data)) of a (rows, W, ...) array that grows at the bottom and is
    dropped from the top."""

    def __init__(self, width, tail=(), dtype=np.float32):
        self.top = 0
        self.data = np.zeros((0, width, *tail), dtype)

    @property
    def bottom(self):
        return self.top + len(self.data)

    def append(self, rows):
        self.data = np.concatenate([self.data, rows]) if len(self.data) else rows

    def view(self, top, bottom):
        return self.data[top - self.top : bottom - self.top]

    def drop_to(self, top):
        self.data = self.data[max(0, top - self.top) :]
        self.top = max(self.top, top)


def _pad_columns(rgb, valid, width):
    """Strip (n, W, 3) mirrored on the right to `width` columns (valid: False there)."""
    extra = width - rgb.shape[1]
    if extra <= 0:
        return rgb, valid
    return (
        cv2.copyMakeBorder(rgb, 0, 0, 0, extra, IMAGE_BORDER),
        np.pad(valid, ((0, 0), (0, extra))),
    )


def _whole_reader(read, size, window):
    """read() for a scene shorter than the window: read once, padded as SlidePredictor pads."""
    (height, width), (h, w) = size, window
    rgb, valid = read(0, height)
    rgb = cv2.copyMakeBorder(rgb, 0, h - height, 0, max(w - width, 0), IMAGE_BORDER)
    valid = np.pad(valid, ((0, h - height), (0, max(w - width, 0))))
    return lambda top, bottom: (rgb[top:bottom], valid[top:bottom])


def window_count(slide, size):
    """How many windows slide_rows predicts (at most) over a scene of `size` (H, W)."""
    h, w = slide.network_size
    return len(slide.corners((max(size[0], h), max(size[1], w))))


def slide_rows(slide, read, size, threshold=None, progress=None):
    """Yield (top, probs float32 (n, W, C), rgb uint8 (n, W, 3), valid bool (n, W)) for
    consecutive blocks of rows covering [0, H), as the module docstring says. slide: a
    SlidePredictor at scale 1; progress(k) is called after every batch of k windows."""
    if slide.scale != 1.0:
        raise ValueError("slide_rows predicts at scale 1; resize the scene for other scales")
    (height, width), (h, w) = size, slide.network_size
    padded = (max(height, h), max(width, w))
    if height < h:
        read = _whole_reader(read, size, (h, w))
    else:
        inner_read = read
        read = lambda top, bottom: _pad_columns(*inner_read(top, bottom), padded[1])  # noqa: E731
    corners = slide.corners(padded)
    starts = [y for y, _ in corners]  # sorted: the corners go row by row
    classes = len(slide.class_names)
    image = _Rows(padded[1], (3,), np.uint8)
    valid = _Rows(padded[1], (), bool)
    total = _Rows(padded[1])  # W, the summed window weights
    out = _Rows(padded[1], (classes,))  # sum_k p_k w_k / W

    def reach(bottom):
        """Read and lay out the rows down to `bottom` (image, valid, W, an empty sum)."""
        top = image.bottom
        if bottom <= top:
            return
        rgb, ok = read(top, bottom)
        image.append(rgb)
        valid.append(ok)
        weights = np.zeros((bottom - top, padded[1]), np.float32)
        # The windows meeting rows [top, bottom), in the SlidePredictor's order (same sums).
        for y, x in corners[
            bisect.bisect_right(starts, top - h) : bisect.bisect_left(starts, bottom)
        ]:
            a, b = max(y, top), min(y + h, bottom)
            weights[a - top : b - top, x : x + w] += slide.weight[a - y : b - y]
        total.append(weights)
        out.append(np.zeros((bottom - top, padded[1], classes), np.float32))

    done = 0  # rows given out

    def give(bottom):
        nonlocal done
        bottom = min(bottom, height)
        if bottom > done:
            yield (
                done,
                np.ascontiguousarray(out.view(done, bottom)[:, :width]),
                np.ascontiguousarray(image.view(done, bottom)[:, :width]),
                np.ascontiguousarray(valid.view(done, bottom)[:, :width]),
            )
            done = bottom
        for rows in (image, valid, total, out):
            rows.drop_to(bottom)

    step = slide.batch_size
    for start in range(0, len(corners), step):
        chunk = corners[start : start + step]
        reach(max(y for y, _ in chunk) + h)
        chunk = [(y, x) for y, x in chunk if valid.view(y, y + h)[:, x : x + w].any()]
        if chunk:
            windows = np.stack([image.view(y, y + h)[:, x : x + w] for y, x in chunk])
            probs = slide.inner.predict(windows, threshold)[0]  # (n, h, w, C)
            for (y, x), p in zip(chunk, probs, strict=True):
                share = slide.weight / total.view(y, y + h)[:, x : x + w]  # w_k / W, (h, w)
                out.view(y, y + h)[:, x : x + w] += p * share[..., None]
        if progress is not None:
            progress(min(step, len(corners) - start))
        following = corners[start + step][0] if start + step < len(corners) else padded[0]
        yield from give(following)
    yield from give(padded[0])
