"""infer on one GeoTIFF scene: read, predict and write it block of rows by block of rows.

`predict_scene(model, job, opts, threshold)` opens job.path (fcn.geo.raster), predicts it and
writes job.outputs (overlay, prob, mask: fcn.geo.outputs) and job.polygons (fcn.geo.polygons):
- `--predict slide` at one scale streams: fcn.geo.stream reads the rows the windows reach and
  gives out the finished rows, so memory follows a strip of windows, not the scene, and the
  answer is the SlidePredictor's (at scale 1 bit for bit; at another scale fcn.geo.rescale
  resamples strips on the way in and out, equal up to the resampling's arithmetic);
- anything else (`whole`, several scales) needs the whole scene: it is read at once and
  predicted by the wrapped model (memory: the scene's), then written block by block.
A progress bar counts the windows. An error on the way removes every half-written file.
"""

import numpy as np
from tqdm import tqdm

from fcn.data import task
from fcn.geo import outputs as geo_outputs
from fcn.geo import polygons, raster, rescale, stream
from fcn.inference import overlays
from fcn.inference.windows import SlidePredictor, scaled_size

_BLOCK = geo_outputs.TILE  # rows per block when the scene is predicted whole


def streams(model):
    """Whether `model` predicts a scene strip by strip (slide at one scale)."""
    return isinstance(model, SlidePredictor)


def blocks(model, scene, threshold=None, progress=None):
    """(top, probs (n, W, C), rgb (n, W, 3), valid (n, W)) over the scene, top to bottom."""
    if streams(model):
        yield from rescale.slide_rows(model, scene.rows, scene.size, threshold, progress)
        return
    rgb, valid = scene.read_all()
    probs = model.predict(rgb, threshold)[0]
    if progress is not None:
        progress(1)
    for top in range(0, scene.size[0], _BLOCK):
        rows = slice(top, top + _BLOCK)
        yield top, probs[rows], rgb[rows], valid[rows]


def predict_scene(model, job, opts, threshold):
    """Predict job.path into job.outputs and job.polygons; returns the scene's (H, W) and
    whether it had a CRS."""
    spec = model.spec
    with raster.Scene(job.path, opts.bands, opts.stretch) as scene:
        overlay, prob, mask = job.outputs
        files = geo_outputs.Outputs(scene, overlay, prob, mask)
        regions = None
        if job.polygons:
            regions = polygons.Regions(
                polygons.polygon_classes(spec), spec.class_names, opts.min_area, opts.simplify
            )
        total = 1
        if streams(model):
            total = stream.window_count(model, scaled_size(scene.size, model.scale))
        try:
            with tqdm(total=total, desc=scene.stem, unit="win", leave=False) as bar:
                for top, probs, rgb, valid in blocks(model, scene, threshold, bar.update):
                    decided = model.decide(probs, threshold)
                    shown = None
                    if overlay:
                        painted = np.where(valid, decided, np.uint8(geo_outputs.MASK_NODATA))
                        shown = overlays.paint(rgb, painted, spec, opts.alpha)
                    files.write(shown, task.positive_probs(probs, spec), decided, valid)
                    if regions is not None:
                        regions.add(top, decided, valid, probs)
        except BaseException:
            files.discard()
            raise
        files.close()
        if regions is not None:
            transform = scene.transform if scene.georeferenced else None
            features = regions.features(transform)
            polygons.write_geojson(job.polygons, features, scene.crs)
        return scene.size, scene.georeferenced
