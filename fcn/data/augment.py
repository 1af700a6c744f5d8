"""Training-only augmentation. Every transform takes and returns (image, label) together.

Images are uint8 (H, W, 3) RGB, labels uint8 (H, W) class ids with 255 = ignore (IGNORE_LABEL).
Geometric transforms move both; photometric ones change the image and hand the label back as it
came. Labels are never interpolated: nearest neighbour keeps class ids class ids, and a pixel
the warp leaves uncovered becomes ignore, so the loss never trains on invented content.

A transform that draws parameters takes an `rng` (np.random.Generator) and draws them from it
and nothing else, so the same generator state gives the same output.
"""

import math

import cv2
import numpy as np

from fcn.data.descriptors import IGNORE_LABEL

# The Config fields Augmenter.from_config reads, besides `seed`, in the order the transforms run.
CONFIG_FIELDS = (
    "crop",
    "clahe_prob",
    "flip_prob",
    "vflip_prob",
    "rotate_prob",
    "rotate_degrees",
    "shift_scale_prob",
    "shift_limit",
    "scale_limit",
    "brightness_contrast_prob",
    "brightness_limit",
    "contrast_limit",
    "blur_prob",
    "blur_sigma",
    "noise_prob",
    "noise_std",
)
# A Gaussian kernel reaching 3 sigma each side holds 99.7% of the weight.
BLUR_RADIUS_SIGMAS = 3
# Image pixels the warp leaves uncovered get mirrored content: their labels are ignore anyway,
# and unlike a constant (black) border this puts no artificial edge or dark patch into the
# receptive field of the labelled pixels next to it, nor into the image mean that
# brightness_contrast works around.
IMAGE_BORDER = cv2.BORDER_REFLECT_101


def clahe(image, clip=2.0, grid=8):
    """Contrast-limited adaptive histogram equalisation of the lightness (LAB L) of an RGB image.

    Equalising L only leaves hue alone, so road colour cues survive. Labels are unchanged.
    """
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    op = cv2.createCLAHE(clipLimit=float(clip), tileGridSize=(int(grid), int(grid)))
    lab[..., 0] = op.apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def hflip(image, label):
    """Mirror image (H, W, 3) and label (H, W) together; returns copies, never views.

    cv2.flip, not a reversed NumPy view made contiguous: the same bytes, 25x faster (0.02 vs
    0.6 ms at 256x256)."""
    return cv2.flip(image, 1), cv2.flip(label, 1)


def vflip(image, label):
    """Turn image (H, W, 3) and label (H, W) upside down together; returns copies."""
    return cv2.flip(image, 0), cv2.flip(label, 0)


def rotate(image, label, rng, degrees):
    """Rotate both about the image centre by an angle uniform in [-degrees, degrees] (positive =
    anticlockwise on screen, OpenCV's convention); corners left uncovered are ignore."""
    return warp(image, label, rotation_matrix(rng, degrees, label.shape))


def shift_scale(image, label, rng, shift_limit, scale_limit):
    """Zoom both about the image centre by a factor uniform in [1 - scale_limit, 1 + scale_limit],
    then shift by a fraction uniform in [-shift_limit, shift_limit] of each side (x then y)."""
    return warp(image, label, shift_scale_matrix(rng, shift_limit, scale_limit, label.shape))


def rotation_matrix(rng, degrees, shape):
    """The 2x3 affine matrix of `rotate` for an (H, W) image; draws the angle."""
    h, w = shape
    angle = rng.uniform(-degrees, degrees)
    # Centre ((W-1)/2, (H-1)/2): pixel centres are integers, so 180 degrees is an exact flip.
    return cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)


def shift_scale_matrix(rng, shift_limit, scale_limit, shape):
    """The 2x3 affine matrix of `shift_scale` for an (H, W) image; draws scale, then dx, dy."""
    h, w = shape
    scale = rng.uniform(1 - scale_limit, 1 + scale_limit)
    dx = rng.uniform(-shift_limit, shift_limit) * w
    dy = rng.uniform(-shift_limit, shift_limit) * h
    cx, cy = (w - 1) / 2, (h - 1) / 2
    # x' = s (x - cx) + cx + dx, the same for y.
    return np.array([[scale, 0, (1 - scale) * cx + dx], [0, scale, (1 - scale) * cy + dy]])


