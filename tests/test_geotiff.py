"""GeoTIFF scenes (fcn.geo): the stretch by hand, strip-by-strip slide equal to the in-memory
SlidePredictor bit for bit, outputs with the input's grid (CRS, transform, size, tiles,
deflate, nodata), progress, one-line errors and nothing half-written, and infer end to end."""

import os
import types

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from fcn import data
from fcn.errors import UserError
from fcn.geo import job as geo_job
from fcn.geo import outputs, raster, rescale, stream
from fcn.inference import media, windows
from fcn.inference.predictor import Predictor

UTM = "EPSG:32633"  # WGS 84 / UTM zone 33N
GRID = from_origin(500000.0, 4000000.0, 0.3, 0.3)  # 0.3 m pixels


class _Fake(Predictor):
    """A network of any input size: road = fn(batch (N, H, W, 3)); records its batches."""

    def __init__(self, fn, network_size=(32, 48), batch_size=4):
        self.fn, self.network_size, self.batch_size = fn, network_size, batch_size
        self.spec, self.batches = data.KITTI_ROAD, []

    def _predict_batch(self, batch, threshold):
        self.batches.append(batch.copy())
        road = np.asarray(self.fn(batch), np.float32)
        probs = np.stack([1.0 - road, road], axis=-1)
        return probs, self.decide(probs, threshold)


def _window_mean(batch):  # each pixel's red and its window's mean green: blending shows
    green = batch[..., 1].mean(axis=(1, 2), keepdims=True)
    return batch[..., 0] / 510.0 + green / 510.0


