"""Dataset readers, one module per family, behind one API: resolve a spec, list the
examples of its splits and its test images, read a label, describe an example.

Each family module defines resolve(data_dir, classes) -> DatasetSpec, list_splits(data_dir,
spec) -> (train, official validation or None) and list_test_images(data_dir, spec). Labels are
read by spec.label_format ('color' / 'index' files: fcn.data.labels; 'coco': coco.read_label),
so a spec restored from a run folder reads labels without its family's folder conventions.
"""

from fcn.data import labels
from fcn.data.datasets import (
    cityscapes,
    coco,
    folder,
    kitti,
    labelme,
    labelstudio,
    mapillary,
    voc,
)
from fcn.data.descriptors import KITTI_ROAD
from fcn.errors import UserError

# dataset name (Config.dataset) -> reader module
DATASETS = {
    "kitti_road": kitti,
    mapillary.NAME: mapillary,
    cityscapes.NAME: cityscapes,
    folder.NAME: folder,
    coco.NAME: coco,
    voc.NAME: voc,
    labelme.NAME: labelme,
    labelstudio.NAME: labelstudio,
}
# label_format -> reader of labels that are not label images
_LABEL_READERS = {
    "coco": coco.read_label,
    "labelme": labelme.read_label,
    "labelstudio": labelstudio.read_label,
}


def _family(name):
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


def resolve_spec(name, data_dir=None, classes="", voc_aug=False):
    """The spec of dataset `name` as it applies to data_dir: datasets whose classes live in
    their files (Mapillary's config, a folder's label map, COCO's categories) read them here;
    KITTI and Cityscapes need no data_dir. classes: COCO's category selection (Config.classes,
    '' = person,car); voc_aug: VOC's training on SBD's SegmentationClassAug (Config.voc_aug)."""
    family = _family(name)
    if family is voc:
        return voc.resolve(data_dir, classes, voc_aug)
    if voc_aug:
        raise UserError(f"--voc-aug adds SBD's labels to --dataset voc, not {name}; drop it")
    return family.resolve(data_dir, classes)


def get_spec(name):
    """The spec of a dataset that needs no files to describe (kitti_road, cityscapes, folder's
    binary default)."""
    return resolve_spec(name)


def list_splits(data_dir, spec=KITTI_ROAD, need_train=True):
    """(training examples, the dataset's official validation examples or None): datasets that
    ship a validation split (Mapillary, Cityscapes, COCO, VOC) validate on it; others carve one
    out (fcn.data.split). need_train False (evaluate scoring the official validation split): a
    folder holding only that split lists [] for training instead of stopping."""
    return _family(spec.name).list_splits(data_dir, spec, need_train)


def list_pairs(data_dir, spec=KITTI_ROAD, need_train=True):
    """Every labelled example present: training, then official validation ones."""
    train, val = list_splits(data_dir, spec, need_train)
    return train + (val or [])


def list_test_images(data_dir, spec=KITTI_ROAD):
    """Unlabelled test images ([] where the dataset has no test folder)."""
    return _family(spec.name).list_test_images(data_dir, spec)


def read_label(example, spec=KITTI_ROAD, warn=print):
    """The example's label as class ids (H, W) uint8 at its original size, IGNORE_LABEL where
    unlabelled; values the dataset does not define are reported once per file through warn
    and ignored (KITTI: a UserError)."""
    if spec.label_format in _LABEL_READERS:
        return _LABEL_READERS[spec.label_format](example, spec, warn)
    return labels.read_label_image(example.label_path, spec, warn)


def example_metadata(example, spec=KITTI_ROAD):
    """Dataset-specific facts about one example for error analysis (COCO: instances of every
    category, 'instances_person': 2, ...); {} where the dataset has none."""
    if spec.label_format == "coco" and example.label_path:
        return coco.metadata(example, spec)
    return {}
