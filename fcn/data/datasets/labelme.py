"""LabelMe: --data-dir is a folder of LabelMe JSON files (any depth) with their images (beside
them at imagePath, or embedded as imageData) and labels.txt, the class order as labelme's own
labelme2voc.py reads it:

    __ignore__        -> ignore (255)
    _background_      -> class 0 (named background)
    person            -> class 1, ...

Shapes are rasterised as labelme's shapes_to_label does (its PIL.ImageDraw primitives: polygons
and rectangles filled with their outline, circles and points as filled ellipses of the centre's
distance / 5 px radius, lines and linestrips 10 px wide, masks pasted at their box), later
shapes over earlier ones, so a mask equals the one labelme2voc.py writes. No official split:
the validation images are carved out as for the folder reader.
"""

import base64
import binascii
import glob
import io
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from fcn.data import pairing
from fcn.data.descriptors import IGNORE_LABEL, DatasetSpec
from fcn.data.pairing import Example, stem_of, unlabelled_examples
from fcn.errors import UserError

NAME = "labelme"
LABELS_FILE = "labels.txt"
IGNORE_NAME, BACKGROUND_NAME = "__ignore__", "_background_"
LINE_WIDTH, POINT_SIZE = 10, 5  # labelme's shape_to_mask defaults
SHAPE_TYPES = ("polygon", "rectangle", "circle", "line", "linestrip", "point", "mask")
PALETTE = (
    (128, 0, 0),
    (0, 128, 0),
    (128, 128, 0),
    (0, 0, 128),
    (128, 0, 128),
    (0, 128, 128),
    (128, 128, 128),
    (64, 0, 0),
    (192, 0, 0),
    (64, 128, 0),
    (192, 128, 0),
    (64, 0, 128),
)  # fmt: skip  (labelme2voc colours its labels with VOC's palette)


def read_labels_txt(path, name=NAME):
    """(class names, names that are ignore) of a labelme labels.txt."""
    if not os.path.isfile(path):
        raise UserError(
            f"{path} does not exist; {name} needs labels.txt (one class a line: __ignore__, "
            "_background_, then your classes), as labelme2voc.py does"
        )
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    ignore = [n for n in lines if n == IGNORE_NAME]
    names = [n for n in lines if n != IGNORE_NAME]
    if BACKGROUND_NAME in names and names[0] != BACKGROUND_NAME:
        raise UserError(f"{path}: {BACKGROUND_NAME} must be the first class (class 0)")
    if len(names) < 2 or len(set(names)) != len(names):
        raise UserError(f"{path} must list at least two distinct classes, got {names}")
    names = ["background" if n == BACKGROUND_NAME else n for n in names]
    return names, ignore


def spec_for(name, names, label_format, root=""):
    """The spec of a class list read from labels.txt (LabelMe, Label Studio)."""
    binary = len(names) == 2
    palette = (None,) + tuple(PALETTE[i % len(PALETTE)] for i in range(len(names) - 1))
    return DatasetSpec(
        name=name,
        class_names=tuple(names),
        task="binary" if binary else "multiclass",
        positive_class=1,
        palette=palette,
        label_format=label_format,
        colors=(),
        ignore_label=IGNORE_LABEL,
        stratify="",
        benchmark="",
        root=root,
        train_images="",
        train_labels="",
        test_images="test",
        label_stem="",
        unknown="ignore",
    )


def resolve(data_dir=None, classes=""):
    if data_dir is None:
        raise UserError(f"{NAME} reads its classes from {LABELS_FILE}; pass --data-dir")
    names, _ = read_labels_txt(os.path.join(data_dir, LABELS_FILE))
    return spec_for(NAME, names, NAME)


def load_json(path):
    """A LabelMe file's dict; a one-line error naming the file when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        shapes = values["shapes"]
        if not isinstance(shapes, list):
            raise TypeError("shapes is not a list")
        int(values["imageHeight"]), int(values["imageWidth"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"{path} is not a LabelMe file ({type(e).__name__}: {e}); it needs shapes, "
            "imagePath, imageHeight and imageWidth"
        ) from None
    return values


def list_splits(data_dir, spec, need_train=True):
    pairing.require_data_dir(NAME, data_dir, "LabelMe files")
    paths = sorted(glob.glob(os.path.join(data_dir, "**", "*.json"), recursive=True))
    examples = []
    for path in paths:
        values = load_json(path)
        if not values["shapes"]:
            print(f"warning: {path}: no shapes; skipped")
            continue
        image = os.path.join(os.path.dirname(path), values.get("imagePath") or "")
        if not (values.get("imagePath") and os.path.isfile(image)):
            if not values.get("imageData"):
                raise UserError(
                    f"{path}: its image {image} is missing and it embeds no imageData; put the "
                    "image beside it or re-save with imageData"
                )
            image = path  # fcn.data.images decodes the embedded image
        examples.append(Example(stem_of(path), image, path, ""))
    if not examples:
        raise UserError(f"no LabelMe *.json with shapes in {data_dir}; is --data-dir right?")
    return examples, None


def list_test_images(data_dir, spec):
    return unlabelled_examples(os.path.join(data_dir, spec.test_images))


def shape_mask(height, width, shape, path="labelme file"):
    """One shape's pixels (H, W) bool, drawn as labelme's shape_to_mask draws it."""
    kind = shape.get("shape_type") or "polygon"
    try:
        xy = [(float(x), float(y)) for x, y in shape["points"]]
        if kind == "mask":
            return _pasted_mask(height, width, xy, shape["mask"])
        need = {"circle": 2, "rectangle": 2, "line": 2, "point": 1}
        if kind in need and len(xy) != need[kind]:
            raise ValueError(f"a {kind} has {need[kind]} point(s), not {len(xy)}")
        if kind == "polygon" and len(xy) < 3:
            raise ValueError("a polygon has 3 or more points")
        if kind == "linestrip" and len(xy) < 2:
            raise ValueError("a linestrip has 2 or more points")
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: a {kind} shape is unreadable ({e}); fix it in labelme") from None
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        (cx, cy), (px, py) = xy
        d = math.hypot(cx - px, cy - py)
        draw.ellipse(((cx - d, cy - d), (cx + d, cy + d)), outline=1, fill=1)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = xy
        box = ((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1)))
        draw.rectangle(box, outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        draw.line(xy, fill=1, width=LINE_WIDTH)
    elif kind == "point":
        (cx, cy), r = xy[0], POINT_SIZE
        draw.ellipse(((cx - r, cy - r), (cx + r, cy + r)), outline=1, fill=1)
    elif kind in ("polygon", "oriented_rectangle"):
        draw.polygon(xy, outline=1, fill=1)
    else:
        raise UserError(f"{path}: shape_type {kind!r} is not one of {', '.join(SHAPE_TYPES)}")
    return np.asarray(canvas, dtype=bool)


def _pasted_mask(height, width, xy, data):
    """A 'mask' shape: a base64 PNG pasted with its top-left at the first point (labelme: the
    box's integer corners, inclusive)."""
    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            small = np.asarray(img.convert("L")) > 0
    except (binascii.Error, OSError, UnidentifiedImageError) as e:
        raise ValueError(f"its mask is not a base64 PNG ({type(e).__name__})") from None
    (x1, y1), (x2, y2) = np.asarray(xy, np.float64).astype(int)
    out = np.zeros((height, width), bool)
    region = out[y1 : y2 + 1, x1 : x2 + 1]
    region[...] = small[: region.shape[0], : region.shape[1]]
    return out


def shapes_to_label(height, width, shapes, value_of, path="labelme file", warn=print):
    """Class ids (H, W) uint8: every shape's class painted in file order (later over earlier);
    value_of: label name -> class id or IGNORE_LABEL. Labels it lacks become ignore, reported
    once for the file through warn."""
    out = np.zeros((height, width), np.uint8)
    unknown = []
    for shape in shapes:
        label = str(shape.get("label", ""))
        value = value_of.get(label)
        if value is None:
            if label not in unknown:
                unknown.append(label)
            value = IGNORE_LABEL
        out[shape_mask(height, width, shape, path)] = value
    if unknown and warn:
        warn(f"warning: {path}: labels not in labels.txt ({', '.join(unknown)}) -> ignore")
    return out


def value_map(spec):
    """Label name -> class id: labels.txt's names (its _background_ is class 0, __ignore__
    ignore)."""
    values = {n: i for i, n in enumerate(spec.class_names)}
    values[BACKGROUND_NAME] = 0
    values[IGNORE_NAME] = IGNORE_LABEL
    return values


def read_label(example, spec, warn=print):
    """Class ids (H, W) uint8 at imageHeight x imageWidth."""
    values = load_json(example.label_path)
    h, w = int(values["imageHeight"]), int(values["imageWidth"])
    return shapes_to_label(h, w, values["shapes"], value_map(spec), example.label_path, warn)
