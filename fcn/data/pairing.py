"""Pairing images with their labels in a dataset's folders; the examples the readers return."""

import dataclasses
import os

from fcn.data.descriptors import KITTI_ROAD
from fcn.data.images import images_in
from fcn.errors import UserError


@dataclasses.dataclass(frozen=True)
class Example:
    name: str  # image stem, e.g. um_000000
    image_path: str
    label_path: str  # '' for test images; COCO: the annotation JSON
    category: str  # um / umm / uu (the stem's prefix); '' where not stratified
    ref: object = None  # COCO: the image id in label_path's annotations
    polygons: str = ""  # the true objects as a GeoJSON file (a folder's polygons/); '' none


def category_of(stem):
    return stem.split("_", 1)[0]


def stem_of(path):
    return os.path.splitext(os.path.basename(path))[0]


# dataset family -> (the synth kind writing its layout, the folder of it under synth's --out)
SYNTH_KINDS = {
    "kitti_road": ("kitti", ""),  # synth --out DIR writes DIR/data_road: --data-dir DIR
    "mapillary": ("streets", "mapillary"),
    "cityscapes": ("streets", "cityscapes"),
    "coco": ("coco", "coco"),
    "folder": ("shapes", "shapes"),
    "voc": ("voc", "voc"),
    "labelme": ("labelme", "labelme"),
    "labelstudio": ("labelstudio", "labelstudio"),
}


def synth_hint(spec_name, data_dir):
    """The synth command that writes a synthetic dataset of this family, naming its --kind."""
    kind, sub = SYNTH_KINDS.get(spec_name, ("kitti", ""))
    if not sub:
        return f"`python main.py synth --kind {kind} --out {data_dir}`"
    out = os.path.dirname(os.path.normpath(data_dir)) or "."
    where = os.path.join(out, sub)
    return f"`python main.py synth --kind {kind} --out {out}` (then --data-dir {where})"


def require_data_dir(spec_name, data_dir, what):
    """The data folder of a reader whose files sit anywhere inside it (LabelMe, Label Studio):
    one line naming it, what belongs there and how to make a synthetic one."""
    if not os.path.isdir(data_dir):
        raise UserError(
            f"data folder {data_dir} does not exist; put {what} there or make a synthetic one "
            f"with {synth_hint(spec_name, data_dir)}"
        )


def require_folders(spec, data_dir, *folders):
    """One line naming the first missing folder and how to get the data."""
    for folder in folders:
        if not os.path.isdir(folder):
            raise UserError(
                f"data folder {folder} does not exist; put the {spec.name} dataset under "
                f"{data_dir} (see data/README.md) or make a synthetic one with "
                f"{synth_hint(spec.name, data_dir)}"
            )


def skip_train(need_train, *folders):
    """True where a reader may leave its training split out: the caller scores only the official
    validation split (evaluate) and a training folder is absent (a validation-only download)."""
    return not need_train and not all(os.path.isdir(f) for f in folders)


def pair_folder(image_dir, label_dir, spec=KITTI_ROAD):
    """KITTI's pairing: the label stem is spec.label_stem of the image stem's prefix and id."""
    images = images_in(image_dir)
    if not images:
        raise UserError(f"no images (*.png, *.jpg) in {image_dir}; is --data-dir right?")
    labels = {stem_of(p): p for p in images_in(label_dir)}
    examples, unlabeled, used = [], [], set()
    for path in images:
        stem = stem_of(path)
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
    _raise_unmatched(unlabeled, orphans, image_dir, label_dir)
    return examples


def pair_by_stem(image_dir, label_dir):
    """Images and labels of the same stem, any extensions (a.jpg <-> a.png); every image needs
    its label and every label its image."""
    images = _by_stem(images_in(image_dir), image_dir)
    if not images:
        raise UserError(f"no images (*.png, *.jpg, ...) in {image_dir}; is --data-dir right?")
    labels = _by_stem(images_in(label_dir), label_dir)
    unlabeled = [os.path.basename(images[s]) for s in sorted(images) if s not in labels]
    orphans = [os.path.basename(labels[s]) for s in sorted(labels) if s not in images]
    _raise_unmatched(unlabeled, orphans, image_dir, label_dir)
    return [Example(s, images[s], labels[s], "") for s in sorted(images)]


def _by_stem(paths, folder):
    out = {}
    for p in paths:
        s = stem_of(p)
        if s in out:
            raise UserError(
                f"{folder} holds both {os.path.basename(out[s])} and {os.path.basename(p)}; "
                "keep one file per stem"
            )
        out[s] = p
    return out


def _raise_unmatched(unlabeled, orphans, image_dir, label_dir):
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


def unlabelled_examples(folder):
    """Unlabelled examples of the images in folder ([] when it does not exist)."""
    return [Example(stem_of(p), p, "", "") for p in images_in(folder)]
