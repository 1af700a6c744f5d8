"""TFLite: the network part of an export as model.tflite (float32) and model_int8.tflite
(full-integer), and `TFLitePredictor`, which predicts with either through the prediction path.

A TFLite model is fixed to the run's network size (h, w), so only the network is converted:

    images       uint8 (N, H, W, 3) RGB, any H, W           } outside the model, in OpenCV
      -> cv2.resize INTER_AREA -> float32 (N, h, w, 3)        } (fcn.inference.host_stages)
    image_input  float32 (N, h, w, 3) raw 0..255 levels       <- model.tflite's input
      -> normalise, network, all inside the model
    logits       float32 (N, h, w, C)                         <- model.tflite's output
      -> softmax, cv2 INTER_LINEAR upsampling to (H, W), decision } outside, host_stages again

A run with --tta ends at `probs` instead: the mean of the copies' softmax, inside the model.
Ending at the logits keeps the int8 model's softmax in float: its int8 output is then scaled
to the logits' own range, where a softmax output is fixed to steps of 1/256 that decide every
probability within 1/512 of the threshold alike (a near-chance model's whole mask).

so an image of any size is resized as the prediction path resizes it (host_stages' docstring
says how closely), not refused; the stages cost no TensorFlow session call. The model takes one
image a call (BATCH); a batch is fed image by image. Threads are XNNPACK's (the interpreter's
num_threads), which TFLite's CPU path runs through.

The int8 model is TFLite's full-integer quantisation (int8 weights per channel, int8 activations
per tensor, int8 input and output) calibrated on training images passed through the same
resize, one at a time at their own sizes: its input scale is about 1 level, its output
(a softmax) 1/256. TFLitePredictor quantises the input and dequantises the output with the
model's own scale and zero point. One exception: the encoder's input normalisation (the ops
between image_input and the first convolution, e.g. VGG's RGB -> BGR ReverseV2 and mean
subtraction) runs in float between a dequantise and a quantise. TFLite's quantisation debugger
measured those two int8 ops at an RMSE of 51 and 28 of their quantisation steps (every other op
of VGG16 + FCN-8 at most 0.33); in float they brought the mask pixels that differ from the float
model from 2.80% to 0.78% (docs/performance.md), at no cost next to the convolutions.
"""

import os
import warnings

import numpy as np

from fcn import names
from fcn.errors import UserError
from fcn.inference.predictor import DEFAULT_BATCH_SIZE, Predictor
from fcn.inference.tflite_graph import (
    BATCH,
    INPUT_NAME,
    input_normalisation,
    network_graph,
    output_name,
)

FLOAT_FILE = "model.tflite"
INT8_FILE = "model_int8.tflite"

TOLERANCE = 1e-4  # max abs difference of probabilities, float TFLite vs TensorFlow, at export
_FLAGS = {False: "--tflite", True: "--tflite --int8"}


# --------------------------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------------------------


def convert(graph_def, output, calibration=None):
    """network_graph's GraphDef (`output`: its output's name) -> TFLite flatbuffer bytes:
    float32, or with `calibration` (float32 (1, h, w, 3) network inputs) full-integer int8
    with the input normalisation in float (module docstring)."""
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default(), tf.Session(graph=graph) as sess:
        tf.import_graph_def(graph_def, name="")
        get = graph.get_tensor_by_name
        converter = tf.lite.TFLiteConverter.from_session(
            sess, [get(names.tensor(INPUT_NAME))], [get(names.tensor(output))]
        )
        if calibration is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([x] for x in calibration)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        try:
            if calibration is None:
                return converter.convert()
            return _quantized_model(converter, input_normalisation(graph_def))
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(
                f"TFLite could not convert the model ({first[:200]}); drop --tflite"
            ) from None


