"""Benchmark (`python main.py bench`, whose flags are BenchOptions): training, input-pipeline
and inference images/s, and a naive baseline.

One run builds the model once and measures, at one image shape and batch size:
    train_img_s          the training loop's own path: cached split -> augmentation -> prefetch
                         thread -> feed_dict -> train step (`train.run_epoch`)
    train_compute_img_s  train steps on a batch handed to the session once (session tensor
                         handles): no Python, copying or feeding in the timing
    pipeline_img_s       the input pipeline alone: `epoch_batches` with augmentation through
                         `prefetch`, no model; the augmentation is the one train's flags ask for
                         (--flip-prob, --rotate-prob, --noise-prob, ...: Augmenter.from_config)
    infer_img_s          prediction through the Predictor every command uses
                         (fcn.inference.predictor): uint8 images at the network size -> class
                         probabilities and masks
    mask_agreement_float32  the share of mask pixels this precision's Predictor decides as a
                         float32 one does, on the same weights and the bench's images (1.0 when
                         the run is float32)
    naive_train_img_s    the Udacity helper's way: PNGs read and resized again for every batch,
                         one-hot in NumPy, feed_dict, a plain float32 session, no prefetching
    pipeline_fraction    (batch / pipeline_img_s) / (batch / train_img_s): the share of a step
                         the pipeline would cost if it did not overlap the step at all
    peak_rss_mb          the process's peak resident memory after our measurements (before the
                         baseline builds its own graph)
    forward_flops_per_image  FLOPs of one image's forward pass, counted by TensorFlow's profiler
                         (`float_operation`) on the network built at a static (1, H, W, 3) shape;
                         a multiply-add counts 2. Training counts 3x forward (forward, then the
                         gradients with respect to activations and to weights), the usual
                         convention; the optimizer's update is not counted
    matmul_peak_float32/_bfloat16  this machine's dense matmul FLOP/s: the median of timed
                         MATMUL_N x MATMUL_N tf.matmul runs (2 n^3 FLOPs each)
    *_peak_share         achieved FLOP/s (images/s x FLOPs per image) over the matmul peak at the
                         run's precision (None where there is no peak for it, e.g. float16)
Every figure is the median of `repeats` timings of `steps` steps, after warm-up steps that pay
for Grappler's rewrite and oneDNN's primitive creation. Without a data_road folder it writes a
small synthetic one into a temporary folder, and without --vgg-dir the encoder starts from random
weights (--weights random), so the command works offline on a fresh machine. --no-naive skips the
baseline (it builds and times the model a second time).
"""

import contextlib
import dataclasses
import itertools
import os
import resource
import statistics
import tempfile
import time

import cv2
import numpy as np

from fcn import config as cfg
from fcn import data, options
from fcn.config import field
from fcn.data import augment, synth
from fcn.errors import UserError

RESULT_KEYS = (
    "train_img_s",
    "train_compute_img_s",
    "pipeline_img_s",
    "infer_img_s",
    "naive_train_img_s",
    "pipeline_fraction",
    "peak_rss_mb",
    "mask_agreement_float32",
    "precision",
    "image_shape",
    "batch_size",
    "cpu",
    "tf_version",
    "encoder",
    "decoder",
    "forward_flops_per_image",
    "train_flops_per_image",
    "matmul_peak_float32",
    "matmul_peak_bfloat16",
    "train_peak_share",
    "train_compute_peak_share",
    "infer_peak_share",
)
# Training FLOPs per image as a multiple of the forward pass's (forward + 2 backward passes).
TRAIN_FLOPS_FACTOR = 3
# The peak matmul: 2 n^3 FLOPs; at n = 2048 that is 17 GFLOP, ~0.1 s in float32 on 2 cores.
MATMUL_N = 2048
MATMUL_RUNS = 5
# A full VGG16 step at 160x576, batch 8 takes ~9 s (bf16) to ~14 s (float32) on 2 CPU cores:
# 3 repeats of 2 steps of each kind keep the default run near 7 minutes.
DEFAULT_STEPS = 2
DEFAULT_REPEATS = 3
# One step pays for the graph rewrite and oneDNN primitive creation; it is never timed.
WARMUP_STEPS = 1
# The pipeline is ~1000x faster than a step: more batches make its figure stable.
PIPELINE_BATCHES = 20
# Cached images; the per-image pipeline cost does not depend on how many there are.
MAX_IMAGES = 64
# Synthetic KITTI-size frames when there is no data: at least this many, and two batches.
SYNTH_MIN_COUNT = 8
# The Udacity helper's one-hot: pixels of this colour are "not road", all others road.
NAIVE_BACKGROUND = (255, 0, 0)


