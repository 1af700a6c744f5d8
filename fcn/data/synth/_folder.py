"""Writing a two-class dataset in the folder layout: <d>/images/<stem>.png, <d>/labels/<stem>.png
(single-channel 0/255 masks, no labelmap.json: the readers' binary default) and <d>/test/."""

from __future__ import annotations

import numpy as np

from fcn.data.synth import _common as C


def generate(
    name, kind_code, render, pick_size, out, count, test_count, seed, sizes=None, extra=None
):
    """render(rng, height, width) -> (image RGB uint8, mask bool); return the summary dict.
    extra(dataset folder): writes more into it before the folder is moved into place."""
    with C.staged(out, (name,)) as tmp:
        root = tmp / name
        for folder in ("images", "labels", "test"):
            (root / folder).mkdir(parents=True)
        splits = ((C.SPLIT_TRAIN, count), (C.SPLIT_TEST, test_count))
        C.parallel_map(
            _write_one,
            [
                (root, name, kind_code, render, pick_size, seed, sizes, split, i)
                for split, n in splits
                for i in range(n)
            ],
        )
        if extra is not None:
            extra(root)
    return {"train": count, "test": test_count, "roots": {name: str(out / name)}}


def _write_one(root, name, kind_code, render, pick_size, seed, sizes, split, i):
    """Render and write image i of a split (and its 0/255 mask for training)."""
    rng = C.image_rng(kind_code, seed, split, i)
    height, width = pick_size(rng, sizes, i)
    image, mask = render(rng, height, width)
    stem = f"{name}_{i:06d}"
    if split == C.SPLIT_TEST:
        C.write_png(root / "test" / f"{stem}.png", image)
        return
    C.write_png(root / "images" / f"{stem}.png", image)
    C.write_png(root / "labels" / f"{stem}.png", np.where(mask, 255, 0).astype(np.uint8))
