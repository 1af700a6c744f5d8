"""The evaluate command: benchmark and per-class metrics, per-image error analysis, submissions.
Its options (EvaluateOptions) and the job are in fcn.evaluation.evaluate; this module parses and
prints.

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

from fcn import config as cfg
from fcn import runs
from fcn.evaluation import reports
from fcn.evaluation.evaluate import (
    DEFAULT_THRESHOLD,
    EvaluateOptions,
    evaluate_prob_dir,
    run_evaluation,
)


def add_arguments(parser):
    model = parser.add_argument_group("score a trained run")
    cfg.add_arguments(model, cls=EvaluateOptions, only=EvaluateOptions.RUN_FIELDS)
    files = parser.add_argument_group("score probability maps (no model)")
    cfg.add_arguments(files, cls=EvaluateOptions, only=EvaluateOptions.FILE_FIELDS)
    cfg.add_arguments(parser, cls=EvaluateOptions, only=("threshold",))


def run(args):
    """Entry point of `python main.py evaluate`; returns the exit code."""
    opts = EvaluateOptions.from_args(args)
    if opts.run:
        run_evaluation(opts)
        return 0
    threshold = DEFAULT_THRESHOLD if opts.threshold is None else opts.threshold
    result = evaluate_prob_dir(opts.prob_dir, opts.gt_dir, threshold)
    print(reports.format_table(result))
    if opts.out:
        runs.write_json(opts.out, runs.json_safe(result))
        print(f"wrote {opts.out}")
    return 0
