"""FLOPs per image (TensorFlow's profiler) and this machine's matmul peak: what a measured
images/s is as a share of what the CPU can do."""

import statistics
import time

# Training FLOPs per image as a multiple of the forward pass's (forward + 2 backward passes).
TRAIN_FLOPS_FACTOR = 3
# The peak matmul: 2 n^3 FLOPs; at n = 2048 that is 17 GFLOP, ~0.1 s in float32 on 2 cores.
MATMUL_N = 2048
MATMUL_RUNS = 5


def peak_share(images_per_s, flops_per_image, peak_flops_per_s):
    """Achieved FLOP/s (images/s x FLOPs per image) as a share of the peak; None without one."""
    if not peak_flops_per_s:
        return None
    return images_per_s * flops_per_image / peak_flops_per_s


def graph_flops(graph):
    """Float operations of one run of every op in graph, by TensorFlow's profiler (its
    registered statistics: 2 per multiply-add for convolutions and matmuls). Shapes must be
    static, or ops are left out."""
    import tensorflow.compat.v1 as tf

    builder = tf.profiler.ProfileOptionBuilder
    options = builder(builder.float_operation()).with_empty_output().build()
    return int(tf.profiler.profile(graph, options=options).total_float_ops)


def count_forward_flops(config, num_classes):
    """FLOPs of one image's forward pass: the network alone (fcn.models.build_network), built
    in its own graph on a static (1, H, W, 3) placeholder, in inference mode."""
    import tensorflow.compat.v1 as tf

    from fcn import models

    h, w = config.image_shape
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, (1, h, w, 3))
        models.build_network(
            images, config, num_classes, tf.constant(False), tf.constant(1.0, tf.float32)
        )
    return graph_flops(graph)


def matmul_peaks(xla=False, n=MATMUL_N, runs=MATMUL_RUNS):
    """{'float32': FLOP/s, 'bfloat16': FLOP/s} of an n x n tf.matmul, median of `runs`.

    The session has the model's threads (precision.session_config) but no mixed-precision
    rewrite, which would turn the float32 matmul into bf16; the bf16 one is bf16 explicitly.
    """
    import tensorflow.compat.v1 as tf

    from fcn import precision

    peaks = {}
    graph = tf.Graph()
    with graph.as_default(), tf.Session(config=precision.session_config("float32", xla)) as sess:
        for name, dtype in (("float32", tf.float32), ("bfloat16", tf.bfloat16)):
            # Variables, so no constant folding; the cast runs once, at initialisation.
            a = tf.Variable(tf.cast(tf.random.normal((n, n), seed=1), dtype))
            b = tf.Variable(tf.cast(tf.random.normal((n, n), seed=2), dtype))
            product = tf.matmul(a, b).op
            sess.run([a.initializer, b.initializer])
            sess.run(product)  # warm-up: oneDNN primitive creation
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                sess.run(product)
                times.append(time.perf_counter() - t0)
            peaks[name] = 2 * n**3 / statistics.median(times)
    return peaks
