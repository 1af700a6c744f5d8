"""The SpaceNet building metric over a split whose examples carry polygon ground truth (a
folder dataset's polygons/, fcn.data.datasets.folder): pooled TP, FP, FN and their precision,
recall and F1 (fcn.evaluation.polygons: one-to-one matches at IoU >= 0.5).

Each image's predicted mask is vectorised by the code `infer --polygons` runs
(fcn.geo.polygons.Regions: 4-connected regions of the positive class, `min_area` and
`simplify` in pixels), taken in order of mean probability, and mapped through the image's
transform when it is a georeferenced GeoTIFF, so proposals and truth share the truth's units:

- truth naming no CRS is in the image's frame (its CRS, or pixels, x right and y down, for a
  plain image or a GeoTIFF without one);
- truth naming a CRS against a georeferenced image is reprojected into the image's CRS where
  the two differ (pyproj, fcn.evaluation.polygons.reproject);
- truth naming a CRS against an image without one cannot be placed: a one-line error.

Counts are pooled over the images before the ratios, as SpaceNet scores a city.
"""

import warnings

from fcn.data import task
from fcn.errors import UserError
from fcn.evaluation import polygons
from fcn.geo import polygons as geo_polygons
from fcn.geo import raster


def image_frame(path):
    """(affine transform, rasterio CRS) of a georeferenced GeoTIFF, else (None, None)."""
    if not raster.is_geotiff(path):
        return None, None
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                transform, crs = src.transform, src.crs
    except (rasterio.errors.RasterioError, OSError):
        return None, None  # a TIFF GDAL cannot open was read as a plain image
    return (transform, crs) if crs is not None else (None, None)


def aligned_truth(path, geoms, truth_crs, image_path, image_crs):
    """The true polygons in the image's frame (the module docstring's rules)."""
    if truth_crs is None:
        return geoms
    if image_crs is None:
        raise UserError(
            f"polygons {path} are in {truth_crs} but image {image_path} has no CRS; write the "
            "polygons in pixels (no crs member) or georeference the image"
        )
    try:
        return polygons.reproject(geoms, truth_crs, image_crs.to_wkt())
    except UserError as e:
        raise UserError(f"polygons {path}: {e}") from None


class PolygonScores:
    """Pooled polygon matches of a binary task's positive class, one image at a time."""

    def __init__(self, spec, min_area=0.0, simplify=0.0):
        if not task.is_binary(spec):
            raise UserError(
                f"polygon ground truth scores one class; {spec.name} is {spec.task} "
                f"({len(spec.class_names)} classes): remove polygons/ or train a binary model"
            )
        self.spec, self.min_area, self.simplify = spec, min_area, simplify
        self.tp = self.fp = self.fn = self.images = 0
        self._iou_sum = 0.0

    def add(self, example, pred, probs):
        """pred (H, W) class ids, probs (H, W, C) of example (its `polygons` GeoJSON)."""
        import numpy as np
        import shapely.geometry

        geoms, _, truth_crs = polygons.read_features(example.polygons)
        transform, image_crs = image_frame(example.image_path)
        truths = aligned_truth(example.polygons, geoms, truth_crs, example.image_path, image_crs)
        spec = self.spec
        regions = geo_polygons.Regions(
            geo_polygons.polygon_classes(spec), spec.class_names, self.min_area, self.simplify
        )
        regions.add(0, pred, np.ones(pred.shape, bool), probs)
        found = regions.features(transform)
        proposals = [shapely.geometry.shape(f["geometry"]) for f in found]
        scores = [f["properties"]["mean_prob"] for f in found]
        counts = polygons.f1_scores(proposals, truths, scores=scores)
        self.tp, self.fp, self.fn = (
            self.tp + counts["tp"], self.fp + counts["fp"], self.fn + counts["fn"]
        )  # fmt: skip
        self._iou_sum += counts["mean_iou"] * counts["tp"]
        self.images += 1
        return counts

    def result(self):
        """metrics.json's "polygons": counts, ratios (0 where undefined, as SpaceNet's), the
        mean IoU of the matched pairs and what decided the matches."""
        tp = self.tp
        return dict(
            **polygons.count_scores(tp, self.fp, self.fn),
            mean_iou=self._iou_sum / tp if tp else 0.0,
            iou_threshold=polygons.IOU_THRESHOLD,
            images=self.images,
            min_area=self.min_area,
            simplify=self.simplify,
        )


def lines(result):
    """The console's and summary.md's sentence about result["polygons"], [] without one."""
    p = result.get("polygons")
    if not p:
        return []
    return [
        f"buildings as polygons (SpaceNet, one-to-one at IoU >= {p['iou_threshold']:g}, "
        f"{p['images']} image(s)): F1 {p['f1']:.4f}, precision {p['precision']:.4f}, recall "
        f"{p['recall']:.4f} (TP {p['tp']}, FP {p['fp']}, FN {p['fn']}; matched mean IoU "
        f"{p['mean_iou']:.4f})"
    ]
