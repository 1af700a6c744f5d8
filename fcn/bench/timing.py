"""The timed kinds, interleaved in each repeat: training end to end and compute only, the input
pipeline alone, and prediction through the Predictor; and the bfloat16-vs-float32 mask
agreement on the same weights."""

import itertools
import os
import statistics
import tempfile
import time

import numpy as np

from fcn import data
from fcn.data import augment

# One step pays for the graph rewrite and oneDNN primitive creation; it is never timed.
WARMUP_STEPS = 1
# The pipeline is ~1000x faster than a step: more batches make its figure stable.
PIPELINE_BATCHES = 20


def measure(config, split, spec, steps, repeats, log):
    """Median images/s of our training (end to end and compute only), pipeline and inference."""
    import tensorflow.compat.v1 as tf

    from fcn import precision
    from fcn.training import build, validation
    from fcn.training import epochs as loop

    b, nc = config.batch_size, spec.num_classes
    augmenter = augment.Augmenter.from_config(config)
    rng = np.random.default_rng(config.seed)
    stream = endless(lambda: data.epoch_batches(split, b, augmenter, rng))
    graph = tf.Graph()
    session_config = precision.session_config(config.precision, config.xla)
    with graph.as_default(), tf.Session(config=session_config) as sess:
        m = build.build_model(sess, config, nc)
        images, labels = next(stream)
        fixed = {
            m.image_input: handle(sess, images),
            m.labels: handle(sess, labels),
            m.keep_prob: config.keep_prob,
            m.learning_rate: config.learning_rate,
            m.is_training: True,
        }
        # Prediction as every command does it: uint8 images through the Predictor.
        path = validation.predictor(sess, m, config, spec, batch_size=b)
        to_predict = np.clip(np.rint(images), 0, 255).astype(np.uint8)

        def compute(n):
            for _ in range(n):
                sess.run([m.train_op, m.loss], fixed)

        def end_to_end(n):
            # Exactly the training loop: a prefetch thread per epoch feeding run_epoch.
            batches = data.prefetch(itertools.islice(stream, n))
            loop.run_epoch(
                sess,
                batches,
                loop.StepTensors.of(m),
                loop.StepValues(config.keep_prob, config.learning_rate, {m.is_training: True}),
                total=n,
                desc="bench train",
            )

        def pipeline(n):
            for _ in data.prefetch(itertools.islice(stream, n)):
                pass

        def infer(n):
            for _ in range(n):
                path.predict(to_predict)

        kinds = {
            "pipeline_img_s": (pipeline, PIPELINE_BATCHES),
            "train_compute_img_s": (compute, steps),
            "train_img_s": (end_to_end, steps),
            "infer_img_s": (infer, steps),
        }
        compute(WARMUP_STEPS)
        infer(WARMUP_STEPS)
        rates = {key: [] for key in kinds}
        # Kinds interleave within each repeat, so a busy spell on the machine hits all of them.
        for r in range(repeats):
            for key, (fn, n) in kinds.items():
                rates[key].append(rate(fn, n, b))
            log(
                f"repeat {r + 1}/{repeats}: "
                + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rates.items())
            )
        figures = {key: statistics.median(values) for key, values in rates.items()}
        figures["mask_agreement_float32"] = float32_agreement(sess, m, config, spec, to_predict)
    return figures


def float32_agreement(sess, model, config, spec, images):
    """Share of mask pixels on which the run's precision and float32 agree: the same weights
    (saved from `sess`) restored into a float32 session of the same graph, both through the
    Predictor."""
    import tensorflow.compat.v1 as tf

    from fcn import precision
    from fcn.training import validation

    if config.precision == "float32":
        return 1.0
    _, mask = validation.predictor(sess, model, config, spec).predict(images)
    saver = tf.train.Saver(tf.global_variables())
    with tempfile.TemporaryDirectory() as folder:
        prefix = saver.save(sess, os.path.join(folder, "weights"), write_meta_graph=False)
        with tf.Session(graph=sess.graph, config=precision.session_config("float32")) as exact:
            saver.restore(exact, prefix)
            float32 = config.replace(precision="float32")
            _, reference = validation.predictor(exact, model, float32, spec).predict(images)
    return float((mask == reference).mean())


def endless(batches_of_one_epoch):
    """Epoch after epoch of a batch generator factory."""
    return itertools.chain.from_iterable(batches_of_one_epoch() for _ in itertools.count())


def rate(fn, steps, batch_size):
    t0 = time.perf_counter()
    fn(steps)
    return steps * batch_size / (time.perf_counter() - t0)


def handle(sess, array):
    """Keep an array in the session as a tensor handle: feeding it later copies nothing."""
    import tensorflow.compat.v1 as tf

    value = tf.placeholder(tf.as_dtype(array.dtype), array.shape)
    return sess.run(tf.get_session_handle(value), {value: array})
