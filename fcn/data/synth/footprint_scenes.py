"""Large georeferenced scenes beside the footprint tiles: <footprints>/scenes/ as a folder dataset

    images/<stem>.tif     RGB GeoTIFF, EPSG:32633 (UTM 33N), PIXEL_M metres a pixel, tiled, deflate
    labels/<stem>.tif     the building mask, 0/255 uint8 (the folder reader's binary default)
    polygons/<stem>.geojson   one feature per building, in the scene's CRS (fcn.geo.polygons)

drawn with the tile renderer's pieces (fcn.data.synth.footprints: ground, roads with cars, lots,
buildings with shadows, trees over them) on a street grid. Each building, road and tree draws
its own metres-per-pixel from the tiles' range, so the buildings' sizes in pixels follow the
tiles' distribution (a model trained on tiles sees them at its scale) while the file says
PIXEL_M; BIG_BUILDINGS of them are larger than a 192-pixel tile on purpose.

The polygons are the drawn visible-roof mask vectorised (rasterio.features.shapes over the
building ids): a roof cut in two by a crown is one MultiPolygon, and rasterising the polygons
gives the mask back exactly.
"""

from __future__ import annotations

import json
import math

import numpy as np

from fcn.data.synth import _common as C

SCENES_DIR = "scenes"
SCENE_COUNT = 2  # synth --kind footprints' default: ~2 s each to draw and write
SCENE_SIDE = 2048
MIN_SIDE = 384  # room for a large building (up to 340 px long) beside the streets
PIXEL_M = 0.3
EPSG = 32633
ORIGIN = (500_000, 5_000_000)  # the first scene's top-left corner (easting, northing), metres
BIG_BUILDINGS = 8  # per scene, longer than a tile (footprints.BIG_HALF: 200..340 px)
_KIND_CODE = 13  # the scenes' own random streams, apart from the tiles' (footprints: 3)
_PX = (0.35, 0.7)  # the tiles' metres per pixel, drawn per object here
_BLOCK = (280, 520)  # pixels between parallel streets
_DENSITY = 1.6e-4  # building sites tried per pixel: a tile's share of roofs on grass
_TREES = 2.6e-4  # trees per pixel, as on the tiles (0..17 on a ~190 x 190 tile)


def write(root, count, seed, side=SCENE_SIDE):
    """Write `count` scenes of side x side pixels into root/SCENES_DIR (images, labels,
    polygons)."""
    import rasterio
    from rasterio.transform import from_origin

    folders = {k: root / SCENES_DIR / k for k in ("images", "labels", "polygons")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for i in range(count):
        rng = C.image_rng(_KIND_CODE, seed, C.SPLIT_TEST, i)
        image, ids = render(rng, side, side)
        west, north = ORIGIN[0] + i * 1000, ORIGIN[1]  # scenes side by side, 1 km apart
        transform = from_origin(west, north, PIXEL_M, PIXEL_M)
        crs = rasterio.crs.CRS.from_epsg(EPSG)
        stem = f"scene_{i:03d}"
        profile = dict(
            driver="GTiff", height=side, width=side, dtype="uint8", crs=crs,
            transform=transform, tiled=True, blockxsize=256, blockysize=256, compress="deflate",
        )  # fmt: skip
        with rasterio.open(folders["images"] / f"{stem}.tif", "w", count=3, **profile) as dst:
            dst.write(np.moveaxis(image, -1, 0))
        with rasterio.open(folders["labels"] / f"{stem}.tif", "w", count=1, **profile) as dst:
            dst.write(np.where(ids > 0, 255, 0).astype(np.uint8)[None])
        collection = dict(
            type="FeatureCollection",
            crs=dict(type="name", properties=dict(name=f"urn:ogc:def:crs:EPSG::{EPSG}")),
            features=building_features(ids, transform),
        )
        text = json.dumps(collection, separators=(",", ":"))
        (folders["polygons"] / f"{stem}.geojson").write_text(text, encoding="utf-8")
    return count


def render(rng, height, width):
    """(image uint8 (H, W, 3) RGB, building ids int32 (H, W), 0 = none)."""
    from fcn.data.synth import footprints as F  # which imports this module

    layers = F.Layers(
        np.empty((height, width, 3), np.float32),
        np.full((height, width), F._GRASS_GRAIN, np.float32),
        np.zeros((height, width), np.int32),
        np.zeros((height, width), np.uint8),
    )
    F.ground(rng, layers.img, 64)  # patches of soil the size of the tiles' ones
    angle = rng.uniform(0, math.pi)
    d = np.array([math.cos(angle), math.sin(angle)])
    n = np.array([-d[1], d[0]])
    diag = math.hypot(height, width)
    centre = np.array([width / 2, height / 2])
    asphalt = np.float32([rng.uniform(70, 120)] * 3)
    for axis, across in ((d, n), (n, d)):  # the street grid: streets along d, then across
        offset = -diag / 2 + rng.uniform(0, _BLOCK[1])
        while offset < diag / 2:
            px = rng.uniform(*_PX)
            cars = int(rng.integers(3, 20))
            mid = centre + across * offset
            F.road(rng, layers, mid, axis, across, rng.uniform(3, 6) / px, diag, px, asphalt, cars)
            offset += rng.uniform(*_BLOCK)
    for _ in range(int(rng.integers(3, 8))):
        F.lot(rng, layers, rng.uniform((0, 0), (width, height)), d, rng.uniform(*_PX))
    sun = rng.uniform(0, 2 * math.pi)
    sun_dir = np.array([math.cos(sun), math.sin(sun)])
    shade = np.float32(rng.uniform(0.4, 0.6))
    ident = 1
    for _ in range(40 * BIG_BUILDINGS):  # the large ones first, while there is room
        if ident > BIG_BUILDINGS:
            break
        half = (rng.uniform(*F.BIG_HALF[0]), rng.uniform(*F.BIG_HALF[1]))
        ident += F.building(rng, layers, 0.5, d, n, sun_dir, shade, half, ident)
    for _ in range(round(_DENSITY * height * width)):
        ident += F.building(rng, layers, rng.uniform(*_PX), d, n, sun_dir, shade, None, ident)
    for _ in range(round(_TREES * height * width)):
        F.tree(rng, layers, rng.uniform(*_PX), sun_dir, shade)
    image = C.camera_response(rng, layers.img, layers.grain, noise_cell=2.0)
    return image, layers.label


def building_features(ids, transform):
    """GeoJSON features, one per building id > 0 still visible: its pixels' outline through
    transform (4-connected pieces; several make a MultiPolygon), coordinates rounded to mm."""
    import shapely
    import shapely.geometry
    from rasterio import features

    pieces = {}
    for geom, value in features.shapes(ids, ids > 0, 4, transform):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    pixels = np.bincount(ids.ravel())
    area = abs(transform.determinant)
    out = []
    for ident in sorted(pieces):
        parts = pieces[ident]
        geom = parts[0] if len(parts) == 1 else shapely.geometry.MultiPolygon(parts)
        geom = shapely.transform(geom, lambda xy: np.round(xy, 3))
        properties = dict(building=ident, pixels=int(pixels[ident]))
        properties["area"] = round(float(pixels[ident] * area), 3)
        out.append(
            dict(type="Feature", geometry=shapely.geometry.mapping(geom), properties=properties)
        )
    return out
