"""Training-only augmentation. Every transform takes and returns (image, label) together."""

import cv2
import numpy as np


def clahe(image, clip=2.0, grid=8):
    """Contrast-limited adaptive histogram equalisation of the lightness (LAB L) of an RGB image.

    Equalising L only leaves hue alone, so road colour cues survive. Labels are unchanged.
    """
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    op = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(int(grid), int(grid)))
    lab[..., 0] = op.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def hflip(image, label):
    """Mirror image (H, W, 3) and label (H, W) together; returns copies, never views."""
    return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(label[:, ::-1])


class Augmenter:
    """Seeded per-sample augmentation on cached arrays.

    CLAHE is expensive (~ms per image), so the cache keeps each training image both plain and
    equalised and this picks one; a flip is a cheap copy. The same seed gives the same sequence.
    """

    def __init__(self, clahe_prob=0.5, flip_prob=0.5, seed=0):
        self.clahe_prob = clahe_prob
        self.flip_prob = flip_prob
        self.rng = np.random.default_rng(seed)

    def __call__(self, image, label, image_clahe=None):
        if image_clahe is not None and self.rng.random() < self.clahe_prob:
            image = image_clahe
        if self.rng.random() < self.flip_prob:
            image, label = hflip(image, label)
        return image, label

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state
