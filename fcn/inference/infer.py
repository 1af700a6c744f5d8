"""The infer job: segment images, folders, globs, videos and GeoTIFF scenes with a run or an export.

`InferOptions` are `python main.py infer`'s flags (fcn.options); `run_inference(opts)` reads
each input as RGB (RGBA, grey and 16-bit are converted), predicts in batches through the
Predictor (fcn.inference.predictor: resized to the model's input size as in training, class
probabilities upsampled bilinearly to the original size), optionally refines with a DenseCRF,
paints the overlay and writes the files of fcn.inference.media. Every input is decoded once
before anything is written, so a bad file stops the job with a one-line error and no output.
`.tif`/`.tiff` inputs are GeoTIFF scenes (fcn.geo): read and written block by block with their
CRS (--bands, --stretch), predicted one after the other after the plain images. --polygons
writes each input's regions as GeoJSON (fcn.geo.polygons).
"""

import dataclasses
import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from fcn import checks, data, options
from fcn.config import field
from fcn.data import task
from fcn.errors import UserError
from fcn.geo import raster
from fcn.inference import backends, media, overlays, windows
from fcn.inference import crf as densecrf
from fcn.inference.predictor import DEFAULT_BATCH_SIZE

DEFAULT_ALPHA = 0.5
# Post-processing threads (resize back, CRF, PNG encoding): OpenCV releases the GIL.
_WRITERS = 2


@dataclasses.dataclass(frozen=True)
class InferOptions(options.Options):
    """`infer`'s flags. run, inputs and out have hand-written flags (fcn.commands.infer)."""

    run: str = field(None, "training run folder or export folder", flag=False)
    inputs: tuple = field((), "images, folders, globs or videos", flag=False)
    out: str = field(None, "folder for the results", flag=False)
    alpha: float = field(DEFAULT_ALPHA, "opacity of the class overlay")
    save_prob: bool = field(
        False,
        "also write <stem>_prob.png (8-bit positive-class prob.; GeoTIFFs: float32 _prob.tif)",
        action="store_true",
    )
    save_mask: bool = field(
        False, "also write <stem>_mask.png (class ids; GeoTIFFs: _mask.tif)", action="store_true"
    )
    # GeoTIFF scenes (fcn.geo.raster): which bands are R, G, B and how 16-bit becomes 8-bit.
    bands: tuple | None = field(
        None,
        "GeoTIFFs: band numbers (from 1) fed as R,G,B, or one band as grey",
        metavar="B,B,B",
        parse=raster.parse_bands,
        shown="1,2,3 of 3 or more bands",
    )
    stretch: str = field(
        "percentile",
        "GeoTIFFs of more than 8 bits to 0..255: percentile (per band 2nd-98th percentile) or "
        "dtype (the type's range); 8-bit scenes pass as they are",
        raster.STRETCHES,
    )
    polygons: bool = field(
        False,
        "also write <stem>.geojson: a polygon per connected region of each painted class, in "
        "the GeoTIFF's CRS (pixels for plain images)",
        action="store_true",
    )
    min_area: float = field(0.0, "with --polygons: leave out regions of fewer pixels")
    simplify: float = field(
        0.0, "with --polygons: Douglas-Peucker tolerance in pixels (0: the pixel outlines)"
    )
    batch_size: int = field(DEFAULT_BATCH_SIZE, "images per forward pass")
    precision: str = options.precision()
    backend: str = options.backend()
    int8: bool = options.int8()
    threads: int = options.threads()
    crf: bool = options.crf()
    tta: bool = options.tta()
    predict: str = options.predict()
    overlap: float = options.overlap()
    scales: tuple = options.scales()
    # None: present for multiclass datasets, none for binary ones (`_legend`).
    legend: str = field(
        None,
        "class legend under each overlay: the classes present, all, or none",
        overlays.LEGENDS,
        shown="present for multiclass datasets, all for their videos, none for binary ones",
    )
    threshold: float = options.threshold()

    def problems(self):
        yield checks.in_range("--alpha", self.alpha, 0, 1, low_closed=True, high_closed=True)
        yield checks.batch_size(self.batch_size)
        yield from options.prediction_problems(self)
        yield raster.bands_problem(self.bands)
        yield checks.in_range("--min-area", self.min_area, 0, None, low_closed=True)
        yield checks.in_range("--simplify", self.simplify, 0, None, low_closed=True)
        yield from options.backend_problems(self)
        if self.threshold is not None:
            yield checks.threshold(self.threshold)