def _write(path, array, crs=UTM, nodata=None, **profile):
    """(bands, H, W) array -> a GeoTIFF at path."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=array.shape[1],
        width=array.shape[2],
        count=array.shape[0],
        dtype=array.dtype.name,
        crs=crs,
        transform=GRID if crs else rasterio.transform.IDENTITY,
        nodata=nodata,
        **profile,
    ) as dst:
        dst.write(array)
    return str(path)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """300 x 400 scenes: 8-bit, and 16-bit (0..4000) with nodata 0 in its top-left 40 x 50."""
    folder = tmp_path_factory.mktemp("scenes")
    rng = np.random.default_rng(0)
    wide = rng.integers(1, 4000, (3, 300, 400), dtype=np.uint16)
    wide[:, :40, :50] = 0
    return dict(
        u8=_write(folder / "u8.tif", rng.integers(0, 256, (3, 300, 400), dtype=np.uint8)),
        u16=_write(folder / "u16.tif", wide, nodata=0),
    )


def _opts(**changes):
    values = dict(bands=None, stretch="percentile", alpha=0.5, min_area=0, simplify=0.0)
    return types.SimpleNamespace(**{**values, **changes})


def test_percentile_and_dtype_stretch_by_hand(tmp_path):
    # Band values 0..99, each once: numpy's linear 2nd / 98th percentiles are 1.98 and 97.02,
    # so 50 -> 255 * (50 - 1.98) / 95.04 = 128.84 -> 129, 0 -> 0 (clipped), 99 -> 255.
    ramp = np.arange(100, dtype=np.uint16).reshape(1, 10, 10)
    path = _write(tmp_path / "ramp.tif", ramp)
    with raster.Scene(path, bands=(1,)) as scene:
        assert scene.limits[0] == pytest.approx((1.98, 97.02))
        rgb, valid = scene.rows(5, 6)  # values 50..59
        assert rgb.shape == (1, 10, 3) and valid.all()
        assert rgb[0, 0].tolist() == [129, 129, 129]
        assert scene.to_uint8(np.array([[[0, 99]]] * 3, np.uint16))[0].tolist() == [
            [0] * 3,
            [255] * 3,
        ]
    # dtype: v * 255 / 65535: 32768 -> 127.502 -> 128; 65535 -> 255.
    with raster.Scene(path, bands=(1, 1, 1), stretch="dtype") as scene:
        out = scene.to_uint8(np.array([[[32768, 65535]]] * 3, np.uint16))
        assert out[0, :, 0].tolist() == [128, 255]


def test_8bit_passes_as_is_and_nodata_is_left_out(scenes):
    with rasterio.open(scenes["u8"]) as src:
        raw = src.read()
    with raster.Scene(scenes["u8"], stretch="dtype") as scene:
        assert scene.stretch == "none"
        rgb, valid = scene.read_all()
        assert np.array_equal(rgb, np.moveaxis(raw, 0, -1)) and valid.all()
    with raster.Scene(scenes["u16"]) as scene:
        rgb, valid = scene.rows(30, 50)
        assert not valid[:10, :50].any() and valid[:10, 50:].all() and valid[10:].all()
        assert (rgb[~valid] == 0).all()


@pytest.mark.parametrize("size", [(300, 400), (20, 400), (300, 30), (20, 30)])
@pytest.mark.parametrize("batch_size", [1, 4, 13])
def test_strips_equal_the_in_memory_slide_bit_for_bit(scenes, size, batch_size):
    # Window 32 x 48, overlap 0.25; scenes taller and wider than it, shorter (20 rows: padded,
    # read in one go) and narrower (30 columns: each strip mirrored on the right).
    with raster.Scene(scenes["u16"]) as scene:
        rgb, valid = scene.read_all()
    rgb, valid = rgb[: size[0], : size[1]].copy(), valid[: size[0], : size[1]]
    whole = _Fake(_window_mean, batch_size=batch_size)
    want = windows.SlidePredictor(whole, overlap=0.25).predict(rgb)[0]
    fake = _Fake(_window_mean, batch_size=batch_size)
    slide = windows.SlidePredictor(fake, overlap=0.25)
    calls = []
    blocks = list(
        stream.slide_rows(slide, lambda a, b: (rgb[a:b], valid[a:b]), size, None, calls.append)
    )
    tops = [top for top, *_ in blocks]
    assert tops[0] == 0 and tops == sorted(tops)
    got = np.concatenate([p for _, p, _, _ in blocks])
    assert got.shape == want.shape
    assert np.array_equal(got[valid], want[valid])
    assert np.array_equal(np.concatenate([r for _, _, r, _ in blocks]), rgb)
    assert sum(calls) == stream.window_count(slide, size) == len(slide.corners(want.shape[:2]))
    # Only windows wholly in the nodata corner are skipped; the rest came in the same batches.
    seen = [w for b in fake.batches for w in b]
    assert len(seen) <= sum(len(b) for b in whole.batches)
    if valid.all():
        assert all(np.array_equal(a, b) for a, b in zip(fake.batches, whole.batches, strict=True))


@pytest.mark.parametrize("scale", [0.5, 0.7, 1.5])
@pytest.mark.parametrize("size", [(300, 400), (300, 30)])
def test_strips_at_another_scale_equal_the_in_memory_slide_there(scenes, size, scale):
    """rescale.slide_rows against SlidePredictor(scale=s) on the whole array: the resampled
    strips differ from cv2.resize of the whole scene by an input level at most (cv2's fixed
    point), which moves _window_mean by at most 2/510; the rows come in order, each once."""
    with raster.Scene(scenes["u16"]) as scene:
        rgb, valid = scene.read_all()
    rgb, valid = rgb[: size[0], : size[1]].copy(), valid[: size[0], : size[1]]
    want = windows.SlidePredictor(_Fake(_window_mean), overlap=0.25, scale=scale).predict(rgb)[0]
    slide = windows.SlidePredictor(_Fake(_window_mean), overlap=0.25, scale=scale)
    calls = []
    blocks = list(
        rescale.slide_rows(slide, lambda a, b: (rgb[a:b], valid[a:b]), size, None, calls.append)
    )
    tops = [top for top, *_ in blocks]
    assert tops[0] == 0 and tops == sorted(tops) and len(blocks) > 1
    got = np.concatenate([p for _, p, _, _ in blocks])
    assert got.shape == want.shape
    diff = np.abs(got - want)[valid]
    assert diff.max() <= 2 / 510 + 1e-5 and diff.mean() < 1e-3
    assert np.array_equal(np.concatenate([r for _, _, r, _ in blocks]), rgb)
    assert sum(calls) == stream.window_count(slide, windows.scaled_size(size, scale))


def test_rescale_matrices_are_opencvs_resizes():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
    probs = rng.random((90, 70, 2)).astype(np.float32)
    for scale in (0.33, 0.5, 1.5, 2.0):
        h, w = windows.scaled_size((90, 70), scale)
        shrink = scale < 1
        rows, cols = rescale.matrix(90, h, shrink), rescale.matrix(70, w, shrink)
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-6)
        got = np.rint(rescale._apply(rows, cols, image))
        assert np.abs(got - windows.resize(image, (h, w))).max() <= 1.0
        got = rescale._apply(rows, cols, probs)
        np.testing.assert_allclose(got, windows.resize(probs, (h, w)), atol=1e-4)


def test_outputs_keep_the_grid_and_equal_the_in_memory_slide(scenes, tmp_path):
    fake = _Fake(_window_mean)
    slide = windows.SlidePredictor(fake, overlap=0.25)
    paths = [str(tmp_path / f"u16{s}.tif") for s in ("", "_prob", "_mask")]
    job = media.Job(scenes["u16"], False, tuple(paths), str(tmp_path / "u16.geojson"))
    size, georeferenced = geo_job.predict_scene(slide, job, _opts(), threshold=0.5)
    assert size == (300, 400) and georeferenced
    with raster.Scene(scenes["u16"]) as scene:
        rgb, valid = scene.read_all()
    want = windows.SlidePredictor(_Fake(_window_mean), overlap=0.25).predict(rgb)[0][..., 1]
    for path in paths:
        with rasterio.open(path) as out:
            assert (out.crs, out.transform, out.shape) == (
                rasterio.crs.CRS.from_string(UTM),
                GRID,
                (300, 400),
            )
            assert out.profile["tiled"] and out.block_shapes[0] == (256, 256)
            assert out.compression == rasterio.enums.Compression.deflate
    with rasterio.open(paths[1]) as out:
        prob = out.read(1)
        assert out.dtypes[0] == "float32" and np.isnan(out.nodata)
    assert np.array_equal(prob[valid], want[valid]) and np.isnan(prob[~valid]).all()
    with rasterio.open(paths[2]) as out:
        mask = out.read(1)
        assert out.nodata == outputs.MASK_NODATA
    assert np.array_equal(mask[valid], (want[valid] >= 0.5).astype(np.uint8))
    assert (mask[~valid] == 255).all()
    assert sorted(os.listdir(tmp_path)) == sorted(
        os.path.basename(p) for p in [*paths, job.polygons]
    )


def test_a_scene_without_crs_is_in_pixels(tmp_path):
    path = _write(tmp_path / "plain.tif", np.full((3, 40, 60), 200, np.uint8), crs=None)
    job = media.Job(path, False, (None, None, str(tmp_path / "m.tif")), str(tmp_path / "p.geojson"))
    fake = _Fake(lambda b: b[..., 0] / 255.0)  # road everywhere: one region, the whole scene
    _, georeferenced = geo_job.predict_scene(windows.SlidePredictor(fake), job, _opts(), 0.5)
    assert not georeferenced
    with rasterio.open(job.outputs[2]) as out:
        assert out.crs is None and (out.read(1) == 1).all()
    import json

    collection = json.load(open(job.polygons))
    assert "crs" not in collection
    (feature,) = collection["features"]
    assert feature["properties"]["pixels"] == 40 * 60 and feature["properties"]["area"] == 2400
    xs, ys = zip(*feature["geometry"]["coordinates"][0], strict=True)
    assert (min(xs), max(xs), min(ys), max(ys)) == (0, 60, 0, 40)


def test_bad_bands_two_bands_and_unreadable_files_are_one_line_errors(scenes, tmp_path):
    with pytest.raises(UserError, match=r"--bands 1,2,4: .*u8.tif has 3 bands \(1..3\)"):
        raster.Scene(scenes["u8"], bands=(1, 2, 4))
    two = _write(tmp_path / "two.tif", np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(UserError, match="two.tif has 2 bands; pass --bands 1 .grey. or"):
        raster.Scene(two)
    grey = _write(tmp_path / "grey.tif", np.arange(64, dtype=np.uint8).reshape(1, 8, 8))
    with raster.Scene(grey) as scene:  # one band: grey, noted
        assert scene.bands == (1, 1, 1) and scene.notes == ["1 band read as grey (--bands chooses)"]
        rgb, _ = scene.rows(1, 2)
        assert rgb[0, :, 0].tolist() == list(range(8, 16)) and (rgb == rgb[..., :1]).all()
    assert raster.bands_problem((1, 2)) == (
        "--bands takes 3 band numbers (R,G,B) or 1 (grey), counted from 1, got 1,2"
    )
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(UserError, match=r"^cannot read GeoTIFF .*junk.tif \(.*\); replace it"):
        raster.Scene(str(junk))


def test_a_truncated_tiff_fails_and_leaves_nothing(tmp_path):
    rng = np.random.default_rng(1)
    full = _write(tmp_path / "full.tif", rng.integers(0, 256, (3, 300, 400), dtype=np.uint8))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(open(full, "rb").read()[:150_000])  # of 360,000 bytes of pixels
    out = tmp_path / "out"
    out.mkdir()
    job = media.Job(str(cut), False, (str(out / "cut.tif"), None, str(out / "cut_mask.tif")))
    with pytest.raises(UserError, match=r"cut.tif .*damaged or truncated: replace it"):
        geo_job.predict_scene(windows.SlidePredictor(_Fake(_window_mean)), job, _opts(), 0.5)
    assert os.listdir(out) == []


def test_infer_on_a_16bit_geotiff_end_to_end(trained_run, scenes, tmp_path):
    from fcn import cli
    from fcn.inference import restore

    out = tmp_path / "out"
    argv = ["infer", "--run", trained_run, scenes["u16"], "--out", str(out), "--save-mask"]
    argv += ["--save-prob", "--polygons", "--predict", "slide", "--precision", "float32"]
    assert cli.main(argv) == 0
    assert sorted(os.listdir(out)) == ["u16.geojson", "u16.tif", "u16_mask.tif", "u16_prob.tif"]
    with raster.Scene(scenes["u16"]) as scene:
        rgb, valid = scene.read_all()
    with restore.open_predictor(trained_run, "float32") as predictor:
        want = windows.SlidePredictor(predictor).predict(rgb)[0][..., 1]
    with rasterio.open(out / "u16_prob.tif") as prob:
        assert prob.crs.to_epsg() == 32633 and prob.transform == GRID
        assert np.array_equal(prob.read(1)[valid], want[valid])


def test_whole_and_other_scales_read_the_scene_whole(scenes, tmp_path):
    fake = _Fake(_window_mean)  # a whole-image predictor: the scene is one "window"
    paths = (None, str(tmp_path / "p.tif"), None)
    geo_job.predict_scene(fake, media.Job(scenes["u16"], False, paths), _opts(), 0.5)
    assert not geo_job.streams(fake) and len(fake.batches) == 1
    assert geo_job.streams(windows.SlidePredictor(fake, scale=0.5))  # fcn.geo.rescale
    assert not geo_job.streams(windows.MultiScalePredictor(fake, (0.5, 1.0), "slide"))
    with raster.Scene(scenes["u16"]) as scene:
        rgb, valid = scene.read_all()
    with rasterio.open(paths[1]) as out:
        assert np.array_equal(out.read(1)[valid], fake.predict(rgb)[0][..., 1][valid])
