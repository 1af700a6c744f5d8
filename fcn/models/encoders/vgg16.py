"""VGG16 built in code: the one definition behind the `vgg16` encoder and `fcn.models.savedmodel`'s
SavedModels.

Features (channels at width 1; the ReLU'd fc layers are the FCN-8 reading of VGG16's classifier):
    2: pool1 (64)   4: pool2 (128)   8: pool3 (256)   16: pool4 (512)
    32: fc7 (4096), a 1x1 convolution after fc6 (a 7x7 one), each ReLU + dropout(keep_prob)
Pools are 2x2 SAME, so stride s maps are ceil(H/s) x ceil(W/s). The Keras/Caffe preprocessing is
in the graph (RGB -> BGR, minus the ImageNet BGR mean): every source of weights (Keras h5, the
Udacity vgg.zip, our random SavedModels) takes the same raw 0..255 RGB input.

Variables (relative to the enclosing scope): block{b}_conv{i}/kernel|bias, fc6/kernel|bias,
fc7/kernel|bias, the Keras layer names, so `--freeze fc6,fc7` and Keras weights work by name.
"""

import os
import zlib

import numpy as np

from fcn.errors import UserError

WEIGHT_FORMATS = (
    "a SavedModel folder (our block{b}_conv{i} names or the Udacity vgg.zip's conv{b}_{i})",
    "a Keras vgg16_weights_tf_dim_ordering_tf_kernels.h5 file",
)
# Keras "caffe" preprocessing: the ImageNet mean in BGR order.
BGR_MEAN = (103.939, 116.779, 123.68)
# (block, convs, filters) of VGG16; the Keras layer names are block{b}_conv{i}.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
FC_FILTERS = 4096
FC6_SIZE = 7
# Pixel std after mean subtraction is ~60: the random first layer is scaled down by this so
# activations start near unit variance, as He init assumes of its input.
INPUT_STD = 64.0
FC6_FORMS = ("conv", "im2col")
# The udacity vgg.zip's variable names -> ours; fc8 (the 1000 ImageNet classes) is not used.
_UDACITY_SUFFIXES = {"filter": "kernel", "weights": "kernel", "biases": "bias"}
_UDACITY_IGNORED = ("fc8/",)

# fc6 form for --fc6 auto, by resolved precision. Measured on this project's 2-core AMD EPYC Zen 4
# (avx512_bf16, no AMX), TF 2.21, batch 8 at 160x576, both forms timed alternately in one process
# (the machine was shared, so only differences beyond ~10% mean anything), median of 5-7 runs:
#                                  float32 conv / im2col    bfloat16 conv / im2col
#   whole VGG16, forward             6.1 s / 5.8 s             1.64 s / 1.75 s
#   whole VGG16, fwd+bwd             17.3 s / 17.2 s           6.38 s / 6.27 s
#   fc6 alone, forward               0.80 s / 0.75 s           0.68 s / 0.74 s
#   fc6 alone, fwd+bwd               1.72 s / 1.51 s           2.30 s / 1.25 s
# (fwd+bwd: gradients w.r.t. block1..5 with fc6/fc7 frozen, i.e. through fc6 to its input; fc6
# alone: a (8, 5, 18, 512) input.) An ad-hoc script, kept out of the repo, built each form with
# build_vgg16_features under precision.session_config(p) and ran
# `PYTHONPATH=. python bench_fc6.py 5 full` and `... 7 fc6`. Here the forms tie in the whole
# model; im2col's training backward is 1.8x faster in bf16 in isolation, and on an Intel AMX CPU
# bf16 im2col was 2.3x faster than bf16 conv forward (docs/performance.md), so bf16 takes im2col.
# float32 ties: conv, the plain op. float16 (GPU, unmeasured): cuDNN's conv, which does not
# materialise the 49x larger patch tensor.
_AUTO_FC6 = {"float32": "conv", "bfloat16": "im2col", "float16": "conv"}


def build(images, config, is_training, keep_prob):
    """The encoder contract (fcn.models.encoders): VGG16 at config.width, random He init; pretrained
    weights are assigned after initialisation by `read_weights` + `fcn.models.weights.assign`."""
    del is_training  # no batch norm; dropout follows keep_prob
    return build_vgg16_features(
        images, keep_prob, width=config.width, seed=config.seed, fc6=config.fc6
    )


