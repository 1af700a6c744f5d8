"""The infer command: segment images, folders, globs and videos with a run or an export.

`python main.py infer --run RUN_DIR INPUT... --out DIR`, RUN_DIR a training run or a folder made
by `python main.py export`. Each image is read as RGB (RGBA, grey and 16-bit are converted),
resized to the model's input size as in training (INTER_AREA), predicted in batches, and its
class probabilities are upsampled bilinearly to the original size. DIR gets per image
    <stem>.png        overlay: each class in the dataset's palette (KITTI: green road); for
                      multiclass datasets a legend strip below (--legend: the classes present,
                      all, none; videos list all classes so every frame keeps one size)
    <stem>_prob.png   (--save-prob) binary datasets: 8-bit positive-class (road) probability,
                      rint(p * 255)
    <stem>_mask.png   (--save-mask) class ids (KITTI: 0 not road, 1 road)
and per video <stem>.mp4, the overlay video at the source frame rate (with --save-prob or
--save-mask, the folders <stem>_prob/ and <stem>_mask/ get one PNG per frame).

Every input is decoded once before anything is written, so a bad file stops the command with a
one-line error and no output; an input file is never overwritten.
"""

import dataclasses
import functools
import glob
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from fcn import data, runs
from fcn.commands import flags
from fcn.data import task
from fcn.errors import UserError
from fcn.evaluation.kitti import devkit
from fcn.inference import crf as densecrf
from fcn.inference import overlays
from fcn.inference.predictor import DEFAULT_PRECISION

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
# imageio's ffmpeg plugin (imageio-ffmpeg ships the binary); the output is always H.264 MP4.
VIDEO_PLUGIN = "FFMPEG"
VIDEO_SUFFIX = ".mp4"
VIDEO_QUALITY = 8  # imageio-ffmpeg's 0..10 scale; 8 keeps the green edges crisp
DEFAULT_ALPHA = 0.5
DEFAULT_BATCH_SIZE = flags.PREDICT_BATCH_SIZE
PROB_SUFFIX = "_prob"
MASK_SUFFIX = "_mask"
# Post-processing threads (resize back, CRF, PNG encoding): OpenCV releases the GIL.
_WRITERS = 2
CRF_ITERATIONS = densecrf.ITERATIONS


# --------------------------------------------------------------------------------------------
# The model: a run or an export behind one predict(uint8 (B, h, w, 3)) -> (B, h, w, C)
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Job:
    path: str
    is_video: bool
    outputs: tuple  # (overlay, prob or None, mask or None); videos: a file and two folders


def is_video(path):
    return path.lower().endswith(VIDEO_EXTS)


def _media_in(paths):
    exts = data.IMAGE_EXTS + VIDEO_EXTS
    return sorted(p for p in paths if os.path.isfile(p) and p.lower().endswith(exts))


def collect_inputs(items):
    """Image/video paths from files, folders (not recursive) and glob patterns, in order."""
    found = []
    for item in items:
        if os.path.isdir(item):
            paths = _media_in(glob.glob(os.path.join(glob.escape(item), "*")))
            if not paths:
                raise UserError(f"folder {item} holds no images (png, jpg) or videos (mp4, avi)")
        elif os.path.isfile(item):
            paths = [item]
        elif glob.has_magic(item):
            paths = _media_in(glob.glob(item))
            if not paths:
                raise UserError(f"pattern {item!r} matches no images or videos; check the path")
        else:
            raise UserError(f"input {item} does not exist; pass image files, folders or globs")
        found.extend(paths)
    unique, seen = [], set()
    for p in found:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def plan_jobs(paths, out_dir, save_prob, save_mask):
    """One Job per input; refuses two inputs writing one file and any output that is an input."""
    inputs = {os.path.realpath(p) for p in paths}
    jobs, owner = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        video = is_video(path)
        ext = "" if video else ".png"
        outputs = (
            os.path.join(out_dir, stem + (VIDEO_SUFFIX if video else ".png")),
            os.path.join(out_dir, stem + PROB_SUFFIX + ext) if save_prob else None,
            os.path.join(out_dir, stem + MASK_SUFFIX + ext) if save_mask else None,
        )
        for out in filter(None, outputs):
            key = os.path.realpath(out)
            if key in inputs:
                raise UserError(
                    f"output {out} would overwrite the input file; choose another --out"
                )
            if key in owner:
                raise UserError(
                    f"inputs {owner[key]} and {path} would both write {out}; "
                    "rename one or run them separately"
                )
            owner[key] = path
        jobs.append(Job(path, video, outputs))
    return jobs


def check_readable(jobs, warn=print):
    """Decode every image and open every video now, so a bad file fails before any output."""
    notes = []

    def check(job):
        if job.is_video:
            return probe_video(job.path)
        data.read_image(job.path, warn=notes.append)
        return None

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        probes = list(pool.map(check, jobs))  # re-raises the first failure in input order
    if notes and warn:
        more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
        warn(f"{notes[0]}{more}")
    return probes


