"""Test-time augmentation: the prediction averaged over flipped (and transposed) copies.

A segmentation network is not exactly equivariant to flips, and its errors on a copy are partly
independent of those on the original, so the mean of the copies' probabilities (each mapped
back) is better than any one: on the recipes' validation splits `flips` raised the building IoU
0.842 -> 0.863 and the U-Net's foreground IoU 0.835 -> 0.859 (docs/performance.md).

The sets (`--tta`), each a list of (transpose, flip_rows, flip_cols):
    none   the image as is
    hflip  + the mirror image: what a road scene allows (the sky stays up)
    flips  + the upside-down copies (rows, both): overhead and microscopy images
    d4     + the four flips of the transpose: the eight symmetries of a square, for square
           --image-shape only (the copies are one batch)

They are built into the prediction path (fcn.inference.prediction.build) between the
network-size input and the softmax, so validation, `evaluate`, `infer` and exports all average
the same copies; training steps (is_training) run the image alone and pay nothing.
"""

TRANSFORMS = {
    "none": ((False, False, False),),
    "hflip": ((False, False, False), (False, False, True)),
    "flips": (
        (False, False, False),
        (False, False, True),
        (False, True, False),
        (False, True, True),
    ),
}
TRANSFORMS["d4"] = TRANSFORMS["flips"] + tuple((True, r, c) for _, r, c in TRANSFORMS["flips"])
CHOICES = tuple(TRANSFORMS)


def _forward(x, transform):
    """(N, h, w, C) -> the copy: transposed (N, w, h, C) first, then flipped."""
    import tensorflow.compat.v1 as tf  # here, so that fcn.config (--help) needs no TensorFlow

    transpose, rows, cols = transform
    if transpose:
        x = tf.transpose(x, [0, 2, 1, 3])
    axes = [a for a, on in ((1, rows), (2, cols)) if on]
    return tf.reverse(x, axes) if axes else x


def _inverse(x, transform):
    """The copy's map back onto the original's pixels: unflip, then transpose back."""
    import tensorflow.compat.v1 as tf

    transpose, rows, cols = transform
    axes = [a for a, on in ((1, rows), (2, cols)) if on]
    x = tf.reverse(x, axes) if axes else x
    return tf.transpose(x, [0, 2, 1, 3]) if transpose else x


def stack(x, name):
    """(N, h, w, C) -> (K*N, h, w, C): the K copies of `name`'s set, the image itself first."""
    import tensorflow.compat.v1 as tf

    return tf.concat([_forward(x, t) for t in TRANSFORMS[name]], axis=0)


def merge(probs, n, name):
    """(K*N, h, w, C) probabilities of `stack`'s copies -> (N, h, w, C): each mapped back onto
    the original's pixels, then averaged."""
    import tensorflow.compat.v1 as tf

    copies = [_inverse(probs[k * n : (k + 1) * n], t) for k, t in enumerate(TRANSFORMS[name])]
    return tf.add_n(copies) / float(len(copies))


def check(name, image_shape):
    """A one-line problem with `--tta name` at `image_shape`, else None."""
    if name not in TRANSFORMS:
        return f"--tta {name!r} is not one of {list(CHOICES)}"
    h, w = image_shape
    if any(t[0] for t in TRANSFORMS[name]) and h != w:
        return (
            f"--tta {name} transposes the image, so it needs a square --image-shape, got "
            f"{h}x{w}; use --tta flips"
        )
    return None
