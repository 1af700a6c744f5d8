"""Mapillary Vistas v1.2: --data-dir is the release folder.

    config_v1.2.json                     {"labels": [{"name", "color", "evaluate", ...}, ...]}
    training/images/<key>.jpg            training/v1.2/labels/<key>.png (or training/labels/)
    validation/images/<key>.jpg          validation/v1.2/labels/<key>.png (or validation/labels/)
    testing/images/<key>.jpg             no labels

A label PNG is a palette PNG whose index is the position in the config's label list. Labels
with evaluate: false are ignore and leave the class list, so the evaluated ones are renumbered
0, 1, ... in config order.
"""

import json
import os

from fcn.data.descriptors import IGNORE_LABEL, DatasetSpec
from fcn.data.pairing import (
    pair_by_stem,
    require_folders,
    skip_train,
    synth_hint,
    unlabelled_examples,
)
from fcn.errors import UserError

NAME = "mapillary"
CONFIG_FILE = "config_v1.2.json"
# Both layouts occur in the wild: the v1.2 release nests labels under v1.2/.
_LABEL_DIRS = ("v1.2/labels", "labels")
# Multiclass: the class whose probability infer shows.
_SHOWN_CLASS = "construction--flat--road"


def resolve(data_dir=None, classes=""):
    if data_dir is None:
        raise UserError(f"{NAME} reads its classes from {CONFIG_FILE}; pass --data-dir")
    path = os.path.join(data_dir, CONFIG_FILE)
    labels = _read_config(path)
    class_names, palette, colors, id_map = [], [], [], []
    for stored, entry in enumerate(labels):
        color = tuple(int(c) for c in entry["color"])
        if entry.get("evaluate", True):
            index = len(class_names)
            class_names.append(str(entry["name"]))
            palette.append(color)
        else:
            index = IGNORE_LABEL
        colors.append((color, index))
        id_map.append((stored, index))
    if not class_names:
        raise UserError(f"{path} has no label with evaluate: true; nothing to learn")
    shown = class_names.index(_SHOWN_CLASS) if _SHOWN_CLASS in class_names else 0
    return DatasetSpec(
        name=NAME,
        class_names=tuple(class_names),
        task="multiclass",
        positive_class=shown,
        palette=tuple(palette),
        label_format="index",
        colors=tuple(colors),
        ignore_label=IGNORE_LABEL,
        stratify="",
        benchmark="",
        root="",
        train_images="training/images",
        train_labels=_label_dir(data_dir, "training"),
        test_images="testing/images",
        label_stem="",
        unknown="ignore",
        id_map=tuple(id_map),
        val_images="validation/images",
        val_labels=_label_dir(data_dir, "validation"),
    )


def _read_config(path):
    try:
        with open(path) as f:
            labels = json.load(f)["labels"]
        for entry in labels:
            if len(entry["color"]) != 3 or not str(entry["name"]):
                raise ValueError
    except FileNotFoundError:
        raise UserError(
            f"{path} does not exist; --data-dir must be the Mapillary Vistas folder "
            f"(or make a synthetic one with {synth_hint(NAME, os.path.dirname(path))})"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(
            f"{path} is not a Mapillary config ({type(e).__name__}); it needs "
            '{"labels": [{"name": ..., "color": [r, g, b], "evaluate": true}, ...]}'
        ) from None
    if len(labels) > IGNORE_LABEL:
        raise UserError(f"{path} has {len(labels)} labels; at most {IGNORE_LABEL} fit 8 bits")
    return labels


def _label_dir(data_dir, split):
    for sub in _LABEL_DIRS:
        if os.path.isdir(os.path.join(data_dir, split, sub)):
            return f"{split}/{sub}"
    return f"{split}/{_LABEL_DIRS[0]}"


def list_splits(data_dir, spec, need_train=True):
    """need_train False (evaluate): a release holding only validation/ lists no training ones."""
    root = os.path.join(data_dir, spec.root)
    image_dir, label_dir = (os.path.join(root, p) for p in (spec.train_images, spec.train_labels))
    val_images = os.path.join(root, spec.val_images)
    has_val = spec.val_images and os.path.isdir(val_images)
    if has_val and skip_train(need_train, image_dir, label_dir):
        train = []
    else:
        require_folders(spec, data_dir, image_dir, label_dir)
        train = pair_by_stem(image_dir, label_dir)
    if not has_val:
        return train, None
    val_labels = os.path.join(root, spec.val_labels)
    require_folders(spec, data_dir, val_labels)
    return train, pair_by_stem(val_images, val_labels)


def list_test_images(data_dir, spec):
    return unlabelled_examples(os.path.join(data_dir, spec.root, spec.test_images))