def probe_video(path):
    """(fps, estimated frame count) of a video, after decoding its first frame."""
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin=VIDEO_PLUGIN)
        frames = iio.imiter(path, plugin=VIDEO_PLUGIN)
        next(frames)
        frames.close()  # stops ffmpeg
    except StopIteration:
        raise UserError(f"video {path} has no frames; replace it") from None
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot read video {path} ({first[:160]}); replace it") from None
    fps = float(meta.get("fps") or 0)
    if not fps > 0:
        raise UserError(f"video {path} reports no frame rate; re-encode it (e.g. with ffmpeg)")
    duration = float(meta.get("duration") or 0)
    return fps, int(round(duration * fps)) or None


# --------------------------------------------------------------------------------------------
# Per-image results
# --------------------------------------------------------------------------------------------


# DenseCRF lives in fcn.inference.crf (evaluate uses it too); these names stay for existing callers.
densecrf_module = densecrf.densecrf_module
crf_refine = densecrf.refine


def postprocess(image, probs, mask, spec, threshold, alpha, crf=False, legend="none"):
    """The prediction path's full-size probs (H, W, C) and mask (H, W) -> (overlay RGB,
    positive-class probability (H, W) or None for multiclass datasets, mask (H, W)); --crf
    refines the probabilities first and decides again (threshold for binary datasets, argmax
    for multiclass). legend: one of overlays.LEGENDS; a strip below the overlay unless 'none'."""
    if crf:
        probs, mask = task.refine_then_decide(image, probs, spec, threshold, crf_refine)
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


def _write_image_outputs(outputs, shown, positive, mask):
    overlay_path, prob_path, mask_path = outputs
    runs.write_image(overlay_path, shown)
    if prob_path and positive is not None:
        runs.write_image(prob_path, devkit.probability_to_uint8(positive))
    if mask_path:
        runs.write_image(mask_path, mask)


# --------------------------------------------------------------------------------------------
# The loops
# --------------------------------------------------------------------------------------------


def _image_batches(jobs, batch_size):
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        yield chunk, [data.read_image(job.path, warn=None) for job in chunk]


def _run_images(model, jobs, options, pool, bar):
    pending = []
    for chunk, originals in data.prefetch(_image_batches(jobs, options["batch_size"])):
        results = model.predict_each(originals, options["threshold"])
        for future in pending:  # at most one batch being written while the next one runs
            future.result()
        pending = [
            pool.submit(_finish_image, model.spec, job, image, probs, mask, options)
            for job, image, (probs, mask) in zip(chunk, originals, results, strict=True)
        ]
        bar.update(len(chunk))
    for future in pending:
        future.result()


def _finish_image(spec, job, image, probs, mask, options):
    legend = _legend(spec, options.get("legend"), video=False)
    shown, positive, mask = postprocess(
        image, probs, mask, spec, options["threshold"], options["alpha"], options["crf"], legend
    )
    _write_image_outputs(job.outputs, shown, positive, mask)


