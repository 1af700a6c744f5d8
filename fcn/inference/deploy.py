"""What an export adds for deployment (`export --int8`, and export.json's deployment fields):
the int8 ONNX model, the backends' files and input contract, the calibration set, and each
file's quality on the run's validation split measured at export time.

fcn.inference.export calls these on its staging folder, so a failure leaves no export behind.
"""

import os

from fcn.inference import backends, quality, quantize, run_images

_PRECISIONS = {"tf": "float32", "onnxruntime": "float32", "tflite": "float32"}


def write_int8_onnx(folder, run_dir, data_dir, spec, count, log=print):
    """model_int8.onnx beside folder's model.onnx, calibrated on `count` of the run's training
    images; returns export.json's "calibration" record."""
    examples = run_images.calibration_examples(run_dir, data_dir, spec, count)
    settings = quantize.quantize(
        os.path.join(folder, backends.FILES["onnxruntime"][0]),
        os.path.join(folder, quantize.INT8_ONNX_FILE),
        run_images.read_images(examples),
    )
    log(f"quantised the ONNX model to int8 on {len(examples)} training images of {data_dir}")
    return {
        "split": "train",
        "data_dir": os.path.abspath(data_dir),
        "images": [ex.name for ex in examples],
        "onnxruntime-int8": settings,
    }


def describe(folder, meta, spec, calibration=None):
    """export.json's deployment fields: "backends" (each key's file, precision and size),
    "input" (the contract every file keeps), "classes" with their palette, "calibration"."""
    h, w = meta["image_shape"]
    files = {}
    for name in backends.available(folder, meta):
        backend, int8 = backends.split_key(name)
        path = backends.file_of(folder, meta, name)
        files[name] = {
            "file": os.path.basename(path),
            "precision": "int8" if int8 else _PRECISIONS[backend],
            "size_mb": round(os.path.getsize(path) / 2**20, 3),
        }
    return {
        "backends": files,
        "input": {
            "images": "uint8 (N, H, W, 3) RGB, any H, W (one size per batch)",
            "network_size": [h, w],
            "resize": f"tf, onnxruntime: inside the model, INTER_AREA to {h}x{w} and the "
            "probabilities bilinearly back to H x W; tflite: the model takes (1, "
            f"{h}, {w}, 3) float 0..255 and the same two resizes run outside it "
            "(fcn.inference.tflite.TFLitePredictor)",
        },
        "classes": [
            {"id": i, "name": n, "color": None if c is None else list(c)}
            for i, (n, c) in enumerate(zip(spec.class_names, spec.palette, strict=False))
        ],
        "calibration": calibration or None,
    }


def measure_quality(folder, meta, run_dir, data_dir, spec, threads=None, log=print):
    """export.json's "quality" for every file in `folder` (fcn.inference.quality), or a note
    of why it was not measured (no validation images to read)."""
    examples = run_images.validation_examples(run_dir, data_dir, spec)
    if not examples:
        log(f"quality not measured: no validation images of the run in {data_dir}")
        return {"skipped": f"no validation images of the run in {data_dir}"}
    log(f"quality of each file on {len(examples)} validation images of {data_dir}:")
    names = backends.available(folder, meta)
    return quality.measure(folder, names, examples, spec, meta["threshold"], threads, log)
