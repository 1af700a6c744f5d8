"""KITTI road submission files: 8-bit road probability maps at original size, and their
bird's-eye views for the benchmark server."""

import os

from fcn import data, names, runs
from fcn.errors import UserError
from fcn.evaluation.kitti import bev, devkit

SUBMISSION_DIR = names.SUBMISSION_DIR
BEV_DIR = "bev"
CALIB_DIR = "calib"  # beside the test images: data_road/testing/calib/<cat>_<id>.txt


def calib_paths(data_dir, spec, test_examples):
    """calib/<cat>_<id>.txt of every test image; all must exist before anything is written."""
    folder = os.path.join(data_dir, spec.root, os.path.dirname(spec.test_images), CALIB_DIR)
    paths = {ex.name: bev.calib_path_for(folder, ex.name) for ex in test_examples}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if missing:
        raise UserError(
            f"--bev needs a calibration file per test image; {len(missing)} missing in {folder} "
            f"(e.g. {os.path.basename(missing[0])}): unzip KITTI's data_road_calib.zip there "
            "or drop --bev"
        )
    return {name: bev.read_calib(p) for name, p in paths.items()}


def write(model, test_examples, run_dir, spec, calibs=None, batch_size=8):
    """RUN_DIR/submission/<cat>_road_<id>.png for each test image: road probability as 8-bit
    grey at the image's original size; with calibs ({name: calib}) also submission/bev/<same
    name> (800 x 400). Returns the number of images."""
    folder = os.path.join(run_dir, SUBMISSION_DIR)
    count = 0
    for start in range(0, len(test_examples), batch_size):
        chunk = test_examples[start : start + batch_size]
        originals = [data.read_image(ex.image_path, warn=None) for ex in chunk]
        predicted = model.predict_each(originals)
        for ex, (probs, _) in zip(chunk, predicted, strict=True):
            cat, _, ident = ex.name.partition("_")
            name = spec.label_stem.format(cat=cat, id=ident) + ".png"
            # The devkit reads maps as 8-bit (cv2.imread(path, 0)); quantise once, here.
            q = devkit.probability_to_uint8(probs[..., spec.positive_class])
            runs.write_image(os.path.join(folder, name), q)
            if calibs is not None:
                # The devkit's own sampling (transform2BEV.py), which also made the server's BEV
                # ground truth, so submitted maps line up with it pixel for pixel.
                top_view = bev.perspective_to_bev_devkit(q, calibs[ex.name])
                runs.write_image(os.path.join(folder, BEV_DIR, name), top_view)
            count += 1
    return count
