"""GeoTIFF outputs written block by block into a temporary file, renamed when complete.

Each output has the input scene's size, CRS (none for a scene without one) and transform, is
tiled (TILE x TILE) and deflate-compressed, and is written in whole rows of tiles, so GDAL never
rewrites a compressed tile; rows are buffered until a row of tiles is full. The file is written
as `.<name>.<random>.tif` beside its destination and renamed onto it by `close()`; `discard()`
(an error on the way) removes it, so no half-written GeoTIFF is ever left.

What infer writes (fcn.geo.job):
    <stem>.tif       overlay, uint8 RGB: the scene as the network saw it with the classes painted
    <stem>_mask.tif  uint8 class ids, nodata MASK_NODATA (255)
    <stem>_prob.tif  float32 probability of the positive class in [0, 1] (binary datasets), the
                     blend's own numbers, nodata NaN (PROB_NODATA)
"""

import os
import tempfile
import warnings

import numpy as np

from fcn.errors import UserError

TILE = 256
MASK_NODATA = 255  # class ids are < 255
PROB_NODATA = float("nan")


class TiffWriter:
    """Write rows of an (H, W) or (H, W, bands) raster top to bottom: `write(rows)`, then
    `close()` (or `discard()`). scene: the fcn.geo.raster.Scene whose grid the file takes."""

    def __init__(self, path, scene, dtype, bands=1, nodata=None):
        import rasterio

        self.path, self.dtype, self.bands = path, np.dtype(dtype), bands
        folder = os.path.dirname(os.path.abspath(path))
        name = os.path.basename(path)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tif", dir=folder)
        os.close(fd)
        height, width = scene.size
        profile = dict(
            driver="GTiff",
            height=height,
            width=width,
            count=bands,
            dtype=self.dtype.name,
            crs=scene.crs,
            transform=scene.transform,
            nodata=nodata,
            tiled=True,
            blockxsize=TILE,
            blockysize=TILE,
            compress="deflate",
            # Horizontal differencing (floating-point for float32) before deflate.
            predictor=3 if self.dtype.kind == "f" else 2,
        )
        try:
            with warnings.catch_warnings():  # a scene without a CRS: pixel coordinates, said once
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._dst = rasterio.open(self._tmp, "w", **profile)
        except (rasterio.errors.RasterioError, OSError) as e:
            os.remove(self._tmp)
            raise UserError(f"cannot write {path} ({str(e).strip()[:160]}); check --out") from None
        self.size = (height, width)
        self._top = 0  # the first row not yet written
        self._pending = []

    def write(self, rows):
        """The next rows: (n, W) for one band, (n, W, bands) for several."""
        self._pending.append(np.asarray(rows, self.dtype))
        pending = sum(len(r) for r in self._pending)
        if pending >= TILE:
            self._flush(pending - pending % TILE)

    def _flush(self, count):
        from rasterio.windows import Window

        block = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        out, rest = block[:count], block[count:]
        self._pending = [rest] if len(rest) else []
        bands = out[None] if out.ndim == 2 else np.moveaxis(out, -1, 0)  # (bands, n, W)
        self._dst.write(bands, window=Window(0, self._top, self.size[1], count))
        self._top += count

    def finish(self):
        """Write what is buffered and close the temporary file (every row must be written)."""
        pending = sum(len(r) for r in self._pending)
        if pending:
            self._flush(pending)
        if self._top != self.size[0]:
            raise UserError(f"{self.path}: {self._top} of {self.size[0]} rows were predicted")
        self._dst.close()

    def close(self):
        """finish(), then rename the temporary file onto the destination."""
        self.finish()
        os.replace(self._tmp, self.path)

    def discard(self):
        if not self._dst.closed:
            self._dst.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)


class Outputs:
    """The GeoTIFFs of one scene, any of overlay, prob, mask (paths, None for not wanted):
    `write(overlay, positive, mask)` gives each its next rows; `close()` renames them all;
    `discard()` removes them all."""

    def __init__(self, scene, overlay=None, prob=None, mask=None):
        self.writers = {}
        try:
            if overlay:
                self.writers["overlay"] = TiffWriter(overlay, scene, np.uint8, bands=3)
            if prob:
                self.writers["prob"] = TiffWriter(prob, scene, np.float32, nodata=PROB_NODATA)
            if mask:
                self.writers["mask"] = TiffWriter(mask, scene, np.uint8, nodata=MASK_NODATA)
        except BaseException:
            self.discard()
            raise

    def write(self, overlay, positive, mask, valid):
        """Rows of the overlay (n, W, 3), positive-class probability (n, W) or None, class ids
        (n, W) and valid (n, W): nodata where not valid."""
        if "overlay" in self.writers:
            self.writers["overlay"].write(overlay)
        if "prob" in self.writers:
            self.writers["prob"].write(np.where(valid, positive, np.float32(PROB_NODATA)))
        if "mask" in self.writers:
            self.writers["mask"].write(np.where(valid, mask, np.uint8(MASK_NODATA)))

    def close(self):
        """Finish every file, then rename them all: all are written or none."""
        try:
            for writer in self.writers.values():
                writer.finish()
        except BaseException:
            self.discard()
            raise
        for writer in self.writers.values():
            os.replace(writer._tmp, writer.path)

    def discard(self):
        for writer in self.writers.values():
            writer.discard()
