"""Cityscapes' own four figures, as cityscapesScripts' evalPixelLevelSemanticLabeling computes
them: iou_class, iiou_class, iou_category, iiou_category, with the per-class and per-category
values.

Over the 19 evaluated classes (train ids; every other label id is ignore):
- IoU = TP / (TP + FP + FN) pooled over the images; FP leaves out pixels whose ground truth is
  ignore; NaN where the denominator is 0; means over the classes that are not NaN.
- Categories (flat, construction, object, nature, sky, human, vehicle): the same on the
  confusion matrix summed over each category's classes (a car taken for a bus is a true
  positive of vehicle).
- iIoU: for the 8 instance classes (and the human and vehicle categories), each ground-truth
  instance of _gtFine_instanceIds.png (id = label id * 1000 + n) adds its TP and FN pixels
  weighted by the class's average instance size over the instance's size, so large instances
  no longer dominate; FP as for IoU. Without instanceIds these are None (missing), not guessed.
"""

import io
import math
import os
import zipfile

import numpy as np
from PIL import Image

from fcn import data, runs
from fcn.errors import UserError

NAME = "cityscapes"
SUBMISSION_ZIP = "cityscapes_results.zip"
SUBMISSION_SUFFIX = "_labelIds.png"  # <city>_<seq>_<frame>_labelIds.png, as the server matches
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
# train id -> category, in cityscapesScripts' labels.py order
CATEGORY_OF = (
    "flat", "flat", "construction", "construction", "construction", "object", "object",
    "object", "nature", "nature", "sky", "human", "human", "vehicle", "vehicle", "vehicle",
    "vehicle", "vehicle", "vehicle",
)  # fmt: skip
CATEGORIES = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
INSTANCE_CATEGORIES = ("human", "vehicle")  # every class of theirs has instances
# The benchmark's average instance size per class (pixels, on the training set), the weights
# of the instance-level scores (evalPixelLevelSemanticLabeling's avgClassSize).
AVG_CLASS_SIZE = {
    "person": 3462.4756337644, "rider": 3930.4788056518, "car": 12794.0202738185,
    "truck": 27855.1264367816, "bus": 35732.1511111111, "train": 67583.7075812274,
    "motorcycle": 6298.7200839748, "bicycle": 4672.3249222261,
}  # fmt: skip


def applies(spec):
    return spec.name == NAME and len(spec.class_names) == len(CATEGORY_OF)


def instance_path(label_path):
    if label_path.endswith(LABEL_SUFFIX):
        return label_path[: -len(LABEL_SUFFIX)] + INSTANCE_SUFFIX
    return ""


def read_instances(label_path):
    """(H, W) int32 instance ids of the label's _gtFine_instanceIds.png, or None where absent."""
    path = instance_path(label_path)
    if not path or not os.path.isfile(path):
        return None
    try:
        with Image.open(path) as img:
            return np.asarray(img).astype(np.int32)
    except OSError:
        raise UserError(f"cannot read {path}: truncated or not an image; replace it") from None