def fit_config(config, weights):
    """The config with its width read from the weights (block1_conv1 has 64 x width filters),
    so a SavedModel of any width (tests use 1/16) builds the network it fits."""
    kernel = weights.get("block1_conv1/kernel")
    if kernel is None:
        return config  # fcn.models.weights.assign names what is missing
    width = np.shape(kernel)[-1] / BLOCKS[0][2]
    return config if width == config.width else config.replace(width=width)


def fc6_form(config):
    """--fc6, with 'auto' resolved to the form measured faster at the config's precision."""
    if config.fc6 != "auto":
        return config.fc6
    from fcn import precision

    return _AUTO_FC6[precision.resolve(config.precision)]


def build_vgg16_features(
    images,
    keep_prob,
    width=1.0,
    seed=0,
    fc6="conv",
    weights=None,
    blocks=BLOCKS,
    fc_filters=FC_FILTERS,
):
    """images float32 (N, H, W, 3) raw RGB 0..255 -> {2: pool1, ..., 16: pool4, 32: fc7}.

    width: channel multiplier (tests use 1/16: the same structure, built in a second).
    seed: per-layer He-init seeds are seed + crc32(layer name) % 10000.
    fc6: 'conv' (a 7x7 SAME convolution) or 'im2col' (7x7 patches, one matmul): the same
        variable and, to rounding, the same result.
    weights: None (He init) or {relative name: array} embedded as constant initialisers, so
        re-running the initializer keeps them (as in the Udacity SavedModel).
    blocks, fc_filters: the layer table (`fcn.models.savedmodel` passes its own copy, which tests
    shrink).
    """
    import tensorflow.compat.v1 as tf

    if fc6 not in FC6_FORMS:
        raise ValueError(f"fc6 form {fc6!r} is not one of {FC6_FORMS}")

    def channels(c):
        return max(1, int(round(c * width)))

    # RGB -> BGR, minus the BGR mean: Caffe-style VGG input, (N, H, W, 3).
    x = tf.reverse(images, axis=[-1]) - tf.constant(BGR_MEAN, tf.float32)
    features = {}
    for block, n_convs, filters in blocks:
        for i in range(1, n_convs + 1):
            name = f"block{block}_conv{i}"
            scale = 1.0 / INPUT_STD if name == "block1_conv1" else 1.0
            x = _conv_relu(x, name, 3, channels(filters), weights, seed, scale)
        x = tf.nn.max_pool2d(x, 2, 2, "SAME", name=f"pool{block}")
        features[2**block] = x  # (N, H/2^b, W/2^b, filters)
    x = _conv_relu(x, "fc6", FC6_SIZE, channels(fc_filters), weights, seed, im2col=fc6 == "im2col")
    x = tf.nn.dropout(x, rate=1.0 - keep_prob)
    x = _conv_relu(x, "fc7", 1, channels(fc_filters), weights, seed)
    features[32] = tf.nn.dropout(x, rate=1.0 - keep_prob)  # (N, H/32, W/32, 4096)
    return features


def _conv_relu(x, name, k, cout, weights, seed, scale=1.0, im2col=False):
    """ReLU(SAME k x k convolution + bias), variables `name`/kernel (k, k, C_in, cout), /bias."""
    import tensorflow.compat.v1 as tf

    from fcn.models import layers

    cin = int(x.shape[-1])
    with tf.variable_scope(name):
        if weights is not None:
            kernel0, bias0 = weights[f"{name}/kernel"], weights[f"{name}/bias"]
            if np.shape(kernel0) != (k, k, cin, cout) or np.shape(bias0) != (cout,):
                raise UserError(
                    f"weights of {name} have shapes {np.shape(kernel0)} and {np.shape(bias0)}, "
                    f"need {(k, k, cin, cout)} and {(cout,)}"
                )
            kinit, binit = tf.constant_initializer(kernel0), tf.constant_initializer(bias0)
        else:
            kinit = layers.he_init(seed + zlib.crc32(name.encode()) % 10000, scale)
            binit = tf.zeros_initializer()
        kernel = tf.get_variable("kernel", [k, k, cin, cout], initializer=kinit)
        bias = tf.get_variable("bias", [cout], initializer=binit)
        if im2col:
            return _im2col_conv_relu(x, kernel, bias)
        return tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))


