"""`python main.py train` (the default command): train a network, or resume a stopped run."""

import sys
import traceback

from fcn import config as cfg
from fcn import tfquiet


def add_arguments(parser):
    cfg.add_arguments(parser)
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run with its saved config, split and random state; "
        "only --epochs (to train longer), --devices and the folders may be given as well",
    )


def run(args):
    import tensorflow.compat.v1 as tf

    from fcn.errors import UserError, tensorflow_message
    from fcn.training import checkpoint, train

    try:
        if args.resume:
            config = checkpoint.resume_config(args.resume, vars(args))
            run_dir, summary = train.train(config, resume_dir=args.resume)
        else:
            run_dir, summary = train.train(cfg.from_args(args))
    except checkpoint.Interrupted as e:
        print(e, file=sys.stderr)
        return e.exit_code
    except (
        tf.errors.OpError
    ) as e:  # outside a training step (those name their step: fcn.training.epochs)
        if tfquiet.verbose():
            traceback.print_exc()
        raise UserError(
            f"TensorFlow failed before training ({type(e).__name__}: {tensorflow_message(e)}); "
            "try --precision float32, or --verbose for the whole trace"
        ) from None
    print_summary(run_dir, summary)
    return 0


def print_summary(run_dir, summary):
    """One line: the run's final and best validation score (the positive class's IoU for
    binary datasets, mean IoU for multi-class ones: summary.json names it)."""
    if (
        run_dir is None
    ):  # a worker other than the chief (fcn.training.distribute): the chief reports
        print(
            f"worker {summary['worker']} done in {summary['train_seconds']:.0f}s", file=sys.stderr
        )
        return
    metric = summary.get("best_metric", "val_iou")
    what = f"{summary['positive_class']} IoU" if metric == "val_iou" else metric.replace("_", " ")
    print(
        f"done in {summary['train_seconds']:.0f}s: final validation {what} "
        f"{_fmt(summary.get('final_score'))}, best {_fmt(summary.get('best_score'))} "
        f"(epoch {summary.get('best_epoch')}); run: {run_dir}"
    )


def _fmt(x):
    return "n/a" if x is None else f"{x:.4f}"
