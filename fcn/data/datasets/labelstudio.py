"""Label Studio: --data-dir holds a JSON export (export.json, or the one *.json there) of tasks
with `polygonlabels` (points in percent of the image) and `brushlabels` (Label Studio's RLE of
an RGBA mask), and the images the tasks name, resolved relative to --data-dir:

    "/data/upload/1/a.jpg" -> upload/1/a.jpg, 1/a.jpg, a.jpg or images/a.jpg under --data-dir
    "/data/local-files/?d=photos/a.jpg" -> photos/a.jpg (or the same fallbacks)

Classes: labels.txt as for LabelMe where present, else background then the sorted label names
of the export. Regions are painted in result order (later over earlier); a polygon fills as
LabelMe's (PIL) does. No official split: validation is carved out as for the folder reader.
"""

import glob
import json
import os
import threading
import urllib.parse

import numpy as np
from PIL import Image, ImageDraw

from fcn.data import pairing
from fcn.data.datasets import labelme
from fcn.data.descriptors import IGNORE_LABEL
from fcn.data.pairing import Example, stem_of, synth_hint, unlabelled_examples
from fcn.errors import UserError

NAME = "labelstudio"
EXPORT_FILE = "export.json"
_INDEX = {}  # export path -> (mtime, tasks by id): read once per process
_INDEX_LOCK = threading.Lock()  # labels are read by the pipeline's threads


def export_path(data_dir):
    preferred = os.path.join(data_dir, EXPORT_FILE)
    if os.path.isfile(preferred):
        return preferred
    found = sorted(glob.glob(os.path.join(data_dir, "*.json")))
    if len(found) != 1:
        raise UserError(
            f"{data_dir} holds {len(found)} *.json; put the Label Studio export there as "
            f"{EXPORT_FILE} (or make a synthetic one with {synth_hint(NAME, data_dir)})"
        )
    return found[0]


def load_tasks(path):
    """{task id: task} of an export; a one-line error naming the file when it is not one."""
    with _INDEX_LOCK:
        stamp = os.stat(path).st_mtime_ns if os.path.isfile(path) else None
        if path not in _INDEX or _INDEX[path][0] != stamp:
            _INDEX[path] = (stamp, _read_tasks(path))
        return _INDEX[path][1]


def _read_tasks(path):
    try:
        with open(path, encoding="utf-8") as f:
            tasks = json.load(f)
        if isinstance(tasks, dict):
            tasks = [tasks]
        by_id = {t["id"]: t for t in tasks}
        for t in tasks:
            t["data"], t.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"{path} is not a Label Studio JSON export ({type(e).__name__}: {e}); export the "
            "project as JSON"
        ) from None
    return by_id


def _results(task):
    """The regions of a task's first annotation that was not cancelled."""
    for ann in task.get("annotations") or task.get("completions") or []:
        if not ann.get("was_cancelled"):
            return [r for r in ann.get("result", []) if r.get("type") in _KINDS]
    return []


def _label_names(tasks):
    names = set()
    for task in tasks.values():
        for r in _results(task):
            names.update(str(n) for n in r["value"].get(r["type"], []))
    return sorted(names)


def resolve(data_dir=None, classes=""):
    if data_dir is None:
        raise UserError(f"{NAME} reads its classes from the export; pass --data-dir")
    txt = os.path.join(data_dir, labelme.LABELS_FILE)
    if os.path.isfile(txt):
        names, _ = labelme.read_labels_txt(txt, NAME)
    else:
        names = ["background"] + [n for n in _label_names(load_tasks(export_path(data_dir)))]
        if len(names) < 2:
            raise UserError(f"{export_path(data_dir)} labels no region; nothing to learn")
    spec = labelme.spec_for(NAME, names, NAME)
    return spec


def image_of(data_dir, url):
    """The file a task's data.image names, relative to data_dir (None where absent)."""
    parsed = urllib.parse.urlparse(str(url))
    rel = urllib.parse.parse_qs(parsed.query).get("d", [parsed.path])[0]
    rel = urllib.parse.unquote(rel).lstrip("/")
    parts = rel.split("/")
    tails = [rel]
    if parts[:2] == ["data", "upload"]:
        tails += ["/".join(parts[2:]), "/".join(parts[3:])]
    base = parts[-1]
    tails += [base, os.path.join("images", base)]
    for tail in tails:
        path = os.path.join(data_dir, tail)
        if tail and os.path.isfile(path):
            return path
    return None


def list_splits(data_dir, spec, need_train=True):
    pairing.require_data_dir(NAME, data_dir, "the export")
    path = export_path(data_dir)
    examples, missing = [], []
    for tid, task in load_tasks(path).items():
        url = task["data"].get("image") or next(iter(task["data"].values()), "")
        if not _results(task):
            print(f"warning: {path}: task {tid} ({url}) has no regions; skipped")
            continue
        image = image_of(data_dir, url)
        if image is None:
            missing.append(str(url))
            continue
        examples.append(Example(stem_of(image), image, path, "", tid))
    if missing:
        raise UserError(
            f"{len(missing)} image(s) of {path} are not under {data_dir} "
            f"(e.g. {', '.join(missing[:3])}); copy them there (see data/README.md)"
        )
    if not examples:
        raise UserError(f"{path} has no task with regions; nothing to learn")
    return examples, None


