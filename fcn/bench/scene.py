"""Peak memory and throughput of a large GeoTIFF scene predicted with slide (issue 21).

    python -m fcn.bench.scene [--side 10000] [--encoder mobilenet_v2 --decoder pix2pix] [--scale S]

writes a SIDE x SIDE uint8 RGB GeoTIFF (UTM, 0.3 m pixels, tiled, deflate; drawn strip by strip:
smooth colour fields and noise, so it compresses like imagery and costs no memory), then predicts
it as `infer --predict slide --save-mask` does (fcn.geo.job.predict_scene, the mask GeoTIFF
written block by block) with a network of random weights (--weights random: the figures are the
architecture's, any trained run of it costs the same) at the footprints recipe's shape (192 x 192,
pix2pix width 0.25, float32, one pass: no --tta), and prints one JSON line:
    megapixels, windows, seconds (the prediction and the writing, after one warm-up batch),
    mpx_s, peak_rss_mb (resource.getrusage: the process's peak resident memory, TensorFlow
    included), rss_before_mb (the peak before the scene was predicted: the model's).
"""

import argparse
import json
import os
import resource
import tempfile
import time
import types

import numpy as np

STRIP = 256  # rows written at a time when drawing the scene


def write_scene(path, side, seed=0):
    """A side x side uint8 RGB GeoTIFF drawn STRIP rows at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    cols = np.arange(side, dtype=np.float32)
    profile = dict(
        driver="GTiff",
        height=side,
        width=side,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500000.0, 4000000.0, 0.3, 0.3),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, side, STRIP):
            rows = np.arange(top, min(top + STRIP, side), dtype=np.float32)[:, None]
            bands = []
            for k in range(3):
                field = 128 + 60 * np.sin(rows / (97 + 13 * k) + cols / (151 - 17 * k))
                noise = rng.normal(0, 12, field.shape)
                bands.append(np.clip(field + noise, 0, 255).astype(np.uint8))
            dst.write(np.stack(bands), window=Window(0, top, side, len(rows)))


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(
    scene, encoder, decoder, image_shape, decoder_width, batch_size, overlap, out_dir, scale=1.0
):
    import tensorflow.compat.v1 as tf

    from fcn import config as cfg
    from fcn import data
    from fcn.geo import job as geo_job
    from fcn.inference import media, windows
    from fcn.inference.predictor import SessionPredictor
    from fcn.training import build

    config = cfg.Config(
        encoder=encoder,
        decoder=decoder,
        weights="random",
        image_shape=image_shape,
        decoder_width=decoder_width,
        precision="float32",
        batch_size=batch_size,
    )
    spec = data.KITTI_ROAD  # two classes, as buildings / background
    graph = tf.Graph()
    with graph.as_default(), tf.Session() as sess:
        model = build.build_model(sess, config, spec.num_classes, spec=spec)
        inner = SessionPredictor(
            sess, model, config, spec, "float32", "random weights", batch_size=batch_size
        )
        slide = windows.SlidePredictor(inner, overlap, scale)  # scale != 1: fcn.geo.rescale
        inner.predict(np.zeros((batch_size, *image_shape, 3), np.uint8))  # warm-up
        before = _rss_mb()
        stem = os.path.splitext(os.path.basename(scene))[0]
        job = media.Job(scene, False, (None, None, os.path.join(out_dir, stem + "_mask.tif")))
        opts = types.SimpleNamespace(
            bands=None, stretch="percentile", alpha=0.5, min_area=0, simplify=0.0
        )
        t0 = time.time()
        (height, width), _ = geo_job.predict_scene(slide, job, opts, 0.5)
        seconds = time.time() - t0
        scaled = windows.scaled_size((height, width), scale)
        windows_count = geo_job.stream.window_count(slide, scaled)
    megapixels = height * width / 1e6
    return dict(
        side=height,
        encoder=encoder,
        decoder=decoder,
        image_shape=list(image_shape),
        batch_size=batch_size,
        overlap=overlap,
        scale=scale,
        windows=windows_count,
        megapixels=megapixels,
        seconds=round(seconds, 1),
        mpx_s=round(megapixels / seconds, 3),
        peak_rss_mb=round(_rss_mb()),
        rss_before_mb=round(before),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10000)
    parser.add_argument("--encoder", default="mobilenet_v2")
    parser.add_argument("--decoder", default="pix2pix")
    parser.add_argument("--size", type=int, default=192, help="network input side")
    parser.add_argument("--decoder-width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--scale", type=float, default=1.0, help="the slide's --scale")
    parser.add_argument("--scene", help="an existing GeoTIFF instead of drawing one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scene = args.scene or os.path.join(tmp, f"scene{args.side}.tif")
        if not args.scene:
            write_scene(scene, args.side)
        result = measure(
            scene,
            args.encoder,
            args.decoder,
            (args.size, args.size),
            args.decoder_width,
            args.batch_size,
            args.overlap,
            tmp,
            args.scale,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
