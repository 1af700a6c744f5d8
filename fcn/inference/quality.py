"""Every file of an export scored on the run's validation split, against float TensorFlow.

For each backend key (fcn.inference.backends) the split is predicted and scored as `evaluate`
scores it (fcn.evaluation.scoring.score_examples: each image at its own size, pooled into one
confusion matrix), and its masks are compared pixel by pixel with those of the export's
SavedModel in float32, the reference every other file approximates:

    score                the split's headline: the positive class's IoU for binary datasets
                         (KITTI: road IoU), else the headline mean IoU (evaluate's first figure)
    mask_pixels_differ   differing mask pixels / all mask pixels of the split, vs TF float32
"""

from fcn import runs
from fcn.data import task
from fcn.evaluation.scoring import BATCH_SIZE, score_examples
from fcn.inference import backends
from fcn.inference.predictor import Predictor

REFERENCE = backends.TF  # in float32


def headline_score(result, spec):
    """(what, value) of a scored split (DatasetScores.result()): 'road IoU' for binary datasets,
    else the headline mean ('mean_iou', or 'mean_iou_present' when classes are absent)."""
    if task.is_binary(spec):
        return task.headline_label(spec), result["classes"][spec.positive_name]["iou"]
    return result["headline"], result[result["headline"]]


class Compared(Predictor):
    """`inner`'s predictions unchanged; each mask is kept (`reference` None: `masks`), or
    compared with the reference's mask of the same image (`differ` of `pixels`)."""

    def __init__(self, inner, reference=None):
        self.inner, self.reference = inner, reference
        self.spec, self.config, self.threshold = inner.spec, inner.config, inner.threshold
        self.network_size, self.batch_size = inner.network_size, inner.batch_size
        self.masks, self.differ, self.pixels, self._seen = [], 0, 0, 0

    def _predict_batch(self, batch, threshold):
        probs, masks = self.inner._predict_batch(batch, threshold)
        for mask in masks:
            if self.reference is None:
                self.masks.append(mask)
            else:
                self.differ += int((mask != self.reference[self._seen]).sum())
                self.pixels += mask.size
                self._seen += 1
        return probs, masks

    def share(self):
        return self.differ / self.pixels if self.pixels else 0.0

    def close(self):
        self.inner.close()


def measure(
    export_dir, names, examples, spec, threshold, threads=None, log=print, tf_precision="float32"
):
    """export.json's "quality": each key of `names` scored on `examples` (the validation
    split) and compared with the reference, TF float32 (scored first, whether asked or not).
    tf_precision: the precision of the "tf" entry (bench times TF in bfloat16 too)."""
    # (key, TF precision) to score, the reference first; "tf" in float32 is the reference itself.
    keep_reference = REFERENCE in names and tf_precision == "float32"
    others = [n for n in names if n != REFERENCE or not keep_reference]
    todo = [(REFERENCE, "float32")] + [(n, tf_precision) for n in others]
    scored, reference, what = {}, None, None
    for name, prec in todo:
        backend, int8 = backends.split_key(name)
        opened = backends.open_backend(
            export_dir, backend, int8, threads, prec, batch_size=BATCH_SIZE
        )
        with Compared(opened, reference) as model:
            scores, _, _ = score_examples(model, examples, spec, threshold, worst=0, log=None)
        what, value = headline_score(scores.result(), spec)
        if reference is None:
            reference = model.masks
            if not keep_reference:
                continue
        scored[name] = {"score": value, "mask_pixels_differ": model.share()}
        log(
            f"  {name}: {what} {value:.4f} on {len(examples)} validation images, "
            f"{100 * model.share():.3f}% of mask pixels differ from TF float32"
        )
    return runs.json_safe(
        {
            "split": "val",
            "images": len(examples),
            "metric": what,
            "reference": "tf float32 (saved_model.pb)",
            "tf_precision": tf_precision,
            "backends": scored,
        }
    )