def postprocess(image, probs, mask, spec, threshold, alpha, crf=False, legend="none"):
    """The prediction path's full-size probs (H, W, C) and mask (H, W) -> (overlay RGB,
    positive-class probability (H, W) or None for multiclass datasets, mask (H, W)); --crf
    refines the probabilities first and decides again (threshold for binary datasets, argmax
    for multiclass). legend: one of overlays.LEGENDS; a strip below the overlay unless 'none'."""
    if crf:
        probs, mask = task.refine_then_decide(image, probs, spec, threshold, densecrf.refine)
    shown = overlays.paint_with_legend(image, mask, spec, alpha, legend)
    positive = task.positive_probs(probs, spec)
    return shown, positive, mask


def _legend(spec, choice, video):
    """--legend, resolved: binary datasets none, multiclass present (videos: all, one size)."""
    if choice is not None:
        return "all" if video and choice == "present" else choice
    if spec.task == "binary":
        return "none"
    return "all" if video else "present"


def _post(spec, opts, threshold, video):
    """postprocess with the job's settings: (image, probs, mask) -> (shown, positive, mask)."""
    return functools.partial(
        postprocess,
        spec=spec,
        threshold=threshold,
        alpha=opts.alpha,
        crf=opts.crf,
        legend=_legend(spec, opts.legend, video=video),
    )


def _run_images(model, jobs, opts, threshold, pool, bar):
    from fcn.geo import polygons as scene_polygons

    post = _post(model.spec, opts, threshold, video=False)

    def finish(job, image, probs, mask):
        shown, positive, mask = post(image, probs, mask)
        media.write_image_outputs(job.outputs, shown, positive, mask)
        if job.polygons:
            scene_polygons.write_image_polygons(job.polygons, model.spec, mask, probs, opts)

    pending = []
    for chunk, originals in data.prefetch(media.image_batches(jobs, opts.batch_size)):
        results = model.predict_each(originals, threshold)
        for future in pending:  # at most one batch being written while the next one runs
            future.result()
        pending = [
            pool.submit(finish, job, image, probs, mask)
            for job, image, (probs, mask) in zip(chunk, originals, results, strict=True)
        ]
        bar.update(len(chunk))
    for future in pending:
        future.result()


def _run_video(model, job, fps, opts, threshold, pool, bar):
    """The overlay video (media.VideoWriter: complete or absent) and the per-frame PNGs."""
    overlay_path, prob_dir, mask_dir = job.outputs
    post = _post(model.spec, opts, threshold, video=True)
    writer, count = media.VideoWriter(overlay_path, fps), 0
    try:
        for frames in data.prefetch(media.frame_batches(job.path, opts.batch_size)):
            predicted = model.predict_each(frames, threshold)
            results = list(
                pool.map(post, frames, [p for p, _ in predicted], [m for _, m in predicted])
            )
            for shown, positive, mask in results:
                writer.send(shown)
                media.write_frame_outputs(prob_dir, mask_dir, count, positive, mask)
                count += 1
            bar.update(len(frames))
        writer.close()
    except Exception as e:
        if isinstance(e, UserError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"video {job.path} failed at frame {count} ({first[:160]})") from None
    finally:
        writer.discard()
    return count


