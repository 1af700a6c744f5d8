"""Data: dataset descriptors, label formats, image reading, pairing, the split, the cached input
pipeline, augmentation and synthetic data. The package namespace is the API (`data.read_image`,
`data.KITTI_ROAD`, `data.epoch_batches`, ...); each concern has its module."""

from fcn.data.descriptors import (
    DATASETS,
    IGNORE_LABEL,
    KITTI_ROAD,
    DatasetSpec,
    get_spec,
    resolve_spec,
)
from fcn.data.images import IMAGE_EXTS, images_in, read_image
from fcn.data.labels import decode_label, one_hot
from fcn.data.pairing import (
    Example,
    category_of,
    example_metadata,
    list_pairs,
    list_splits,
    list_test_images,
    pair_folder,
)
from fcn.data.pipeline import CachedSplit, epoch_batches, load_example, load_split, prefetch, to_input
from fcn.data.split import split_train_val

__all__ = [
    "DATASETS", "IGNORE_LABEL", "IMAGE_EXTS", "KITTI_ROAD", "CachedSplit", "DatasetSpec",
    "Example", "category_of", "decode_label", "epoch_batches", "get_spec", "images_in",
    "list_pairs", "list_test_images", "load_example", "load_split", "one_hot", "pair_folder",
    "prefetch", "read_image", "split_train_val", "to_input", "resolve_spec", "list_splits",
    "example_metadata",
]
