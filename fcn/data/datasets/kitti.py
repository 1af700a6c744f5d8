"""KITTI road: <data_dir>/data_road/{training,testing}/..., colour-coded labels, no official
validation split (the training set is split, stratified by um/umm/uu)."""

import os

from fcn.data.descriptors import KITTI_ROAD
from fcn.data.images import images_in
from fcn.data.pairing import Example, category_of, pair_folder, require_folders, stem_of

SPEC = KITTI_ROAD


def resolve(data_dir=None, classes=""):
    return SPEC


def list_splits(data_dir, spec, need_train=True):
    # No official validation split: the run's val images are carved out of training.
    """Training pairs under data_dir/<root>; every image needs its label and vice versa."""
    root = os.path.join(data_dir, spec.root)
    image_dir = os.path.join(root, spec.train_images)
    label_dir = os.path.join(root, spec.train_labels)
    require_folders(spec, data_dir, data_dir, root, image_dir, label_dir)
    return pair_folder(image_dir, label_dir, spec), None


def list_test_images(data_dir, spec):
    folder = os.path.join(data_dir, spec.root, spec.test_images)
    return [Example(stem_of(p), p, "", category_of(stem_of(p))) for p in images_in(folder)]
