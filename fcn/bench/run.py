"""`bench`'s options and the whole measurement: data (or a synthetic set), the timed kinds, the
baseline, FLOPs and peaks, in the dict of RESULT_KEYS; and the table it prints."""

import contextlib
import dataclasses
import os
import resource
import tempfile

from fcn import checks, data, options
from fcn import config as cfg
from fcn.bench import backends as bench_backends
from fcn.bench import flops, machine, naive, timing
from fcn.config import field
from fcn.data import augment, synth
from fcn.errors import UserError
from fcn.inference import backends

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
# A full VGG16 step at 160x576, batch 8 takes ~9 s (bf16) to ~14 s (float32) on 2 CPU cores:
# 3 repeats of 2 steps of each kind keep the default run near 7 minutes.
DEFAULT_STEPS = 2
DEFAULT_REPEATS = 3
# Cached images; the per-image pipeline cost does not depend on how many there are.
MAX_IMAGES = 64
# Synthetic KITTI-size frames when there is no data: at least this many, and two batches.
SYNTH_MIN_COUNT = 8
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
    # --- time an export's backends side by side (fcn.bench.backends) instead of training ---
    run: str = field(
        None, "an export folder: time its backends' prediction instead of training", metavar="DIR"
    )
    backends: tuple = field(
        (),
        "with --run: backends side by side, from " + ",".join(backends.KEYS),
        metavar="B,B",
        parse=lambda text: tuple(v for v in str(text).split(",") if v),
        shown="--backend's",
    )
    backend: str = options.backend()
    int8: bool = options.int8()
    threads: int = options.threads()
    calls: int = field(bench_backends.DEFAULT_CALLS, "with --run: timed calls per batch size")

    def problems(self):
        if self.steps < 1 or self.repeats < 1:
            yield f"--steps and --repeats must be >= 1, got {self.steps} and {self.repeats}"
        yield from options.backend_problems(self)
        yield checks.at_least("--calls", self.calls, 1)
        if (self.backends or self.backend != backends.TF or self.int8) and not self.run:
            yield "--backend(s) time an export's files: add --run EXPORT (export --onnx --int8)"
        unknown = [b for b in self.backends if b not in backends.KEYS]
        if unknown:
            yield f"--backends {unknown[0]!r} is not one of {list(backends.KEYS)}"

    def backend_keys(self):
        """--backends, or the one of --backend and --int8."""
        return self.backends or (backends.key(self.backend, self.int8),)

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
        before = machine.cpu_times()
        figures = timing.measure(config, split, spec, steps, repeats, log)
        # ru_maxrss is in KiB on Linux.
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures["naive_train_img_s"] = (
            naive.measure(config, examples, spec, steps, repeats, log) if opts.naive else None
        )
        peaks = flops.matmul_peaks(config.xla)
        forward = flops.count_forward_flops(config, spec.num_classes)
        log(machine.machine_note(before, machine.cpu_times()))
    figures["pipeline_fraction"] = figures["train_img_s"] / figures["pipeline_img_s"]
    train_flops = flops.TRAIN_FLOPS_FACTOR * forward
    peak = peaks.get(prec)
    figures.update(
        encoder=encoder,
        decoder=config.decoder,
        forward_flops_per_image=forward,
        train_flops_per_image=train_flops,
        matmul_peak_float32=peaks["float32"],
        matmul_peak_bfloat16=peaks["bfloat16"],
        train_peak_share=flops.peak_share(figures["train_img_s"], train_flops, peak),
        train_compute_peak_share=flops.peak_share(
            figures["train_compute_img_s"], train_flops, peak
        ),
        infer_peak_share=flops.peak_share(figures["infer_img_s"], forward, peak),
    )
    figures.update(
        precision=prec,
        image_shape=list(config.image_shape),
        batch_size=batch_size,
        cpu=machine.cpu_name(),
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
            f"{r['train_flops_per_image'] / 1e9:.2f} G training ({flops.TRAIN_FLOPS_FACTOR}x)",
        ),
        (
            "matmul peak",
            f"{r['matmul_peak_float32'] / 1e9:.1f} GFLOP/s float32, "
            f"{r['matmul_peak_bfloat16'] / 1e9:.1f} GFLOP/s bfloat16 ({flops.MATMUL_N}^3)",
        ),
    ]
    head = (
        f"bench {r['encoder']} x {r['decoder']}, {h}x{w}, batch {r['batch_size']}, "
        f"{r['precision']}; {r['cpu']}; TensorFlow {r['tf_version']}"
    )
    return "\n".join([head] + [f"  {name:<22} {value}" for name, value in rows])


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
