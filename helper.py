"""The Udacity helper interface, delegating to the fcn package.

Differences from the original, all fixes: KITTI void (black) pixels are left out of the labels
instead of counted as "not road"; labels are resized with nearest neighbour; overlays are written
at each test image's original resolution; downloads resume, verify and extract safely.
"""

import os

import numpy as np

from fcn import data, download, infer, runs


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
        yield from data.epoch_batches(cache[0], batch_size, spec.num_classes, rng=rng)

    return get_batches_fn


def gen_test_output(sess, logits, keep_prob, image_pl, data_folder, image_shape):
    """Yield (file name, green overlay at the original resolution) for data_folder/image_2/*."""
    spec = data.KITTI_ROAD
    folder = os.path.join(data_folder, "image_2")
    for path in data.images_in(folder):
        example = data.Example(
            os.path.basename(path), path, "", data.category_of(os.path.basename(path))
        )
        original = data.read_image(path)
        small, _ = data.load_example(example, image_shape, spec)
        out = sess.run(logits, {keep_prob: 1.0, image_pl: data.to_input(small[None])})
        probs = infer.softmax(np.reshape(out, (image_shape[0], image_shape[1], -1)))
        yield example.name, infer.road_overlay(original, probs[..., spec.positive_class])


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
