"""MobileNetV2 (width 1.0) as an encoder: Keras's `keras.applications.MobileNetV2`, layer for layer.

Input raw RGB 0..255, scaled in the graph to x/127.5 - 1 (Keras's mobilenet_v2.preprocess_input).
The network stops after block_16_project_BN: the 1280-channel Conv_1 head is a classifier's and is
not built. Features (the skips of the TensorFlow segmentation tutorial), for an input (N, H, W, 3):

    2: block_1_expand_relu    (N, ceil(H/2),  ceil(W/2),  96)
    4: block_3_expand_relu    (N, ceil(H/4),  ceil(W/4),  144)
    8: block_6_expand_relu    (N, ceil(H/8),  ceil(W/8),  192)
    16: block_13_expand_relu  (N, ceil(H/16), ceil(W/16), 576)
    32: block_16_project_BN   (N, ceil(H/32), ceil(W/32), 320)

Variable scopes are Keras's (current) layer names (`Conv1/kernel`, `bn_Conv1/gamma`,
`block_3_depthwise/depthwise_kernel`, ...). `read_weights` nevertheless pairs a file's layers with
ours by order and shape, not name, because older Keras files name the same layers differently
(`mobl1_conv_1_expand`, `bn1_conv_1_bn_expand`) and Keras 3 files by layer class (`conv2d_7`).

Padding: Keras pads its stride-2 depthwise convolutions explicitly (ZeroPadding2D with
`correct_pad`, then 'valid'): (0, 1) on an even side, (1, 1) on an odd one. TF's 'SAME' for a
3x3 kernel at stride 2 pads (out - 1) * 2 + 3 - n in total, the odd pixel at the bottom/right:
1 = (0, 1) for even n and 2 = (1, 1) for odd n, the same pixels. So 'SAME' everywhere matches
Keras's outputs exactly, at any input size (Conv1 is 'same' in Keras already).
"""

import os
import re

import numpy as np
import tensorflow.compat.v1 as tf

from fcn.errors import UserError
from fcn.models import layers

# Keras's MobileNetV2 table for width 1.0 (_make_divisible(c * 1.0, 8) leaves every c as it is):
# (layer-name prefix, expansion t, output channels c, stride s). expanded_conv is Keras's block 0:
# no expand layer, since its expansion is 1.
_BLOCKS = (
    ("expanded_conv", 1, 16, 1),  # (N, H/2, W/2, 16)
    ("block_1", 6, 24, 2),  # (N, H/4, W/4, 24)
    ("block_2", 6, 24, 1),
    ("block_3", 6, 32, 2),  # (N, H/8, W/8, 32)
    ("block_4", 6, 32, 1),
    ("block_5", 6, 32, 1),
    ("block_6", 6, 64, 2),  # (N, H/16, W/16, 64)
    ("block_7", 6, 64, 1),
    ("block_8", 6, 64, 1),
    ("block_9", 6, 64, 1),
    ("block_10", 6, 96, 1),  # (N, H/16, W/16, 96)
    ("block_11", 6, 96, 1),
    ("block_12", 6, 96, 1),
    ("block_13", 6, 160, 2),  # (N, H/32, W/32, 160)
    ("block_14", 6, 160, 1),
    ("block_15", 6, 160, 1),
    ("block_16", 6, 320, 1),  # (N, H/32, W/32, 320)
)
_FIRST_FILTERS = 32
# Blocks whose expand_relu output is a feature map, by the stride of that map. It is taken inside
# the block, before its (strided) depthwise convolution: the richest map at that resolution.
_EXPAND_FEATURES = {"block_1": 2, "block_3": 4, "block_6": 8, "block_13": 16}
# The arrays of each kind of weight layer, in the order Keras stores them.
_ARRAYS = {
    "conv": ("kernel",),
    "depthwise": ("depthwise_kernel",),
    "bn": ("gamma", "beta", "moving_mean", "moving_variance"),
}
# Keras 3 .weights.h5 files name layers by class: layers/<class>[_<k>]/vars/<i>.
_KERAS3_CLASSES = {"conv": "conv2d", "depthwise": "depthwise_conv2d", "bn": "batch_normalization"}
_FIX = (
    "pass Keras's mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 "
    "(width 1.0) or --weights random"
)


