"""The evaluate command (the job is fcn.evaluation.evaluate): benchmark and per-class metrics,
per-image error analysis, submissions.

Two modes:
- `evaluate --run RUN_DIR`: restores the run's checkpoint (or loads an export made by the export
  command, which carries the run's split), predicts each image of a split, upsamples
  the probabilities to the image's original size (benchmarks score there), optionally refines
  them with a DenseCRF (--crf, any number of classes; then decided again: threshold for binary
  datasets, argmax for multiclass) and writes RUN_DIR/eval/ (names in fcn.names):
    metrics.json     per-class IoU / precision / recall / F1, ground-truth class shares, mean
                     IoU (and over the classes present in the ground truth), KITTI's scores
    per_image.csv    one row per image: scores, loss, metadata (fcn.evaluation.analysis)
    summary.md       the tables and "what scores worse" (group means, Spearman correlations)
    confusion.png    the row-normalised confusion matrix
    plots/           the headline score and the loss against every metadata field
    worst/           the worst N images by the headline score, errors coloured
    (fcn.evaluation.analysis; confusion.png and plots/ from fcn.evaluation.plots)
    iou_vs_metadata.png  binary datasets: the positive class's IoU against its metadata
  With --submit (KITTI) it also writes RUN_DIR/submission/<cat>_road_<id>.png: 8-bit road
  probability maps of the test set at original size (perspective), and with --bev their
  bird's-eye views in RUN_DIR/submission/bev/, ready for the KITTI devkit or server.
- `evaluate --prob-dir DIR --gt-dir DIR`: scores any method's probability PNGs against KITTI gt
  images, with no model, like the devkit's evaluateRoad.py.

Metric definitions live in fcn.evaluation.metrics; JSON holds null where a metric is undefined
(NaN).
"""

from fcn import runs
from fcn.commands import flags
from fcn.errors import UserError
from fcn.evaluation import reports
from fcn.evaluation.evaluate import (
    DEFAULT_THRESHOLD,
    SPLITS,
    evaluate_prob_dir,
    evaluate_run,
)
from fcn.evaluation.scoring import DEFAULT_WORST


def add_arguments(parser):
    model = parser.add_argument_group("score a trained run")
    model.add_argument("--run", metavar="RUN_DIR", help="run folder from runs/")
    model.add_argument(
        "--data-dir", metavar="DIR", help="KITTI-layout data folder (default: the run's)"
    )
    model.add_argument(
        "--split", choices=SPLITS, default="val", help="images to score (default: val)"
    )
    flags.checkpoint(model)
    model.add_argument(
        "--worst",
        type=int,
        default=DEFAULT_WORST,
        metavar="N",
        help=f"images in the error gallery (default: {DEFAULT_WORST})",
    )
    model.add_argument(
        "--submit",
        action="store_true",
        help="also write the test set's road maps to RUN_DIR/submission/",
    )
    model.add_argument(
        "--bev", action="store_true", help="with --submit: also their bird's-eye views (calib/)"
    )
    flags.crf(model)
    flags.no_tta(model)
    flags.precision(model)
    files = parser.add_argument_group("score probability maps (no model)")
    files.add_argument("--prob-dir", metavar="DIR", help="<cat>_road_<id>.png road probabilities")
    files.add_argument("--gt-dir", metavar="DIR", help="KITTI gt images (gt_image_2)")
    files.add_argument("--out", metavar="FILE", help="write the metrics as JSON here")
    flags.threshold(parser, default_text="the run's, 0.5 for --prob-dir")


def run(args):
    """Entry point of `python main.py evaluate`; returns the exit code."""
    if args.run and (args.prob_dir or args.gt_dir):
        raise UserError("use either --run RUN_DIR or --prob-dir DIR --gt-dir DIR, not both")
    if args.run:
        if args.out:
            raise UserError("--out is for --prob-dir; --run writes RUN_DIR/eval/metrics.json")
        evaluate_run(
            args.run,
            data_dir=args.data_dir,
            split=args.split,
            threshold=args.threshold,
            worst=args.worst,
            submit=args.submit,
            use_bev=args.bev,
            checkpoint=args.checkpoint,
            crf=args.crf,
            tta=args.tta,
            precision_name=args.precision,
        )
        return 0
    if not (args.prob_dir and args.gt_dir):
        raise UserError(
            "evaluate needs --run RUN_DIR, or --prob-dir DIR together with --gt-dir DIR"
        )
    if args.submit or args.bev or args.data_dir or args.crf:
        raise UserError("--submit, --bev, --data-dir and --crf need --run RUN_DIR")
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    result = evaluate_prob_dir(args.prob_dir, args.gt_dir, threshold)
    print(reports.format_table(result))
    if args.out:
        runs.write_json(args.out, runs.json_safe(result))
        print(f"wrote {args.out}")
    return 0
