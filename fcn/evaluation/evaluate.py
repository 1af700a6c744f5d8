"""The evaluation job: score a run (or an export) on a split and write RUN_DIR/eval/, or score
any method's probability maps against KITTI ground truth with no model.

- `EvaluateOptions`: the evaluate command's flags (fcn.options), checked once.
- `evaluate_run`: opens the run's checkpoint (or an export made by the export command, which
  carries the run's split) as a Predictor (wrapped for --predict slide or --scales:
  fcn.inference.windows), predicts each image of a split at its original size (benchmarks score
  there), optionally refines with a DenseCRF (--crf, then decided again) and
  writes the reports (fcn.evaluation.reports), with the SpaceNet building metric where the
  examples carry polygon ground truth (fcn.evaluation.polygon_scores); with --submit (KITTI)
  also the test set's 8-bit road probability maps (and with --bev their bird's-eye views)
  for the devkit or server, or (Cityscapes) its label-id PNGs and their zip
  (fcn.evaluation.cityscapes).
- `evaluate_prob_dir`: `<cat>_road_<id>.png` probability maps against KITTI gt images, like
  the devkit's evaluateRoad.py.

Metric definitions live in fcn.evaluation.metrics; JSON holds null where a metric is undefined
(NaN).
"""

import dataclasses
import os

import numpy as np

from fcn import checks, data, names, options, runs
from fcn.config import field
from fcn.errors import UserError
from fcn.evaluation import cityscapes, reports
from fcn.evaluation.kitti import devkit, submission
from fcn.evaluation.scoring import BATCH_SIZE, DEFAULT_WORST, DatasetScores, score_examples
from fcn.inference import backends, windows
from fcn.inference import crf as densecrf

EVAL_DIR = names.EVAL_DIR
SPLITS = ("val", "train", "all")
DEFAULT_THRESHOLD = 0.5  # --prob-dir mode has no run config to take it from


def _select(examples, split_names, split, run_dir, data_dir):
    """The split's examples from the data folder, in split.json's order."""
    if split == "all":
        return examples
    by_name = {ex.name: ex for ex in examples}
    wanted = split_names.get(split)
    if not isinstance(wanted, list):
        raise UserError(f"{run_dir}/split.json has no '{split}' list; is this a run folder?")
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise UserError(
            f"{len(missing)} image(s) of the run's {split} split are not in {data_dir} "
            f"(e.g. {', '.join(missing[:3])}); pass the run's --data-dir or use --split all"
        )
    if not wanted:
        raise UserError(f"the run's {split} split is empty; use --split train or --split all")
    return [by_name[n] for n in wanted]


@dataclasses.dataclass(frozen=True)
class EvaluateOptions(options.Options):
    """`evaluate`'s flags: score a run (`run`), or probability maps (`prob_dir` with `gt_dir`)."""

    # --- score a trained run ---
    run: str = field(None, "run folder from runs/", metavar="RUN_DIR")
    data_dir: str = field(None, "KITTI-layout data folder", metavar="DIR", shown="the run's")
    split: str = field("val", "images to score", SPLITS)
    checkpoint: str = options.checkpoint()
    worst: int = field(DEFAULT_WORST, "images in the error gallery", metavar="N")
    submit: bool = field(
        False,
        "also write the test set's KITTI road maps (Cityscapes: label-id PNGs and a zip) to "
        "RUN_DIR/submission/",
        action="store_true",
    )
    bev: bool = field(
        False, "with --submit: also their bird's-eye views (calib/)", action="store_true"
    )
    crf: bool = options.crf()
    tta: bool = options.tta()
    predict: str = options.predict()
    overlap: float = options.overlap()
    scales: tuple = options.scales()
    # The Predictor's, the same default as infer's, so the score is that of what infer writes.
    precision: str = options.precision()
    backend: str = options.backend()
    int8: bool = options.int8()
    threads: int = options.threads()
    min_area: float = field(
        0.0, "with polygon ground truth: leave out predicted regions of fewer pixels (as infer)"
    )
    # --- score probability maps (no model) ---
    prob_dir: str = field(None, "<cat>_road_<id>.png road probabilities", metavar="DIR")
    gt_dir: str = field(None, "KITTI gt images (gt_image_2)", metavar="DIR")
    out: str = field(None, "write the metrics as JSON here", metavar="FILE")
    threshold: float = options.threshold("the run's, 0.5 for --prob-dir")

    # The flags of each mode, in the order --help lists them.
    RUN_FIELDS = (
        "run", "data_dir", "split", "checkpoint", "worst", "submit", "bev", "crf", "tta",
        "predict", "overlap", "scales", "precision", "backend", "int8", "threads", "min_area",
    )  # fmt: skip
    FILE_FIELDS = ("prob_dir", "gt_dir", "out")

    def problems(self):
        if self.run and (self.prob_dir or self.gt_dir):
            yield "use either --run RUN_DIR or --prob-dir DIR --gt-dir DIR, not both"
        if self.run:
            if self.out:
                yield "--out is for --prob-dir; --run writes RUN_DIR/eval/metrics.json"
            yield checks.at_least("--worst", self.worst, 0)
            yield checks.in_range("--min-area", self.min_area, 0, None, low_closed=True)
            if self.bev and not self.submit:
                yield "--bev transforms the submission maps; add --submit"
            yield from options.prediction_problems(self)
            yield from options.backend_problems(self)
        else:
            if not (self.prob_dir and self.gt_dir):
                yield "evaluate needs --run RUN_DIR, or --prob-dir DIR together with --gt-dir DIR"
            if self.submit or self.bev or self.data_dir or self.crf:
                yield "--submit, --bev, --data-dir and --crf need --run RUN_DIR"
        if self.threshold is not None:
            yield checks.threshold(self.threshold)


