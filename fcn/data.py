"""Datasets: descriptors, file pairing, label colours, the validation split, cached batches.

A dataset is described by data (`DatasetSpec`), not code: adding one means adding a descriptor.
Arrays are uint8 until the batch is built: images (H, W, 3) RGB, labels (H, W) class indices with
`ignore_label` (255) for void pixels.
"""

import dataclasses
import glob
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from fcn import augment
from fcn.errors import UserError

IGNORE_LABEL = 255
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI, _JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
_JPEG_TAIL = 1024  # bytes at the end of a JPEG searched for its end marker
# A bad dataset is reported in one line: the first problem in full, then this many more names.
_MORE_BAD_NAMES = 3


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset described as data: what its classes are, how its labels are stored, what task
    it poses and how it is scored. Training, validation, evaluation, inference, export and the
    overlays read these fields; none of them names a dataset or a class."""

    name: str
    class_names: tuple  # index -> name
    # 'binary': the positive class's probability is thresholded (--threshold); 'multiclass':
    # the argmax decides.
    task: str
    positive_class: int  # binary: the class overlays paint and binary scores are about
    palette: tuple  # index -> overlay RGB, or None for a class that overlays leave unpainted
    label_format: str  # 'color': label images colour-coded by `colors`
    colors: tuple  # ((R, G, B), class index or ignore_label) pairs of the label images
    ignore_label: int  # label value left out of losses and metrics
    # How the validation split is stratified: 'prefix' = the image stem's part before the first
    # '_' (KITTI's um/umm/uu), '' = not stratified.
    stratify: str
    benchmark: str  # 'kitti_road' adds the KITTI devkit's scores in evaluate; '' none
    root: str  # folder under --data-dir
    train_images: str  # relative to root
    train_labels: str
    test_images: str
    # '{cat}_{id}' image stem -> label stem; KITTI ships lane labels beside road ones.
    label_stem: str

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def positive_name(self):
        return self.class_names[self.positive_class]


KITTI_ROAD = DatasetSpec(
    name="kitti_road",
    class_names=("not_road", "road"),
    task="binary",
    positive_class=1,
    palette=(None, (0, 255, 0)),  # the reference's green road overlay
    label_format="color",
    # magenta = road, red = not road, black = void (outside the evaluated area).
    colors=(((255, 0, 255), 1), ((255, 0, 0), 0), ((0, 0, 0), IGNORE_LABEL)),
    ignore_label=IGNORE_LABEL,
    stratify="prefix",
    benchmark="kitti_road",
    root="data_road",
    train_images="training/image_2",
    train_labels="training/gt_image_2",
    test_images="testing/image_2",
    label_stem="{cat}_road_{id}",
)

DATASETS = {KITTI_ROAD.name: KITTI_ROAD}


def get_spec(name):
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]


@dataclasses.dataclass(frozen=True)
class Example:
    name: str  # image stem, e.g. um_000000
    image_path: str
    label_path: str  # '' for test images
    category: str  # um / umm / uu (the stem's prefix)


def category_of(stem):
    return stem.split("_", 1)[0]


def images_in(folder):
    return sorted(p for p in glob.glob(os.path.join(folder, "*")) if p.lower().endswith(IMAGE_EXTS))


def list_pairs(data_dir, spec=KITTI_ROAD):
    """Training pairs under data_dir/<root>; every image needs its label and vice versa."""
    root = os.path.join(data_dir, spec.root)
    image_dir = os.path.join(root, spec.train_images)
    label_dir = os.path.join(root, spec.train_labels)
    for folder in (data_dir, root, image_dir, label_dir):
        if not os.path.isdir(folder):
            raise UserError(
                f"data folder {folder} does not exist; put the {spec.name} dataset under "
                f"{data_dir} (see data/README.md) or make a synthetic one with "
                f"`python main.py synth --out {data_dir}`"
            )
    return pair_folder(image_dir, label_dir, spec)


def pair_folder(image_dir, label_dir, spec=KITTI_ROAD):
    images = images_in(image_dir)
    if not images:
        raise UserError(f"no images (*.png, *.jpg) in {image_dir}; is --data-dir right?")
    labels = {os.path.splitext(os.path.basename(p))[0]: p for p in images_in(label_dir)}
    examples, unlabeled, used = [], [], set()
    for path in images:
        stem = os.path.splitext(os.path.basename(path))[0]
        cat, _, ident = stem.partition("_")
        label_stem = spec.label_stem.format(cat=cat, id=ident)
        cat = cat if spec.stratify == "prefix" else ""
        if label_stem not in labels:
            unlabeled.append(os.path.basename(path))
            continue
        used.add(label_stem)
        examples.append(Example(stem, path, labels[label_stem], cat))
    # Labels of another kind (KITTI's *_lane_*) are skipped; those of our kind need an image.
    kind = spec.label_stem.format(cat="", id="").strip("_")
    orphans = sorted(s for s in labels if f"_{kind}_" in s and s not in used)
    if unlabeled:
        raise UserError(
            f"{len(unlabeled)} image(s) in {image_dir} have no label in {label_dir} "
            f"(e.g. {', '.join(unlabeled[:3])}); add the labels or remove the images"
        )
    if orphans:
        raise UserError(
            f"{len(orphans)} label(s) in {label_dir} have no image in {image_dir} "
            f"(e.g. {', '.join(orphans[:3])}); add the images or remove the labels"
        )
    return examples


def list_test_images(data_dir, spec=KITTI_ROAD):
    folder = os.path.join(data_dir, spec.root, spec.test_images)
    return [
        Example(os.path.splitext(os.path.basename(p))[0], p, "", category_of(os.path.basename(p)))
        for p in images_in(folder)
    ]


def split_train_val(examples, val_count=48, seed=0):
    """Seeded split stratified over categories: (train, val, note).

    With few images the validation set shrinks to at most a fifth of them (at least one when
    there are two or more), so most images stay for training; `note` says so, else it is ''.
    """
    n = len(examples)
    want = val_count
    limit = n // 5 if n >= 10 else min(1, n - 1)
    note = ""
    if want > limit:
        want = max(limit, 0)
        note = (
            f"only {n} training images: validation split shrunk from {val_count} to {want} "
            "so that most images stay for training"
        )
    rng = np.random.default_rng(seed)
    by_cat = {}
    for ex in sorted(examples, key=lambda e: e.name):
        by_cat.setdefault(ex.category, []).append(ex)
    cats = sorted(by_cat)
    # Largest-remainder apportionment keeps each category's share in the validation set.
    quotas = {c: want * len(by_cat[c]) / n for c in cats} if n else {}
    take = {c: int(q) for c, q in quotas.items()}
    for c in sorted(cats, key=lambda c: (-(quotas[c] - take[c]), c))[: want - sum(take.values())]:
        take[c] += 1
    train, val = [], []
    for c in cats:
        order = rng.permutation(len(by_cat[c]))
        chosen = {int(i) for i in order[: take[c]]}
        for i, ex in enumerate(by_cat[c]):
            (val if i in chosen else train).append(ex)
    return train, val, note


def read_image(path, warn=print):
    """Any PNG/JPEG as uint8 RGB (H, W, 3): RGBA, grey, palette and 16-bit are converted."""
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0 or _is_cut_off_jpeg(path):
        raise UserError(f"cannot read image {path}: missing, truncated or not an image; replace it")
    notes = ["palette -> RGB"] if _is_palette_png(path) else []
    if raw.dtype == np.uint16:
        raw = (raw >> 8).astype(np.uint8)
        notes.append("16-bit -> 8-bit")
    elif raw.dtype != np.uint8:
        raise UserError(f"image {path} has unsupported sample type {raw.dtype}; save it as 8-bit")
    if raw.ndim == 2:
        rgb = cv2.cvtColor(raw, cv2.COLOR_GRAY2RGB)
        notes.append("grayscale -> RGB")
    elif raw.shape[2] == 4:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGB)
        notes.append("alpha channel dropped")
    else:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    if notes and warn:
        warn(f"warning: {path}: {', '.join(notes)}")
    return rgb


def _is_cut_off_jpeg(path):
    """libjpeg decodes a cut-off JPEG with grey filler and only a warning. A whole one ends with
    the EOI marker FF D9 (maybe plus a little padding); entropy-coded data never contains it."""
    with open(path, "rb") as f:
        if f.read(2) != _JPEG_SOI:
            return False
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - _JPEG_TAIL))
        return _JPEG_EOI not in f.read()


def _is_palette_png(path):
    """OpenCV expands palette PNGs silently; the IHDR colour type (byte 25) tells: 3 = palette."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    return head[:8] == _PNG_SIGNATURE and len(head) == 26 and head[25] == 3


