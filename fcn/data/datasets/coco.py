"""COCO instances (2017): --data-dir holds

    annotations/instances_train2017.json   annotations/instances_val2017.json
    train2017/<file_name>                  val2017/<file_name>          test2017/ (optional)

--classes picks categories by name ('person,car') or supercategory ('vehicle' = each of its
categories one class); class 0 is background, so is every category not picked. Masks come
from the polygons / RLE through pycocotools. Overlaps: the picked categories' instances are
painted in annotation order, a later one over an earlier one; then crowd regions
(iscrowd = 1) of picked categories are painted ignore over everything, since whatever of
them is inside the crowd is uncertain. Crowds of categories not picked stay background.
"""

import json
import os
import threading

import numpy as np

from fcn.data.descriptors import IGNORE_LABEL, DatasetSpec
from fcn.data.pairing import (
    Example,
    require_folders,
    stem_of,
    synth_hint,
    unlabelled_examples,
)
from fcn.errors import UserError

NAME = "coco"
DEFAULT_CLASSES = "person,car"
BACKGROUND = "background"
PALETTE = ((220, 20, 60), (0, 0, 142), (119, 11, 32), (0, 0, 230), (0, 60, 100), (0, 80, 100),
           (0, 0, 70), (250, 170, 30), (107, 142, 35), (70, 130, 180))  # fmt: skip

_SPLITS = (
    ("train2017", "annotations/instances_train2017.json"),
    ("val2017", "annotations/instances_val2017.json"),
)

# (path, mtime, size) of an annotation JSON -> its index: real COCO's is 450 MB, parsed once
# per process (the stamp notices a file written again, as demo's synthetic data is).
_INDEX = {}
_INDEX_LOCK = threading.Lock()


class _Index:
    """One annotation file: images by id, annotations per image (file order), categories."""

    def __init__(self, values):
        self.images = {img["id"]: img for img in values["images"]}
        self.categories = sorted(values["categories"], key=lambda c: c["id"])
        self.anns = {}
        for ann in values["annotations"]:
            self.anns.setdefault(ann["image_id"], []).append(ann)


def load_index(path):
    try:
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    except OSError:
        key = (os.path.abspath(path), None, None)
    with _INDEX_LOCK:
        if key not in _INDEX:
            try:
                with open(path) as f:
                    _INDEX[key] = _Index(json.load(f))
            except FileNotFoundError:
                raise UserError(
                    f"{path} does not exist; --data-dir must be the COCO folder with "
                    "annotations/ (or make a synthetic one with "
                    f"{synth_hint(NAME, os.path.dirname(os.path.dirname(path)))})"
                ) from None
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise UserError(
                    f"{path} is not a COCO instances file ({type(e).__name__}: {e}); re-download it"
                ) from None
        return _INDEX[key]


def class_name(category):
    """COCO names may hold spaces ('traffic light'); class names become tensor names."""
    return category["name"].replace(" ", "_")


def resolve(data_dir=None, classes=""):
    if data_dir is None:
        raise UserError(f"{NAME} reads its categories from {_SPLITS[0][1]}; pass --data-dir")
    path = next(
        (
            os.path.join(data_dir, a)
            for _, a in _SPLITS
            if os.path.isfile(os.path.join(data_dir, a))
        ),
        os.path.join(data_dir, _SPLITS[0][1]),
    )
    chosen = select(load_index(path).categories, classes or DEFAULT_CLASSES, path)
    names = (BACKGROUND,) + tuple(class_name(c) for c in chosen)
    return DatasetSpec(
        name=NAME,
        class_names=names,
        task="binary" if len(chosen) == 1 else "multiclass",
        positive_class=1,
        palette=(None,) + tuple(PALETTE[i % len(PALETTE)] for i in range(len(chosen))),
        label_format="coco",
        colors=(),
        ignore_label=IGNORE_LABEL,
        stratify="",
        benchmark="",
        root="",
        train_images=_SPLITS[0][0],
        train_labels=_SPLITS[0][1],
        test_images="test2017",
        label_stem="",
        unknown="ignore",
        val_images=_SPLITS[1][0],
        val_labels=_SPLITS[1][1],
        category_ids=(0,) + tuple(int(c["id"]) for c in chosen),
        grey_images=True,
    )


