"""Which training images an epoch visits, in what order: `uniform` (each once, shuffled: the
sequence training always had) or `repeat_factor`, LVIS' repeat-factor sampling (Gupta et al.
2019), so images holding rare classes are seen more often.

Repeat factors: f_c = the share of training images containing class c; r_c = max(1,
sqrt(t / f_c)) with t = --repeat-threshold; an image's r = the largest r_c over the classes it
contains (ignore pixels do not count; an image of ignore only has r = 1). Each epoch takes
image i floor(r_i) times plus once more with probability r_i - floor(r_i) (stochastic
rounding), then shuffles: its length varies around sum(r_i). Draws come from the training
order generator, so a seeded run repeats and a resumed epoch replays exactly.
"""

import math

import numpy as np

SAMPLINGS = ("uniform", "repeat_factor")
DEFAULT_THRESHOLD = 0.1


def class_presence(labels, num_classes):
    """(N, C) bool: image n contains class c; labels (N, h, w) uint8 class ids (ignore > C)."""
    out = np.zeros((len(labels), num_classes), bool)
    for n, label in enumerate(labels):
        present = np.unique(label)
        present = present[present < num_classes]
        out[n, present] = True
    return out


def repeat_factors(presence, threshold):
    """(per-image r (N,), per-class r_c (C,), f_c (C,)) of a (N, C) presence matrix; classes
    no image contains have f_c = 0 and r_c = 1 (nothing to repeat)."""
    n = max(len(presence), 1)
    share = presence.sum(0) / n
    with np.errstate(divide="ignore"):
        per_class = np.where(share > 0, np.maximum(1.0, np.sqrt(threshold / share)), 1.0)
    per_image = np.where(presence, per_class[None], 1.0).max(1) if len(presence) else np.ones(0)
    return per_image, per_class, share


class Sampler:
    """order(rng) -> the epoch's image indices. factors None: uniform (rng.permutation(n))."""

    def __init__(self, n, factors=None):
        self.n, self.factors = n, factors

    @classmethod
    def from_config(cls, config, split, class_names, log=None):
        """The run's sampler; repeat_factor logs the expected repeats per class."""
        n = len(split.labels)
        if getattr(config, "sampling", "uniform") != "repeat_factor":
            return cls(n)
        presence = class_presence(split.labels, len(class_names))
        per_image, per_class, share = repeat_factors(presence, config.repeat_threshold)
        t = config.repeat_threshold
        if log:
            log(
                f"repeat-factor sampling (t = {t:g}): {per_image.sum():.1f} image draws per epoch "
                f"for {n} images"
            )
            width = max(map(len, class_names), default=0)
            for c, name in enumerate(class_names):
                seen = per_image[presence[:, c]].sum()  # expected draws of images with c
                count = int(presence[:, c].sum())
                ratio = seen / count if count else math.nan
                log(
                    f"  {name:<{width}}  in {share[c]:6.1%} of images, r_c {per_class[c]:.2f}, "
                    f"expected repeats {ratio:.2f}"
                )
        if not (per_image > 1).any():
            # Every class present is in at least t of the images (rare in pixels, not in
            # images): nothing to repeat, so the epoch is uniform's, with uniform's sequence.
            if log:
                rarest = share[share > 0].min() if (share > 0).any() else 0.0
                log(
                    f"  repeats nothing: the rarest class is in {rarest:.1%} of the images, at "
                    f"least t = {t:g}; training as --sampling uniform (raise --repeat-threshold "
                    "above that share to repeat it)"
                )
            return cls(n)
        return cls(n, per_image)

    def order(self, rng):
        if self.factors is None:
            return rng.permutation(self.n)
        whole = np.floor(self.factors)
        counts = whole.astype(int) + (rng.random(self.n) < self.factors - whole)
        return rng.permutation(np.repeat(np.arange(self.n), counts))