def _quantized_model(converter, float_nodes):
    """Calibrate, then quantise all but `float_nodes` (op output names) with int8 input and
    output. The MLIR quantiser's denylist is what tf.lite.experimental.QuantizationDebugger's
    selective quantisation uses; the debugger itself would also build an instrumented model and
    give float input and output, so its two steps are called as it calls them (TF 2.21,
    pinned)."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert

    from fcn import tfquiet

    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    with tfquiet.native_quiet():  # "fully_quantize: 1, inference_type: 6, ..."
        return lite_convert.mlir_quantize(
            calibrated,
            disable_per_channel=False,
            fully_quantize=True,
            input_data_type=tf.int8,
            output_data_type=tf.int8,
            denylisted_nodes=list(float_nodes),
        )


def network_inputs(images, config, spec):
    """uint8 RGB images of any sizes -> [float32 (1, h, w, 3)]: each resized as TFLitePredictor
    resizes it (host_stages), the int8 model's representative dataset."""
    from fcn.inference import host_stages

    stages = host_stages.HostStages(config.image_shape, spec, config.threshold)
    return [stages.to_network(image[None]) for image in images]


def export_tflite(frozen, config, spec, folder, calibration=None, log=print):
    """Write model.tflite (and, given `calibration` images, model_int8.tflite) of the frozen
    prediction path into `folder`; returns export.json's "tflite" record."""
    graph_def = network_graph(frozen, config, spec)
    with open(os.path.join(folder, FLOAT_FILE), "wb") as f:
        f.write(convert(graph_def, output_name(config)))
    h, w = config.image_shape
    record = {
        "file": FLOAT_FILE,
        "int8_file": None,
        "input": {
            INPUT_NAME: f"float32 (N, {h}, {w}, 3) raw 0..255 RGB levels at the network size"
        },
        "input_shape": [BATCH, h, w, 3],
        "output": output_name(config),
        "outputs": {
            output_name(config): f"float32 (N, {h}, {w}, {spec.num_classes}) "
            + ("logits" if config.tta == "none" else f"probabilities (--tta {config.tta})")
        },
        "resize": f"outside the model: images resized to {h}x{w} by cv2.resize INTER_AREA "
        "(uint8 levels) before it, its probabilities upsampled back to H x W by cv2.resize "
        "INTER_LINEAR and decided after it (fcn.inference.host_stages; "
        "fcn.inference.tflite.TFLitePredictor)",
    }
    if calibration is not None:
        if not calibration:
            raise UserError(
                "--int8 needs calibration images and got none; pass the run's --data-dir"
            )
        with open(os.path.join(folder, INT8_FILE), "wb") as f:
            f.write(
                convert(graph_def, output_name(config), network_inputs(calibration, config, spec))
            )
        record["int8_file"] = INT8_FILE
        record["int8"] = {
            "weights": "int8, per channel",
            "activations": "int8, per tensor",
            "input_output": "int8 (TFLitePredictor quantises and dequantises)",
            "float_ops": input_normalisation(graph_def),
            "calibration_images": len(calibration),
        }
        log(f"quantised the TFLite model to int8 on {len(calibration)} training images")
    return record


def write(frozen, config, spec, folder, run_dir, data_dir, calibration_count, log):
    """model.tflite (and, given a calibration_count, model_int8.tflite calibrated on that many of
    the run's training images; None: float only) into `folder`; returns export.json's "tflite"
    record."""
    from fcn.inference import run_images

    images = None
    if calibration_count is not None:
        data_dir = data_dir or config.data_dir
        examples = run_images.calibration_examples(run_dir, data_dir, spec, calibration_count)
        images = run_images.read_images(examples)
    record = export_tflite(frozen, config, spec, folder, images, log)
    if images is not None:
        record["int8"]["images"] = [ex.name for ex in examples]
        record["int8"]["data_dir"] = os.path.abspath(data_dir)
    return record


def check(folder, meta, sample, reference):
    """Max abs difference of the probabilities, float TFLite on `sample` vs TF's `reference`;
    a UserError over TOLERANCE."""
    with TFLitePredictor(folder, meta, batch_size=len(sample)) as model:
        probs, _ = model.predict(sample)
    diff = float(np.abs(probs - reference).max())
    if not diff < TOLERANCE:
        raise UserError(
            f"the TFLite model differs from TensorFlow by {diff:.2e} (> {TOLERANCE:g}) "
            "in probability; export without --tflite"
        )
    return diff


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------


