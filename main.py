"""FCN-8 road segmentation: the Udacity project's interface, delegating to the fcn package.

`python main.py [command] [flags]` (see --help); plain `python main.py` trains on KITTI road.
"""

import sys

from fcn import tfquiet

# TensorFlow (graph mode, quiet) is imported by the first function that needs it, so
# `python main.py --help` answers at once.


def load_vgg(sess, vgg_path):
    """Load the VGG16 SavedModel; return (image_input, keep_prob, layer3_out, layer4_out,
    layer7_out)."""
    tfquiet.tensorflow()
    from fcn.models import savedmodel

    return savedmodel.load_vgg(sess, vgg_path)


def layers(
    vgg_layer3_out,
    vgg_layer4_out,
    vgg_layer7_out,
    num_classes,
    input_image=None,
    decoder="reference",
):
    """The FCN-8 decoder; logits (N, H, W, num_classes).

    The output matches the input image's exact size: `input_image` (or, when not given, the
    graph's `image_input:0` from load_vgg). Without either, it is 8x layer 3's size.
    """
    tf = tfquiet.tensorflow()
    from fcn import udacity
    from fcn.models import savedmodel

    if input_image is None:
        try:
            input_image = vgg_layer3_out.graph.get_tensor_by_name(savedmodel.INPUT_NAME + ":0")
        except KeyError:
            input_image = None
    if input_image is not None:
        output_hw = tf.shape(input_image)[1:3]
    else:
        output_hw = tf.shape(vgg_layer3_out)[1:3] * 8
    return udacity.build_decoder(
        decoder, vgg_layer3_out, vgg_layer4_out, vgg_layer7_out, num_classes, output_hw
    )


def optimize(nn_last_layer, correct_label, learning_rate, num_classes, l2_scale=0.0):
    """(logits (P, num_classes), train_op, cross_entropy_loss); void pixels never count."""
    tfquiet.tensorflow()
    from fcn.training import losses

    return losses.optimize(nn_last_layer, correct_label, learning_rate, num_classes, l2_scale)


def train_nn(
    sess,
    epochs,
    batch_size,
    get_batches_fn,
    train_op,
    cross_entropy_loss,
    input_image,
    correct_label,
    keep_prob,
    learning_rate,
    keep_prob_value=0.5,
    learning_rate_value=1e-4,
):
    """Train for `epochs` over get_batches_fn(batch_size); prints each epoch's mean loss."""
    tfquiet.tensorflow()
    from fcn.training import build
    from fcn.training import epochs as loop

    build.initialize_new_variables(sess)
    tensors = loop.StepTensors(
        train_op, cross_entropy_loss, input_image, correct_label, keep_prob, learning_rate
    )
    values = loop.StepValues(keep_prob_value, learning_rate_value)
    for epoch in range(epochs):
        mean = loop.run_epoch(
            sess, get_batches_fn(batch_size), tensors, values, desc=f"epoch {epoch + 1}/{epochs}"
        )
        print(f"epoch {epoch + 1}/{epochs}: loss {mean:.4f}")


def run(argv=None):
    from fcn import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(run())
