"""Backend selection: which runtime and which file of an export folder a command predicts with.

`open_backend(path, backend, int8, threads, ...)` is the one way every command (`infer`,
`evaluate`, `bench`, the export's own quality check) opens a Predictor:

    backend      int8   opens                                  file
    tf           no     SessionPredictor (a run or an export)  checkpoint / saved_model.pb
    onnxruntime  no     fcn.inference.ort.OrtPredictor         model.onnx        (--onnx)
    onnxruntime  yes    fcn.inference.ort.OrtPredictor         model_int8.onnx   (--onnx --int8)
    tflite       no     fcn.inference.tflite.TFLitePredictor   model.tflite      (--tflite)
    tflite       yes    fcn.inference.tflite.TFLitePredictor   model_int8.tflite (--tflite --int8)

Each (backend, int8) has a key ('onnxruntime-int8'), the name export.json's "backends" and
`bench --backends` use; export.json's "backends" entry may name another file for a key. Every
backend gets the same `threads` (intra-op: oneDNN, ONNX Runtime, XNNPACK), by default the
machine's cores, so figures are comparable. No heavy import here: --help stays quick.
"""

import os

from fcn.errors import UserError
from fcn.inference.predictor import DEFAULT_BATCH_SIZE, DEFAULT_PRECISION

BACKENDS = ("tf", "onnxruntime", "tflite")
DEFAULT_BACKEND = "tf"
TF = "tf"
INT8_SUFFIX = "-int8"
# key -> (default file in an export folder, export flags that make it)
FILES = {
    "tf": ("saved_model.pb", ""),
    "onnxruntime": ("model.onnx", "--onnx"),
    "onnxruntime-int8": ("model_int8.onnx", "--onnx --int8"),
    "tflite": ("model.tflite", "--tflite"),
    "tflite-int8": ("model_int8.tflite", "--tflite --int8"),
}
KEYS = tuple(FILES)


def default_threads():
    """The cores this process may run on (a container's or taskset's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def key(backend, int8=False):
    """('onnxruntime', True) -> 'onnxruntime-int8'."""
    if int8 and backend == TF:
        raise UserError(
            "--int8 picks the quantised file of an export: use it with --backend onnxruntime "
            "or --backend tflite"
        )
    return backend + (INT8_SUFFIX if int8 else "")


def split_key(name):
    """'onnxruntime-int8' -> ('onnxruntime', True); an unknown name lists the known ones."""
    if name not in FILES:
        raise UserError(f"backend {name!r} is not one of {list(KEYS)}")
    int8 = name.endswith(INT8_SUFFIX)
    return (name[: -len(INT8_SUFFIX)] if int8 else name), int8


def file_of(path, meta, name):
    """The path of key `name`'s file in the export folder `path` (it may not exist)."""
    entry = (meta.get("backends") or {}).get(name) or {}
    return os.path.join(path, entry.get("file") or FILES[name][0])


def available(path, meta):
    """The keys whose file is in the export folder, in KEYS' order."""
    return [k for k in KEYS if os.path.isfile(file_of(path, meta, k))]


def open_backend(
    path,
    backend=DEFAULT_BACKEND,
    int8=False,
    threads=None,
    precision_name=DEFAULT_PRECISION,
    which="best",
    tta=True,
    batch_size=DEFAULT_BATCH_SIZE,
):
    """A Predictor for `path` (a run folder for tf, else an export folder) on `backend`.

    precision_name, which: TensorFlow's (other backends run their file's own precision); tta
    False predicts each image alone (TensorFlow only: the other files have the run's --tta
    built in)."""
    from fcn.inference import restore

    name = key(backend, int8)  # checks --int8 against the backend
    threads = int(threads or default_threads())
    if backend == TF:
        return restore.open_predictor(path, precision_name, which, tta, batch_size, threads)
    if not restore.is_export(path):
        raise UserError(
            f"--backend {backend} runs a file of an export folder and {path} is not one; make "
            f"one with `python main.py export --run {path} --out DIR {FILES[name][1]}`"
        )
    meta = restore.read_metadata(path)
    file = file_of(path, meta, name)
    if not os.path.isfile(file):
        raise UserError(
            f"the export {path} has no {os.path.basename(file)} for --backend {backend}"
            f"{' --int8' if int8 else ''} (it has: {', '.join(available(path, meta))}); "
            f"make it with `python main.py export --run RUN_DIR --out DIR {FILES[name][1]}`"
        )
    config = restore.export_config(meta)
    if not tta and config.tta != "none":
        raise UserError(
            f"the {name} model averages the run's --tta {config.tta} copies in its graph; drop "
            "--no-tta or use --backend tf"
        )
    if backend == "onnxruntime":
        from fcn.inference.ort import OrtPredictor

        spec = restore.export_spec(meta, config)
        precision = "int8" if int8 else "float32"
        opened = OrtPredictor(file, config, spec, threads, precision, batch_size)
    else:
        opened = _tflite_class()(path, meta, int8=int8, threads=threads)
    opened.backend = name  # e.g. onnxruntime-int8, for logs, metrics.json and the server
    return opened


def _tflite_class():
    from fcn.inference.tflite import TFLitePredictor  # TensorFlow's interpreter: imported late

    return TFLitePredictor
