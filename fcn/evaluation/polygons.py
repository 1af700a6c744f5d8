"""The SpaceNet building metric: predicted polygons matched one to one to true ones by IoU.

As SpaceNet's evaluator (and solaris.eval's `Evaluator.eval_iou`) does it: proposals are taken
in order (highest `scores` first when given, e.g. each feature's mean probability; else as
they come), and each is matched to the not yet matched true polygon of highest IoU with it; the
pair counts as a true positive when that IoU >= `threshold` (0.5), else the proposal is a false
positive. True polygons left unmatched are false negatives. Then

    precision = TP / (TP + FP),  recall = TP / (TP + FN),  F1 = 2 P R / (P + R)

each 0 where its denominator is 0 (no proposals, no truth, P + R = 0); the counts are given
too, so a scene with nothing to find and nothing found is visible as such. With IoU >= 0.5 and
polygons that do not overlap within either set, a proposal can reach that IoU with one true
polygon at most, so the order changes nothing then; it decides only among overlapping ones.

IoU = area(A & B) / area(A | B) with shapely, in the polygons' own coordinates: both sets must be
in one CRS (read_features gives the CRS a GeoJSON names, for the caller to compare).
"""

import json

import numpy as np

from fcn.errors import UserError

IOU_THRESHOLD = 0.5


def iou(a, b):
    """Intersection over union of two shapely geometries (0 when both are empty)."""
    union = a.union(b).area
    return a.intersection(b).area / union if union > 0 else 0.0


def match(proposals, truths, threshold=IOU_THRESHOLD, scores=None):
    """[(proposal index, truth index, IoU)] of the true positives, in matching order."""
    import shapely

    order = range(len(proposals))
    if scores is not None:
        order = sorted(order, key=lambda i: -scores[i])
    tree = shapely.STRtree(list(truths)) if len(truths) else None
    free = set(range(len(truths)))
    pairs = []
    for i in order:
        if tree is None or not free:
            break
        best, best_iou = None, 0.0
        for j in tree.query(proposals[i]).tolist():  # truths whose boxes meet the proposal's
            if j in free:
                value = iou(proposals[i], truths[j])
                if value > best_iou:
                    best, best_iou = j, value
        if best is not None and best_iou >= threshold:
            free.discard(best)
            pairs.append((i, best, best_iou))
    return pairs


def _ratio(a, b):
    return a / b if b else 0.0


def count_scores(tp, fp, fn):
    """dict(tp, fp, fn, precision, recall, f1) of match counts (0 where undefined, as
    SpaceNet's)."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return dict(tp=tp, fp=fp, fn=fn, precision=precision, recall=recall, f1=f1)


def f1_scores(proposals, truths, threshold=IOU_THRESHOLD, scores=None):
    """dict(tp, fp, fn, precision, recall, f1, mean_iou of the matched pairs)."""
    pairs = match(proposals, truths, threshold, scores)
    tp = len(pairs)
    return dict(
        **count_scores(tp, len(proposals) - tp, len(truths) - tp),
        mean_iou=float(np.mean([v for _, _, v in pairs])) if pairs else 0.0,
    )


def read_features(path):
    """(shapely polygons, their `mean_prob` or None each, the `crs` member's name or None) of a
    GeoJSON FeatureCollection; a file that is not one is a one-line error."""
    import shapely.geometry

    try:
        with open(path, encoding="utf-8") as f:
            collection = json.load(f)
        features = collection["features"]
        geoms = [shapely.geometry.shape(feature["geometry"]) for feature in features]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(
            f"cannot read polygons {path} ({type(e).__name__}: {str(e)[:120]}); give a GeoJSON "
            "FeatureCollection"
        ) from None
    scores = [(feature.get("properties") or {}).get("mean_prob") for feature in features]
    crs = ((collection.get("crs") or {}).get("properties") or {}).get("name")
    return geoms, scores, crs


def reproject(geoms, source, target):
    """Shapely geometries from CRS `source` to `target` (what pyproj.CRS takes: 'EPSG:32633',
    a URN such as read_features gives, WKT), x/y in each CRS's east/north order; the same
    geometries where the two are one CRS. An unknown CRS is a one-line error."""
    import pyproj
    import shapely

    try:
        src, dst = pyproj.CRS.from_user_input(source), pyproj.CRS.from_user_input(target)
    except pyproj.exceptions.CRSError as e:
        raise UserError(f"unknown CRS ({str(e)[:160]}); name it as EPSG:n") from None
    if src == dst:
        return list(geoms)
    transformer = pyproj.Transformer.from_crs(src, dst, always_xy=True)

    def move(xy):  # (N, 2) -> (N, 2)
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return [shapely.transform(g, move) for g in geoms]