def then(first, second):
    """The 2x3 affine matrix that applies `first`, then `second`."""
    linear = second[:, :2] @ first[:, :2]
    return np.hstack([linear, (second[:, :2] @ first[:, 2:] + second[:, 2:])])


def warp(image, label, matrix):
    """Apply one 2x3 affine matrix (source -> destination pixel coordinates) to both: the image
    bilinear with a mirrored border, the label nearest with IGNORE_LABEL where uncovered."""
    h, w = label.shape
    out_image = cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=IMAGE_BORDER
    )
    out_label = cv2.warpAffine(
        label,
        matrix,
        (w, h),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=IGNORE_LABEL,
    )
    return out_image, out_label


def brightness_contrast(image, label, rng, brightness_limit, contrast_limit):
    """out = (x - mean) * (1 + c) + mean + 255 b, rounded and clipped to 0..255; c uniform in
    [-contrast_limit, contrast_limit], b in [-brightness_limit, brightness_limit]. Label as is.

    Unlike albumentations (x * (1 + c) + 255 b, contrast about 0), contrast turns about the
    image's mean over all pixels and channels, so a contrast change alone keeps the mean
    brightness and the two parameters do what their names say. One gain for all channels keeps
    hue. It is one 256-entry lookup table, the cheapest per-pixel map there is.
    """
    b = rng.uniform(-brightness_limit, brightness_limit)
    c = rng.uniform(-contrast_limit, contrast_limit)
    mean = float(np.mean(cv2.mean(image)[:3]))
    gain = 1.0 + c
    lut = np.arange(256, dtype=np.float64) * gain + (mean * (1 - gain) + 255.0 * b)
    lut = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
    return cv2.LUT(image, lut), label


def gaussian_blur(image, label, rng, max_sigma):
    """Gaussian blur with sigma uniform in (0, max_sigma] pixels, the kernel reaching
    BLUR_RADIUS_SIGMAS sigma each side; mirrored border. Label as is."""
    sigma = max_sigma * (1.0 - rng.random())  # random() is in [0, 1): sigma is never 0
    k = 2 * math.ceil(BLUR_RADIUS_SIGMAS * sigma) + 1
    blurred = cv2.GaussianBlur(image, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=IMAGE_BORDER)
    return blurred, label