def decode_label(rgb, spec=KITTI_ROAD, path="label"):
    """Colour-coded label (H, W, 3) -> class indices (H, W) uint8, void = IGNORE_LABEL."""
    key = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    out = np.full(key.shape, IGNORE_LABEL, np.uint8)
    known = np.zeros(key.shape, bool)
    for (r, g, b), index in spec.colors:
        hit = key == ((r << 16) | (g << 8) | b)
        out[hit] = index
        known |= hit
    bad = key.size - int(known.sum())
    if bad:
        colours = ", ".join(f"{c}" for c, _ in spec.colors)
        raise UserError(
            f"label {path} has {100.0 * bad / key.size:.2f}% pixels with colours outside the "
            f"{spec.name} code ({colours}); fix or re-export the label"
        )
    return out


def load_example(example, image_shape, spec=KITTI_ROAD, warn=print):
    """(image (h, w, 3) uint8, label (h, w) uint8) at the network's input size."""
    image = read_image(example.image_path, warn)
    h, w = image_shape
    label = None
    if example.label_path:
        label_rgb = read_image(example.label_path, warn=None)
        if label_rgb.shape[:2] != image.shape[:2]:
            raise UserError(
                f"image {example.image_path} is {image.shape[1]}x{image.shape[0]} but its label "
                f"{example.label_path} is {label_rgb.shape[1]}x{label_rgb.shape[0]}; "
                "they must match"
            )
        label = decode_label(label_rgb, spec, example.label_path)
        # Nearest neighbour: class indices must never be blended.
        label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return image, label


