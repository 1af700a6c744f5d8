"""Peak memory and throughput of a large GeoTIFF scene predicted with slide (issue 21).

    python -m fcn.bench.scene [--side 10000] [--encoder mobilenet_v2 --decoder pix2pix] [--scale S]
    python -m fcn.bench.scene --run RUN_OR_EXPORT [--backend tf|onnxruntime|tflite] [--int8]

writes a SIDE x SIDE uint8 RGB GeoTIFF (UTM, 0.3 m pixels, tiled, deflate; drawn strip by strip:
smooth colour fields and noise, so it compresses like imagery and costs no memory), then predicts
it as `infer --predict slide --save-mask` does (fcn.geo.job.predict_scene, the mask GeoTIFF
written block by block), with windows of the network's size, and prints one JSON line:
    megapixels, windows, seconds (the prediction and the writing, after one warm-up batch),
    mpx_s, peak_rss_mb (resource.getrusage: the process's peak resident memory, TensorFlow
    included), rss_before_mb (the peak before the scene was predicted: the model's).

The network: with --run, a trained run or export opened as `infer` opens it
(fcn.inference.backends: its backend, precision and --tta); without, the prediction path alone
(no training ops) with random weights (the figures are the architecture's, a trained run of it
costs the same) at the footprints recipe's shape (192 x 192, pix2pix width 0.25, float32, one
pass: no --tta).
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


def random_predictor(encoder, decoder, image_shape, decoder_width, batch_size):
    """A float32 SessionPredictor of the prediction path alone (no optimizer, whose slots would
    double VGG16's memory) with random weights; two classes, as buildings / background."""
    import tensorflow.compat.v1 as tf

    from fcn import config as cfg
    from fcn import data, models
    from fcn.inference import prediction
    from fcn.inference.predictor import SessionPredictor

    config = cfg.Config(
        encoder=encoder,
        decoder=decoder,
        weights="random",
        image_shape=image_shape,
        decoder_width=decoder_width,
        precision="float32",
        batch_size=batch_size,
    )
    spec = data.KITTI_ROAD
    graph = tf.Graph()
    with graph.as_default():

        def network(x, is_training, keep_prob):
            built = models.build_network(x, config, spec.num_classes, is_training, keep_prob)
            return built["logits"]

        tensors = prediction.build(network, config, spec)
        sess = tf.Session(graph=graph)
        sess.run(tf.global_variables_initializer())
    return SessionPredictor(
        sess, tensors, config, spec, "float32", "random weights", batch_size=batch_size
    )


def measure(scene, predictor, overlap, out_dir, scale=1.0):
    from fcn.geo import job as geo_job
    from fcn.inference import media, windows

    with predictor:
        slide = windows.SlidePredictor(predictor, overlap, scale)  # scale != 1: fcn.geo.rescale
        h, w = predictor.network_size
        predictor.predict(np.zeros((predictor.batch_size, h, w, 3), np.uint8))  # warm-up
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
        config = predictor.config
    megapixels = height * width / 1e6
    return dict(
        side=height,
        model=predictor.source,
        encoder=config.encoder,
        decoder=config.decoder,
        image_shape=[h, w],
        precision=predictor.precision,
        tta=predictor.tta,
        batch_size=predictor.batch_size,
        overlap=overlap,
        scale=scale,
        windows=windows_count,
        megapixels=megapixels,
        seconds=round(seconds, 3),
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
    parser.add_argument("--run", help="a trained run or export folder instead of random weights")
    parser.add_argument("--backend", default="tf", help="with --run: tf, onnxruntime or tflite")
    parser.add_argument("--int8", action="store_true", help="with --run: the export's int8 file")
    parser.add_argument("--precision", default="auto", help="with --run: TensorFlow's precision")
    args = parser.parse_args(argv)
    from fcn import tfquiet

    tfquiet.tensorflow()  # before anything imports TensorFlow: no C++ start-up or graph-pass lines
    with tempfile.TemporaryDirectory() as tmp:
        scene = args.scene or os.path.join(tmp, f"scene{args.side}.tif")
        if not args.scene:
            write_scene(scene, args.side)
        if args.run:
            from fcn.inference import backends

            predictor = backends.open_backend(
                args.run, args.backend, args.int8, None, args.precision,
                batch_size=args.batch_size,
            )  # fmt: skip
        else:
            predictor = random_predictor(
                args.encoder, args.decoder, (args.size, args.size), args.decoder_width,
                args.batch_size,
            )  # fmt: skip
        result = measure(scene, predictor, args.overlap, tmp, args.scale)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