def interpreter(path, threads):
    """A tf.lite.Interpreter of `path` with `threads` XNNPACK threads."""
    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated ... ai_edge_litert"
        warnings.simplefilter("ignore")
        try:
            return tf.lite.Interpreter(model_path=path, num_threads=int(threads))
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"TFLite cannot load {path}: {first[:200]}; re-export it") from None


def _default_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class TFLitePredictor(Predictor):
    """An export folder's model.tflite (or, int8, model_int8.tflite) as a Predictor.

    meta: the folder's export.json (fcn.inference.restore.read_metadata). The run's --tta is in
    the model and cannot be switched off.
    """

    def __init__(self, export_dir, meta, int8=False, threads=None, batch_size=None):
        from fcn import config as cfg
        from fcn.inference import host_stages, restore

        record = meta.get("tflite") or {}
        file = record.get("int8_file" if int8 else "file")
        if not file or not os.path.isfile(os.path.join(export_dir, file)):
            wanted = INT8_FILE if int8 else FLOAT_FILE
            has = [
                f for f in (FLOAT_FILE, INT8_FILE) if os.path.isfile(os.path.join(export_dir, f))
            ]
            raise UserError(
                f"the export {export_dir} has no {wanted} (TFLite files: "
                f"{', '.join(has) or 'none'}); make it with "
                f"`python main.py export --run RUN_DIR --out DIR {_FLAGS[int8]}`"
            )
        self.path = os.path.join(export_dir, file)
        self.config = cfg.Config.from_dict(meta["config"])
        self.spec = restore.export_spec(meta, self.config)
        self.network_size = tuple(self.config.image_shape)
        self.threshold = float(self.config.threshold)
        self.tta = self.config.tta
        self.precision = "int8" if int8 else "float32"
        self.threads = int(threads or _default_threads())
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.source = f"{self.path} (tflite, {self.threads} threads)"
        self._interpreter = interpreter(self.path, self.threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._ends_at_probs = record.get("output", names.PROBS) == names.PROBS
        self._interpreter.allocate_tensors()
        self._stages = host_stages.HostStages(self.network_size, self.spec, self.threshold)

    def network(self, x):
        """float32 (N, h, w, 3) network input -> float32 (N, h, w, C) logits (or with --tta,
        probabilities)."""
        it, inp, out = self._interpreter, self._input, self._output
        q = _quantized(x, inp)
        ys = []
        for i in range(0, len(x), BATCH):  # the model's own batch
            it.set_tensor(inp["index"], q[i : i + BATCH])
            it.invoke()
            ys.append(it.get_tensor(out["index"]))
        y = _dequantized(np.concatenate(ys), out)
        if self._ends_at_probs and out["dtype"] != np.float32:  # steps of 1/256: sum to 1 again
            y /= np.maximum(y.sum(axis=-1, keepdims=True), 1e-12)
        return y

    def _predict_batch(self, batch, threshold):
        y = self.network(self._stages.to_network(batch))
        if self._ends_at_probs:
            return self._stages.finish(None, batch.shape[1:3], threshold, probs=y)
        return self._stages.finish(y, batch.shape[1:3], threshold)

    def close(self):
        self._interpreter = None
        self._stages.close()


def _quantized(x, detail):
    """float32 -> the input tensor's dtype: q = round(x / scale) + zero_point, saturated."""
    if detail["dtype"] == np.float32:
        return x.astype(np.float32, copy=False)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def _dequantized(q, detail):
    """The output tensor as float32: (q - zero_point) * scale."""
    if detail["dtype"] == np.float32:
        return q
    scale, zero = detail["quantization"]
    return ((q.astype(np.float32) - zero) * scale).astype(np.float32)
