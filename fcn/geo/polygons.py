"""Predicted regions as polygons (rasterio.features.shapes + shapely), strip by strip, merged.

`Regions(classes, names)` takes the mask of a scene block of rows by block of rows (`add`) and
gives one GeoJSON feature per connected region of each class in `classes` (`features`):
- a region is a 4-connected set of valid pixels of one class (shapes' default connectivity);
  each strip's regions are labelled (cv2.connectedComponents, 4-connected) and vectorised
  (shapes of the labels: one polygon per region, holes kept), and a region cut by the border
  between two strips (a pixel of the same class straight above or below it) is one region: its
  pieces are unioned (shapely.union_all; they share whole pixel edges, so the union is exact);
- properties: `class` (name), `class_id`, `pixels` (its area in pixels), `area` (in the CRS's
  units squared: pixels times the pixel's area, |det| of the transform; pixels for plain
  images), `mean_prob` (the mean probability of its class over its pixels);
- `min_area` (pixels): smaller regions are left out; `simplify` (pixels): Douglas-Peucker
  tolerance (shapely simplify, topology preserved), applied in pixel space before the
  transform, so it means the same at any resolution.

Coordinates are the scene's CRS (through its transform) or pixels (x right, y down) for plain
images and GeoTIFFs without one. `geojson(features, crs)` writes a FeatureCollection with a
`crs` member naming the CRS (GeoJSON 2008's named CRS, read by GDAL/OGR and QGIS): RFC 7946
wants WGS84 longitude/latitude without a `crs` member, which would make areas in degrees and
the polygons not overlay the raster, so this is GeoJSON in the raster's CRS, not RFC 7946 (a
reader that needs it can `ogr2ogr -t_srs EPSG:4326`).
"""

import json

import cv2
import numpy as np

from fcn.errors import UserError


class _Forest:
    """Union-find over region ids (ints)."""

    def __init__(self):
        self.parent = {}

    def root(self, a):
        parent = self.parent
        while parent.get(a, a) != a:
            parent[a] = parent.get(parent[a], parent[a])  # halve the path
            a = parent[a]
        return a

    def union(self, a, b):
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class Regions:
    """Connected regions of `classes` (ids; names: index -> class name) over a scene's strips."""

    def __init__(self, classes, names, min_area=0, simplify=0.0):
        self.classes, self.names = tuple(classes), tuple(names)
        self.min_area, self.simplify = min_area, simplify
        self._pieces = {}  # id -> (class, polygon in pixels, pixels, sum of probability)
        self._last = {}  # class -> (the row below the last strip, its last row's ids (W,))
        self._forest = _Forest()
        self._next = 1

    def add(self, top, mask, valid, probs):
        """A strip at row `top`: mask (n, W) class ids, valid (n, W), probs (n, W, C)."""
        import shapely.geometry
        from rasterio import features
        from rasterio.transform import Affine

        for c in self.classes:
            region = ((mask == c) & valid).astype(np.uint8)
            count, labels = cv2.connectedComponents(region, connectivity=4, ltype=cv2.CV_32S)
            if count > 1:
                pixels = np.bincount(labels.ravel(), minlength=count)
                sums = np.bincount(labels.ravel(), probs[..., c].ravel(), minlength=count)
                shift = Affine.translation(0, top)
                for geom, value in features.shapes(labels, region > 0, 4, shift):
                    k = int(value)
                    polygon = shapely.geometry.shape(geom)
                    self._pieces[self._next + k - 1] = (c, polygon, int(pixels[k]), sums[k])
            ids = np.where(labels > 0, labels + (self._next - 1), 0)  # global ids, 0 none
            last = self._last.get(c)
            if last is not None and last[0] == top:
                joined = (last[1] > 0) & (ids[0] > 0)  # the same class straight across
                pairs = zip(last[1][joined].tolist(), ids[0][joined].tolist(), strict=True)
                for a, b in set(pairs):
                    self._forest.union(a, b)
            self._last[c] = (top + len(mask), ids[-1])
            self._next += count - 1

    def features(self, transform=None):
        """GeoJSON features (dicts), one per region, largest first; transform: the scene's
        affine (pixel -> CRS), None for pixel coordinates."""
        import shapely
        from shapely import affinity

        groups = {}
        for k in self._pieces:
            groups.setdefault(self._forest.root(k), []).append(k)
        area = abs(transform.determinant) if transform is not None else 1.0
        out = []
        for members in groups.values():
            c = self._pieces[members[0]][0]
            pixels = sum(self._pieces[k][2] for k in members)
            if pixels < self.min_area:
                continue
            shapes = [self._pieces[k][1] for k in members]
            geom = shapes[0] if len(shapes) == 1 else shapely.union_all(shapes)
            if self.simplify > 0:
                geom = geom.simplify(self.simplify, preserve_topology=True)
            if transform is not None:
                t = transform
                geom = affinity.affine_transform(geom, [t.a, t.b, t.d, t.e, t.c, t.f])
            mean = sum(self._pieces[k][3] for k in members) / pixels
            properties = dict(
                class_id=int(c),
                pixels=int(pixels),
                area=float(pixels * area),
                mean_prob=round(float(mean), 6),
            )
            properties["class"] = self.names[c]
            out.append(
                dict(type="Feature", geometry=shapely.geometry.mapping(geom), properties=properties)
            )
        out.sort(key=lambda f: -f["properties"]["pixels"])
        return out


def polygon_classes(spec):
    """The classes that get polygons: binary datasets their positive class; multiclass ones
    every class the overlays paint (a palette entry, not None: not background)."""
    from fcn.data import task

    if task.is_binary(spec):
        return (spec.positive_class,)
    return tuple(i for i, colour in enumerate(spec.palette) if colour is not None)


def crs_member(crs):
    """GeoJSON 2008's named CRS for a rasterio CRS (urn:ogc:def:crs:EPSG::n, or its WKT)."""
    epsg = crs.to_epsg()
    name = f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else crs.to_wkt()
    return dict(type="name", properties=dict(name=name))


def geojson(features, crs=None):
    """A FeatureCollection (dict): in `crs` (a `crs` member) or pixel coordinates (none)."""
    collection = dict(type="FeatureCollection", features=features)
    if crs is not None:
        collection["crs"] = crs_member(crs)
    return collection


def write_geojson(path, features, crs=None):
    """Write the FeatureCollection atomically (fcn.runs.atomic_write_bytes)."""
    from fcn import runs

    text = json.dumps(geojson(features, crs), separators=(",", ":"))
    try:
        runs.atomic_write_bytes(path, text.encode("utf-8"))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}; check --out") from None


def write_image_polygons(path, spec, mask, probs, opts):
    """A plain image's regions (mask (H, W), probs (H, W, C)) as GeoJSON in pixel coordinates,
    with opts' min_area and simplify."""
    regions = Regions(polygon_classes(spec), spec.class_names, opts.min_area, opts.simplify)
    regions.add(0, mask, np.ones(mask.shape, bool), probs)
    write_geojson(path, regions.features())