def select(categories, classes, path):
    """Categories named in classes ('person,car', 'vehicle'), in the order given; a
    supercategory expands to its categories in id order."""
    chosen = []
    for word in (w.strip() for w in classes.split(",")):
        key = word.replace("_", " ")
        hits = [c for c in categories if c["name"] == key] or [
            c for c in categories if c.get("supercategory") == key
        ]
        if not hits:
            valid = sorted({c["name"] for c in categories})
            supers = sorted({c.get("supercategory", "") for c in categories} - {""})
            raise UserError(
                f"--classes: {word!r} is no category of {path}; choose from {', '.join(valid)} "
                f"or a supercategory ({', '.join(supers)})"
            )
        chosen += [c for c in hits if c not in chosen]
    if BACKGROUND in {class_name(c) for c in chosen}:
        raise UserError(f"--classes: {BACKGROUND!r} is class 0 already; leave it out")
    return chosen


def list_splits(data_dir, spec, need_train=True):
    """need_train False (evaluate): a folder holding only the val annotations and images lists
    no training examples."""
    val_json = os.path.join(data_dir, spec.root, spec.val_labels)
    has_val = spec.val_labels and os.path.isfile(val_json)
    train_json = os.path.join(data_dir, spec.root, spec.train_labels)
    train_images = os.path.join(data_dir, spec.root, spec.train_images)
    train_there = os.path.isfile(train_json) and os.path.isdir(train_images)
    if has_val and not need_train and not train_there:
        train = []
    else:
        train = _examples(data_dir, spec, spec.train_images, spec.train_labels)
    if not has_val:
        return train, None
    return train, _examples(data_dir, spec, spec.val_images, spec.val_labels)


def _examples(data_dir, spec, images, labels):
    image_dir = os.path.join(data_dir, spec.root, images)
    path = os.path.join(data_dir, spec.root, labels)
    index = load_index(path)
    require_folders(spec, data_dir, image_dir)
    examples, missing = [], []
    for img in sorted(index.images.values(), key=lambda i: i["file_name"]):
        image_path = os.path.join(image_dir, img["file_name"])
        if not os.path.isfile(image_path):
            missing.append(img["file_name"])
        examples.append(Example(stem_of(image_path), image_path, path, "", img["id"]))
    if missing:
        raise UserError(
            f"{len(missing)} image(s) of {path} are missing from {image_dir} "
            f"(e.g. {', '.join(missing[:3])}); download them or use the matching annotations"
        )
    return examples


def list_test_images(data_dir, spec):
    return unlabelled_examples(os.path.join(data_dir, spec.root, spec.test_images))


def read_label(example, spec, warn=print):
    """Class ids (H, W) uint8 at the image's size recorded in the annotations."""
    from pycocotools import mask as mask_utils

    index = load_index(example.label_path)
    img = index.images[example.ref]
    h, w = int(img["height"]), int(img["width"])
    class_of = {cid: i for i, cid in enumerate(spec.category_ids) if i > 0}
    out = np.zeros((h, w), np.uint8)
    crowd = np.zeros((h, w), bool)
    for ann in index.anns.get(example.ref, ()):
        if ann["category_id"] not in class_of:
            continue
        mask = _mask(mask_utils, ann, h, w, example.label_path)
        if ann.get("iscrowd", 0):
            crowd |= mask
        else:
            out[mask] = class_of[ann["category_id"]]
    out[crowd] = IGNORE_LABEL
    return out


def _mask(mask_utils, ann, h, w, path):
    """One annotation's region (h, w) bool: polygons, uncompressed or compressed RLE."""
    seg = ann["segmentation"]
    try:
        if isinstance(seg, list):
            polygons = [p for p in seg if len(p) >= 6]  # 3+ points; degenerate ones cover none
            if not polygons:
                return np.zeros((h, w), bool)
            rle = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))
        elif isinstance(seg["counts"], list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = seg
        mask = mask_utils.decode(rle)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(
            f"{path}: annotation {ann.get('id')} has an unreadable segmentation ({e}); fix it"
        ) from None
    if mask.shape != (h, w):
        raise UserError(
            f"{path}: annotation {ann.get('id')} is {mask.shape[1]}x{mask.shape[0]} but its "
            f"image is {w}x{h}; fix the annotation"
        )
    return mask.astype(bool)


def metadata(example, spec):
    """Instances (crowds not counted) of every category of the annotation file in this image:
    {"instances_person": 2, "instances_bus": 0, ...}."""
    index = load_index(example.label_path)
    counts = {f"instances_{class_name(c)}": 0 for c in index.categories}
    names = {c["id"]: f"instances_{class_name(c)}" for c in index.categories}
    for ann in index.anns.get(example.ref, ()):
        if not ann.get("iscrowd", 0) and ann["category_id"] in names:
            counts[names[ann["category_id"]]] += 1
    return counts
