"""Cityscapes (gtFine): --data-dir is the folder holding leftImg8bit/ and gtFine/.

    leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png   (label ids 0..33)

The label ids map to the 19 train ids of the benchmark (cityscapesScripts' labels.py); every
other id is ignore. The _instanceIds files are read by evaluate only (fcn.evaluation.cityscapes,
the instance-level figures); the _color and _polygons files are not read.
"""

import glob
import os

from fcn.data.descriptors import IGNORE_LABEL, DatasetSpec
from fcn.data.pairing import Example, require_folders, skip_train
from fcn.errors import UserError

NAME = "cityscapes"
IMAGE_SUFFIX = "_leftImg8bit"
LABEL_SUFFIX = "_gtFine_labelIds"

# (train class, its Cityscapes label id, its standard colour), in train-id order.
_TRAIN_CLASSES = (
    ("road", 7, (128, 64, 128)),
    ("sidewalk", 8, (244, 35, 232)),
    ("building", 11, (70, 70, 70)),
    ("wall", 12, (102, 102, 156)),
    ("fence", 13, (190, 153, 153)),
    ("pole", 17, (153, 153, 153)),
    ("traffic_light", 19, (250, 170, 30)),
    ("traffic_sign", 20, (220, 220, 0)),
    ("vegetation", 21, (107, 142, 35)),
    ("terrain", 22, (152, 251, 152)),
    ("sky", 23, (70, 130, 180)),
    ("person", 24, (220, 20, 60)),
    ("rider", 25, (255, 0, 0)),
    ("car", 26, (0, 0, 142)),
    ("truck", 27, (0, 0, 70)),
    ("bus", 28, (0, 60, 100)),
    ("train", 31, (0, 80, 100)),
    ("motorcycle", 32, (0, 0, 230)),
    ("bicycle", 33, (119, 11, 32)),
)
_NUM_LABEL_IDS = 34  # ids 0..33 are defined; the rest are not Cityscapes ids


def _id_map():
    train_id = {label_id: i for i, (_, label_id, _) in enumerate(_TRAIN_CLASSES)}
    return tuple((i, train_id.get(i, IGNORE_LABEL)) for i in range(_NUM_LABEL_IDS))


SPEC = DatasetSpec(
    name=NAME,
    class_names=tuple(name for name, _, _ in _TRAIN_CLASSES),
    task="multiclass",
    positive_class=0,  # road: the class infer's heat map shows
    palette=tuple(color for _, _, color in _TRAIN_CLASSES),
    label_format="index",
    colors=(),  # labelIds files are single-channel; the _color files are for viewing only
    ignore_label=IGNORE_LABEL,
    stratify="",
    benchmark="",
    root="",
    train_images="leftImg8bit/train",
    train_labels="gtFine/train",
    test_images="leftImg8bit/test",
    label_stem="",
    unknown="ignore",
    id_map=_id_map(),
    val_images="leftImg8bit/val",
    val_labels="gtFine/val",
)


def resolve(data_dir=None, classes=""):
    return SPEC


def list_splits(data_dir, spec, need_train=True):
    """need_train False (evaluate): a folder holding only val/ lists no training examples."""
    root = os.path.join(data_dir, spec.root)
    has_val = spec.val_images and os.path.isdir(os.path.join(root, spec.val_images))
    train_dirs = (os.path.join(root, spec.train_images), os.path.join(root, spec.train_labels))
    if has_val and skip_train(need_train, *train_dirs):
        train = []
    else:
        train = _pairs(data_dir, spec, spec.train_images, spec.train_labels)
    if not has_val:
        return train, None
    return train, _pairs(data_dir, spec, spec.val_images, spec.val_labels)


def _pairs(data_dir, spec, images, labels):
    image_dir = os.path.join(data_dir, spec.root, images)
    label_dir = os.path.join(data_dir, spec.root, labels)
    require_folders(spec, data_dir, image_dir, label_dir)
    found = _images(image_dir)
    if not found:
        raise UserError(f"no <city>/*{IMAGE_SUFFIX}.png in {image_dir}; is --data-dir right?")
    examples, unlabeled = [], []
    for ex in found:
        city = os.path.basename(os.path.dirname(ex.image_path))
        label = os.path.join(label_dir, city, ex.name + LABEL_SUFFIX + ".png")
        if os.path.isfile(label):
            examples.append(Example(ex.name, ex.image_path, label, city))
        else:
            unlabeled.append(os.path.basename(ex.image_path))
    names = {ex.name for ex in found}
    orphans = sorted(
        os.path.basename(p)
        for p in glob.glob(os.path.join(label_dir, "*", f"*{LABEL_SUFFIX}.png"))
        if os.path.basename(p)[: -len(LABEL_SUFFIX + ".png")] not in names
    )
    if unlabeled:
        raise UserError(
            f"{len(unlabeled)} image(s) in {image_dir} have no *{LABEL_SUFFIX}.png in "
            f"{label_dir} (e.g. {', '.join(unlabeled[:3])}); add the labels or remove the images"
        )
    if orphans:
        raise UserError(
            f"{len(orphans)} label(s) in {label_dir} have no image in {image_dir} "
            f"(e.g. {', '.join(orphans[:3])}); add the images or remove the labels"
        )
    return examples


def _images(folder):
    """Examples named <city>_<seq>_<frame> of folder/<city>/*_leftImg8bit.png, sorted."""
    paths = sorted(glob.glob(os.path.join(folder, "*", f"*{IMAGE_SUFFIX}.png")))
    cut = len(IMAGE_SUFFIX + ".png")
    return [
        Example(os.path.basename(p)[:-cut], p, "", os.path.basename(os.path.dirname(p)))
        for p in paths
    ]


def list_test_images(data_dir, spec):
    return _images(os.path.join(data_dir, spec.root, spec.test_images))
