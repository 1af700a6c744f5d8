"""Shared fixtures: a tiny VGG16 SavedModel and a tiny synthetic KITTI-layout dataset."""

import os

import pytest
import tensorflow.compat.v1 as tf

tf.disable_v2_behavior()

from fcn import config, precision  # noqa: E402
from fcn.data import synth  # noqa: E402
from fcn.models import savedmodel  # noqa: E402
from fcn.training import train  # noqa: E402

# 1/16 of VGG16's channels: the same structure and interface, built in about a second.
TINY_WIDTH = 1 / 16
KITTI_SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kitti_sample")


@pytest.fixture(scope="session")
def tiny_vgg(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("vgg") / "vgg")
    return savedmodel.save_vgg16(path, seed=0, width=TINY_WIDTH)


@pytest.fixture(scope="session")
def synth_data(tmp_path_factory):
    """12 training and 3 test images at two small odd sizes."""
    path = str(tmp_path_factory.mktemp("synth") / "data")
    synth.generate_dataset(path, count=12, test_count=3, seed=0, sizes=((90, 300), (91, 297)))
    return path


# What users get is --precision auto. A test that pins float32 for exact numbers runs once more
# under auto where that resolves to bfloat16 (AMX / AVX512-BF16 CPUs: Grappler's bf16 rewrite
# and oneDNN's bf16 kernels, a different graph); elsewhere auto is float32, which the pinned run
# already covers.
AUTO_BF16 = pytest.param(
    "auto",
    marks=pytest.mark.skipif(
        precision.resolve("auto") != "bfloat16",
        reason=f"--precision auto is {precision.resolve('auto')} here, not bfloat16: the "
        "float32 run covers it",
    ),
    id="auto",
)
PRECISIONS = ["float32", AUTO_BF16]

# The trained run's network input size; tests that resize like the run use it.
TRAINED_RUN_SHAPE = (64, 192)


@pytest.fixture(scope="session")
def tiny_config(synth_data, tiny_vgg):
    """make(runs_dir, **changes): a Config for a short run of the tiny VGG on synth_data (one
    epoch, batch 4, two validation images, float32, no test overlays) with the changes."""

    def make(runs_dir, **changes):
        values = dict(
            data_dir=synth_data,
            vgg_dir=tiny_vgg,
            runs_dir=str(runs_dir),
            image_shape=TRAINED_RUN_SHAPE,
            epochs=1,
            batch_size=4,
            val_count=2,
            precision="float32",
            test_overlays=False,
        )
        return config.Config(**{**values, **changes})

    return make


@pytest.fixture(scope="session")
def trained_run(tiny_config, tmp_path_factory):
    """A finished 2-epoch run of the tiny VGG (its folder) for evaluate, infer and export."""
    cfg = tiny_config(tmp_path_factory.mktemp("runs"), epochs=2)
    return train.train(cfg, log=lambda *a: None)[0]


@pytest.fixture
def kitti_sample():
    if not os.path.isdir(KITTI_SAMPLE):
        pytest.skip(f"the real KITTI sample is not at {KITTI_SAMPLE}")
    return KITTI_SAMPLE
