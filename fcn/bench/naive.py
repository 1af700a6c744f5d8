"""The naive baseline: training written like the Udacity helper (PNGs read and resized for
every batch, one-hot labels in NumPy, feed_dict, a plain float32 session, no prefetching)."""

import itertools
import statistics

import cv2
import numpy as np

from fcn.bench import timing

# The Udacity helper's one-hot: pixels of this colour are "not road", all others road.
NAIVE_BACKGROUND = (255, 0, 0)


def naive_batches(examples, image_shape, batch_size, rng):
    """The Udacity helper's get_batches_fn: every batch decodes and resizes its PNGs again.

    Yields (images uint8 (B, h, w, 3), labels bool (B, h, w, 2)) over one shuffled epoch of full
    batches; like the original it resizes labels bilinearly and counts void pixels as road.
    """
    h, w = image_shape
    order = rng.permutation(len(examples))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        images, labels = [], []
        for i in order[start : start + batch_size]:
            image = cv2.cvtColor(cv2.imread(examples[i].image_path), cv2.COLOR_BGR2RGB)
            gt = cv2.cvtColor(cv2.imread(examples[i].label_path), cv2.COLOR_BGR2RGB)
            images.append(cv2.resize(image, (w, h)))
            background = np.all(cv2.resize(gt, (w, h)) == NAIVE_BACKGROUND, axis=2)[..., None]
            labels.append(np.concatenate([background, ~background], axis=2))
        yield np.array(images), np.array(labels)


def measure(config, examples, spec, steps, repeats, log):
    """Median training images/s of the Udacity-style loop in a plain float32 session."""
    import tensorflow.compat.v1 as tf

    from fcn.training import build

    b = config.batch_size
    rng = np.random.default_rng(config.seed)
    stream = timing.endless(lambda: naive_batches(examples, config.image_shape, b, rng))
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        m = build.build_model(
            sess, config.replace(precision="float32", xla=False), spec.num_classes
        )

        def naive(n):
            for images, labels in itertools.islice(stream, n):
                sess.run(
                    [m.train_op, m.loss],
                    {
                        m.image_input: images,
                        # Its one-hot labels as the graph's class ids (road = column 1).
                        m.labels: labels[..., 1].astype(np.uint8),
                        m.is_training: True,
                        m.keep_prob: config.keep_prob,
                        m.learning_rate: config.learning_rate,
                    },
                )

        naive(timing.WARMUP_STEPS)
        rates = []
        for r in range(repeats):
            rates.append(timing.rate(naive, steps, b))
            log(f"naive repeat {r + 1}/{repeats}: {rates[-1]:.3f} img/s")
    return statistics.median(rates)
