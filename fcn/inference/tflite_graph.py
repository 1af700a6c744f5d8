"""What of an export's frozen prediction path TFLite converts: the network alone, at a fixed
(BATCH, h, w, 3) input, with the training switches, dropout and no-op branches folded away
(`network_graph`), and the ops that run in float in the int8 model (`input_normalisation`).
fcn.inference.tflite converts it and predicts with it."""

from fcn import names
from fcn.inference.serving_graph import defaults_fixed, serving_graph, to_identity

INPUT_NAME = names.IMAGE_INPUT  # float32 (N, h, w, 3) raw levels at the network size


def output_name(config):
    """The model's output: logits (N, h, w, C), or with --tta the averaged probs (N, h, w, C)."""
    return names.LOGITS if config.tta == "none" else names.PROBS


# One image a call: with every shape static, the transposed convolutions' output shapes and the
# decoders' fitting pads fold to constants, so XNNPACK takes the whole graph; a free batch (-1)
# left them to TFLite's own kernels in 6 partitions.
BATCH = 1


def _is_dropout_mask(graph_def):
    """Names of the SelectV2 nodes that apply a dropout mask: where_v2(uniform >= rate, x/(1-rate),
    0) as tf.nn.dropout builds it."""
    ops = {n.name: n for n in graph_def.node}

    def source(name):
        return ops.get(name.lstrip("^").split(":")[0])

    found = set()
    for node in graph_def.node:
        if node.op != "SelectV2":
            continue
        cond = source(node.input[0])
        if cond is not None and cond.op == "GreaterEqual":
            random = source(cond.input[0])
            if random is not None and random.op == "RandomUniform":
                found.add(node.name)
    return found


def network_graph(frozen, config, spec):
    """The frozen prediction path cut to the network: image_input a float32 placeholder of shape
    (BATCH, h, w, 3), output_name the output; training switches, dropout and the resize pruned
    away."""
    import tensorflow.compat.v1 as tf

    # is_training, keep_prob and tta to their serving defaults; batch norm's selects to their
    # moving statistics (fcn.inference.serving_graph); image_input stays an input.
    graph_def = serving_graph(frozen, spec, fixed=(names.IS_TRAINING, names.KEEP_PROB))
    graph_def = defaults_fixed(graph_def, (names.TTA,))
    # At serving keep_prob is 1: dropout's mask (uniform [0, 1) >= rate 0) keeps every pixel and
    # its scale is 1, so the select is its kept branch. Left in, TFLite would draw the random
    # numbers on every call (RANDOM_UNIFORM, which full-integer quantisation cannot take).
    _to_identity(graph_def, _is_dropout_mask(graph_def), kept=1)  # select(mask, kept, 0)
    h, w = config.image_shape
    for node in graph_def.node:
        if node.name == INPUT_NAME:
            node.op = "Placeholder"
            del node.input[:]
            node.attr.clear()
            node.attr["dtype"].type = tf.float32.as_datatype_enum
            node.attr["shape"].shape.CopyFrom(tf.TensorShape([BATCH, h, w, 3]).as_proto())
    if config.tta == "none":
        _logits_named(graph_def)
    graph_def = _branches_folded(tf.graph_util.extract_sub_graph(graph_def, [output_name(config)]))
    _to_identity(graph_def, _no_op_fits(graph_def))
    return tf.graph_util.extract_sub_graph(graph_def, [output_name(config)])


def _branches_folded(graph_def):
    """Grappler's constant folding and dead-branch removal on the network graph: the --tta
    copies' tf.cond (Switch/Merge) on the now constant `not is_training and tta` becomes its
    taken branch. Left as TFLite's If, its branch lost the batch's static shape ("begin tensor
    elements size is not equal to input tensor rank")."""
    import tensorflow.compat.v1 as tf
    from tensorflow.core.protobuf import config_pb2
    from tensorflow.python.grappler import tf_optimizer  # what tf2onnx's tf_optimize runs

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    for output in {names.LOGITS, names.PROBS} & {n.name for n in graph_def.node}:
        graph.add_to_collection("train_op", graph.get_operation_by_name(output))  # kept
    options = config_pb2.ConfigProto()
    rewrite = options.graph_options.rewrite_options
    rewrite.optimizers[:] = ["constfold", "loop", "dependency"]
    rewrite.min_graph_nodes = -1  # however small the graph
    return tf_optimizer.OptimizeGraph(options, tf.train.export_meta_graph(graph=graph))


def _no_op_fits(graph_def):
    """Names of the decoders' `fit` pads and crops (fcn.models.layers.fit: MirrorPad, then
    StridedSlice) that keep their input's static shape at the network size: identities, which
    TFLite would still run outside XNNPACK, cutting its graph into pieces."""
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    found = set()
    for op in graph.get_operations():
        if op.type != "MirrorPad":
            continue
        same = [op] + [c for c in op.outputs[0].consumers() if c.type == "StridedSlice"]
        for o in same:
            shape_in, shape_out = o.inputs[0].shape, o.outputs[0].shape
            if shape_in.is_fully_defined() and shape_in == shape_out:
                found.add(o.name)
    return found


def _to_identity(graph_def, names_, kept=0):
    """Make the named nodes Identity of their input number `kept` (a no-op pad, crop or
    select)."""
    for node in graph_def.node:
        if node.name in names_:
            to_identity(node, node.input[kept])


def _logits_named(graph_def):
    """Add `logits`, the input of the softmax behind `probs`: freezing pruned the training
    graph's own logits identity (no export output needs it)."""
    ops = {n.name: n for n in graph_def.node}
    softmax = ops[ops[names.PROBS].input[0]]
    assert softmax.op == "Softmax" and names.LOGITS not in ops, softmax.op
    node = graph_def.node.add(name=names.LOGITS, op="Identity", input=[softmax.input[0]])
    node.attr["T"].CopyFrom(softmax.attr["T"])


def input_normalisation(graph_def):
    """Names of the ops computed from image_input alone (and constants) before the first
    convolution: the encoder's normalisation (VGG: ReverseV2 to BGR, mean subtraction)."""
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node)
    convs = {"Conv2D", "DepthwiseConv2dNative", "MatMul"}
    found, frontier = [], [INPUT_NAME]
    while frontier:
        for node in consumers.get(frontier.pop(), []):
            if node.op not in convs and node.name not in found:
                found.append(node.name)
                frontier.append(node.name)
    return found
