"""Run folders and safe file writes: runs/<timestamp>/ never overwrites, files appear whole."""

import json
import math
import os
import tempfile
import time

import cv2
import numpy as np

from fcn.errors import UserError


def new_run_dir(runs_dir, name=None):
    """Create runs_dir/<YYYYmmdd-HHMMSS>[-k]; an existing run is never reused."""
    base = name or time.strftime("%Y%m%d-%H%M%S")
    try:
        os.makedirs(runs_dir, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create runs folder {runs_dir}: {e.strerror}") from None
    for k in range(1000):
        path = os.path.join(runs_dir, base if k == 0 else f"{base}-{k}")
        try:
            os.mkdir(path)  # atomic: fails if another run took the name
            return path
        except FileExistsError:
            continue
    raise UserError(f"cannot find a free run folder name under {runs_dir}")


def atomic_write_bytes(path, data):
    """Write to a temporary sibling, fsync, then rename: readers see the old or the new file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def json_safe(obj):
    """JSON has no NaN or infinity (Python would write invalid JSON): they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path, obj):
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode())


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; is this a run folder?") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None


def write_image(path, rgb):
    """Save an RGB (or single-channel) uint8 array as PNG/JPEG atomically."""
    ext = os.path.splitext(path)[1] or ".png"
    array = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, array)
    if not ok:
        raise UserError(f"cannot encode image {path}")
    atomic_write_bytes(path, buf.tobytes())