def build(images, config, is_training, keep_prob):
    """images float32 (N, H, W, 3) raw RGB 0..255 -> {2, 4, 8, 16, 32: features} (see above)."""
    del keep_prob  # MobileNetV2 has no dropout.

    def bn(x, name):
        return layers.batch_norm(x, is_training, name, momentum=config.bn_momentum)

    x = images / 127.5 - 1.0  # (N, H, W, 3) in [-1, 1]
    x = layers.conv2d(x, _FIRST_FILTERS, 3, "Conv1", stride=2, use_bias=False)
    x = tf.nn.relu6(bn(x, "bn_Conv1"))  # (N, H/2, W/2, 32)
    features = {}
    for name, expansion, filters, stride in _BLOCKS:
        x, expanded = _inverted_residual(x, name, expansion, filters, stride, bn)
        if name in _EXPAND_FEATURES:
            features[_EXPAND_FEATURES[name]] = expanded
    features[32] = x  # block_16_project_BN, (N, H/32, W/32, 320)
    return features


def _inverted_residual(x, name, expansion, filters, stride, bn):
    """Keras's _inverted_res_block: (N, h, w, c) -> (block output (N, h/s, w/s, filters),
    the expanded map (N, h, w, expansion * c) that the depthwise convolution reads)."""
    cin = int(x.shape[-1])
    h = x
    if expansion != 1:
        h = layers.conv2d(h, expansion * cin, 1, f"{name}_expand", use_bias=False)
        h = tf.nn.relu6(bn(h, f"{name}_expand_BN"))  # block_i_expand_relu
    expanded = h
    h = layers.depthwise_conv2d(h, 3, f"{name}_depthwise", stride=stride)
    h = tf.nn.relu6(bn(h, f"{name}_depthwise_BN"))
    h = layers.conv2d(h, filters, 1, f"{name}_project", use_bias=False)
    h = bn(h, f"{name}_project_BN")  # linear bottleneck: no activation
    if stride == 1 and cin == filters:
        h = x + h
    return h, expanded


def weight_layers():
    """[(layer name, kind, [array shapes])] in build order, which is also the order in which
    Keras's files list the layers; kind is a key of _ARRAYS. `build` creates exactly these."""
    out = [("Conv1", "conv", [(3, 3, 3, _FIRST_FILTERS)])]
    out.append(_bn_layer("bn_Conv1", _FIRST_FILTERS))
    cin = _FIRST_FILTERS
    for name, expansion, filters, _ in _BLOCKS:
        hidden = expansion * cin
        if expansion != 1:
            out.append((f"{name}_expand", "conv", [(1, 1, cin, hidden)]))
            out.append(_bn_layer(f"{name}_expand_BN", hidden))
        out.append((f"{name}_depthwise", "depthwise", [(3, 3, hidden, 1)]))
        out.append(_bn_layer(f"{name}_depthwise_BN", hidden))
        out.append((f"{name}_project", "conv", [(1, 1, hidden, filters)]))
        out.append(_bn_layer(f"{name}_project_BN", filters))
        cin = filters
    return out


def _bn_layer(name, channels):
    return (name, "bn", [(channels,)] * len(_ARRAYS["bn"]))