def evaluate_run(run_dir, log=print, out_name=EVAL_DIR, **flags):
    """`evaluate_run(run_dir, split="val", tta=False)`: the job on EvaluateOptions' fields."""
    return run_evaluation(EvaluateOptions(run=run_dir, **flags), log, out_name)


def run_evaluation(opts, log=print, out_name=EVAL_DIR):
    """Score a run's checkpoint on a split and write RUN_DIR/eval/ (and the submission).
    opts.tta False: each image alone where the run was trained with --tta. out_name: the
    reports' folder in RUN_DIR instead of eval/ (the demo scores its scenes apart).

    Returns the metrics dict written to metrics.json (NaN for undefined values in memory).
    """
    from fcn.inference import restore  # TensorFlow: imported only when a model is needed

    run_dir, split, submit, crf = opts.run, opts.split, opts.submit, opts.crf
    if not os.path.isdir(run_dir):
        raise UserError(f"run folder {run_dir} does not exist; pass a folder from runs/")
    if crf:
        densecrf.densecrf_module()
    folder = runs.RunFolder(run_dir)  # an export carries the run's split.json too
    if not restore.is_export(run_dir):
        folder.check_is_run()
    if split != "all" and not folder.has(names.SPLIT_FILE):
        what = "the export" if restore.is_export(run_dir) else "the run folder"
        raise UserError(f"{what} {run_dir} carries no split.json; use --split all")
    split_names = {} if split == "all" else folder.read_split()

    opened = backends.open_backend(
        run_dir, opts.backend, opts.int8, opts.threads, opts.precision, opts.checkpoint,
        tta=opts.tta, batch_size=BATCH_SIZE,
    )  # fmt: skip
    how = windows.chosen(opts, opened.config)  # (predict, overlap, scales)
    with windows.wrap(opened, *how) as restored:
        config = restored.config
        data_dir = opts.data_dir or config.data_dir
        threshold = restored.threshold if opts.threshold is None else opts.threshold
        spec = restored.spec  # the run's own classes (its dataset.json), not today's registry
        # Only the split scored need be there (a Cityscapes download of val/ alone evaluates).
        present = data.list_pairs(data_dir, spec, need_train=split == "train")
        examples = _select(present, split_names, split, run_dir, data_dir)
        test_examples, calibs = [], None
        if submit:
            if spec.benchmark != "kitti_road" and not cityscapes.applies(spec):
                raise UserError(
                    f"--submit writes KITTI road maps or Cityscapes label ids; {spec.name} has "
                    "no benchmark"
                )
            test_examples = data.list_test_images(data_dir, spec)
            if not test_examples:
                folder = os.path.join(data_dir, spec.root, spec.test_images)
                raise UserError(f"--submit found no test images in {folder}; is --data-dir right?")
            calibs = submission.calib_paths(data_dir, spec, test_examples) if opts.bev else None
        tta = restored.tta
        refined = (f" averaged over --tta {tta} copies" if tta != "none" else "") + (
            " with DenseCRF" if crf else ""
        )
        refined += windows.describe(*how)
        log(
            f"evaluating {restored.source}{refined} on {len(examples)} image(s) of {data_dir} "
            f"({split})"
        )
        scores, rows, ranked = score_examples(
            restored, examples, spec, threshold, opts.worst, crf, log, opts.min_area
        )
        n_sub = 0
        if submit and cityscapes.applies(spec):
            where = os.path.join(run_dir, submission.SUBMISSION_DIR)
            n_sub = cityscapes.write_submission(restored, test_examples, where, spec, BATCH_SIZE)
        elif submit:
            n_sub = submission.write(restored, test_examples, run_dir, spec, calibs, BATCH_SIZE)

    result = scores.result()
    result.update(
        run=run_dir,
        checkpoint=restored.source,
        data_dir=data_dir,
        split=split,
        threshold=threshold,
        task=spec.task,
        crf=bool(crf),
        tta=restored.tta,
        precision=restored.precision,
        backend=backends.key(opts.backend, opts.int8),
        **windows.settings(*how),
    )
    out_dir = os.path.join(run_dir, out_name)
    written = reports.write_reports(out_dir, result, rows, ranked, spec)
    log(reports.format_table(result))
    log(f"wrote {', '.join(written)} to {out_dir}")
    if submit:
        where = os.path.join(run_dir, submission.SUBMISSION_DIR)
        extra = (
            f" and their bird's-eye views in {os.path.join(where, submission.BEV_DIR)}"
            if opts.bev
            else ""
        )
        log(f"wrote {n_sub} submission map(s) to {where}{extra}")
    if not restore.is_export(run_dir):
        from fcn import report

        report.refresh(run_dir, log)
    return result


