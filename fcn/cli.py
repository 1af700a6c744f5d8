"""`python main.py [command] [flags]`: one entry point; plain `python main.py` trains.

Each command is a (help, add_arguments, run) triple in COMMANDS; the train flags come from the
Config dataclass, so a new config field is a new flag everywhere it applies.
"""

import argparse
import importlib
import os
import sys
import time

from fcn import config as cfg
from fcn import tfquiet
from fcn.errors import UserError

DEMO_DATA = "./data/synthetic"
DEMO_VGG = "./data/vgg_random"
DEMO_TARGET_IOU = 0.90
# The demo: full VGG16 from scratch (random He weights), sized to finish in <= 10 min on 2 CPU
# cores. What each choice bought, measured on 3-epoch runs at 96x320 (docs/performance.md):
# skip gain 1000 instead of 100 (pool3 undamped: whole road widths, not a central blob) 0.818 ->
# 0.869 road IoU; no L2 on the decoder (whose 13 M weights made the penalty 7x the data loss)
# 0.871; batch 4 (1.75x the updates for 1.15x the time per image) 0.900. Freezing the random
# fc6/fc7 (119 M of the 134 M weights, on a 3x10 map) makes a step ~30% cheaper. Many distinct
# images seen few times beat few images seen often (148 images x 8 epochs stalled at 0.87).
DEMO_DEFAULTS = dict(
    data_dir=DEMO_DATA,
    vgg_dir=DEMO_VGG,
    image_shape=(96, 320),
    epochs=3,
    batch_size=4,
    learning_rate=5e-4,
    lr_schedule="cosine",
    skip_gain=1000.0,
    l2_scale=0.0,
    freeze="fc6,fc7",
    val_count=40,
    overlay_every=1,
)
DEMO_COUNT = 440


def _train_args(parser):
    cfg.add_arguments(parser)
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run with its saved config, split and random state; "
        "only --epochs (to train longer) and the folders may be given as well",
    )


def _run_train(args):
    from fcn import checkpoint, train

    try:
        if args.resume:
            config = checkpoint.resume_config(args.resume, vars(args))
            run_dir, summary = train.train(config, resume_dir=args.resume)
        else:
            run_dir, summary = train.train(cfg.from_args(args))
    except checkpoint.Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    _print_summary(run_dir, summary)
    return 0


def _print_summary(run_dir, summary):
    iou = summary.get("final_val_iou")
    best = summary.get("best_val_iou")
    print(
        f"done in {summary['train_seconds']:.0f}s: final validation road IoU "
        f"{_fmt(iou)}, best {_fmt(best)} (epoch {summary.get('best_epoch')}); run: {run_dir}"
    )


def _fmt(x):
    return "n/a" if x is None else f"{x:.4f}"


def _demo_args(parser):
    cfg.add_arguments(parser, defaults=DEMO_DEFAULTS)
    parser.add_argument("--count", type=int, default=DEMO_COUNT, help="synthetic training images")


def _run_demo(args):
    from fcn import train, vgg
    from fcn.data import synth

    config = cfg.from_args(args)
    t0 = time.time()
    if not os.path.isdir(os.path.join(config.data_dir, "data_road")):
        print(
            f"writing a synthetic KITTI-layout dataset ({args.count} images) to {config.data_dir}"
        )
        synth.generate_dataset(config.data_dir, count=args.count, test_count=12, seed=config.seed)
    if not os.path.exists(os.path.join(config.vgg_dir, "saved_model.pb")):
        print(f"building a random-weight VGG16 SavedModel in {config.vgg_dir}")
        vgg.save_vgg16(config.vgg_dir, seed=config.seed)
    run_dir, summary = train.train(config)
    _print_summary(run_dir, summary)
    iou = summary.get("final_val_iou") or 0.0
    verdict = "reached" if iou >= DEMO_TARGET_IOU else "DID NOT reach"
    print(
        f"demo: validation road IoU {iou:.4f} {verdict} the target {DEMO_TARGET_IOU:.2f} "
        f"in {time.time() - t0:.0f}s; overlays in {run_dir}/test and {run_dir}/val_overlays"
    )
    return 0 if iou >= DEMO_TARGET_IOU else 1


def _synth_args(parser):
    parser.add_argument("--out", default=DEMO_DATA, help="folder to hold data_road/")
    parser.add_argument("--count", type=int, default=DEMO_COUNT, help="training images")
    parser.add_argument("--test-count", type=int, default=12, help="test images")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same dataset")


def _run_synth(args):
    from fcn.data import synth

    summary = synth.generate_dataset(
        args.out, count=args.count, test_count=args.test_count, seed=args.seed
    )
    print(
        f"wrote {summary['train']} training and {summary['test']} test images to {summary['root']}"
    )
    return 0


def _vgg_args(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--random", action="store_true", help="He-initialised random weights")
    source.add_argument(
        "--keras-h5",
        metavar="FILE",
        help="Keras ImageNet weights vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    )
    parser.add_argument("--out", default="./data/vgg", help="SavedModel folder to create")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--width", type=float, default=1.0, help=argparse.SUPPRESS)


def _run_vgg(args):
    from fcn import vgg

    weights = vgg.read_keras_h5(args.keras_h5) if args.keras_h5 else None
    vgg.save_vgg16(args.out, weights=weights, seed=args.seed, width=args.width)
    kind = f"ImageNet weights from {args.keras_h5}" if weights else "random He-initialised weights"
    print(
        f"wrote a VGG16 SavedModel (tag 'vgg16', {kind}) to {args.out}; "
        "it expects raw RGB 0..255 input"
    )
    return 0


# name -> (help, add_arguments, run). Modules named by string are imported only when the parser
# is built; none of them imports TensorFlow at import time, so every --help answers quickly.
COMMANDS = {
    "train": ("train a segmentation network (the default command)", _train_args, _run_train),
    "demo": ("offline end-to-end demo on synthetic data with a random VGG", _demo_args, _run_demo),
    "synth": ("write a synthetic KITTI-layout dataset", _synth_args, _run_synth),
    "vgg": ("build a VGG16 SavedModel (random or Keras ImageNet weights)", _vgg_args, _run_vgg),
    "evaluate": (
        "score a run: KITTI devkit and per-class metrics, error analysis",
        "fcn.commands.evaluate",
    ),
    "bench": ("measure training, pipeline and inference throughput", "fcn.bench"),
    "infer": (
        "segment images, folders, globs and videos with a run or an export",
        "fcn.commands.infer",
    ),
    "export": (
        "export a run as a self-contained SavedModel (+ frozen graph, ONNX)",
        "fcn.commands.export",
    ),
}


def _command(name):
    """(help, add_arguments, run); a module named by string is imported here, on demand."""
    entry = COMMANDS[name]
    if isinstance(entry[1], str):
        module = importlib.import_module(entry[1])
        return entry[0], module.add_arguments, module.run
    return entry


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
        tfquiet.tensorflow()
        return _command(args.command)[2](args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