def read_weights(path):
    """A Keras MobileNetV2 (width 1.0) .h5 weights file -> {'Conv1/kernel': array, ...}.

    Reads legacy Keras files (weights at the root or under 'model_weights', layer order from the
    'layer_names' attribute) and Keras 3 .weights.h5 files (layers/<class>_<k>/vars/<i>). The
    file's weight layers are paired with ours in order, every shape checked; layers after ours
    (the no_top file's Conv_1 and Conv_1_bn) are ignored. A file that does not fit is one
    UserError naming the first layer that differs.
    """
    import h5py  # only this reader needs it

    ours = weight_layers()
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder, but mobilenet_v2 weights are one .h5 file; {_FIX}")
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" in root.attrs:
                theirs = _legacy_layers(root)
            elif "layers" in root:
                theirs = _keras3_layers(root["layers"], [kind for _, kind, _ in ours])
            else:
                raise UserError(
                    f"{path} holds no Keras weights (no 'layer_names' attribute and no "
                    f"'layers' group); {_FIX}"
                )
    except OSError as e:
        first = str(e).split(" (", 1)[0]  # h5py appends a long errno record in parentheses
        raise UserError(f"cannot read {path} as an HDF5 file ({first}); {_FIX}") from None

    weights = {}
    for i, (name, kind, shapes) in enumerate(ours):
        if i >= len(theirs):
            raise UserError(
                f"{path} has {len(theirs)} layers with weights but MobileNetV2 needs {len(ours)} "
                f"(the first missing is {name}); {_FIX}"
            )
        their_name, arrays = theirs[i]
        their_shapes = [a.shape for a in arrays]
        if their_shapes != shapes:
            raise UserError(
                f"{path} does not fit MobileNetV2: its weight layer {i + 1}, {their_name} "
                f"{_shapes(their_shapes)}, differs from ours, {name} {_shapes(shapes)}; {_FIX}"
            )
        for array_name, array in zip(_ARRAYS[kind], arrays, strict=True):
            weights[f"{name}/{array_name}"] = array.astype(np.float32)
    return weights


def _shapes(shapes):
    return "(" + ", ".join("x".join(str(d) for d in s) for s in shapes) + ")" if shapes else "()"


def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _legacy_layers(root):
    """[(layer name, [arrays])] of the layers that hold weights, in 'layer_names' order."""
    out = []
    for name in (_text(n) for n in root.attrs["layer_names"]):
        group = root[name]
        if "weight_names" in group.attrs:
            arrays = [group[_text(n)][()] for n in group.attrs["weight_names"]]
        else:
            arrays = [d[()] for d in sorted(_datasets(group), key=_array_rank)]
        if arrays:
            out.append((name, arrays))
    return out


def _datasets(group):
    found = []
    group.visititems(lambda _, obj: found.append(obj) if hasattr(obj, "dtype") else None)
    return found


def _array_rank(dataset):
    """Keras's order of a layer's arrays (kernel; gamma, beta, moving_mean, moving_variance)
    for a group without a 'weight_names' attribute, whose datasets h5py lists alphabetically."""
    leaf = dataset.name.rsplit("/", 1)[-1].split(":")[0]
    if leaf.isdigit():  # .../vars/<i>
        return (0, int(leaf), "")
    order = [n for names in _ARRAYS.values() for n in names]
    return (1, order.index(leaf), "") if leaf in order else (2, 0, leaf)


def _keras3_layers(layers_group, kinds):
    """[(layer name, [arrays])] from a Keras 3 file, in our kinds' order.

    Keras 3 names a layer by its class and its rank among that class's layers (conv2d, conv2d_1,
    ...), so each class's layers are in build order but how the classes interleave is lost: the
    list takes the next layer of the class that each of our layers (of `kinds`) needs.
    """
    queues = {cls: [] for cls in _KERAS3_CLASSES.values()}
    for key in layers_group:
        match = re.fullmatch(r"(.*?)(?:_(\d+))?", key)
        cls, rank = match.group(1), int(match.group(2) or 0)
        if cls in queues and "vars" in layers_group[key]:
            variables = layers_group[key]["vars"]
            arrays = [variables[k][()] for k in sorted(variables, key=int)]
            queues[cls].append((rank, key, arrays))
    for queue in queues.values():
        queue.sort(key=lambda item: item[0])
    out = []
    for kind in kinds:
        queue = queues[_KERAS3_CLASSES[kind]]
        if not queue:
            break
        _, key, arrays = queue.pop(0)
        out.append((key, arrays))
    return out