# The Config fields bench's flags set: train's own flags, so the figures are those of the user's
# training (the augmentation too). --width is there for tests (a tiny VGG16), hidden in --help.
CONFIG_FIELDS = (
    "data_dir", "image_shape", "batch_size", "precision", "xla", "encoder", "decoder", "width",
) + augment.CONFIG_FIELDS  # fmt: skip
HIDDEN_CONFIG_FIELDS = ("width",)


@dataclasses.dataclass(frozen=True)
class BenchOptions(options.Options):
    """`bench`'s flags: the training Config it measures (CONFIG_FIELDS from train's flags, the
    other fields at their defaults) and bench's own."""

    config: cfg.Config = field(cfg.Config(), "what to measure", flag=False)
    vgg_dir: str = field(
        None, "VGG16 SavedModel folder for --encoder vgg16", shown="random weights"
    )
    naive: bool = field(
        True, "also time the naive baseline (--no-naive: skip it, about half the run time)"
    )
    steps: int = field(DEFAULT_STEPS, "timed steps per repeat and kind", shown=None)
    repeats: int = field(DEFAULT_REPEATS, "figures are medians of repeats", shown=None)
    json: str = field(None, "also write the figures to FILE as JSON", metavar="FILE")

    def problems(self):
        if self.steps < 1 or self.repeats < 1:
            yield f"--steps and --repeats must be >= 1, got {self.steps} and {self.repeats}"

    @classmethod
    def from_args(cls, args):
        config = cfg.Config(**{name: getattr(args, name) for name in CONFIG_FIELDS})
        own = cfg.from_args(args, cls=cls)  # the config field has no flag: the default
        return own.replace(config=config)


def benchmark(opts, log=print):
    """All figures of BenchOptions `opts` as a dict with RESULT_KEYS."""
    import tensorflow.compat.v1 as tf

    from fcn import precision
    from fcn.models import savedmodel

    config = opts.config
    encoder, width, batch_size = config.encoder, config.width, config.batch_size
    steps, repeats = opts.steps, opts.repeats
    prec = precision.resolve(config.precision)
    with contextlib.ExitStack() as temporary:
        data_dir = _data_or_synthetic(config.data_dir, batch_size, temporary, log)
        paths = {}
        if encoder == "vgg16" and opts.vgg_dir is not None:
            savedmodel.check_vgg_dir(opts.vgg_dir)
            paths["vgg_dir"] = opts.vgg_dir
        else:
            log(f"encoder {encoder} (width {width:g}) from random weights")
            paths["weights"] = "random"
        config = config.replace(data_dir=data_dir, precision=prec, **paths)
        spec = data.get_spec(config.dataset)
        examples = _bench_examples(config, spec)
        h, w = config.image_shape
        log(
            f"bench: {len(examples)} cached images at {h}x{w}, "
            f"batch {batch_size}, {prec}, {encoder} x {config.decoder}, "
            f"{steps} steps x {repeats} repeats; augmentation: {_augmentation_note(config)}"
        )
        split = data.load_split(
            examples, config.image_shape, spec, clahe=(config.clahe_clip, config.clahe_grid)
        )
        before = _cpu_times()
        figures = _measure(config, split, spec, steps, repeats, log)
        # ru_maxrss is in KiB on Linux.
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures["naive_train_img_s"] = (
            _measure_naive(config, examples, spec, steps, repeats, log) if opts.naive else None
        )
        peaks = matmul_peaks(config.xla)
        forward = count_forward_flops(config, spec.num_classes)
        log(_machine_note(before, _cpu_times()))
    figures["pipeline_fraction"] = figures["train_img_s"] / figures["pipeline_img_s"]
    train_flops = TRAIN_FLOPS_FACTOR * forward
    peak = peaks.get(prec)
    figures.update(
        encoder=encoder,
        decoder=config.decoder,
        forward_flops_per_image=forward,
        train_flops_per_image=train_flops,
        matmul_peak_float32=peaks["float32"],
        matmul_peak_bfloat16=peaks["bfloat16"],
        train_peak_share=peak_share(figures["train_img_s"], train_flops, peak),
        train_compute_peak_share=peak_share(figures["train_compute_img_s"], train_flops, peak),
        infer_peak_share=peak_share(figures["infer_img_s"], forward, peak),
    )
    figures.update(
        precision=prec,
        image_shape=list(config.image_shape),
        batch_size=batch_size,
        cpu=cpu_name(),
        tf_version=tf.version.VERSION,
    )
    return {key: figures[key] for key in RESULT_KEYS}


def format_table(r):
    h, w = r["image_shape"]

    def share(key):
        return "" if r[key] is None else f" ({100 * r[key]:.1f}% of peak)"

    naive = r["naive_train_img_s"]
    rows = [
        ("train, end to end", f"{r['train_img_s']:.3f} img/s{share('train_peak_share')}"),
        (
            "train, compute only",
            f"{r['train_compute_img_s']:.3f} img/s{share('train_compute_peak_share')}",
        ),
        (
            "input pipeline alone",
            f"{r['pipeline_img_s']:.1f} img/s ({100 * r['pipeline_fraction']:.2f}% of a step)",
        ),
        ("inference", f"{r['infer_img_s']:.3f} img/s{share('infer_peak_share')}"),
        (
            "naive baseline train",
            "not measured (--no-naive)"
            if naive is None
            else f"{naive:.3f} img/s (end to end is {r['train_img_s'] / naive:.2f}x)",
        ),
        ("peak memory", f"{r['peak_rss_mb']:.0f} MB"),
        (
            "masks vs float32",
            f"{100 * r['mask_agreement_float32']:.2f}% of pixels agree ({r['precision']})",
        ),
        (
            "FLOPs per image",
            f"{r['forward_flops_per_image'] / 1e9:.2f} G forward, "
            f"{r['train_flops_per_image'] / 1e9:.2f} G training ({TRAIN_FLOPS_FACTOR}x)",
        ),
        (
            "matmul peak",
            f"{r['matmul_peak_float32'] / 1e9:.1f} GFLOP/s float32, "
            f"{r['matmul_peak_bfloat16'] / 1e9:.1f} GFLOP/s bfloat16 ({MATMUL_N}^3)",
        ),
    ]
    head = (
        f"bench {r['encoder']} x {r['decoder']}, {h}x{w}, batch {r['batch_size']}, "
        f"{r['precision']}; {r['cpu']}; TensorFlow {r['tf_version']}"
    )
    return "\n".join([head] + [f"  {name:<22} {value}" for name, value in rows])


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


def cpu_name():
    """'<model name> (<n> cores)' from /proc/cpuinfo, the cores this process may use."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            line = next((li for li in f if li.startswith("model name")), "")
        name = line.split(":", 1)[1].strip() or name
    except (OSError, IndexError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name} ({cores} cores)"


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


def _cpu_times():
    """(steal, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def _machine_note(before, after):
    """How busy the machine was: the load average and the share stolen by the hypervisor."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = f"machine: load average {load:.2f} over the last minute"
    if before and after and after[1] > before[1]:
        steal = (after[0] - before[0]) / (after[1] - before[1])
        note += f", {100 * steal:.0f}% of CPU time stolen by the hypervisor during the timings"
    return note + " (noisy figures? run again when both are low)"


def _data_or_synthetic(data_dir, batch_size, temporary, log):
    if os.path.isdir(os.path.join(data_dir, data.KITTI_ROAD.root)):
        return data_dir
    out = temporary.enter_context(tempfile.TemporaryDirectory())
    count = max(SYNTH_MIN_COUNT, 2 * batch_size)
    log(f"no {data.KITTI_ROAD.root}/ under {data_dir}: writing {count} synthetic frames to {out}")
    synth.generate_dataset(out, count=count, test_count=0, seed=0)
    return out


def _augmentation_note(config):
    """'clahe_prob 0.5, flip_prob 0.5, rotate_prob 0.3': the transforms a step may apply."""
    on = [f"{n} {getattr(config, n):g}" for n in augment.CONFIG_FIELDS if n.endswith("_prob")]
    return ", ".join(p for p in on if not p.endswith(" 0")) or "none"


def _bench_examples(config, spec):
    """At most MAX_IMAGES training pairs, a whole number of batches so every step is full."""
    examples = data.list_pairs(config.data_dir, spec)
    b = config.batch_size
    if len(examples) < b:
        raise UserError(
            f"{config.data_dir} has {len(examples)} training pairs, fewer than --batch-size {b}; "
            "lower --batch-size or add data"
        )
    n = max(min(len(examples), MAX_IMAGES) // b, 1) * b
    return examples[:n]


def _endless(batches_of_one_epoch):
    """Epoch after epoch of a batch generator factory."""
    return itertools.chain.from_iterable(batches_of_one_epoch() for _ in itertools.count())


def _rate(fn, steps, batch_size):
    t0 = time.perf_counter()
    fn(steps)
    return steps * batch_size / (time.perf_counter() - t0)


def _handle(sess, array):
    """Keep an array in the session as a tensor handle: feeding it later copies nothing."""
    import tensorflow.compat.v1 as tf

    value = tf.placeholder(tf.as_dtype(array.dtype), array.shape)
    return sess.run(tf.get_session_handle(value), {value: array})


def _measure(config, split, spec, steps, repeats, log):
    """Median images/s of our training (end to end and compute only), pipeline and inference."""
    import tensorflow.compat.v1 as tf

    from fcn import precision
    from fcn.training import train

    b, nc = config.batch_size, spec.num_classes
    augmenter = augment.Augmenter.from_config(config)
    rng = np.random.default_rng(config.seed)
    stream = _endless(lambda: data.epoch_batches(split, b, augmenter, rng))
    graph = tf.Graph()
    session_config = precision.session_config(config.precision, config.xla)
    with graph.as_default(), tf.Session(config=session_config) as sess:
        m = train.build_model(sess, config, nc)
        images, labels = next(stream)
        fixed = {
            m.image_input: _handle(sess, images),
            m.labels: _handle(sess, labels),
            m.keep_prob: config.keep_prob,
            m.learning_rate: config.learning_rate,
            m.is_training: True,
        }
        # Prediction as every command does it: uint8 images through the Predictor.
        path = train.predictor(sess, m, config, spec, batch_size=b)
        to_predict = np.clip(np.rint(images), 0, 255).astype(np.uint8)

        def compute(n):
            for _ in range(n):
                sess.run([m.train_op, m.loss], fixed)

        def end_to_end(n):
            # Exactly the training loop: a prefetch thread per epoch feeding run_epoch.
            batches = data.prefetch(itertools.islice(stream, n))
            train.run_epoch(
                sess,
                batches,
                m.train_op,
                m.loss,
                m.image_input,
                m.labels,
                m.keep_prob,
                m.learning_rate,
                config.keep_prob,
                config.learning_rate,
                total=n,
                desc="bench train",
                extra_feed={m.is_training: True},
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
                rates[key].append(_rate(fn, n, b))
            log(
                f"repeat {r + 1}/{repeats}: "
                + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rates.items())
            )
        figures = {key: statistics.median(values) for key, values in rates.items()}
        figures["mask_agreement_float32"] = _float32_agreement(sess, m, config, spec, to_predict)
    return figures


def _float32_agreement(sess, model, config, spec, images):
    """Share of mask pixels on which the run's precision and float32 agree: the same weights
    (saved from `sess`) restored into a float32 session of the same graph, both through the
    Predictor."""
    import tensorflow.compat.v1 as tf

    from fcn import precision
    from fcn.training import train

    if config.precision == "float32":
        return 1.0
    _, mask = train.predictor(sess, model, config, spec).predict(images)
    saver = tf.train.Saver(tf.global_variables())
    with tempfile.TemporaryDirectory() as folder:
        prefix = saver.save(sess, os.path.join(folder, "weights"), write_meta_graph=False)
        with tf.Session(graph=sess.graph, config=precision.session_config("float32")) as exact:
            saver.restore(exact, prefix)
            float32 = config.replace(precision="float32")
            _, reference = train.predictor(exact, model, float32, spec).predict(images)
    return float((mask == reference).mean())


def _measure_naive(config, examples, spec, steps, repeats, log):
    """Median training images/s of the Udacity-style loop in a plain float32 session."""
    import tensorflow.compat.v1 as tf

    from fcn.training import train

    b = config.batch_size
    rng = np.random.default_rng(config.seed)
    stream = _endless(lambda: naive_batches(examples, config.image_shape, b, rng))
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        m = train.build_model(
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

        naive(WARMUP_STEPS)
        rates = []
        for r in range(repeats):
            rates.append(_rate(naive, steps, b))
            log(f"naive repeat {r + 1}/{repeats}: {rates[-1]:.3f} img/s")
    return statistics.median(rates)
