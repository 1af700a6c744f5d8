"""VGG16 encoder as a SavedModel with the Udacity `vgg.zip` interface: load it, or build one.

Encoder contract (every decoder relies on this only):
    image_input:0  float32 (N, H, W, 3), raw RGB in 0..255 (preprocessing is inside the graph)
    keep_prob:0    float32 scalar, dropout keep probability of fc6/fc7
    layer3_out:0   (N, H/8,  W/8,  256)   pool3
    layer4_out:0   (N, H/16, W/16, 512)   pool4
    layer7_out:0   (N, H/32, W/32, 4096)  fc7 as a 1x1 convolution, after ReLU and dropout
Our builds pool with SAME padding, so sizes are ceil(H/s); the Udacity model may floor them. The
decoders fit every upsampled map to its skip connection, so both work for any H, W.

Built models are `fcn.models.encoders.vgg16`'s network (the one VGG16 definition) with these
names on top. They put the Keras/Caffe preprocessing in the graph (RGB->BGR, minus the ImageNet
BGR mean), so a pretrained model (from `--keras-h5`), a random one and the Udacity one all take
the same raw 0..255 RGB input.
"""

import os
import shutil
import tempfile

from fcn.errors import UserError
from fcn.models.encoders import vgg16

TAG = "vgg16"
INPUT_NAME = "image_input"
KEEP_PROB_NAME = "keep_prob"
LAYER3_NAME = "layer3_out"
LAYER4_NAME = "layer4_out"
LAYER7_NAME = "layer7_out"
TENSOR_NAMES = tuple(
    n + ":0" for n in (INPUT_NAME, KEEP_PROB_NAME, LAYER3_NAME, LAYER4_NAME, LAYER7_NAME)
)
SAVED_MODEL_FILES = ("saved_model.pb", "variables/variables.index")

# The layer table, read when a model is built (tests shrink these to build tiny models).
_BLOCKS = vgg16.BLOCKS
_FC_FILTERS = vgg16.FC_FILTERS


