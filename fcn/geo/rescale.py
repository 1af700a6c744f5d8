"""Slide at a scale other than 1 over a scene read strip by strip: the scene resampled to s times
its size, slid over at scale 1 (fcn.geo.stream), and the probabilities resampled back, each a
strip at a time, so memory stays bounded by strips, not by the scene.

Resampling is separable: out = R @ image @ C^T, R (L', L) for the rows and C for the columns,
with windows.resize's interpolations as sparse matrices (`matrix`): INTER_AREA's weights
(host_stages.area_weights' formula) where the image shrinks, the half-pixel two-tap bilinear
weights (cv2 INTER_LINEAR, host_stages._taps) where it grows, and L' = windows.scaled_size. An
output row needs only the input rows in its row of R (a band of about 1/s rows): scaled rows
are computed from the source rows their band reaches, source rows are given out as soon as the
scaled rows their band reaches have come. The answer is windows.SlidePredictor(inner, overlap,
s)'s up to the arithmetic: float32 products where cv2 rounds uint8 in fixed point (an input level
at most) and its float coefficients (1e-6); tests/test_geotiff.py bounds the difference.
"""

import numpy as np
import scipy.sparse

from fcn.geo import stream
from fcn.inference import host_stages, windows


def matrix(in_size, out_size, shrink):
    """(out, in) float32 CSR: a side of in_size pixels resampled to out_size, INTER_AREA's
    weights when `shrink`, else the half-pixel bilinear taps; each row sums to 1."""
    i = np.arange(out_size)
    if shrink:
        scale = in_size / out_size
        taps = int(np.ceil(scale)) + 1  # source pixels one output pixel can overlap
        j = (i * in_size // out_size)[:, None] + np.arange(taps)[None, :]  # (out, taps)
        lo, hi = i[:, None] * scale, (i[:, None] + 1) * scale
        w = np.maximum(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0) / scale
        w[j >= in_size] = 0.0
        rows, cols, values = np.repeat(i, taps), np.minimum(j, in_size - 1).ravel(), w.ravel()
    else:
        lower, upper, t = host_stages._taps(in_size, out_size)
        rows, cols = np.concatenate([i, i]), np.concatenate([lower, upper])
        values = np.concatenate([1.0 - t, t])
    m = scipy.sparse.csr_matrix(
        (values.astype(np.float32), (rows, cols)), shape=(out_size, in_size)
    )
    m.eliminate_zeros()
    return m


def _band(m, top, bottom):
    """(first, last + 1) of the columns rows [top, bottom) of m reach."""
    block = m[top:bottom]
    return int(block.indices.min()), int(block.indices.max()) + 1


def _apply(rows, cols, block):
    """rows (n, k) sparse @ block (k, W, ...) @ cols^T (W', W): (n, W', ...) float32."""
    k, width = block.shape[:2]
    tail = block.shape[2:]
    y = rows @ block.reshape(k, -1).astype(np.float32)  # (n, W * ...)
    n = y.shape[0]
    y = np.moveaxis(y.reshape(n, width, -1), 1, 0).reshape(width, -1)  # (W, n * ...)
    y = cols @ y  # (W', n * ...)
    return np.moveaxis(y.reshape(cols.shape[0], n, -1), 0, 1).reshape(n, cols.shape[0], *tail)


def slide_rows(slide, read, size, threshold=None, progress=None):
    """stream.slide_rows' blocks (top, probs (n, W, C), rgb (n, W, 3), valid (n, W)) for a
    SlidePredictor at any scale; at scale 1 it is stream.slide_rows itself."""
    if slide.scale == 1.0:
        yield from stream.slide_rows(slide, read, size, threshold, progress)
        return
    (height, width) = size
    scaled = windows.scaled_size(size, slide.scale)
    down = scaled[0] <= height and scaled[1] <= width  # windows.resize's choice, image
    back = height <= scaled[0] and width <= scaled[1]  # and probabilities back
    r_in, c_in = matrix(height, scaled[0], down), matrix(width, scaled[1], down)
    r_out, c_out = matrix(scaled[0], height, back), matrix(scaled[1], width, back)

    def read_scaled(top, bottom):
        a, b = _band(r_in, top, bottom)
        rgb, valid = read(a, b)
        rows = r_in[top:bottom][:, a:b]
        image = np.clip(np.rint(_apply(rows, c_in, rgb)), 0, 255).astype(np.uint8)
        return image, _apply(rows, c_in, valid.astype(np.float32)) > 0  # any valid source

    at_one = windows.SlidePredictor(slide.inner, slide.overlap, 1.0)
    probs = None  # stream._Rows of the scaled probabilities, (rows, W', C)
    ends = np.maximum.reduceat(r_out.indices, r_out.indptr[:-1]) + 1  # each row's band end
    done = 0  # source rows given out
    for top, p, _, _ in stream.slide_rows(at_one, read_scaled, scaled, threshold, progress):
        if probs is None:
            probs = stream._Rows(scaled[1], (p.shape[-1],))
        probs.append(p)
        ready = int(np.searchsorted(ends, probs.bottom, side="right"))  # bands complete
        if top + len(p) == scaled[0]:
            ready = height
        if ready > done:
            a, b = _band(r_out, done, ready)
            out = _apply(r_out[done:ready][:, a:b], c_out, probs.view(a, b))
            rgb, valid = read(done, ready)
            yield done, out, rgb, valid
            done = ready
            if done < height:
                probs.drop_to(_band(r_out, done, done + 1)[0])
