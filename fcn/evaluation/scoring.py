"""Scoring a split: each image predicted, (refined,) decided and compared with its ground truth
at its original size, pooled into one confusion matrix (and, for KITTI road, the devkit's
counts; for examples with polygon ground truth, the SpaceNet building metric:
fcn.evaluation.polygon_scores), with a row of per-image scores and metadata
(fcn.evaluation.analysis) and a gallery of the worst images. Pure NumPy over a Predictor's
outputs; `evaluate` wires it to a run.
"""

import heapq
import math

from fcn import data
from fcn.data import task
from fcn.errors import UserError
from fcn.evaluation import analysis, cityscapes, metrics, polygon_scores
from fcn.evaluation.kitti import devkit
from fcn.geo import raster
from fcn.inference import crf as densecrf

DEFAULT_WORST = 8
BATCH_SIZE = 8  # images read and predicted at a time; each is resized to the network size
KITTI_GROUPS = tuple(f"{c}_road" for c in devkit.KITTI_CATEGORIES) + ("urban_road",)
KITTI_KEYS = ("MaxF", "AvgPrec", "PRE", "REC", "FPR", "FNR", "BestThresh")


class DatasetScores:
    """Confusion matrix (and, for KITTI road, the devkit's counts) pooled over images, one
    image at a time."""

    def __init__(self, spec):
        self.spec = spec
        self.confusion = metrics.ConfusionAccumulator(spec.num_classes, spec.ignore_label)
        self.kitti = (
            {group: devkit.KittiRoadEvaluator() for group in KITTI_GROUPS}
            if spec.benchmark == "kitti_road"
            else {}
        )
        self.counts = {}  # category -> images
        # Cityscapes: the benchmark's own four figures (fcn.evaluation.cityscapes)
        self.cityscapes = cityscapes.CityscapesScores(spec) if cityscapes.applies(spec) else None
        self.polygons = None  # a PolygonScores where the examples carry polygon ground truth

    def add(self, category, road_prob, pred, label, gt_rgb=None, instances=None):
        """road_prob (H, W) in [0, 1] (binary datasets); pred, label (H, W) classes; gt_rgb
        the KITTI gt image (KITTI road only); instances (H, W) Cityscapes instanceIds (None:
        absent)."""
        self.confusion.update(pred, label)
        if self.cityscapes is not None:
            self.cityscapes.add(pred, instances)
        self.counts[category] = self.counts.get(category, 0) + 1
        if not self.kitti:
            return
        gt_road, gt_valid = devkit.kitti_gt_from_rgb(gt_rgb)
        group = f"{category}_road"
        # Categories outside um/umm/uu (another dataset's names) still count in urban_road.
        for name in (group, "urban_road") if group in self.kitti else ("urban_road",):
            self.kitti[name].update(road_prob, gt_road, gt_valid)

    def result(self):
        """{"kitti": {group: scores, all groups always present} (KITTI road only), "classes",
        "mean_iou", "pixel_accuracy", "class_shares", "mean_iou_present",
        "num_classes_present", "headline", "num_images", "images_per_category"}; NaN where
        undefined. headline names the mean to read first: "mean_iou", or "mean_iou_present"
        when some classes have no ground-truth pixel (their IoU says nothing about the model)."""
        out = {}
        if self.kitti:
            nan_scores = dict.fromkeys(KITTI_KEYS, float("nan"))
            out["kitti"] = {
                g: ev.result() if ev.num_images else dict(nan_scores)
                for g, ev in self.kitti.items()
            }
        out.update(
            num_images=sum(self.counts.values()),
            images_per_category=dict(sorted(self.counts.items())),
        )
        names_ = list(self.spec.class_names)
        cm = self.confusion.matrix
        out.update(metrics.segmentation_metrics(cm, names_))
        shares = metrics.class_shares(cm)
        present, n_present = metrics.present_mean_iou(cm)
        out.update(
            class_shares=dict(zip(names_, shares, strict=True)),
            mean_iou_present=present,
            num_classes_present=n_present,
            headline="mean_iou" if n_present == len(names_) else "mean_iou_present",
            confusion_matrix=cm.tolist(),
        )
        if self.cityscapes is not None:
            out["cityscapes"] = self.cityscapes.result(cm)
        if self.polygons is not None:
            out["polygons"] = self.polygons.result()
        return out


class Worst:
    """The N images of lowest road IoU seen so far; an image with undefined IoU (no road in
    label or prediction) is never among them."""

    def __init__(self, n):
        self.n = n
        self._heap = []  # (-iou, arrival, name, picture): the root is the best of the worst
        self._arrivals = 0  # breaks IoU ties (first seen stays), so pictures are never compared

    def wants(self, iou):
        if self.n <= 0 or not math.isfinite(iou):
            return False
        return len(self._heap) < self.n or -iou > self._heap[0][0]

    def add(self, iou, name, picture):
        self._arrivals += 1
        heapq.heappush(self._heap, (-iou, -self._arrivals, name, picture))
        if len(self._heap) > self.n:
            heapq.heappop(self._heap)

    def ranked(self):
        """[(name, iou, picture)], worst first."""
        return [(name, -k, pic) for k, _, name, pic in sorted(self._heap, reverse=True)]