def _frame_batches(path, batch_size):
    import imageio.v3 as iio

    batch = []
    for frame in iio.imiter(path, plugin=VIDEO_PLUGIN):
        batch.append(np.ascontiguousarray(frame[..., :3]))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _even(frame):
    """H.264 (yuv420p) needs even sides: repeat the last row/column where one is odd."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _run_video(model, job, fps, options, pool, bar):
    """Overlay video into a temporary file beside the output, renamed when complete."""
    import imageio_ffmpeg

    overlay_path, prob_dir, mask_dir = job.outputs
    folder = os.path.dirname(os.path.abspath(overlay_path))
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=VIDEO_SUFFIX, dir=folder)
    os.close(fd)
    writer, count = None, 0
    try:
        for frames in data.prefetch(_frame_batches(job.path, options["batch_size"])):
            predicted = model.predict_each(frames, options["threshold"])
            post = functools.partial(
                postprocess,
                spec=model.spec,
                threshold=options["threshold"],
                alpha=options["alpha"],
                crf=options["crf"],
                legend=_legend(model.spec, options.get("legend"), video=True),
            )
            results = list(
                pool.map(post, frames, [p for p, _ in predicted], [m for _, m in predicted])
            )
            for shown, positive, mask in results:
                shown = _even(shown)
                if writer is None:
                    writer = imageio_ffmpeg.write_frames(
                        tmp,
                        (shown.shape[1], shown.shape[0]),
                        fps=fps,
                        quality=VIDEO_QUALITY,
                        macro_block_size=1,
                    )
                    writer.send(None)  # start ffmpeg
                writer.send(shown)
                name = f"{count:06d}.png"
                if prob_dir and positive is not None:
                    runs.write_image(
                        os.path.join(prob_dir, name), devkit.probability_to_uint8(positive)
                    )
                if mask_dir:
                    runs.write_image(os.path.join(mask_dir, name), mask)
                count += 1
            bar.update(len(frames))
        writer.close()
        writer = None
        os.replace(tmp, overlay_path)
    except Exception as e:
        if isinstance(e, UserError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"video {job.path} failed at frame {count} ({first[:160]})") from None
    finally:
        if writer is not None:
            writer.close()
        if os.path.exists(tmp):
            os.remove(tmp)
    return count


def run_inference(
    run_dir,
    inputs,
    out_dir,
    alpha=DEFAULT_ALPHA,
    save_prob=False,
    save_mask=False,
    batch_size=DEFAULT_BATCH_SIZE,
    precision_name=DEFAULT_PRECISION,
    crf=False,
    threshold=None,
    legend=None,
    tta=True,
    log=print,
):
    """Segment `inputs` (files, folders, globs) into out_dir; returns a summary dict.
    legend: one of overlays.LEGENDS, None = present for multiclass datasets, none for binary.
    tta False: each image alone where the run was trained with --tta."""
    if not 0.0 <= alpha <= 1.0:
        raise UserError(f"--alpha must be in [0, 1], got {alpha}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise UserError(f"--threshold must be in (0, 1), got {threshold}")
    if legend is not None and legend not in overlays.LEGENDS:
        raise UserError(f"--legend must be one of {list(overlays.LEGENDS)}, got {legend!r}")
    if crf:
        densecrf_module()
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"--out {out_dir} is a file; give a folder")
    jobs = plan_jobs(collect_inputs(inputs), out_dir, save_prob, save_mask)

    from fcn.inference import restore  # TensorFlow: imported only when a model is needed

    with restore.open_predictor(run_dir, precision_name, tta=tta, batch_size=batch_size) as model:
        probes = check_readable(jobs, warn=log)
        if save_prob and model.spec.task != "binary":
            raise UserError(
                f"--save-prob writes a positive-class probability; {model.spec.name} is "
                "multiclass: use --save-mask"
            )
        options = dict(
            alpha=alpha,
            batch_size=batch_size,
            crf=crf,
            legend=legend,
            threshold=model.config.threshold if threshold is None else threshold,
        )
        images = [j for j in jobs if not j.is_video]
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
        log(
            f"model {model.source} (input {h}x{w}{tta}, {model.precision}); {len(images)} images, "
            f"{len(videos)} videos"
        )
        # One batch first: graph optimisation and kernel selection are not throughput.
        model.predict_each([np.zeros((h, w, 3), np.uint8)] * min(batch_size, max(total, 1)))
        t0 = time.time()
        frames = 0
        with (
            ThreadPoolExecutor(_WRITERS) as pool,
            tqdm(total=total, desc="infer", unit="img", leave=False, dynamic_ncols=True) as bar,
        ):
            if images:
                _run_images(model, images, options, pool, bar)
            for job, (fps, _) in videos:
                frames += _run_video(model, job, fps, options, pool, bar)
        seconds = time.time() - t0
    count = len(images) + frames
    rate = count / seconds if seconds > 0 else float("inf")
    what = f"{len(images)} images" + (f", {len(videos)} videos ({frames} frames)" if videos else "")
    log(
        f"{what} -> {out_dir} in {seconds:.1f}s: {rate:.1f} images/s "
        f"(network input {h}x{w}, batch {batch_size})"
    )
    return dict(images=len(images), videos=len(videos), frames=frames, seconds=seconds, rate=rate)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument(
        "--run", metavar="RUN_DIR", required=True, help="training run folder or export folder"
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="images, folders, globs or videos (mp4/avi)"
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the results")
    parser.add_argument(
        "--alpha",
        type=float,
        default=DEFAULT_ALPHA,
        help=f"opacity of the class overlay (default: {DEFAULT_ALPHA})",
    )
    parser.add_argument(
        "--save-prob",
        action="store_true",
        help="also write <stem>_prob.png (8-bit positive-class prob.)",
    )
    parser.add_argument(
        "--save-mask", action="store_true", help="also write <stem>_mask.png (class indices)"
    )
    flags.batch_size(parser)
    flags.precision(parser)
    flags.crf(parser)
    flags.no_tta(parser)
    flags.legend(parser)
    flags.threshold(parser)


def run(args):
    """Entry point of `python main.py infer`; returns the exit code."""
    run_inference(
        args.run,
        args.inputs,
        args.out,
        alpha=args.alpha,
        save_prob=args.save_prob,
        save_mask=args.save_mask,
        batch_size=args.batch_size,
        precision_name=args.precision,
        crf=args.crf,
        threshold=args.threshold,
        legend=args.legend,
        tta=args.tta,
    )
    return 0