def load_vgg(sess, vgg_path):
    """Load the SavedModel into `sess`'s graph; return its five interface tensors.

    Exactly the Udacity call: `tf.saved_model.loader.load(sess, ['vgg16'], vgg_path)`, then the
    tensors by name. Missing files, a corrupt model, a wrong tag or missing tensors raise a
    one-line UserError.
    """
    import tensorflow.compat.v1 as tf

    # The loader is called first and unconditionally (tests of the Udacity project mock it);
    # the folder is inspected only to explain a failure in one line.
    try:
        tf.saved_model.loader.load(sess, [TAG], vgg_path)
    except Exception as e:
        check_vgg_dir(vgg_path)
        text = str(e)
        if "MetaGraphDef" in text and TAG in text:
            raise UserError(
                f"{vgg_path} has no MetaGraph with tag '{TAG}': it is not a VGG16 model in the "
                "Udacity format; rebuild it with `python main.py vgg --random --out DIR`"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise UserError(
            f"{vgg_path} holds a corrupt SavedModel ({first[:200]}); delete it and download or "
            "rebuild it (`python main.py vgg --random --out DIR`)"
        ) from None
    graph = sess.graph
    tensors = []
    for name in TENSOR_NAMES:
        try:
            tensors.append(graph.get_tensor_by_name(name))
        except KeyError:
            raise UserError(
                f"the SavedModel in {vgg_path} has no tensor {name!r}; a VGG16 encoder must "
                f"provide {', '.join(TENSOR_NAMES)}"
            ) from None
    return tuple(tensors)


def check_saved_model(vgg_path):
    """The folder holds a readable SavedModel with the 'vgg16' tag (its graph is not imported:
    the in-code encoder reads only its variables). One-line errors otherwise."""
    check_vgg_dir(vgg_path)
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    try:
        with open(os.path.join(vgg_path, "saved_model.pb"), "rb") as f:
            model.ParseFromString(f.read())
    except Exception as e:  # protobuf's DecodeError, or an unreadable file
        raise UserError(
            f"{vgg_path} holds a corrupt SavedModel ({type(e).__name__}: {str(e)[:120]}); delete "
            "it and download or rebuild it (`python main.py vgg --random --out DIR`)"
        ) from None
    if not any(TAG in m.meta_info_def.tags for m in model.meta_graphs):
        raise UserError(
            f"{vgg_path} has no MetaGraph with tag '{TAG}': it is not a VGG16 model in the "
            "Udacity format; rebuild it with `python main.py vgg --random --out DIR`"
        )


def check_vgg_dir(vgg_path):
    """A one-line error naming what is missing, before TensorFlow prints a page of C++ log."""
    if not os.path.isdir(vgg_path):
        raise UserError(
            f"VGG folder {vgg_path} does not exist; get it with "
            "helper.maybe_download_pretrained_vgg or build one with "
            f"`python main.py vgg --random --out {vgg_path}`"
        )
    missing = [f for f in SAVED_MODEL_FILES if not os.path.exists(os.path.join(vgg_path, f))]
    if missing:
        raise UserError(
            f"VGG folder {vgg_path} lacks {', '.join(missing)}; re-extract vgg.zip there or "
            f"rebuild it with `python main.py vgg --random --out {vgg_path}`"
        )


def read_keras_h5(path):
    """Keras VGG16 ImageNet weights -> {layer: (kernel, bias)}, fc1/fc2 as fc6/fc7 convolutions
    (7x7x512x4096 and 1x1x4096x4096); see `vgg16.read_keras_h5`."""
    if not os.path.isfile(path):
        raise UserError(f"Keras weights file {path} does not exist")
    arrays = vgg16.read_keras_h5(path, _BLOCKS)
    layers = dict.fromkeys(name.rpartition("/")[0] for name in arrays)
    return {layer: (arrays[f"{layer}/kernel"], arrays[f"{layer}/bias"]) for layer in layers}


def build_vgg16(weights=None, seed=0, width=1.0):
    """Build the encoder in the default graph, variables at top level; return the five
    interface tensors.

    weights: {layer: (kernel, bias)} from `read_keras_h5`, embedded as constant initialisers (as
    the Udacity model does, so code that runs global_variables_initializer after loading keeps
    them), or None for He (variance-scaling 2.0) random init, which trains from scratch where
    Glorot stalls at loss 0.693.
    width: channel multiplier (tests use 1/16 for a tiny model with the same structure).
    """
    import tensorflow.compat.v1 as tf

    if weights is not None:
        weights = {
            f"{layer}/{kind}": array
            for layer, pair in weights.items()
            for kind, array in zip(("kernel", "bias"), pair, strict=True)
        }
    image = tf.placeholder(tf.float32, [None, None, None, 3], name=INPUT_NAME)
    keep_prob = tf.placeholder(tf.float32, [], name=KEEP_PROB_NAME)
    features = vgg16.build_vgg16_features(
        image, keep_prob, width, seed, "conv", weights, _BLOCKS, _FC_FILTERS
    )
    return (
        image,
        keep_prob,
        tf.identity(features[8], name=LAYER3_NAME),  # (N, H/8, W/8, 256)
        tf.identity(features[16], name=LAYER4_NAME),  # (N, H/16, W/16, 512)
        tf.identity(features[32], name=LAYER7_NAME),  # (N, H/32, W/32, 4096)
    )


def save_vgg16(out_dir, weights=None, seed=0, width=1.0):
    """Build and write a SavedModel (tag 'vgg16') to out_dir, atomically; return out_dir."""
    import tensorflow.compat.v1 as tf

    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise UserError(f"{out_dir} already exists and is not empty; choose another --out")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".vgg-", dir=parent)
    export_dir = os.path.join(staging, "model")
    try:
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(seed)
            build_vgg16(weights, seed, width)
            with tf.Session(graph=graph) as sess:
                sess.run(tf.global_variables_initializer())
                builder = tf.saved_model.Builder(export_dir)
                builder.add_meta_graph_and_variables(sess, [TAG])
                builder.save()
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty: checked above
        os.replace(export_dir, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir
