"""`python main.py [command] [flags]`: one entry point; plain `python main.py` trains.

COMMANDS lists each command's module in fcn.commands; the train flags come from the Config
dataclass, so a new config field is a new flag everywhere it applies.
"""

import argparse
import importlib
import sys

from fcn import tfquiet
from fcn.errors import UserError

# name -> (help, module of fcn.commands with add_arguments(parser) and run(args)). A module is
# imported only for the command being run; none imports TensorFlow at import time, so every
# --help answers at once.
COMMANDS = {
    "train": ("train a segmentation network (the default command)", "fcn.commands.train"),
    "demo": (
        "a recipe end to end offline on synthetic data (default: KITTI road)",
        "fcn.commands.demo",
    ),
    "synth": (
        "write a synthetic dataset: KITTI road, streets, footprints, COCO or shapes",
        "fcn.commands.synth",
    ),
    "vgg": ("build a VGG16 SavedModel (random or Keras ImageNet weights)", "fcn.commands.vgg"),
    "evaluate": (
        "score a run: KITTI devkit and per-class metrics, error analysis",
        "fcn.commands.evaluate",
    ),
    "bench": ("measure training, pipeline and inference throughput", "fcn.commands.bench"),
    "infer": (
        "segment images, folders, globs and videos with a run or an export",
        "fcn.commands.infer",
    ),
    "export": (
        "export a run as a self-contained SavedModel (+ frozen graph, ONNX)",
        "fcn.commands.export",
    ),
    "serve": (
        "serve a run or export over HTTP: TF Serving's REST API, a page, metrics",
        "fcn.commands.serve",
    ),
    "report": ("rebuild runs' web pages (RUN/index.html, runs/index.html)", "fcn.commands.report"),
}


# Commands that never touch TensorFlow skip its (slow) import.
WITHOUT_TENSORFLOW = ("synth", "report")


def _command(name):
    """(help, add_arguments, run), importing the command's module on demand."""
    help_text, module_name = COMMANDS[name]
    module = importlib.import_module(module_name)
    return help_text, module.add_arguments, module.run


def build_parser(only=None):
    """The parser; with `only`, just that command's flags are added (the others' modules are
    not imported, which keeps `--help` and start-up quick)."""
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Semantic segmentation (FCN-8 on VGG16 for KITTI road, and other encoders, "
        "decoders and datasets). Plain `python main.py` trains.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name in COMMANDS:
        help_text = COMMANDS[name][0]
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            p.add_argument(
                "--verbose", action="store_true", help="show TensorFlow's own log and warnings"
            )
            _command(name)[1](p)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    # No command (or only flags) means `train`, as in the reference project.
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["train"] + argv
    args = build_parser(only=argv[0] if argv[0] in COMMANDS else None).parse_args(argv)
    tfquiet.set_verbose(args.verbose)
    try:
        if args.command not in WITHOUT_TENSORFLOW:
            tfquiet.tensorflow()
        return _command(args.command)[2](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
