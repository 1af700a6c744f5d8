"""A folder of your own: --data-dir holds

    images/<stem>.<png|jpg|jpeg|bmp|tif|tiff>   labels/<stem>.<png|...>   (matching stems)
    test/                                        optional unlabelled images
    polygons/<stem>.geojson                      optional, the true objects as polygons (a
        FeatureCollection in the image's CRS, or pixels for plain images): evaluate adds the
        SpaceNet building metric (fcn.evaluation.polygon_scores); every image needs its file
    labelmap.json                                optional, the classes (class index = position):
        {"classes": [{"name": "background", "color": [0, 0, 0]}, ...], "ignore": [[255, 0, 255]]}
        for colour-coded labels, or
        {"classes": [{"name": "background", "id": 0}, ...], "ignore": [128]}
        for single-channel id labels ("ignore" is optional).

Without labelmap.json the labels are single-channel 0/255 (or 0/1) masks: the binary task
background/foreground. Two classes make a binary task (positive class 1), more a multiclass one.
"""

import dataclasses
import json
import os

from fcn.data.descriptors import IGNORE_LABEL, DatasetSpec
from fcn.data.pairing import pair_by_stem, require_folders, stem_of, unlabelled_examples
from fcn.errors import UserError

NAME = "folder"
LABELMAP_FILE = "labelmap.json"
POLYGONS_DIR = "polygons"
POLYGON_EXTS = (".geojson", ".json")
# Overlay colours of classes the label map gives none (id labels): Cityscapes' palette.
DEFAULT_PALETTE = (
    (255, 0, 0), (0, 0, 142), (220, 20, 60), (107, 142, 35), (70, 130, 180), (244, 35, 232),
    (250, 170, 30), (220, 220, 0), (152, 251, 152), (0, 80, 100), (119, 11, 32), (0, 0, 230),
)  # fmt: skip

_BASE = dict(
    name=NAME,
    ignore_label=IGNORE_LABEL,
    stratify="",
    benchmark="",
    root="",
    train_images="images",
    train_labels="labels",
    test_images="test",
    label_stem="",
    unknown="ignore",
)

# No labelmap.json: 0 = background; 255 (or 1, from tools that write 0/1 masks) = foreground.
BINARY = DatasetSpec(
    class_names=("background", "foreground"),
    task="binary",
    positive_class=1,
    palette=(None, DEFAULT_PALETTE[0]),
    label_format="index",
    colors=(),
    id_map=((0, 0), (1, 1), (255, 1)),
    **_BASE,
)


def resolve(data_dir=None, classes=""):
    path = os.path.join(data_dir, LABELMAP_FILE) if data_dir else ""
    if not path or not os.path.isfile(path):
        return BINARY
    entries, ignore = _read_labelmap(path)
    names = tuple(str(e["name"]) for e in entries)
    by_color = all("color" in e for e in entries)
    binary = len(names) == 2
    if by_color:
        palette = [tuple(int(c) for c in e["color"]) for e in entries]
        colors = [(c, i) for i, c in enumerate(palette)]
        colors += [(tuple(int(c) for c in v), IGNORE_LABEL) for v in ignore]
        id_map = ()
    else:
        palette = [DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i in range(len(names))]
        colors = ()
        id_map = [(int(e["id"]), i) for i, e in enumerate(entries)]
        id_map += [(int(v), IGNORE_LABEL) for v in ignore]
    if binary:  # overlays paint the positive class only
        palette = [None, palette[1] if by_color else DEFAULT_PALETTE[0]]
    return DatasetSpec(
        class_names=names,
        task="binary" if binary else "multiclass",
        positive_class=1,
        palette=tuple(palette),
        label_format="color" if by_color else "index",
        colors=tuple(colors),
        id_map=tuple(sorted(id_map)),
        **_BASE,
    )


def _read_labelmap(path):
    usage = (
        'it needs {"classes": [{"name": ..., "color": [r, g, b]} or {"name": ..., "id": n}, '
        '...], "ignore": [...]}'
    )
    try:
        with open(path) as f:
            values = json.load(f)
        entries, ignore = values["classes"], values.get("ignore", [])
        for e in entries:
            if not str(e["name"]) or ("color" in e) == ("id" in e):
                raise ValueError("a class needs a name and either a color or an id")
            if "color" in e and len(e["color"]) != 3:
                raise ValueError("a color is [r, g, b]")
            if "id" in e and not 0 <= int(e["id"]) <= 255:
                raise ValueError("ids are 8-bit, 0..255")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path} is not a label map ({e}); {usage}") from None
    if len(entries) < 2:
        raise UserError(f"{path} lists {len(entries)} class(es); give at least two")
    if len({"color" in e for e in entries}) != 1:
        raise UserError(
            f"{path} mixes colours and ids; give every class a color, or every one an id"
        )
    names = [str(e["name"]) for e in entries]
    if len(set(names)) != len(names):
        raise UserError(f"{path} names a class twice ({names}); class names must differ")
    return entries, ignore


def list_splits(data_dir, spec, need_train=True):
    # No official validation split: the run's val images are carved out of training.
    root = os.path.join(data_dir, spec.root)
    image_dir, label_dir = (os.path.join(root, p) for p in (spec.train_images, spec.train_labels))
    require_folders(spec, data_dir, image_dir, label_dir)
    examples = pair_by_stem(image_dir, label_dir)
    polygon_dir = os.path.join(root, POLYGONS_DIR)
    if os.path.isdir(polygon_dir):
        examples = with_polygons(examples, polygon_dir)
    return examples, None


def with_polygons(examples, polygon_dir):
    """The examples with their polygons/<stem>.geojson; a file without its image, or an image
    without its file, is a one-line error naming it."""
    files = {}
    for name in sorted(os.listdir(polygon_dir)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in POLYGON_EXTS:
            files[stem] = os.path.join(polygon_dir, name)
    stems = {ex.name for ex in examples}
    orphans = [files[s] for s in files if s not in stems]
    if orphans:
        raise UserError(
            f"polygon ground truth {orphans[0]} has no image of stem {stem_of(orphans[0])!r} "
            f"in images/ ({len(orphans)} such file(s)); add the image or remove the file"
        )
    missing = [ex.image_path for ex in examples if ex.name not in files]
    if missing:
        raise UserError(
            f"image {missing[0]} has no {stem_of(missing[0])}.geojson in {polygon_dir} "
            f"({len(missing)} such image(s)); add its polygons or remove {polygon_dir}"
        )
    return [dataclasses.replace(ex, polygons=files[ex.name]) for ex in examples]


def list_test_images(data_dir, spec):
    return unlabelled_examples(os.path.join(data_dir, spec.root, spec.test_images))
