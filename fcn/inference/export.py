"""Export: a trained run -> a self-contained inference model in OUT/ (`python main.py export`,
whose flags are ExportOptions).

OUT/ holds
    saved_model.pb    SavedModel, tag 'serve', signature 'serving_default' (TF Serving, or
                      `tf.saved_model.load(OUT).signatures['serving_default'](images=...)`):
                      images uint8 (N, H, W, 3) RGB of any H, W ->
                      probs float32 (N, H, W, C), mask uint8 (N, H, W) class ids, and for
                      binary datasets <positive class>_prob (N, H, W), e.g. road_prob.
                      It is the training graph's own prediction path
                      (fcn.inference.prediction: INTER_AREA resize, normalise, network,
                      bilinear upsampling, decision) frozen, so a served model sees the pixels
                      it was trained on (with the run's --tta, the mean over the flipped
                      copies: fcn.inference.tta); the weights are constants (variables/ is
                      empty). For TF Serving, use OUT as a version folder:
                      models/<name>/1/.
    frozen_graph.pb   the same graph as one GraphDef, for tools that want one
    model.onnx        (--onnx) the frozen graph through tf2onnx, checked with onnxruntime
    model_int8.onnx   (--onnx --int8) its static int8 quantisation (fcn.inference.quantize)
    model.tflite      (--tflite) the network alone at the run's network size, resizing outside
                      (fcn.inference.tflite); model_int8.tflite with --int8
    export.json       what `infer --run OUT` and other tools need: tensor names, the run's
                      config, the checks done, and (fcn.inference.deploy) each backend's
                      file, the input contract, classes and palette, the calibration set and
                      each file's quality on the run's validation split

Everything is written into a staging folder beside OUT and renamed at the end: OUT is whole or
absent. Full-width VGG16 (540 MB of weights) peaks at ~6 GB of RAM, ~11 GB with --onnx.
"""

import dataclasses
import gc
import json
import os
import shutil
import tempfile
import time

import numpy as np

from fcn import checks, names, options, runs
from fcn.config import field
from fcn.errors import UserError
from fcn.inference.serving_graph import defaults_fixed, output_names, serving_graph

# Graph interface of the export: the training graph's prediction path, frozen
# (fcn.inference.prediction).
INPUT_NAME = names.IMAGES
PROBS_NAME = "probs"  # signature output: float32 (N, H, W, C), the graph's probs_full
MASK_NAME = names.MASK
SIGNATURE_KEY = names.EXPORT_SIGNATURE
SERVE_TAG = names.EXPORT_TAG

METADATA_FILE = names.EXPORT_METADATA_FILE
FROZEN_GRAPH_FILE = "frozen_graph.pb"
ONNX_FILE = "model.onnx"
FORMAT = names.EXPORT_FORMAT
FORMAT_VERSION = names.EXPORT_FORMAT_VERSION

DEFAULT_CALIBRATION_IMAGES = 64
ONNX_OPSET = 17
ONNX_TOLERANCE = 1e-4  # max abs difference of probabilities, onnxruntime vs TensorFlow
# The ONNX check batch: an odd size, so that both resizes in the graph do real work.
_CHECK_SHAPE = (2, 75, 250, 3)


@dataclasses.dataclass(frozen=True)
class ExportOptions(options.Options):
    """`export`'s flags; --run and --out are required, written by hand (fcn.commands.export)."""

    run: str = field(None, "run folder from runs/", flag=False)
    out: str = field(None, "new (or empty) folder", flag=False)
    onnx: bool = field(
        False,
        "also write model.onnx via tf2onnx, checked with onnxruntime (optional extras)",
        action="store_true",
    )
    tflite: bool = field(
        False,
        "also write model.tflite: the network at the run's network size, resizing outside",
        action="store_true",
    )
    int8: bool = field(
        False,
        "with --onnx / --tflite: also model_int8.onnx / model_int8.tflite",
        action="store_true",
    )
    calibration_images: int = field(
        DEFAULT_CALIBRATION_IMAGES, "with --int8: training images to calibrate on", metavar="N"
    )
    data_dir: str = field(
        None, "the run's data (calibration, validation)", metavar="DIR", shown="the run's"
    )
    threads: int = options.threads()
    checkpoint: str = options.checkpoint()

    def problems(self):
        if self.int8 and not (self.onnx or self.tflite):
            yield "--int8 quantises the ONNX or TFLite model; add --onnx or --tflite"
        yield checks.at_least("--calibration-images", self.calibration_images, 1)


