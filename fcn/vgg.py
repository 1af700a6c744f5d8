"""VGG16 encoder as a SavedModel with the Udacity `vgg.zip` interface: load it, or build one.

Encoder contract (every decoder relies on this only):
    image_input:0  float32 (N, H, W, 3), raw RGB in 0..255 (preprocessing is inside the graph)
    keep_prob:0    float32 scalar, dropout keep probability of fc6/fc7
    layer3_out:0   (N, H/8,  W/8,  256)   pool3
    layer4_out:0   (N, H/16, W/16, 512)   pool4
    layer7_out:0   (N, H/32, W/32, 4096)  fc7 as a 1x1 convolution, after ReLU and dropout
Our builds pool with SAME padding, so sizes are ceil(H/s); the Udacity model may floor them. The
decoders fit every upsampled map to its skip connection, so both work for any H, W.

Built models put the Keras/Caffe preprocessing in the graph (RGB->BGR, minus the ImageNet BGR
mean), so a pretrained model (from `--keras-h5`), a random one and the Udacity one all take the
same raw 0..255 RGB input.
"""

import os
import shutil
import tempfile
import zlib

import numpy as np

from fcn.errors import UserError

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

# Keras "caffe" preprocessing: the ImageNet mean in BGR order.
_BGR_MEAN = (103.939, 116.779, 123.68)
# (block, convs, filters) of VGG16; the Keras layer names are block{b}_conv{i}.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
_FC_FILTERS = 4096
# Pixel std after mean subtraction is ~60: the random first layer is scaled down by this so
# activations start near unit variance, as He init assumes of its input.
_INPUT_STD = 64.0


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
    """Keras VGG16 ImageNet weights -> {layer: (kernel, bias)}, fc1/fc2 as fc6/fc7 convolutions.

    Accepts Keras 1 (`block1_conv1_W_1:0`) and Keras 2/3 (`block1_conv1/kernel:0`) layouts. fc1's
    (25088, 4096) kernel is the flatten of a (7, 7, 512) channels-last map, so it reshapes to a
    7x7x512x4096 convolution; fc2 becomes 1x1x4096x4096.
    """
    try:
        import h5py
    except ImportError:
        raise UserError("reading --keras-h5 needs h5py: pip install h5py") from None
    if not os.path.isfile(path):
        raise UserError(f"Keras weights file {path} does not exist")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(f"{path} is not a readable HDF5 file ({e})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        names = [f"block{b}_conv{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1)]
        weights = {}
        for name, target in [(n, n) for n in names] + [("fc1", "fc6"), ("fc2", "fc7")]:
            if name not in root:
                raise UserError(f"{path} has no layer {name!r}: is it the Keras VGG16 weights?")
            arrays = _datasets(root[name])
            kernel = [a for a in arrays if a.ndim >= 2]
            bias = [a for a in arrays if a.ndim == 1]
            if len(kernel) != 1 or len(bias) != 1:
                raise UserError(f"{path}: layer {name!r} does not hold one kernel and one bias")
            kernel, bias = kernel[0].astype(np.float32), bias[0].astype(np.float32)
            if target == "fc6":  # (7*7*512, 4096) -> (7, 7, 512, 4096)
                kernel = kernel.reshape(7, 7, kernel.shape[0] // 49, kernel.shape[1])
            elif target == "fc7":  # (4096, 4096) -> (1, 1, 4096, 4096)
                kernel = kernel.reshape(1, 1, *kernel.shape)
            weights[target] = (kernel, bias)
    return weights


def _datasets(group):
    """Every array stored anywhere below an h5py group."""
    arrays = []
    group.visititems(
        lambda _, obj: arrays.append(np.asarray(obj)) if hasattr(obj, "shape") else None
    )
    return arrays


def build_vgg16(weights=None, seed=0, width=1.0):
    """Build the encoder in the default graph; return the five interface tensors.

    weights: {layer: (kernel, bias)} from `read_keras_h5`, or None for He (variance-scaling 2.0)
    random init, which trains from scratch where Glorot stalls at loss 0.693.
    width: channel multiplier (tests use 1/16 for a tiny model with the same structure).
    """
    import tensorflow.compat.v1 as tf

    def channels(c):
        return max(1, int(round(c * width)))

    image = tf.placeholder(tf.float32, [None, None, None, 3], name=INPUT_NAME)
    keep_prob = tf.placeholder(tf.float32, [], name=KEEP_PROB_NAME)
    # RGB -> BGR, minus the BGR mean: Caffe-style VGG input, (N, H, W, 3).
    x = tf.reverse(image, axis=[-1]) - tf.constant(_BGR_MEAN, tf.float32)
    in_ch = 3
    feats = {}
    for block, n_convs, filters in _BLOCKS:
        for i in range(1, n_convs + 1):
            name = f"block{block}_conv{i}"
            scale = 1.0 / _INPUT_STD if name == "block1_conv1" else 1.0
            x = _conv(tf, x, name, 3, in_ch, channels(filters), weights, seed, scale)
            in_ch = channels(filters)
        x = tf.nn.max_pool2d(x, 2, 2, "SAME", name=f"pool{block}")
        feats[block] = x
    x = _conv(tf, x, "fc6", 7, in_ch, channels(_FC_FILTERS), weights, seed)
    x = tf.nn.dropout(x, rate=1.0 - keep_prob)
    x = _conv(tf, x, "fc7", 1, channels(_FC_FILTERS), channels(_FC_FILTERS), weights, seed)
    x = tf.nn.dropout(x, rate=1.0 - keep_prob)
    return (
        image,
        keep_prob,
        tf.identity(feats[3], name=LAYER3_NAME),  # (N, H/8, W/8, 256)
        tf.identity(feats[4], name=LAYER4_NAME),  # (N, H/16, W/16, 512)
        tf.identity(x, name=LAYER7_NAME),  # (N, H/32, W/32, 4096)
    )


def _conv(tf, x, name, k, cin, cout, weights, seed, scale=1.0):
    with tf.variable_scope(name):
        if weights is not None:
            kernel0, bias0 = weights[name]
            if kernel0.shape != (k, k, cin, cout):
                raise UserError(
                    f"weights of {name} have shape {kernel0.shape}, need {(k, k, cin, cout)}"
                )
            # Constant initialisers embed the weights in the graph (as the Udacity model does), so
            # code that runs global_variables_initializer after loading keeps them.
            kinit, binit = tf.constant_initializer(kernel0), tf.constant_initializer(bias0)
        else:
            # He init: keeps activation variance through ReLU layers (fan_in mode).
            kinit = tf.variance_scaling_initializer(
                2.0 * scale**2,
                "fan_in",
                "truncated_normal",
                seed=seed + zlib.crc32(name.encode()) % 10000,
            )
            binit = tf.zeros_initializer()
        kernel = tf.get_variable("kernel", [k, k, cin, cout], initializer=kinit)
        bias = tf.get_variable("bias", [cout], initializer=binit)
    return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias), name=name)


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
