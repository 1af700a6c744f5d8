"""Command options: each command's flags are a frozen dataclass, made the way Config makes train's.

A command's options are declared beside the job they drive, so a reader finds both in one file:

    EvaluateOptions   fcn.evaluation.evaluate   `evaluate`
    InferOptions      fcn.inference.infer       `infer`
    ExportOptions     fcn.inference.export      `export`
    BenchOptions      fcn.bench.run             `bench` (train's Config flags it measures, plus
                                                its own)

Every field is a `field` (fcn.config): `add_arguments(parser, cls=...)` turns it into a flag and
`from_args(args, cls=...)` (or the class's own `from_args`) turns the parsed flags into the
object, whose `__post_init__` checks the values and raises a one-line UserError naming the flag.
Flags that take no value from a field (infer's INPUT..., --run and --out, which are positional
or required) are written by hand in the command, their values still land in the options.

This module holds what the commands share, written once: the fields of the flags several
commands have (--checkpoint, --threshold, --precision, --crf, --no-tta, --predict, --overlap,
--scales, --backend, --int8, --threads) and the base class.
The checks shared with Config (a threshold in (0, 1), a width in (0, 1], a batch size >= 1)
are in fcn.checks. No TensorFlow is imported here, so every --help answers at once.
"""

import dataclasses

from fcn import checks, names
from fcn import config as cfg
from fcn.inference import backends  # no TensorFlow either
from fcn.inference.predictor import DEFAULT_PRECISION  # numpy only, no TensorFlow


def checkpoint():
    return cfg.field(
        "best",
        "which checkpoint of the run: best (best validation score) or latest",
        tuple(names.CHECKPOINTS),
    )


def threshold(shown="the run's"):
    """None: the run's own threshold (its config), or what the command says in `shown`."""
    return cfg.field(
        None,
        "positive-class probability threshold of binary datasets, for masks and metrics",
        metavar="T",
        shown=shown,
    )


def precision():
    # One default for every command that predicts, so evaluate scores what infer writes.
    return cfg.field(
        DEFAULT_PRECISION,
        "compute precision when predicting (default: auto: fp16 on a GPU, bf16 on CPUs with bf16 "
        "instructions, else float32); recorded with the results",
        cfg.PRECISIONS,
        shown=None,  # the help says it
    )


def crf():
    return cfg.field(
        False,
        "refine the probabilities with a DenseCRF before deciding, for any number of classes "
        "(needs pydensecrf2)",
        action="store_true",
    )


def tta():
    return cfg.field(
        True,
        "predict each image alone where the run was trained with --tta (K times quicker; "
        "default: average the run's copies)",
        action="store_false",
    )


# fcn.inference.windows takes these from fcn.config, so --help imports no OpenCV.
PREDICT_MODES = cfg.PREDICT_MODES
DEFAULT_OVERLAP = cfg.DEFAULT_OVERLAP
parse_scales = cfg.parse_scales
_THE_RUNS = "the run's (its config.json; whole for runs that name none)"


# None: the run's own (Config.predict, .overlap, .scales), resolved by windows.chosen.
def predict():
    return cfg.field(None, cfg.PREDICT_HELP, PREDICT_MODES, shown=_THE_RUNS)


def overlap():
    return cfg.field(None, cfg.OVERLAP_HELP, shown=_THE_RUNS)


def scales():
    return cfg.field(None, cfg.SCALES_HELP, metavar="S,S", parse=parse_scales, shown=_THE_RUNS)


def backend():
    return cfg.field(
        backends.DEFAULT_BACKEND,
        "runtime to predict with: tf (a run or an export), onnxruntime or tflite (an export's "
        "model.onnx / model.tflite)",
        backends.BACKENDS,
    )


def int8():
    return cfg.field(
        False,
        "with --backend onnxruntime or tflite: the export's int8 file (export --int8)",
        action="store_true",
    )


def threads():
    # Every backend's intra-op threads (oneDNN, ONNX Runtime, XNNPACK), so figures compare.
    return cfg.field(None, "intra-op threads of the backend", metavar="N", shown="the cores")


def backend_problems(opts):
    """The checks of --backend, --int8 and --threads, for any options with those fields."""
    if opts.int8 and opts.backend == backends.TF:
        yield "--int8 picks an export's quantised file: add --backend onnxruntime or tflite"
    if opts.threads is not None:
        yield checks.at_least("--threads", opts.threads, 1)


def prediction_problems(opts):
    """The checks of --overlap and --scales (fcn.checks) where given (None: the run's)."""
    if opts.overlap is not None:
        yield checks.overlap(opts.overlap)
    if opts.scales is not None:
        yield checks.scales(opts.scales)


@dataclasses.dataclass(frozen=True)
class Options:
    """Base of the commands' options: __post_init__ checks every field with choices, then the
    problems the subclass's `problems()` lists (fcn.checks messages, None for fine values)."""

    def __post_init__(self):
        chosen = (
            checks.one_of(
                "--" + f.name.replace("_", "-"), getattr(self, f.name), f.metadata["choices"]
            )
            for f in dataclasses.fields(self)
            if f.metadata.get("choices") and getattr(self, f.name) is not None
        )
        checks.raise_first(chosen)
        checks.raise_first(self.problems())

    def problems(self):
        return ()

    @classmethod
    def from_args(cls, args):
        return cfg.from_args(args, cls=cls)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)