def run_inference(opts, log=print):
    """Segment opts.inputs (files, folders, globs) into opts.out; returns a summary dict."""
    if opts.crf:
        densecrf.densecrf_module()
    out_dir = opts.out
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir} is a file; give a folder")
    jobs = media.plan_jobs(
        media.collect_inputs(opts.inputs), out_dir, opts.save_prob, opts.save_mask, opts.polygons
    )
    scenes = [j for j in jobs if raster.is_geotiff(j.path)]
    if scenes and opts.crf:
        raise UserError(
            f"--crf refines whole images; GeoTIFF scenes such as {scenes[0].path} are written "
            "block by block: drop --crf"
        )
    if opts.polygons and any(j.is_video for j in jobs):
        raise UserError("--polygons is for images and GeoTIFFs, not videos; drop it or the videos")

    from fcn.geo import job as geo_job

    batch_size = opts.batch_size
    opened = backends.open_backend(
        opts.run, opts.backend, opts.int8, opts.threads, opts.precision, tta=opts.tta,
        batch_size=batch_size,
    )  # fmt: skip
    how = windows.chosen(opts, opened.config)  # (predict, overlap, scales)
    with windows.wrap(opened, *how) as model:
        probes = media.check_readable(jobs, warn=log, bands=opts.bands, stretch=opts.stretch)
        if opts.save_prob and model.spec.task != "binary":
            raise UserError(
                f"--save-prob writes a positive-class probability; {model.spec.name} is "
                "multiclass: use --save-mask"
            )
        threshold = model.config.threshold if opts.threshold is None else opts.threshold
        images = [j for j in jobs if not j.is_video and j not in scenes]
        videos = [(j, p) for j, p in zip(jobs, probes, strict=True) if j.is_video]
        try:
            os.makedirs(out_dir, exist_ok=True)
            for folder in (f for job, _ in videos for f in job.outputs[1:] if f):
                os.makedirs(folder, exist_ok=True)  # the per-frame PNG folders
        except OSError as e:
            raise UserError(f"cannot create {e.filename}: {e.strerror}; check --out") from None
        total = len(images) + sum(p[1] or 0 for _, p in videos)
        h, w = model.network_size
        tta = f", --tta {model.tta}" if model.tta != "none" else ""
        tta += windows.describe(*how)
        log(
            f"model {model.source} (input {h}x{w}{tta}, {model.precision}); {len(images)} images, "
            f"{len(videos)} videos" + (f", {len(scenes)} GeoTIFF scenes" if scenes else "")
        )
        if scenes and not geo_job.streams(model):
            what = "several --scales" if how[0] == "slide" else f"--predict {how[0]}"
            log(
                f"note: GeoTIFF scenes are read whole and predicted with {what} (memory: the "
                "scene's); --predict slide at one scale predicts them window by window"
            )
        plain = [
            j.path for j, georeferenced in zip(jobs, probes, strict=True) if georeferenced is False
        ]
        if plain:
            more = f" (and {len(plain) - 1} more)" if len(plain) > 1 else ""
            log(f"note: {plain[0]}{more} has no CRS: its outputs are in pixel coordinates")
        # One batch first: graph optimisation and kernel selection are not throughput.
        model.predict_each([np.zeros((h, w, 3), np.uint8)] * min(batch_size, max(total, 1)))
        t0 = time.time()
        frames = 0
        with (
            ThreadPoolExecutor(_WRITERS) as pool,
            tqdm(total=total, desc="infer", unit="img", leave=False, dynamic_ncols=True) as bar,
        ):
            if images:
                _run_images(model, images, opts, threshold, pool, bar)
            for job, (fps, _) in videos:
                frames += _run_video(model, job, fps, opts, threshold, pool, bar)
        pixels = 0
        for job in scenes:
            (height, width), _ = geo_job.predict_scene(model, job, opts, threshold)
            pixels += height * width
        seconds = time.time() - t0
    count = len(images) + frames
    rate = count / seconds if seconds > 0 else float("inf")
    what = f"{len(images)} images" + (f", {len(videos)} videos ({frames} frames)" if videos else "")
    if scenes:
        what += f", {len(scenes)} scenes ({pixels / 1e6:.1f} Mpx)"
    log(
        f"{what} -> {out_dir} in {seconds:.1f}s: {rate:.1f} images/s "
        f"(network input {h}x{w}, batch {batch_size})"
    )
    return dict(
        images=len(images),
        videos=len(videos),
        frames=frames,
        scenes=len(scenes),
        megapixels=pixels / 1e6,
        seconds=seconds,
        rate=rate,
    )