def gaussian_noise(image, label, rng, max_std):
    """Add independent zero-mean Gaussian noise to every pixel and channel, its standard
    deviation uniform in (0, max_std] grey levels; rounded and clipped to 0..255. Label as is.

    The noise comes from OpenCV's generator, seeded with a number drawn from rng: it is 2.5x
    faster than NumPy's (0.7 vs 1.9 ms at 256x256x3) and the sequence stays a function of rng.
    OpenCV's generator is per thread and reseeded right before use, so threads do not interfere.
    """
    std = max_std * (1.0 - rng.random())
    cv2.setRNGSeed(int(rng.integers(2**31)))
    # One channel, (H, W * 3): on a 3-channel array cv2.randn reads a scalar std as (std, 0, 0).
    noise = np.empty((image.shape[0], image.size // image.shape[0]), np.float32)
    cv2.randn(noise, 0.0, std)
    noise = noise.reshape(image.shape)
    # Saturating add: uint8 + float32 rounded to nearest (ties to even), clipped to 0..255.
    return cv2.add(image, noise, dtype=cv2.CV_8U), label


def random_crop(rng, size, image, label, *more):
    """The same random (h, w) window of image (H, W, 3), label (H, W) and any more arrays of
    that size (None passes through); the window's top-left corner is uniform over all fits."""
    h, w = size
    top = int(rng.integers(image.shape[0] - h + 1))
    left = int(rng.integers(image.shape[1] - w + 1))
    window = (slice(top, top + h), slice(left, left + w))
    return tuple(
        None if a is None else np.ascontiguousarray(a[window]) for a in (image, label, *more)
    )


class Augmenter:
    """Seeded per-sample augmentation on cached arrays.

    CLAHE is expensive (~ms per image), so the cache keeps each training image both plain and
    equalised and this picks one; a flip is a cheap copy. The same seed gives the same sequence.

    Order: the crop (when config.crop asks for one), CLAHE, horizontal flip, vertical flip,
    rotation then shift/scale (one warp), brightness/contrast, blur, noise (photometric after
    geometric, so the mirrored border is recoloured too; noise last, so blur never smooths it).
    CLAHE (when a CLAHE image is given) and the horizontal flip always draw their decision, as
    they always have; every other transform draws nothing at probability 0 and, above it, its
    decision and then its parameters only when applied. So with the new probabilities at 0 a
    seed gives the same sequence as before they existed, and earlier runs resume and reproduce
    bit for bit."""

    def __init__(
        self,
        clahe_prob=0.5,
        flip_prob=0.5,
        seed=0,
        *,
        vflip_prob=0.0,
        rotate_prob=0.0,
        rotate_degrees=10.0,
        shift_scale_prob=0.0,
        shift_limit=0.1,
        scale_limit=0.1,
        brightness_contrast_prob=0.0,
        brightness_limit=0.2,
        contrast_limit=0.2,
        blur_prob=0.0,
        blur_sigma=1.5,
        noise_prob=0.0,
        noise_std=8.0,
        crop=(),
    ):
        self.clahe_prob = clahe_prob
        self.flip_prob = flip_prob
        self.vflip_prob = vflip_prob
        self.rotate_prob = rotate_prob
        self.rotate_degrees = rotate_degrees
        self.shift_scale_prob = shift_scale_prob
        self.shift_limit = shift_limit
        self.scale_limit = scale_limit
        self.brightness_contrast_prob = brightness_contrast_prob
        self.brightness_limit = brightness_limit
        self.contrast_limit = contrast_limit
        self.blur_prob = blur_prob
        self.blur_sigma = blur_sigma
        self.noise_prob = noise_prob
        self.noise_std = noise_std
        self.crop = tuple(crop)
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_config(cls, config):
        """The augmenter a fcn.config.Config asks for (CONFIG_FIELDS and seed)."""
        options = {name: getattr(config, name) for name in CONFIG_FIELDS}
        return cls(seed=config.seed, **options)

    def __call__(self, image, label, image_clahe=None):
        rng = self.rng
        if self.crop:  # first: every later transform then works on the smaller window
            image, label, image_clahe = random_crop(rng, self.crop, image, label, image_clahe)
        if image_clahe is not None and rng.random() < self.clahe_prob:
            image = image_clahe
        if rng.random() < self.flip_prob:
            image, label = hflip(image, label)
        if self._happens(self.vflip_prob):
            image, label = vflip(image, label)
        # Rotation and shift/scale draw as `rotate` and `shift_scale` do but warp once: one
        # resampling blurs less, and each warp costs ~0.3 ms at 256x256.
        matrix = None
        if self._happens(self.rotate_prob):
            matrix = rotation_matrix(rng, self.rotate_degrees, label.shape)
        if self._happens(self.shift_scale_prob):
            zoom = shift_scale_matrix(rng, self.shift_limit, self.scale_limit, label.shape)
            matrix = zoom if matrix is None else then(matrix, zoom)
        if matrix is not None:
            image, label = warp(image, label, matrix)
        if self._happens(self.brightness_contrast_prob):
            image, label = brightness_contrast(
                image, label, rng, self.brightness_limit, self.contrast_limit
            )
        if self._happens(self.blur_prob):
            image, label = gaussian_blur(image, label, rng, self.blur_sigma)
        if self._happens(self.noise_prob):
            image, label = gaussian_noise(image, label, rng, self.noise_std)
        return image, label

    def _happens(self, prob):
        # No draw at all at probability 0: the sequence of the transforms before is unchanged.
        return prob > 0 and self.rng.random() < prob

    def state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state
