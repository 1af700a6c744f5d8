"""Data: dataset descriptors, label formats, image reading, pairing, the dataset readers
(fcn.data.datasets), the split, the cached input pipeline, augmentation and synthetic data. The
package namespace is the API (`data.read_image`, `data.KITTI_ROAD`, `data.epoch_batches`, ...);
each concern has its module."""

from fcn.data.datasets import (
    DATASETS,
    example_metadata,
    get_spec,
    list_pairs,
    list_splits,
    list_test_images,
    read_label,
    resolve_spec,
)
from fcn.data.descriptors import IGNORE_LABEL, KITTI_ROAD, DatasetSpec
from fcn.data.images import IMAGE_EXTS, decode_image, images_in, read_image
from fcn.data.labels import decode_ids, decode_label, one_hot
from fcn.data.pairing import Example, category_of, pair_by_stem, pair_folder
from fcn.data.pipeline import (
    CachedSplit,
    epoch_batches,
    load_example,
    load_split,
    prefetch,
    to_input,
)
from fcn.data.split import split_train_val

__all__ = [
    "DATASETS", "IGNORE_LABEL", "IMAGE_EXTS", "KITTI_ROAD", "CachedSplit", "DatasetSpec",
    "Example", "category_of", "decode_ids", "decode_image", "decode_label", "epoch_batches",
    "example_metadata", "get_spec", "images_in", "list_pairs", "list_splits", "list_test_images",
    "load_example", "load_split", "one_hot", "pair_by_stem", "pair_folder", "prefetch",
    "read_image", "read_label", "resolve_spec", "split_train_val", "to_input",
]  # fmt: skip
