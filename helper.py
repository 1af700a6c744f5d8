"""The Udacity helper interface, delegating to the fcn package.

Differences from the original, all fixes: KITTI void (black) pixels are left out of the labels
instead of counted as "not road"; labels are resized with nearest neighbour; overlays are written
at each test image's original resolution; downloads resume, verify and extract safely.
"""

import os

import numpy as np

from fcn import data, download, runs
from fcn.inference import overlays
from fcn.inference.predictor import LogitsPredictor


def maybe_download_pretrained_vgg(data_dir):
    """Download and extract the Udacity vgg.zip into data_dir/vgg unless it is already there."""
    return download.maybe_download_pretrained_vgg(data_dir)


def gen_batch_function(data_folder, image_shape, seed=0):
    """A get_batches_fn(batch_size) over data_folder (a KITTI `training` folder).

    Yields (images float32 (B, H, W, 3) raw 0..255, labels (B, H, W, 2) one-hot [not road,
    road]; void pixels all zero). Images are decoded and resized once, then shuffled per call.
    """
    spec = data.KITTI_ROAD
    examples = data.pair_folder(
        os.path.join(data_folder, "image_2"), os.path.join(data_folder, "gt_image_2"), spec
    )
    rng = np.random.default_rng(seed)
    cache = []

    def get_batches_fn(batch_size):
        if not cache:
            cache.append(data.load_split(examples, image_shape, spec))
        for images, labels in data.epoch_batches(cache[0], batch_size, rng=rng):
            yield images, data.one_hot(labels, spec.num_classes)

    return get_batches_fn


def gen_test_output(sess, logits, keep_prob, image_pl, data_folder, image_shape):
    """Yield (file name, green overlay at the original resolution) for data_folder/image_2/*.

    The network lives in the caller's graph; resizing, upsampling and the decision are the
    suite's one prediction path, run beside it (fcn.inference.predictor.LogitsPredictor).
    """
    spec = data.KITTI_ROAD
    with LogitsPredictor(sess, logits, keep_prob, image_pl, image_shape, spec) as predictor:
        for path in data.images_in(os.path.join(data_folder, "image_2")):
            original = data.read_image(path)
            _, mask = predictor.predict(original)
            yield os.path.basename(path), overlays.paint(original, mask, spec)


def save_inference_samples(runs_dir, data_dir, sess, image_shape, logits, keep_prob, input_image):
    """Write overlays of every test image into a new runs_dir/<timestamp>/; return that folder."""
    output_dir = runs.new_run_dir(runs_dir)
    print(f"Training finished. Saving test images to: {output_dir}")
    test_folder = os.path.join(data_dir, "data_road", "testing")
    for name, image in gen_test_output(
        sess, logits, keep_prob, input_image, test_folder, image_shape
    ):
        runs.write_image(os.path.join(output_dir, name), image)
    return output_dir
