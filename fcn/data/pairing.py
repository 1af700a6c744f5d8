"""Pairing images with their labels in a dataset's folders; test images."""

import dataclasses
import os

from fcn.data.descriptors import KITTI_ROAD
from fcn.data.images import images_in
from fcn.errors import UserError


@dataclasses.dataclass(frozen=True)
class Example:
    name: str  # image stem, e.g. um_000000
    image_path: str
    label_path: str  # '' for test images
    category: str  # um / umm / uu (the stem's prefix)


def category_of(stem):
    return stem.split("_", 1)[0]


def list_pairs(data_dir, spec=KITTI_ROAD):
    """Training pairs under data_dir/<root>; every image needs its label and vice versa."""
    root = os.path.join(data_dir, spec.root)
    image_dir = os.path.join(root, spec.train_images)
    label_dir = os.path.join(root, spec.train_labels)
    for folder in (data_dir, root, image_dir, label_dir):
        if not os.path.isdir(folder):
            raise UserError(
                f"data folder {folder} does not exist; put the {spec.name} dataset under "
                f"{data_dir} (see data/README.md) or make a synthetic one with "
                f"`python main.py synth --out {data_dir}`"
            )
    return pair_folder(image_dir, label_dir, spec)


def pair_folder(image_dir, label_dir, spec=KITTI_ROAD):
    images = images_in(image_dir)
    if not images:
        raise UserError(f"no images (*.png, *.jpg) in {image_dir}; is --data-dir right?")
    labels = {os.path.splitext(os.path.basename(p))[0]: p for p in images_in(label_dir)}
    examples, unlabeled, used = [], [], set()
    for path in images:
        stem = os.path.splitext(os.path.basename(path))[0]
        cat, _, ident = stem.partition("_")
        label_stem = spec.label_stem.format(cat=cat, id=ident)
        cat = cat if spec.stratify == "prefix" else ""
        if label_stem not in labels:
            unlabeled.append(os.path.basename(path))
            continue
        used.add(label_stem)
        examples.append(Example(stem, path, labels[label_stem], cat))
    # Labels of another kind (KITTI's *_lane_*) are skipped; those of our kind need an image.
    kind = spec.label_stem.format(cat="", id="").strip("_")
    orphans = sorted(s for s in labels if f"_{kind}_" in s and s not in used)
    if unlabeled:
        raise UserError(
            f"{len(unlabeled)} image(s) in {image_dir} have no label in {label_dir} "
            f"(e.g. {', '.join(unlabeled[:3])}); add the labels or remove the images"
        )
    if orphans:
        raise UserError(
            f"{len(orphans)} label(s) in {label_dir} have no image in {image_dir} "
            f"(e.g. {', '.join(orphans[:3])}); add the images or remove the labels"
        )
    return examples


def list_splits(data_dir, spec=KITTI_ROAD):
    """(training examples, the dataset's official validation examples or None): datasets that
    ship a validation split (Mapillary, Cityscapes, COCO) validate on it; others carve one out."""
    return list_pairs(data_dir, spec), None


def example_metadata(example, spec=KITTI_ROAD):
    """Dataset-specific facts about one example for error analysis (COCO: instances per
    category); {} where the dataset has none."""
    return {}


def list_test_images(data_dir, spec=KITTI_ROAD):
    folder = os.path.join(data_dir, spec.root, spec.test_images)
    return [
        Example(os.path.splitext(os.path.basename(p))[0], p, "", category_of(os.path.basename(p)))
        for p in images_in(folder)
    ]