def tensor_name(name):
    return name + ":0"


# --------------------------------------------------------------------------------------------
# Graph building (TensorFlow 1 graph mode)
# --------------------------------------------------------------------------------------------


def freeze(restored):
    """The restored training graph cut down to its prediction path, variables folded into
    constants (batch-norm statistics included)."""
    import tensorflow.compat.v1 as tf

    graph_def = restored.sess.graph.as_graph_def()
    return tf.graph_util.convert_variables_to_constants(
        restored.sess, graph_def, output_names(restored.spec)
    )


def _save_saved_model(sess, folder, spec):
    import tensorflow.compat.v1 as tf

    get = sess.graph.get_tensor_by_name
    util = tf.saved_model.utils
    outputs = {
        PROBS_NAME: get(names.tensor(names.PROBS_FULL)),
        MASK_NAME: get(names.tensor(names.MASK)),
    }
    if spec.task == "binary":
        name = names.positive_prob_name(spec.positive_name)
        outputs[name] = get(names.tensor(name))
    signature = tf.saved_model.signature_def_utils.build_signature_def(
        inputs={INPUT_NAME: util.build_tensor_info(get(names.tensor(INPUT_NAME)))},
        outputs={k: util.build_tensor_info(v) for k, v in outputs.items()},
        method_name=tf.saved_model.signature_constants.PREDICT_METHOD_NAME,
    )
    builder = tf.saved_model.Builder(folder)
    builder.add_meta_graph_and_variables(
        sess, [SERVE_TAG], signature_def_map={SIGNATURE_KEY: signature}, strip_default_attrs=True
    )
    builder.save()
    return outputs


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------


def onnx_modules():
    """(tf2onnx, onnxruntime), or a UserError saying how to install them."""
    try:
        import onnxruntime
        import tf2onnx
    except ImportError as e:
        raise UserError(
            f"--onnx needs tf2onnx and onnxruntime ({e.name} is missing): "
            "pip install -r requirements-extra.txt"
        ) from None
    return tf2onnx, onnxruntime


def to_onnx(graph_def, path):
    """Convert the frozen serving graph with tf2onnx; writes `path`."""
    onnx_modules()
    import tensorflow.compat.v1 as tf
    from tf2onnx import tf_loader, tfonnx

    inputs = [tensor_name(INPUT_NAME)]
    outputs = [tensor_name(names.PROBS_FULL), tensor_name(MASK_NAME)]
    # ONNX has no optional inputs: the threshold and the --tta switch become the run's constants.
    graph_def = defaults_fixed(graph_def, (names.THRESHOLD, names.TTA))
    try:
        # Grappler's folding first, as tf2onnx.convert does; then op-by-op conversion. tf2onnx's
        # own ONNX rewrites are left out: on VGG16's 540 MB of weights they need > 18 GB of RAM,
        # and onnxruntime applies the same ones (transposes, constant folding) when it loads.
        folded = tf_loader.tf_optimize(inputs, outputs, graph_def)
        with tf.Graph().as_default() as graph:
            tf.import_graph_def(folded, name="")
            onnx_graph = tfonnx.process_tf_graph(
                graph, opset=ONNX_OPSET, input_names=inputs, output_names=outputs
            )
        model = onnx_graph.make_model("semantic segmentation")
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(
            f"tf2onnx could not convert the model ({first[:200]}); drop --onnx"
        ) from None
    runs.atomic_write_bytes(path, model.SerializeToString())


