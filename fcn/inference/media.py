"""Inputs and outputs of `infer`: collecting image/video paths, planning each input's output
files, checking every input decodes before anything is written, and reading/writing videos.

A Job is one input and its outputs: `<stem>.png` overlay (videos: `<stem>.mp4`), optionally
`<stem>_prob.png` and `<stem>_mask.png` (videos: folders `<stem>_prob/`, `<stem>_mask/` with one
PNG per frame). No TensorFlow here.
"""

import dataclasses
import glob
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fcn import data, runs
from fcn.errors import UserError
from fcn.evaluation.kitti import devkit
from fcn.geo import raster

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
# imageio's ffmpeg plugin (imageio-ffmpeg ships the binary); the output is always H.264 MP4.
VIDEO_PLUGIN = "FFMPEG"
VIDEO_SUFFIX = ".mp4"
VIDEO_QUALITY = 8  # imageio-ffmpeg's 0..10 scale; 8 keeps the green edges crisp
PROB_SUFFIX = "_prob"
MASK_SUFFIX = "_mask"
POLYGONS_SUFFIX = ".geojson"


@dataclasses.dataclass(frozen=True)
class Job:
    path: str
    is_video: bool
    outputs: tuple  # (overlay, prob or None, mask or None); videos: a file and two folders
    polygons: str = None  # <stem>.geojson (--polygons), None without


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


def plan_jobs(paths, out_dir, save_prob, save_mask, polygons=False):
    """One Job per input; refuses two inputs writing one file and any output that is an input.
    GeoTIFF inputs (fcn.geo) get GeoTIFF outputs: <stem>.tif, <stem>_prob.tif, <stem>_mask.tif;
    polygons: images and GeoTIFFs also get <stem>.geojson."""
    inputs = {os.path.realpath(p) for p in paths}
    jobs, owner = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        video = is_video(path)
        ext = "" if video else (".tif" if raster.is_geotiff(path) else ".png")
        outputs = (
            os.path.join(out_dir, stem + (VIDEO_SUFFIX if video else ext)),
            os.path.join(out_dir, stem + PROB_SUFFIX + ext) if save_prob else None,
            os.path.join(out_dir, stem + MASK_SUFFIX + ext) if save_mask else None,
        )
        geojson = os.path.join(out_dir, stem + POLYGONS_SUFFIX) if polygons and not video else None
        for out in filter(None, (*outputs, geojson)):
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
        jobs.append(Job(path, video, outputs, geojson))
    return jobs


def check_readable(jobs, warn=print, bands=None, stretch="percentile"):
    """Decode every image, open every video and GeoTIFF now (with --bands and --stretch), so a
    bad file fails before any output. Returns per job: a video's (fps, frames), a GeoTIFF's
    whether it has a CRS, None for an image."""
    notes = []

    def check(job):
        if job.is_video:
            return probe_video(job.path)
        if raster.is_geotiff(job.path):
            with raster.Scene(job.path, bands, stretch) as scene:
                notes.extend(f"warning: {job.path}: {note}" for note in scene.notes)
                return scene.georeferenced
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


def write_image_outputs(outputs, shown, positive, mask):
    """An image's overlay, and its probability and mask PNGs where the Job has them."""
    overlay_path, prob_path, mask_path = outputs
    runs.write_image(overlay_path, shown)
    if prob_path and positive is not None:
        runs.write_image(prob_path, devkit.probability_to_uint8(positive))
    if mask_path:
        runs.write_image(mask_path, mask)


def write_frame_outputs(prob_dir, mask_dir, index, positive, mask):
    """A video frame's optional PNGs: <stem>_prob/<index>.png and <stem>_mask/<index>.png."""
    name = f"{index:06d}.png"
    if prob_dir and positive is not None:
        runs.write_image(os.path.join(prob_dir, name), devkit.probability_to_uint8(positive))
    if mask_dir:
        runs.write_image(os.path.join(mask_dir, name), mask)


def image_batches(jobs, batch_size):
    """(jobs, their decoded RGB images) batch by batch."""
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        yield chunk, [data.read_image(job.path, warn=None) for job in chunk]


def frame_batches(path, batch_size):
    """A video's RGB frames, batch_size at a time."""
    import imageio.v3 as iio

    batch = []
    for frame in iio.imiter(path, plugin=VIDEO_PLUGIN):
        batch.append(np.ascontiguousarray(frame[..., :3]))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def even(frame):
    """H.264 (yuv420p) needs even sides: repeat the last row/column where one is odd."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VideoWriter:
    """An H.264 MP4 written into a temporary file beside `path`, renamed to it by `close`; a
    writer left without `close` (an error) removes the temporary file. Started by the first
    frame, whose size (made even) every frame keeps."""

    def __init__(self, path, fps):
        import tempfile

        self.path, self.fps, self._writer = path, fps, None
        folder = os.path.dirname(os.path.abspath(path))
        fd, self._tmp = tempfile.mkstemp(prefix=".", suffix=VIDEO_SUFFIX, dir=folder)
        os.close(fd)

    def send(self, frame):
        import imageio_ffmpeg

        frame = even(frame)
        if self._writer is None:
            self._writer = imageio_ffmpeg.write_frames(
                self._tmp,
                (frame.shape[1], frame.shape[0]),
                fps=self.fps,
                quality=VIDEO_QUALITY,
                macro_block_size=1,
            )
            self._writer.send(None)  # start ffmpeg
        self._writer.send(frame)

    def close(self):
        self._writer.close()
        self._writer = None
        os.replace(self._tmp, self.path)

    def discard(self):
        if self._writer is not None:
            self._writer.close()
        if os.path.exists(self._tmp):
            os.remove(self._tmp)
