"""Dataset descriptors: each dataset is described as data (classes, colours, task, label
format, split stratification, benchmark, folder layout); adding a dataset adds a descriptor.
The readers of each dataset family (fcn.data.datasets) build and read these."""

import dataclasses
import json

from fcn.errors import UserError

IGNORE_LABEL = 255


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset described as data: what its classes are, how its labels are stored, what task
    it poses and how it is scored. Training, validation, evaluation, inference, export and the
    overlays read these fields; none of them names a dataset or a class."""

    name: str  # the dataset family (fcn.data.datasets registry key)
    class_names: tuple  # index -> name
    # 'binary': the positive class's probability is thresholded (--threshold); 'multiclass':
    # the argmax decides.
    task: str
    # binary: the class overlays paint and binary scores are about; multiclass: the class whose
    # probability infer shows as a heat map.
    positive_class: int
    palette: tuple  # index -> overlay RGB, or None for a class that overlays leave unpainted
    # How label files store classes: 'color' = RGB looked up in `colors`; 'index' = one
    # channel (or a palette PNG's index) looked up in `id_map`, RGB files decoded by `colors`;
    # 'coco' = instance polygons/RLE in an annotation JSON (train_labels / val_labels).
    label_format: str
    colors: tuple  # ((R, G, B), class index or ignore_label) pairs of the label images
    ignore_label: int  # label value left out of losses and metrics
    # How the validation split is stratified: 'prefix' = the image stem's part before the first
    # '_' (KITTI's um/umm/uu), '' = not stratified.
    stratify: str
    benchmark: str  # 'kitti_road' adds the KITTI devkit's scores in evaluate; '' none
    root: str  # folder under --data-dir ('' = --data-dir is the dataset's own folder)
    train_images: str  # relative to root
    train_labels: str  # a folder of label images, or COCO's annotation JSON
    test_images: str  # '' = none
    # '{cat}_{id}' image stem -> label stem; KITTI ships lane labels beside road ones.
    label_stem: str
    # Label values outside colors / id_map: 'error' makes the pair unusable (KITTI, whose
    # labels are exact), 'ignore' makes them IGNORE_LABEL with one warning per file.
    unknown: str = "error"
    id_map: tuple = ()  # label_format 'index': ((stored value, class index or ignore), ...)
    val_images: str = ""  # the dataset's official validation split, relative to root; '' none
    val_labels: str = ""
    category_ids: tuple = ()  # coco: the COCO category id of each class (0 = background)
    # The dataset's images include grayscale ones (COCO): converting them is routine, so it
    # is not warned about.
    grey_images: bool = False
    # Image-id lists naming each split's examples (VOC's ImageSets), relative to root; '' none.
    train_list: str = ""
    val_list: str = ""

    def to_dict(self):
        """JSON-able form, written into every run (names.DATASET_FILE) and export."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values):
        """Inverse of to_dict (lists back to tuples); unknown keys are an error, missing ones
        (a run written before they existed) take their defaults."""
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


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
