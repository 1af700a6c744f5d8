"""TensorBoard image summaries built outside the graph: uint8 arrays -> a tf.Summary of PNGs.

Training computes its overlays in NumPy anyway, so encoding them here avoids adding image
placeholders and summary ops to the model graph. Write the result with
`writer.add_summary(image_summary(...), step)`.
"""

import cv2
import numpy as np
import tensorflow.compat.v1 as tf

_GREY, _RGB = 1, 3  # tf.Summary.Image colorspace codes


def _encode_png(image):
    """(H, W) grey or (H, W, 3) RGB uint8 -> PNG bytes (cv2 wants BGR)."""
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("cannot encode the image as PNG")
    return buf.tobytes()


def image_summary(tag, images) -> tf.Summary:
    """One tf.Summary holding each image as a PNG, tagged like tf.summary.image:
    "<tag>/image/0", "<tag>/image/1", ... (TensorBoard shows them as one group with a slider).

    images: a list of uint8 arrays, (H, W, 3) RGB or (H, W) grey; sizes may differ.
    """
    values = []
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.dtype != np.uint8 or not (
            image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
        ):
            raise ValueError(
                f"image {i} of {tag!r} must be uint8 (H, W, 3) RGB or (H, W) grey, got "
                f"{image.dtype} {image.shape}"
            )
        encoded = tf.Summary.Image(
            height=image.shape[0],
            width=image.shape[1],
            colorspace=_GREY if image.ndim == 2 else _RGB,
            encoded_image_string=_encode_png(image),
        )
        values.append(tf.Summary.Value(tag=f"{tag}/image/{i}", image=encoded))
    return tf.Summary(value=values)