def list_test_images(data_dir, spec):
    return unlabelled_examples(os.path.join(data_dir, spec.test_images))


# --- regions --------------------------------------------------------------------------------


def _polygon(region, h, w):
    xy = [(float(x) * w / 100.0, float(y) * h / 100.0) for x, y in region["value"]["points"]]
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon(xy, outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def _brush(region, h, w):
    value = region["value"]
    if value.get("format", "rle") != "rle":
        raise ValueError(f"brush format {value.get('format')!r} is not rle")
    flat = decode_rle(value["rle"])
    if flat.size != h * w * 4:
        raise ValueError(f"its RLE holds {flat.size} values, not {h}x{w}x4")
    return flat.reshape(h, w, 4)[..., 3] >= 128  # the alpha channel: painted pixels


_KINDS = {"polygonlabels": _polygon, "brushlabels": _brush}


def read_label(example, spec, warn=print):
    """Class ids (H, W) uint8 at the image size the regions record."""
    task = load_tasks(example.label_path)[example.ref]
    values = labelme.value_map(spec)
    regions = _results(task)
    h = int(regions[0].get("original_height", 0))
    w = int(regions[0].get("original_width", 0))
    if not (h and w):
        with Image.open(example.image_path) as img:
            w, h = img.size
    out = np.zeros((h, w), np.uint8)
    unknown = []
    for region in regions:
        kind = region["type"]
        names = region["value"].get(kind) or [""]
        value = values.get(str(names[0]))
        if value is None:
            if names[0] not in unknown:
                unknown.append(str(names[0]))
            value = IGNORE_LABEL
        try:
            out[_KINDS[kind](region, h, w)] = value
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(
                f"{example.label_path}: task {example.ref} has an unreadable {kind} region "
                f"({e}); fix or re-export it"
            ) from None
    if unknown and warn:
        warn(
            f"warning: {example.label_path}: task {example.ref} labels {', '.join(unknown)} "
            "not in the classes -> ignore"
        )
    return out


# --- Label Studio's brush RLE ---------------------------------------------------------------
# A bit stream, most significant bit first: 32 bits the value count, 5 bits word size - 1,
# four 4-bit run-length widths - 1; then runs until the count is reached: 1 bit (1 = one value
# repeated, 0 = literal values), 2 bits choosing a width, width bits the run length - 1, then
# one word (repeat) or run-length words (literal). The values are the RGBA mask, row-major.


def decode_rle(rle):
    """Label Studio's brush RLE (a list of byte values) -> (N,) uint8."""
    data = np.asarray(rle, dtype=np.uint8)
    bits = np.unpackbits(data)
    pos = 0

    def read(n):
        nonlocal pos
        if pos + n > bits.size:
            raise ValueError("the RLE ends early")
        chunk = bits[pos : pos + n]
        pos += n
        return int("".join("01"[b] for b in chunk), 2) if n else 0

    num = read(32)
    word = read(5) + 1
    widths = [read(4) + 1 for _ in range(4)]
    out = np.zeros(num, np.uint8)
    i = 0
    while i < num:
        repeat = read(1)
        j = min(num, i + 1 + read(widths[read(2)]))
        if repeat:
            out[i:j] = read(word)
        else:
            for k in range(i, j):
                out[k] = read(word)
        i = j
    return out


def encode_rle(values):
    """(N,) uint8 -> Label Studio's brush RLE (list of ints), repeat runs only, 8-bit words."""
    values = np.asarray(values, np.uint8).ravel()
    widths = (3, 6, 10, 16)  # run-length widths: each at most 16 bits (4-bit field)
    bits = [format(values.size, "032b"), format(7, "05b")]
    bits += [format(w - 1, "04b") for w in widths]
    change = np.flatnonzero(np.diff(values.astype(np.int16))) + 1
    starts = np.concatenate([[0], change]) if values.size else np.zeros(0, int)
    ends = np.concatenate([change, [values.size]]) if values.size else np.zeros(0, int)
    for s, e in zip(starts, ends, strict=True):
        while s < e:
            n = min(e - s, 1 << widths[-1])
            k = next(i for i, w in enumerate(widths) if n <= 1 << w)
            bits += [
                "1",
                format(k, "02b"),
                format(n - 1, f"0{widths[k]}b"),
                format(values[s], "08b"),
            ]
            s += n
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return [int(stream[i : i + 8], 2) for i in range(0, len(stream), 8)]


def result_of(shape, h, w):
    """A LabelMe shape as a Label Studio region: a polygon as polygonlabels, any other kind as
    brushlabels of its LabelMe mask (for synth and tests)."""
    common = {"original_width": w, "original_height": h, "from_name": "tag", "to_name": "image"}
    if (shape.get("shape_type") or "polygon") == "polygon":
        pts = [[100.0 * x / w, 100.0 * y / h] for x, y in shape["points"]]
        value = {"points": pts, "polygonlabels": [shape["label"]]}
        return {"type": "polygonlabels", "value": value, **common}
    mask = labelme.shape_mask(h, w, shape)
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[mask] = 255
    value = {"format": "rle", "rle": encode_rle(rgba), "brushlabels": [shape["label"]]}
    return {"type": "brushlabels", "value": value, **common}
