"""Reading a GeoTIFF scene as the uint8 RGB the network takes, strip by strip (rasterio).

`Scene(path, bands, stretch)` opens the file and checks it; `scene.rows(top, bottom)` reads
rows [top, bottom) as (uint8 (n, W, 3), bool valid (n, W)) with one windowed read, so nothing
ever holds the whole scene.

Bands: `bands` is 1-based, as rasterio and GDAL count them: three bands are R, G, B; one band
is repeated as grey. None takes 1,2,3 of a scene with 3 or more bands (a fourth, alpha or
near-infrared, is not fed to the network) and the one band of a 1-band scene as grey (noted, as
fcn.data.read_image notes grey images); a 2-band scene needs --bands.

Scaling to 0..255 (the network saw 8-bit images in training):
- uint8 scenes pass through unchanged, whatever `stretch` says.
- stretch 'percentile' (the default, for 16-bit and other types): per band, v -> 255 * (v - lo)
  / (hi - lo), rounded and clipped to 0..255, with lo and hi the 2nd and 98th percentiles of
  the band's valid pixels in a decimated read of the whole scene (longest side PREVIEW_SIDE,
  nearest neighbour, from overviews where the file has them): QGIS's default cumulative cut,
  computed once per scene, so every strip is scaled alike. hi <= lo maps the band to 0.
- stretch 'dtype': v -> 255 * (v - min) / (max - min) of the integer type's range (uint16:
  v * 255 / 65535), rounded; for integer types only.

Nodata: a pixel is left out (valid False) when every selected band masks it, rasterio's
`dataset_mask` rule over the selected bands (a nodata value, an alpha band or an internal mask).
Its RGB is 0 for the network; the prediction writes nodata there (fcn.geo.outputs).

A scene without a CRS is read in pixel coordinates (`georeferenced` False): its outputs carry
no CRS and the polygons are in pixels.
"""

import os
import warnings

import numpy as np

from fcn.errors import UserError

GEOTIFF_EXTS = (".tif", ".tiff")
STRETCHES = ("percentile", "dtype")
PERCENTILES = (2.0, 98.0)
PREVIEW_SIDE = 1024  # pixels of the longest side of the decimated read the percentiles come from
# GDAL's block cache (GDAL_CACHEMAX) defaults to 5% of RAM and keeps every tile read or written
# until it is full: 700 MB more peak memory on a 10,000 x 10,000 scene (24 GB RAM). Two rows of
# 256-pixel tiles of a 3-band scene (6 bytes a pixel) and the outputs' row (8) fit it up to
# ~37,000 columns; wider scenes decompress some tiles twice, nothing more.
GDAL_CACHE_BYTES = 128 * 2**20


def limit_gdal_cache():
    """Cap GDAL's block cache (process-wide) at GDAL_CACHE_BYTES, never raising it."""
    from rasterio import env

    current = env.get_gdal_config("GDAL_CACHEMAX")
    try:
        larger = current is None or int(current) > GDAL_CACHE_BYTES
    except ValueError:  # a user's own setting such as '10%': theirs to keep
        return
    if larger:
        env.set_gdal_config("GDAL_CACHEMAX", GDAL_CACHE_BYTES)


def is_geotiff(path):
    return path.lower().endswith(GEOTIFF_EXTS)


def parse_bands(text):
    """'1,2,3' -> (1, 2, 3); argparse's error for anything else (values checked by Scene)."""
    import argparse

    try:
        return tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bands must look like 1,2,3, got {text!r}") from None


def bands_problem(bands):
    """One-line message for a --bands value that no scene can satisfy, else None."""
    if bands is None:
        return None
    if len(bands) not in (1, 3) or min(bands) < 1:
        shown = ",".join(str(b) for b in bands)
        return f"--bands takes 3 band numbers (R,G,B) or 1 (grey), counted from 1, got {shown}"
    return None


def _first_line(error):
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:160]