def evaluate_prob_dir(prob_dir, gt_dir, threshold=DEFAULT_THRESHOLD):
    """Score <cat>_road_<id>.png probability maps (8- or 16-bit) against the KITTI gt images of
    the same names in gt_dir, like the devkit: every gt image needs its map; extra maps are
    ignored. Returns the metrics dict (as metrics.json)."""
    spec = data.KITTI_ROAD  # not_road = 0, road = 1, the classes of a KITTI gt image
    for folder, what in ((prob_dir, "--prob-dir"), (gt_dir, "--gt-dir")):
        if not os.path.isdir(folder):
            raise UserError(f"{what} {folder} does not exist")
    kind = spec.label_stem.format(cat="", id="").strip("_")  # "road": skip KITTI's *_lane_*
    gt_paths = [p for p in data.images_in(gt_dir) if f"_{kind}_" in os.path.basename(p)]
    if not gt_paths:
        raise UserError(
            f"no ground truth <cat>_{kind}_<id>.png in {gt_dir}; point --gt-dir at gt_image_2"
        )
    stems = [os.path.splitext(os.path.basename(p))[0] for p in gt_paths]
    prob_paths = [os.path.join(prob_dir, s + ".png") for s in stems]
    missing = [os.path.basename(p) for p in prob_paths if not os.path.isfile(p)]
    if missing:
        raise UserError(
            f"{len(missing)} of {len(stems)} probability maps are missing in {prob_dir} "
            f"(e.g. {', '.join(missing[:3])}); write one <cat>_{kind}_<id>.png per gt image"
        )
    scores = DatasetScores(spec)
    for stem, gt_path, prob_path in zip(stems, gt_paths, prob_paths, strict=True):
        gt_rgb = data.read_image(gt_path, warn=None)
        prob = devkit.read_probability_png(prob_path)
        if prob.shape != gt_rgb.shape[:2]:
            raise UserError(
                f"probability map {prob_path} is {prob.shape[1]}x{prob.shape[0]} but "
                f"{gt_path} is {gt_rgb.shape[1]}x{gt_rgb.shape[0]}; write maps at the gt size"
            )
        # Classes from the gt the devkit's way (road = blue > 0, valid = red > 0), so any gt the
        # devkit accepts is accepted here too.
        gt_road, gt_valid = devkit.kitti_gt_from_rgb(gt_rgb)
        label = np.where(gt_valid, gt_road, data.IGNORE_LABEL).astype(np.uint8)
        pred = (prob >= threshold).astype(np.uint8)
        scores.add(data.category_of(stem), prob, pred, label, gt_rgb)
    result = scores.result()
    result.update(prob_dir=prob_dir, gt_dir=gt_dir, threshold=threshold)
    return result