def onnx_max_difference(path, images, reference):
    """Max abs difference of the probabilities, onnxruntime on uint8 `images` vs TF's
    `reference` (N, H, W, C)."""
    _, onnxruntime = onnx_modules()
    ort = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (probs,) = ort.run([tensor_name(names.PROBS_FULL)], {tensor_name(INPUT_NAME): images})
    return float(np.abs(probs - reference).max())


# --------------------------------------------------------------------------------------------
# The export
# --------------------------------------------------------------------------------------------


def _check_out(out_dir):
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise UserError(f"--out {out_dir} already exists and is not empty; choose a new folder")


def _make_readable(folder):
    """Temporary files are private (0600); a model for a server must be readable by it."""
    for root, _dirs, files in os.walk(folder):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def _metadata(run_dir, checkpoint, config, spec, onnx_diff):
    described = {
        PROBS_NAME: f"float32 (N, H, W, {spec.num_classes}) class probabilities at the input size",
        MASK_NAME: "uint8 (N, H, W) class id at the input size",
    }
    if spec.task == "binary":
        described[names.positive_prob_name(spec.positive_name)] = (
            f"float32 (N, H, W) {spec.positive_name} probability at the input size"
        )
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "run": os.path.abspath(run_dir),
        "checkpoint": os.path.basename(checkpoint),
        "config": json.loads(config.to_json()),
        "dataset": spec.name,
        # The whole spec (classes, palette, label format): `infer --run OUT` rebuilds it from
        # here (fcn.inference.restore.export_spec), as from a run's dataset.json.
        "dataset_spec": spec.to_dict(),
        "task": spec.task,
        "class_names": list(spec.class_names),
        "positive_class": spec.positive_class,
        "image_shape": list(config.image_shape),
        "threshold": config.threshold,
        "saved_model": {"tag": SERVE_TAG, "signature": SIGNATURE_KEY},
        "inputs": {INPUT_NAME: "uint8 (N, H, W, 3) RGB, any H, W"},
        "outputs": described,
        "tensors": _tensor_names(config, spec),
        "frozen_graph": FROZEN_GRAPH_FILE,
        "onnx": None
        if onnx_diff is None
        else {"file": ONNX_FILE, "opset": ONNX_OPSET, "max_abs_diff": onnx_diff},
    }


def _tensor_names(config, spec):
    """Graph tensors of the prediction path (fcn.inference.prediction.PredictionTensors'
    fields), for `infer --run EXPORT`. A multi-class mask is the argmax: freezing prunes the
    unused threshold input."""
    return {
        "images": tensor_name(names.IMAGES),
        "probs_full": tensor_name(names.PROBS_FULL),
        "mask": tensor_name(names.MASK),
        **({"threshold": tensor_name(names.THRESHOLD)} if spec.task == "binary" else {}),
        **({"tta": tensor_name(names.TTA)} if config.tta != "none" else {}),
    }


def _write_tensorflow(frozen, config, spec, folder, sample):
    """SavedModel and frozen graph into `folder`; returns (serving GraphDef, probs_full of
    `sample`: the reference for the ONNX check, predicted through the exported graph as a
    float32 Predictor, as `infer --run OUT --precision float32` would)."""
    import tensorflow.compat.v1 as tf

    from fcn.inference import prediction
    from fcn.inference.predictor import SessionPredictor

    serving_def = serving_graph(frozen, spec)
    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        tf.import_graph_def(serving_def, name="")
        _save_saved_model(sess, folder, spec)
        runs.atomic_write_bytes(
            os.path.join(folder, FROZEN_GRAPH_FILE), serving_def.SerializeToString()
        )
        found = {k: graph.get_tensor_by_name(v) for k, v in _tensor_names(config, spec).items()}
        exported = SessionPredictor(
            sess, prediction.PredictionTensors(**found), config, spec, "float32", folder,
            batch_size=len(sample), owns_session=False,
        )  # fmt: skip
        reference, _ = exported.predict(sample)
    return serving_def, reference


