"""The export command: a trained run -> a self-contained inference model in OUT/.

`python main.py export --run RUN_DIR --out OUT [--onnx] [--tflite] [--int8]`. What OUT/ holds
(SavedModel, frozen graph, model.onnx, model_int8.onnx, model.tflite, model_int8.tflite,
export.json) and how it is made are in
fcn.inference.export, with the options (ExportOptions); this module parses the flags and calls
it.
"""

from fcn import config as cfg
from fcn.inference.export import ExportOptions, export


def add_arguments(parser):
    # Required: written by hand, their values land in ExportOptions too.
    parser.add_argument("--run", metavar="RUN_DIR", required=True, help="run folder from runs/")
    parser.add_argument("--out", metavar="DIR", required=True, help="new (or empty) folder")
    cfg.add_arguments(parser, cls=ExportOptions)


def run(args):
    """Entry point of `python main.py export`; returns the exit code."""
    opts = ExportOptions.from_args(args)
    export(
        opts.run, opts.out, onnx=opts.onnx, which=opts.checkpoint, tflite=opts.tflite,
        int8=opts.int8, calibration_images=opts.calibration_images, data_dir=opts.data_dir,
        threads=opts.threads,
    )  # fmt: skip
    return 0