def batches(examples, size=BATCH_SIZE):
    for start in range(0, len(examples), size):
        chunk = examples[start : start + size]
        yield chunk, [read_image(ex.image_path) for ex in chunk]


def read_image(path):
    """uint8 RGB (H, W, 3): a GeoTIFF as infer reads it (fcn.geo.raster: bands 1-3, 16-bit
    stretched, GDAL rather than OpenCV, which warns about every GeoTIFF tag), else
    data.read_image. A TIFF GDAL cannot open is left to data.read_image."""
    if raster.is_geotiff(path):
        try:
            scene = raster.Scene(path)
        except UserError:
            return data.read_image(path, warn=None)
        with scene:
            return scene.read_all()[0]
    return data.read_image(path, warn=None)


def read_ground_truth(example, spec, image_shape, warn=None):
    """(label (H, W) uint8 class ids, KITTI gt RGB or None) of an example at its original size.

    Labels come from `data.read_label` (every label format) where the data package has it;
    colour-coded label images read for KITTI road (the devkit scores its own gt image) or without
    read_label are decoded from the image already read.
    """
    reader = getattr(data, "read_label", None)
    gt_rgb = None
    if spec.benchmark == "kitti_road" or reader is None:
        gt_rgb = data.read_image(example.label_path, warn=None)
        _check_size(example, image_shape, gt_rgb.shape)
    if gt_rgb is not None and spec.label_format == "color":
        label = data.decode_label(gt_rgb, spec, example.label_path)  # read once, decoded here
    elif reader is not None:
        label = reader(example, spec, warn=warn or (lambda _: None))
    else:
        raise UserError(
            f"{spec.name} labels are {spec.label_format!r}; read_label is not in fcn.data yet"
        )
    _check_size(example, image_shape, label.shape)
    return label, gt_rgb


def _check_size(example, image_shape, label_shape):
    if tuple(label_shape[:2]) != tuple(image_shape[:2]):
        raise UserError(
            f"image {example.image_path} is {image_shape[1]}x{image_shape[0]} but its "
            f"label {example.label_path} is {label_shape[1]}x{label_shape[0]}; they must match"
        )


def _example_metadata(example, spec):
    """The dataset's own facts about an example (data.example_metadata; {} without it)."""
    reader = getattr(data, "example_metadata", None)
    return dict(reader(example, spec)) if reader is not None else {}


def score_examples(
    model, examples, spec, threshold, worst=DEFAULT_WORST, crf=False, log=print, min_area=0.0
):
    """Predict, (refine,) decide and score every example: the evaluation without files.

    model: a Predictor (fcn.inference.predictor; only its predict_each is used), so the images
    are resized as in training, upsampled back and decided by the one prediction path.
    Returns (scores, rows, ranked): the pooled DatasetScores, one fcn.evaluation.analysis row per
    image
    in order, and [(name, score, captioned error picture)] of the
    `worst` lowest headline scores, worst first. min_area: predicted polygons of fewer
    pixels are left out of the polygon metric (infer's --min-area).
    """
    scores = DatasetScores(spec)
    if any(getattr(ex, "polygons", "") for ex in examples):
        scores.polygons = polygon_scores.PolygonScores(spec, min_area)
    gallery = Worst(worst)
    headline, label_text = task.headline(spec), task.headline_label(spec)
    keys = analysis.error_keys(spec)
    rows, notes = [], []
    for chunk, originals in batches(examples):
        for ex, image, (probs, pred) in zip(
            chunk, originals, model.predict_each(originals, threshold), strict=True
        ):
            label, gt_rgb = read_ground_truth(ex, spec, image.shape, warn=notes.append)
            if crf:
                probs, pred = task.refine_then_decide(
                    image, probs, spec, threshold, densecrf.refine
                )
            positive = task.positive_probs(probs, spec)
            instances = cityscapes.read_instances(ex.label_path) if scores.cityscapes else None
            scores.add(ex.category, positive, pred, label, gt_rgb, instances)
            if scores.polygons is not None and ex.polygons:
                scores.polygons.add(ex, pred, probs)
            extra = _example_metadata(ex, spec)
            row = analysis.sample_row(ex.name, ex.category, image, probs, pred, label, spec, extra)
            rows.append(row)
            if gallery.wants(row[headline]):
                picture = analysis.error_overlay(image, pred, label, spec)
                text = f"{ex.name} {label_text} {row[headline]:.3f}"
                gallery.add(row[headline], ex.name, analysis.caption(picture, text, keys))
    if notes and log:
        more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
        log(f"{notes[0]}{more}")
    return scores, rows, gallery.ranked()