def export(
    run_dir, out_dir, onnx=False, which="best", log=print, tflite=False, int8=False,
    calibration_images=DEFAULT_CALIBRATION_IMAGES, data_dir=None, threads=None,
):  # fmt: skip
    """Write the export of `run_dir` to `out_dir` (new or empty); returns its metadata dict.
    data_dir: the run's data folder (default its config's), for --int8's calibration images
    and the quality of each file on the validation split."""
    from fcn.inference import deploy, restore
    from fcn.inference import tflite as tflite_export

    _check_out(out_dir)
    if onnx:
        onnx_modules()  # fail before the slow part
    t0 = time.time()
    with restore.open_run(run_dir, which=which) as restored:
        config, spec, checkpoint = restored.config, restored.spec, restored.checkpoint
        frozen = freeze(restored)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(out_dir))}.", dir=parent)
    sample = np.random.default_rng(0).integers(0, 256, _CHECK_SHAPE, dtype=np.uint8)
    try:
        serving_def, reference = _write_tensorflow(frozen, config, spec, staging, sample)
        if tflite:
            tflite_record = tflite_export.write(
                frozen,
                config,
                spec,
                staging,
                run_dir,
                data_dir,
                calibration_images if int8 else None,
                log,
            )
        del frozen  # free this copy of the weights before tf2onnx makes its own
        gc.collect()
        onnx_diff = None
        if onnx:
            onnx_path = os.path.join(staging, ONNX_FILE)
            to_onnx(serving_def, onnx_path)
            del serving_def
            onnx_diff = onnx_max_difference(onnx_path, sample, reference)
            if not onnx_diff < ONNX_TOLERANCE:
                raise UserError(
                    f"the ONNX model differs from TensorFlow by {onnx_diff:.2e} "
                    f"(> {ONNX_TOLERANCE:g}) in probability; export without --onnx"
                )
        data_dir = data_dir or config.data_dir
        calibration = (int8 and onnx) and deploy.write_int8_onnx(
            staging, run_dir, data_dir, spec, calibration_images, log
        )
        meta = _metadata(run_dir, checkpoint, config, spec, onnx_diff if onnx else None)
        if tflite:
            meta["tflite"] = tflite_record
            tflite_record["max_abs_diff"] = tflite_export.check(staging, meta, sample, reference)
        if tflite and int8 and not calibration:  # the same training images ONNX would take
            picked = tflite_record["int8"]
            calibration = dict(split="train", data_dir=picked["data_dir"], images=picked["images"])
        meta.update(deploy.describe(staging, meta, spec, calibration))
        runs.write_json(os.path.join(staging, METADATA_FILE), meta)
        split = os.path.join(run_dir, "split.json")
        if os.path.isfile(split):  # so `evaluate --run EXPORT` scores the same validation images
            shutil.copyfile(split, os.path.join(staging, "split.json"))
        # Each file opened as the commands open it (fcn.inference.backends), from the staging
        # folder: what is measured is what is shipped.
        meta["quality"] = deploy.measure_quality(
            staging, meta, run_dir, data_dir, spec, threads, log
        )
        runs.write_json(os.path.join(staging, METADATA_FILE), meta)
        _make_readable(staging)
        _check_out(out_dir)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty, checked above
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    onnx_note = f", ONNX (max abs diff {onnx_diff:.1e} vs TF)" if onnx else ""
    if tflite:
        onnx_note += f", TFLite (max abs diff {meta['tflite']['max_abs_diff']:.1e} vs TF)"
    log(
        f"exported {checkpoint} to {out_dir} in {time.time() - t0:.1f}s: SavedModel "
        f"'{SIGNATURE_KEY}' (images uint8 NxHxWx3 -> {', '.join(meta['outputs'])}), "
        f"{FROZEN_GRAPH_FILE}"
        f"{onnx_note}"
    )
    return meta