class CityscapesScores:
    """Weighted instance TP/FN pooled over images; the pixel confusion comes at result()."""

    def __init__(self, spec):
        self.class_names = list(spec.class_names)
        self.label_ids = _label_ids(spec)  # train id -> label id
        self.instance_classes = [i for i, n in enumerate(self.class_names) if n in AVG_CLASS_SIZE]
        self.tp = np.zeros(len(self.class_names))  # weighted, per instance class
        self.fn = np.zeros(len(self.class_names))
        self.cat_tp = dict.fromkeys(INSTANCE_CATEGORIES, 0.0)
        self.cat_fn = dict.fromkeys(INSTANCE_CATEGORIES, 0.0)
        self.missing = 0  # images without instanceIds

    def add(self, pred, instances):
        """pred (H, W) train ids; instances (H, W) int32 instanceIds or None."""
        if instances is None:
            self.missing += 1
            return
        by_label = {lid: t for t, lid in enumerate(self.label_ids)}
        for inst in np.unique(instances[instances > 1000]):
            t = by_label.get(int(inst) // 1000)
            if t is None or t not in self.instance_classes:
                continue  # an instance of a class the benchmark does not evaluate
            mask = instances == inst
            size = int(mask.sum())
            weight = AVG_CLASS_SIZE[self.class_names[t]] / size
            tp = int(np.count_nonzero(pred[mask] == t))
            self.tp[t] += tp * weight
            self.fn[t] += (size - tp) * weight
            cat = CATEGORY_OF[t]
            in_cat = np.isin(pred[mask], [i for i, c in enumerate(CATEGORY_OF) if c == cat])
            cat_tp = int(np.count_nonzero(in_cat))
            self.cat_tp[cat] += cat_tp * weight
            self.cat_fn[cat] += (size - cat_tp) * weight

    def result(self, confusion):
        """{"iou_class", "iiou_class", "iou_category", "iiou_category", "classes": {name:
        {"iou", "iiou"}}, "categories": {name: {"iou", "iiou"}}, "instances": "instanceIds" or
        a note}. confusion (19, 19) pooled pixels, rows ground truth, columns prediction."""
        cm = np.asarray(confusion, np.float64)
        have = self.missing == 0
        classes, categories = {}, {}
        for t, name in enumerate(self.class_names):
            fp = cm[:, t].sum() - cm[t, t]
            iou = _ratio(cm[t, t], cm[t].sum() + fp)
            iiou = None
            if t in self.instance_classes and have:
                iiou = _ratio(self.tp[t], self.tp[t] + self.fn[t] + fp)
            classes[name] = {"iou": iou, "iiou": iiou}
        for cat in CATEGORIES:
            ids = [t for t, c in enumerate(CATEGORY_OF) if c == cat]
            others = [t for t, c in enumerate(CATEGORY_OF) if c != cat]
            tp = cm[np.ix_(ids, ids)].sum()
            fn = cm[ids].sum() - tp
            fp = cm[np.ix_(others, ids)].sum()
            iiou = None
            if cat in INSTANCE_CATEGORIES and have:
                iiou = _ratio(self.cat_tp[cat], self.cat_tp[cat] + self.cat_fn[cat] + fp)
            categories[cat] = {"iou": _ratio(tp, tp + fp + fn), "iiou": iiou}
        note = (
            "instanceIds"
            if have
            else (
                f"missing: {self.missing} image(s) have no *{INSTANCE_SUFFIX}; instance-level "
                "figures not computed"
            )
        )
        inst_names = [self.class_names[t] for t in self.instance_classes]
        return {
            "iou_class": _mean(v["iou"] for v in classes.values()),
            "iiou_class": _mean(classes[n]["iiou"] for n in inst_names) if have else None,
            "iou_category": _mean(v["iou"] for v in categories.values()),
            "iiou_category": (
                _mean(categories[c]["iiou"] for c in INSTANCE_CATEGORIES) if have else None
            ),
            "classes": classes,
            "categories": categories,
            "instances": note,
        }


def _label_ids(spec):
    """train id -> Cityscapes label id (the first label id mapped to it)."""
    out = [None] * len(spec.class_names)
    for label_id, train_id in spec.id_map:
        if train_id < len(out) and out[train_id] is None:
            out[train_id] = label_id
    return out


def _ratio(num, den):
    return float(num) / float(den) if den else float("nan")


def _mean(values):
    """Mean over the values that are not NaN (cityscapesScripts' getScoreAverage)."""
    valid = [v for v in values if v is not None and not math.isnan(v)]
    return sum(valid) / len(valid) if valid else float("nan")


def write_submission(model, test_examples, folder, spec, batch_size=8):
    """folder/<city>_<seq>_<frame>_labelIds.png for each test image: the argmax as Cityscapes
    label ids (uint8) at the image's original size, then folder/cityscapes_results.zip of them
    (what the benchmark server takes). Returns the number of images."""
    label_ids = np.asarray(_label_ids(spec), np.uint8)  # (19,) train id -> label id
    names_ = []
    for start in range(0, len(test_examples), batch_size):
        chunk = test_examples[start : start + batch_size]
        originals = [data.read_image(ex.image_path, warn=None) for ex in chunk]
        for ex, (_, pred) in zip(chunk, model.predict_each(originals), strict=True):
            name = ex.name + SUBMISSION_SUFFIX
            runs.write_image(os.path.join(folder, name), label_ids[pred])
            names_.append(name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name in names_:
            z.write(os.path.join(folder, name), name)
    runs.atomic_write_bytes(os.path.join(folder, SUBMISSION_ZIP), buffer.getvalue())
    return len(names_)