class Scene:
    """An open GeoTIFF: size (H, W), crs (None without one), transform, bands, the stretch's
    per-band (lo, hi); `rows` reads strips, `close` closes the file."""

    def __init__(self, path, bands=None, stretch="percentile"):
        import rasterio

        self.path = path
        limit_gdal_cache()
        try:
            with warnings.catch_warnings():  # no CRS: pixel coordinates, infer says so once
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self._src = rasterio.open(path)
        except (rasterio.errors.RasterioError, OSError) as e:
            raise UserError(
                f"cannot read GeoTIFF {path} ({_first_line(e)}); replace it or convert it with "
                "gdal_translate"
            ) from None
        try:
            self._setup(bands, stretch)
        except BaseException:
            self._src.close()
            raise

    def _setup(self, bands, stretch):
        src, path = self._src, self.path
        count = src.count
        self.notes = []  # what infer warns about once (a grey scene)
        if bands is None:
            if count == 2:
                raise UserError(f"{path} has 2 bands; pass --bands 1 (grey) or --bands 1,2,2")
            if count == 1:
                self.notes.append("1 band read as grey (--bands chooses)")
            bands = (1,) if count == 1 else (1, 2, 3)
        bad = [b for b in bands if not 1 <= b <= count]
        if bad:
            raise UserError(
                f"--bands {','.join(map(str, bands))}: {path} has {count} band"
                f"{'s' if count > 1 else ''} (1..{count}); choose among them"
            )
        self.bands = tuple(bands) * (3 if len(bands) == 1 else 1)
        self.size = (src.height, src.width)
        self.crs = src.crs
        self.transform = src.transform
        self.georeferenced = src.crs is not None
        self.dtype = np.dtype(src.dtypes[self.bands[0] - 1])
        if self.dtype == np.uint8:
            self.stretch, self.limits = "none", None
        elif stretch == "dtype":
            if self.dtype.kind not in "iu":
                raise UserError(
                    f"{path} holds {self.dtype} samples; --stretch dtype is for integer types, "
                    "use --stretch percentile"
                )
            info = np.iinfo(self.dtype)
            self.stretch, self.limits = "dtype", [(float(info.min), float(info.max))] * 3
        else:
            self.stretch, self.limits = "percentile", self._percentiles()

    def _read(self, what, **kwargs):
        """src.read / src.read_masks, a failed read (a truncated file) as a one-line error."""
        import rasterio

        try:
            return getattr(self._src, what)(list(self.bands), **kwargs)
        except (rasterio.errors.RasterioError, OSError) as e:
            raise UserError(
                f"cannot read GeoTIFF {self.path} ({_first_line(e)}); the file is damaged or "
                "truncated: replace it"
            ) from None

    def preview(self):
        """(raw (3, h, w), valid (h, w)) of the whole scene decimated to PREVIEW_SIDE."""
        from rasterio.enums import Resampling

        height, width = self.size
        step = max(1.0, max(height, width) / PREVIEW_SIDE)
        shape = (3, max(1, round(height / step)), max(1, round(width / step)))
        raw = self._read("read", out_shape=shape, resampling=Resampling.nearest)
        masks = self._read("read_masks", out_shape=shape, resampling=Resampling.nearest)
        return raw, masks.any(axis=0)

    def _percentiles(self):
        raw, valid = self.preview()
        limits = []
        for band in raw:
            values = band[valid]
            if values.size == 0:
                limits.append((0.0, 0.0))
                continue
            lo, hi = np.percentile(values.astype(np.float64), PERCENTILES)
            limits.append((float(lo), float(hi)))
        return limits

    def to_uint8(self, raw):
        """raw (3, n, W) samples -> uint8 (n, W, 3) by the module docstring's rule."""
        if self.limits is None:
            return np.ascontiguousarray(np.moveaxis(raw, 0, -1))
        out = np.empty((*raw.shape[1:], 3), np.uint8)
        for i, (band, (lo, hi)) in enumerate(zip(raw, self.limits, strict=True)):
            if hi <= lo:
                out[..., i] = 0
                continue
            scaled = (band.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
            out[..., i] = np.clip(np.rint(scaled), 0, 255)
        return out

    def rows(self, top, bottom):
        """Rows [top, bottom): (uint8 RGB (n, W, 3), bool valid (n, W)); nodata pixels are 0."""
        from rasterio.windows import Window

        window = Window(0, top, self.size[1], bottom - top)
        raw = self._read("read", window=window)
        valid = self._read("read_masks", window=window).any(axis=0)
        rgb = self.to_uint8(raw)
        rgb[~valid] = 0
        return rgb, valid

    def read_all(self):
        """The whole scene as rows(0, H): for --predict whole and multi-scale, whose memory is
        the scene's."""
        return self.rows(0, self.size[0])

    @property
    def stem(self):
        return os.path.splitext(os.path.basename(self.path))[0]

    def describe(self):
        """'300x400, 3 bands uint16, EPSG:32633, percentile stretch' for the log."""
        crs = self.crs.to_string() if self.georeferenced else "no CRS (pixel coordinates)"
        stretch = {"none": "8-bit as is", "dtype": "dtype range", "percentile": "2-98% stretch"}
        bands = ",".join(map(str, self.bands))
        return (
            f"{self.size[0]}x{self.size[1]}, bands {bands} {self.dtype}, {crs}, "
            f"{stretch[self.stretch]}"
        )

    def close(self):
        self._src.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
