"""Dataset descriptors: each dataset is described as data (classes, colours, task, label
format, split stratification, benchmark, folder layout); adding a dataset adds a descriptor."""

import dataclasses
import json

from fcn.errors import UserError

IGNORE_LABEL = 255


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

    def to_dict(self):
        """JSON-able form, written into every run (names.DATASET_FILE)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values):
        """Inverse of to_dict (lists back to tuples); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"dataset description has unknown keys {unknown}; newer version?")
        return cls(**{k: _tuples(v) for k, v in values.items()})

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


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def resolve_spec(name, data_dir=None, classes=""):
    """The spec of dataset `name` as it applies to data_dir: datasets whose classes live in
    their files (Mapillary's config, a folder's label map, COCO's categories) read them here.
    classes: COCO's category selection (Config.classes)."""
    return get_spec(name)


def get_spec(name):
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[name]
