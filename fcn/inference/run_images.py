"""The run's own images that an export measures itself on: training images to calibrate an int8
model (ONNX Runtime's calibration reader, TFLite's representative dataset) and the validation
split to score every file of the export. Both are the split.json lists of the run, read from its
data folder, so an export is calibrated and scored on exactly what the run trained and validated
on.
"""

import os

import numpy as np

from fcn import checks, data, names, runs
from fcn.errors import UserError

DEFAULT_CALIBRATION_IMAGES = 64


def _split_examples(run_dir, data_dir, spec, split):
    """The run's `split` ('train' or 'val') examples present in data_dir, in split.json's order;
    None when the run records no split or the data folder is not there."""
    folder = runs.RunFolder(run_dir)
    if not folder.has(names.SPLIT_FILE) or not os.path.isdir(data_dir):
        return None
    wanted = folder.read_split().get(split) or []
    try:
        present = {ex.name: ex for ex in data.list_pairs(data_dir, spec, need_train=False)}
    except UserError:
        return None
    return [present[n] for n in wanted if n in present]


def calibration_examples(run_dir, data_dir, spec, count):
    """`count` of the run's training examples, evenly spaced over split.json's list (its order
    is the split's shuffle, so every category is drawn); a one-line UserError when there are
    fewer (or none)."""
    checks.raise_first([checks.at_least("--calibration-images", count, 1)])
    examples = _split_examples(run_dir, data_dir, spec, "train") or []
    if len(examples) < count:
        raise UserError(
            f"--int8 calibrates on {count} training images but {data_dir} has "
            f"{len(examples)} of the run's training split; lower --calibration-images or pass "
            "the run's --data-dir"
        )
    picked = np.linspace(0, len(examples) - 1, count).round().astype(int)
    return [examples[i] for i in picked]


def validation_examples(run_dir, data_dir, spec):
    """The run's validation examples present in data_dir ([] when there are none to read)."""
    return _split_examples(run_dir, data_dir, spec, "val") or []


def read_images(examples):
    """uint8 RGB (H, W, 3) of each example at its own size: what the models take."""
    return [data.read_image(ex.image_path, warn=None) for ex in examples]
