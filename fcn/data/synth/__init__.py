"""Synthetic datasets, one module per kind: `kitti` (the KITTI road benchmark layout, the demo's
data), `streets` (7-class street scenes in the Mapillary Vistas and Cityscapes layouts),
`footprints` (aerial building masks, folder layout), `coco` (people, cars and buses in the COCO
instances layout), `shapes` (textured blobs among look-alike clutter, folder layout) and the
hand-labelled formats `voc`, `labelme`, `labelstudio` (fcn.data.synth.annotated).

`generate(kind, out, ...)` writes any of them; `generate_dataset` and `render_scene` are the
KITTI generator's own entry points, kept for the demo and the benchmark. The KITTI scene's pieces
(world and camera, layout, ground, objects) are in `kitti_scene/`.
"""

from __future__ import annotations

from pathlib import Path

from fcn.data.synth import _common, annotated, coco, footprints, kitti, shapes, streets
from fcn.data.synth.kitti import CATEGORIES, KITTI_SIZES, generate_dataset, render_scene
from fcn.errors import UserError

KINDS = ("kitti", "streets", "footprints", "coco", "shapes", "voc", "labelme", "labelstudio")
_MODULES = {"streets": streets, "footprints": footprints, "coco": coco, "shapes": shapes}
# The hand-labelled formats (fcn.data.synth.annotated): kind -> writer
_ANNOTATED = {
    "voc": annotated.generate_voc,
    "labelme": annotated.generate_labelme,
    "labelstudio": annotated.generate_labelstudio,
}

__all__ = [
    "CATEGORIES", "KINDS", "KITTI_SIZES", "generate", "generate_dataset", "render_scene",
    "annotated", "coco", "footprints", "kitti", "shapes", "streets",
]  # fmt: skip


def generate(kind, out, count, test_count=12, seed=0, **options) -> dict:
    """Write a synthetic dataset of the given kind under out and return a summary dict.

    Every summary has "kind", "train", "test" and "roots" ({dataset name: folder to pass as
    --data-dir}); streets and coco add "val" (validation images, default count // 5, at least
    1; option val_count); footprints also writes `scenes` (default 2) large GeoTIFF scenes
    of `scene_side` pixels a side (default 2048) in <footprints>/scenes/
    (fcn.data.synth.footprint_scenes). Options: sizes, a tuple of
    (height, width) cycled over the images (default: each kind's own mix of sizes and aspect
    ratios with a few tiny frames); kitti also takes lane_files. Same arguments, byte-identical
    files.
    """
    if kind not in KINDS:
        raise UserError(f"unknown synthetic kind {kind!r}: choose one of {', '.join(KINDS)}")
    count = _common.check_int("count", count, 1)
    test_count = _common.check_int("test_count", test_count, 0)
    seed = _common.check_int("seed", seed, 0)
    if kind == "kitti":
        summary = generate_dataset(out, count=count, test_count=test_count, seed=seed, **options)
        summary = {"train": summary["train"], "test": summary["test"], "roots": {"kitti": str(out)}}
    else:
        allowed = {"sizes", "val_count"} if kind in ("streets", "coco", "voc") else {"sizes"}
        allowed |= {"scenes", "scene_side"} if kind == "footprints" else set()
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise UserError(
                f"synthetic kind {kind} takes no option {unknown[0]!r}: use {sorted(allowed)}"
            )
        options["sizes"] = _common.check_sizes(options.get("sizes"))
        writer = _ANNOTATED[kind] if kind in _ANNOTATED else _MODULES[kind].generate
        summary = writer(Path(out), count, test_count, seed, **options)
    return {"kind": kind, **summary}