@dataclasses.dataclass
class CachedSplit:
    """A split decoded, resized (and CLAHE'd) once: (N, h, w, 3) / (N, h, w) uint8 arrays."""

    examples: list
    images: np.ndarray
    labels: np.ndarray
    images_clahe: np.ndarray = None


def load_split(examples, image_shape, spec=KITTI_ROAD, clahe=None, threads=None):
    """Decode a split in parallel (OpenCV releases the GIL). clahe=(clip, grid) also caches the
    equalised images for augmentation."""
    if not examples:
        h, w = image_shape
        return CachedSplit([], np.zeros((0, h, w, 3), np.uint8), np.zeros((0, h, w), np.uint8))

    def work(ex):
        try:
            image, label = load_example(ex, image_shape, spec)
        except UserError as e:
            return e
        eq = augment.clahe(image, *clahe) if clahe else None
        return image, label, eq

    with ThreadPoolExecutor(threads or os.cpu_count()) as pool:
        results = list(pool.map(work, examples))
    # Every pair is checked before one error is raised, so a user fixes the data in one go.
    bad = [(ex, r) for ex, r in zip(examples, results, strict=True) if isinstance(r, UserError)]
    if len(bad) == 1:
        raise bad[0][1]
    if bad:
        more = ", ".join(ex.name for ex, _ in bad[1 : 1 + _MORE_BAD_NAMES])
        raise UserError(
            f"{len(bad)} of {len(examples)} pairs are unusable; first: {bad[0][1]} "
            f"(the others include {more})"
        )
    images = np.stack([r[0] for r in results])
    labels = np.stack([r[1] for r in results])
    images_clahe = np.stack([r[2] for r in results]) if clahe else None
    return CachedSplit(list(examples), images, labels, images_clahe)


def one_hot(labels, num_classes):
    """(B, h, w) indices -> (B, h, w, C) float32; void pixels (255) become all-zero rows.

    Only the Udacity interface (helper.gen_batch_function, main.optimize) uses one-hot labels.
    """
    eye = np.concatenate(
        [np.eye(num_classes, dtype=np.float32), np.zeros((1, num_classes), np.float32)]
    )
    idx = np.where(labels < num_classes, labels, num_classes)
    return eye[idx]


def to_input(images):
    """uint8 (B, h, w, 3) -> the float32 raw 0..255 network input (normalising is in-graph)."""
    return images.astype(np.float32)


def epoch_batches(split, batch_size, augmenter=None, rng=None):
    """Yield (images float32 (B, h, w, 3) raw 0..255, labels uint8 (B, h, w) class ids with
    IGNORE_LABEL) over a shuffled epoch."""
    n = len(split.images)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        images, labels = [], []
        for i in idx:
            image, label = split.images[i], split.labels[i]
            if augmenter is not None:
                eq = split.images_clahe[i] if split.images_clahe is not None else None
                image, label = augmenter(image, label, eq)
            images.append(image)
            labels.append(label)
        yield to_input(np.stack(images)), np.stack(labels)


def prefetch(iterable, depth=2):
    """Run a generator in a background thread, `depth` items ahead, so the step never waits."""
    q = queue.Queue(maxsize=depth)
    done = object()
    error = []

    def worker():
        try:
            for item in iterable:
                q.put(item)
        except BaseException as e:  # re-raised in the consumer
            error.append(e)
        finally:
            q.put(done)

    threading.Thread(target=worker, daemon=True).start()
    while True:
        item = q.get()
        if item is done:
            if error:
                raise error[0]
            return
        yield item