def _im2col_conv_relu(x, kernel, bias):
    """ReLU(stride-1 SAME convolution + bias) as patches @ kernel: (N, h, w, C) -> (N, h, w, F).

    extract_patches orders each patch (row, column, channel), as a (k, k, C, F) kernel reshaped
    to (k*k*C, F) does, and pads SAME exactly as conv2d does.
    """
    import tensorflow.compat.v1 as tf

    k, _, cin, cout = kernel.shape.as_list()
    patches = tf.image.extract_patches(x, [1, k, k, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
    # (N*h*w, k*k*C) @ (k*k*C, F) + bias, ReLU: one 2-D matmul that Grappler fuses with its bias
    # and ReLU (oneDNN's _MklFusedMatMul), in bf16 under the mixed-precision rewrite.
    y = tf.matmul(tf.reshape(patches, [-1, k * k * cin]), tf.reshape(kernel, [k * k * cin, cout]))
    y = tf.nn.relu(tf.nn.bias_add(y, bias))
    y = tf.reshape(y, tf.concat([tf.shape(x)[:3], [cout]], 0))
    y.set_shape(x.shape[:3].concatenate([cout]))
    return y


def read_weights(path):
    """{relative name: float32 array} from a SavedModel folder or a Keras h5 file (see
    WEIGHT_FORMATS). Names are not checked against the model here: `weights.assign` does it."""
    if os.path.isdir(path):
        return _read_saved_model(path)
    if os.path.isfile(path):
        return read_keras_h5(path)
    raise UserError(
        f"VGG16 weights {path} do not exist; give {' or '.join(WEIGHT_FORMATS)}, "
        "or --weights random"
    )


def _read_saved_model(path):
    """The variables checkpoint of a SavedModel (no graph import), renamed to ours."""
    import tensorflow.compat.v1 as tf

    prefix = os.path.join(path, "variables", "variables")
    if not os.path.isfile(prefix + ".index"):
        raise UserError(
            f"{path} has no variables/variables.index, so it is not a SavedModel with weights; "
            "re-extract vgg.zip there or rebuild it with `python main.py vgg --out DIR`"
        )
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = reader.get_variable_to_shape_map()
        weights = {}
        for name in names:
            if name.startswith("_CHECKPOINTABLE") or name.startswith(_UDACITY_IGNORED):
                continue
            weights[_our_name(name)] = reader.get_tensor(name).astype(np.float32)
    except Exception as e:  # a truncated or foreign checkpoint: TensorFlow's message, one line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(
            f"cannot read the weights in {prefix} ({first[:200]}); delete {path} and download "
            "or rebuild it"
        ) from None
    return weights


def _our_name(name):
    """'conv3_2/filter' -> 'block3_conv2/kernel', 'fc6/biases' -> 'fc6/bias'; ours unchanged."""
    layer, _, suffix = name.rpartition("/")
    if layer.startswith("conv") and "_" in layer:
        block, _, i = layer[len("conv") :].partition("_")
        if block.isdigit() and i.isdigit():
            layer = f"block{block}_conv{i}"
    return f"{layer}/{_UDACITY_SUFFIXES.get(suffix, suffix)}"


def read_keras_h5(path, blocks=BLOCKS):
    """Keras VGG16 ImageNet weights -> {relative name: array}, fc1/fc2 as fc6/fc7 convolutions.

    Accepts Keras 1 (`block1_conv1_W_1:0`) and Keras 2/3 (`block1_conv1/kernel:0`) layouts. fc1's
    (25088, 4096) kernel is the flatten of a (7, 7, 512) channels-last map, so it reshapes to a
    7x7x512x4096 convolution; fc2 becomes 1x1x4096x4096.
    """
    try:
        import h5py
    except ImportError:
        raise UserError("reading Keras .h5 weights needs h5py: pip install h5py") from None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise UserError(
            f"{path} is not a readable HDF5 file ({e}); give the Keras "
            "vgg16_weights_tf_dim_ordering_tf_kernels.h5 or a SavedModel folder"
        ) from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f
        names = [f"block{b}_conv{i}" for b, n, _ in blocks for i in range(1, n + 1)]
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
                if kernel.ndim != 2 or kernel.shape[0] % FC6_SIZE**2:
                    raise UserError(f"{path}: fc1's kernel {kernel.shape} is not (7*7*C, F)")
                kernel = kernel.reshape(FC6_SIZE, FC6_SIZE, -1, kernel.shape[1])
            elif target == "fc7":  # (4096, 4096) -> (1, 1, 4096, 4096)
                kernel = kernel.reshape(1, 1, *kernel.shape)
            weights[f"{target}/kernel"], weights[f"{target}/bias"] = kernel, bias
    return weights


def _datasets(group):
    """Every array stored anywhere below an h5py group."""
    arrays = []
    group.visititems(
        lambda _, obj: arrays.append(np.asarray(obj)) if hasattr(obj, "shape") else None
    )
    return arrays
