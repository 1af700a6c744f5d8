"""int8 ONNX: ONNX Runtime's static quantisation of an export's model.onnx -> model_int8.onnx.

QDQ format (QuantizeLinear/DequantizeLinear pairs around each quantised op, which ONNX Runtime
fuses into int8 kernels), per-channel int8 weights, uint8 activations (the u8s8 kernels that
x86's VNNI instructions run), activation ranges from MinMax calibration on training images.

Only the network's convolutions are quantised (QUANTIZED_OPS): the prediction path's resize to
the network size, normalisation, transposed convolutions, softmax, bilinear upsampling and
decision around them stay float32, so the int8 model takes the same uint8 images of any size and
gives probabilities that sum to 1 at each image's own size.

Calibration feeds each image alone, at its own size, through the whole graph (the resize in it
included), so the ranges are those of the pixels the network sees when predicting.
"""

import os
import tempfile

from fcn.errors import UserError
from fcn.inference import backends, ort

INT8_ONNX_FILE = backends.FILES["onnxruntime-int8"][0]
# Not ConvTranspose: ONNX Runtime's CPU provider has no int8 kernel for it, so QDQ around it
# only adds DequantizeLinear work (VGG16 + FCN-8 at 160x576, kernel time per image, 2 threads:
# 298 ms with it, 221 ms without; the float32 model takes 542 ms).
QUANTIZED_OPS = ("Conv",)


def _reader(images):
    from onnxruntime.quantization import CalibrationDataReader

    class Images(CalibrationDataReader):
        """uint8 (1, H, W, 3) batches, one image each, as the model takes them."""

        def __init__(self):
            self._left = iter(images)

        def get_next(self):
            image = next(self._left, None)
            return None if image is None else {ort.INPUT: image[None]}

    return Images()


def quantize(float_path, out_path, images):
    """Write the int8 model of `float_path` to `out_path`, calibrated on `images` (uint8 RGB
    (H, W, 3) of any sizes); returns the settings for export.json."""
    ort.onnxruntime_module()
    from onnxruntime import quantization as q

    if not images:
        raise UserError("--int8 needs calibration images and got none; pass the run's --data-dir")
    settings = dict(
        quant_format=q.QuantFormat.QDQ,
        per_channel=True,
        activation_type=q.QuantType.QUInt8,
        weight_type=q.QuantType.QInt8,
        calibrate_method=q.CalibrationMethod.MinMax,
        op_types_to_quantize=list(QUANTIZED_OPS),
    )
    with tempfile.TemporaryDirectory(dir=os.path.dirname(out_path)) as tmp:
        # Shape inference and ONNX Runtime's graph optimisation first (what ONNX Runtime's
        # guide asks for): tf2onnx's NHWC<->NCHW transposes fold away, so each Conv is one node.
        prepared = os.path.join(tmp, "prepared.onnx")
        q.quant_pre_process(float_path, prepared, skip_symbolic_shape=True)
        # MinMax keeps each image's per-tensor min and max only (ReduceMin/ReduceMax outputs
        # added to the graph), not its activations: memory does not grow with the images.
        q.quantize_static(prepared, out_path, _reader(images), **settings)
    return {
        "format": "QDQ",
        "weights": "int8, per channel",
        "activations": "uint8, per tensor",
        "calibration_method": "MinMax",
        "quantized_ops": list(QUANTIZED_OPS),
    }
