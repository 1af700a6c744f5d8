"""PASCAL VOC segmentation: --data-dir is VOCdevkit's parent, VOCdevkit/ or a VOC20xx/ itself.

    JPEGImages/<id>.jpg
    SegmentationClass/<id>.png            palette PNG: index = class (0..20), 255 = void border
    ImageSets/Segmentation/{train,val}.txt one image id a line (test.txt: the test images)
    SegmentationClassAug/<id>.png         SBD's extra labels (grey ids), with --voc-aug
    ImageSets/Segmentation/train_aug.txt  their list, where present

The official val list is the validation split; with --voc-aug training reads the augmented
labels (train_aug.txt, or train.txt where it is absent) less every val image.
"""

import glob
import os

from fcn.data.descriptors import IGNORE_LABEL, DatasetSpec
from fcn.data.pairing import Example, require_folders, skip_train
from fcn.errors import UserError

NAME = "voc"
CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
VOID_COLOR = (224, 224, 192)  # the colour VOC's palette gives index 255
LISTS = "ImageSets/Segmentation"
AUG_LABELS = "SegmentationClassAug"


def color_map(n=256):
    """VOC's palette: the bits of index i, three at a time, fill R, G and B from the top bit
    down (index 1 -> (128, 0, 0), 2 -> (0, 128, 0), 255 -> (224, 224, 192))."""
    colors = []
    for i in range(n):
        rgb, c = [0, 0, 0], i
        for shift in range(7, -1, -1):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << shift
            c >>= 3
        colors.append(tuple(rgb))
    return tuple(colors)


def find_root(data_dir):
    """The VOC20xx folder under data_dir, relative to it ('' = data_dir itself); the newest
    year where several are present."""
    if data_dir is None or os.path.isdir(os.path.join(data_dir, "JPEGImages")):
        return "" if data_dir is not None else "VOCdevkit/VOC2012"
    for pattern in ("VOCdevkit/VOC20*", "VOC20*"):
        found = sorted(p for p in glob.glob(os.path.join(data_dir, pattern)) if os.path.isdir(p))
        if found:
            return os.path.relpath(found[-1], data_dir)
    return "VOCdevkit/VOC2012"


def resolve(data_dir=None, classes="", voc_aug=False):
    root = find_root(data_dir)
    train_labels, train_list = "SegmentationClass", f"{LISTS}/train.txt"
    if voc_aug:
        base = os.path.join(data_dir or "", root)
        if data_dir is not None and not os.path.isdir(os.path.join(base, AUG_LABELS)):
            raise UserError(
                f"--voc-aug needs SBD's {AUG_LABELS}/ in {base}; download SegmentationClassAug "
                "or drop --voc-aug"
            )
        train_labels = AUG_LABELS
        if data_dir is None or os.path.isfile(os.path.join(base, LISTS, "train_aug.txt")):
            train_list = f"{LISTS}/train_aug.txt"
    palette = color_map()
    colors = tuple((palette[i], i) for i in range(len(CLASSES))) + ((VOID_COLOR, IGNORE_LABEL),)
    return DatasetSpec(
        name=NAME,
        class_names=CLASSES,
        task="multiclass",
        positive_class=CLASSES.index("person"),  # the class infer's heat map shows
        palette=(None,) + palette[1 : len(CLASSES)],  # background stays unpainted
        label_format="index",
        colors=colors,  # an RGB re-save of a label is decoded by VOC's colours
        ignore_label=IGNORE_LABEL,
        stratify="",
        benchmark="",
        root=root,
        train_images="JPEGImages",
        train_labels=train_labels,
        test_images="JPEGImages",
        label_stem="",
        unknown="ignore",
        id_map=tuple((i, i) for i in range(len(CLASSES))) + ((IGNORE_LABEL, IGNORE_LABEL),),
        val_images="JPEGImages",
        val_labels="SegmentationClass",
        train_list=train_list,
        val_list=f"{LISTS}/val.txt",
    )


def read_list(path):
    """Image ids of an ImageSets list, in file order."""
    try:
        with open(path) as f:
            return [line.split()[0] for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(
            f"cannot read image list {path} ({type(e).__name__}); re-download it"
        ) from None


def _examples(root, images, labels, ids):
    examples, missing = [], []
    for i in ids:
        image = os.path.join(root, images, i + ".jpg")
        label = os.path.join(root, labels, i + ".png")
        if not os.path.isfile(image) or not os.path.isfile(label):
            missing.append(i)
        examples.append(Example(i, image, label, ""))
    if missing:
        raise UserError(
            f"{len(missing)} listed image(s) lack {images}/<id>.jpg or {labels}/<id>.png in "
            f"{root} (e.g. {', '.join(missing[:3])}); re-download them or fix the list"
        )
    return examples


def _root(data_dir, spec):
    """The VOC20xx folder: the spec's (as the run saw it), else the one under this data_dir (a
    run trained with VOCdevkit's parent evaluates on the VOC2012 folder itself too)."""
    root = os.path.join(data_dir, spec.root)
    return root if os.path.isdir(root) else os.path.join(data_dir, find_root(data_dir))


def list_splits(data_dir, spec, need_train=True):
    root = _root(data_dir, spec)
    require_folders(spec, data_dir, root, os.path.join(root, spec.train_images))
    val_path = os.path.join(root, spec.val_list)
    has_val = os.path.isfile(val_path)
    val_ids = read_list(val_path) if has_val else []
    train_path = os.path.join(root, spec.train_list)
    if has_val and skip_train(need_train, os.path.join(root, spec.train_labels)):
        train = []
    elif not os.path.isfile(train_path):
        raise UserError(f"{train_path} does not exist; is --data-dir a VOC folder?")
    else:
        held_out = set(val_ids)  # SBD's train_aug lists overlap no val image, others may
        ids = [i for i in read_list(train_path) if i not in held_out]
        train = _examples(root, spec.train_images, spec.train_labels, ids)
    if not has_val:
        return train, None
    return train, _examples(root, spec.val_images, spec.val_labels, val_ids)


def list_test_images(data_dir, spec):
    """The ids of ImageSets/Segmentation/test.txt present in JPEGImages ([] without the list)."""
    root = _root(data_dir, spec)
    path = os.path.join(root, LISTS, "test.txt")
    if not os.path.isfile(path):
        return []
    found = ((i, os.path.join(root, spec.test_images, i + ".jpg")) for i in read_list(path))
    return [Example(i, p, "", "") for i, p in found if os.path.isfile(p)]
