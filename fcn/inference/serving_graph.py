"""The frozen prediction path fitted for serving: GraphDef rewrites that every export file
(SavedModel, frozen graph, ONNX, TFLite) starts from.

- the serving switches (image_input, is_training, keep_prob) fixed at their defaults;
- batch norm's `cond(is_training, batch, moving)` resolved to its moving-statistics branch, and
  dropout's `where(is_training, a, b)` replaced by `b`;
- VGG16's fc6 in its im2col form (ExtractImagePatches and one matmul, which a bfloat16 run
  trains with: fcn.models.encoders.vgg16) written back as the 7x7 convolution it computes,
  over the same kernel: neither tf2onnx nor TFLite's builtin ops convert ExtractImagePatches.
"""

from fcn import names

# Fixed at serving time: the network input comes from the resize, no training, no dropout.
SERVING_FIXED = (names.IMAGE_INPUT, names.IS_TRAINING, names.KEEP_PROB)


def output_names(spec):
    """Graph outputs an export keeps: full-size probabilities and mask, the network-size
    softmax, and for binary datasets the positive class's probability ('road_prob')."""
    outputs = [names.PROBS_FULL, names.MASK, names.PROBS]
    if spec.task == "binary":
        outputs.append(names.positive_prob_name(spec.positive_name))
    return outputs


def serving_graph(frozen, spec, fixed=SERVING_FIXED):
    """The frozen prediction path as it serves: the inputs of `fixed` folded to their defaults,
    every `where(is_training, a, b)` (decoder dropout: fcn.models.layers) replaced by `b` and
    every batch norm's cond on is_training by its moving branch (`moving_statistics`), so the
    batch moments computed only for training are pruned away rather than left for Grappler to
    fold (which leaves dangling control inputs that tf2onnx cannot convert: "Non-existent input
    ^encoder/.../Conv2D"), and fc6's im2col as a convolution (`im2col_as_conv`). Both branches
    have one shape in those selects, so the output is the same tensor the select gave.
    `fixed`: the inputs folded (TFLite keeps image_input: fcn.inference.tflite_graph)."""
    import tensorflow.compat.v1 as tf

    graph_def = defaults_fixed(frozen, fixed)
    for node in graph_def.node:
        if node.op in ("Select", "SelectV2") and node.input[0] == names.IS_TRAINING:
            to_identity(node, node.input[2])  # select(is_training, a, b): the else branch, b
    moving_statistics(graph_def)
    im2col_as_conv(graph_def)
    return tf.graph_util.extract_sub_graph(graph_def, output_names(spec))


def defaults_fixed(graph_def, keep_names):
    """A copy of graph_def where the named PlaceholderWithDefault nodes are Identity of their
    default: what is fixed at serving time (training flag, dropout, ...) folds away."""
    from tensorflow.core.framework import graph_pb2

    out = graph_pb2.GraphDef()
    out.CopyFrom(graph_def)
    for node in out.node:
        if node.op == "PlaceholderWithDefault" and node.name in keep_names:
            node.op = "Identity"
            dtype = node.attr["dtype"].type
            node.attr.clear()
            node.attr["T"].type = dtype
    return out


def moving_statistics(graph_def):
    """Resolve in place every batch norm's `tf.cond(is_training, batch, moving)`
    (fcn.models.layers.batch_norm) to its moving-statistics branch, as it runs at serving time:

        <cond>/pred_id = Identity(is_training); each Switch(x, pred_id) hands x to the branch
        taken (port 0 false, port 1 true); Merge(false branch output, true branch output)

    Each such Switch becomes Identity(x) (its port 0, the moving branch's input) and each Merge
    Identity of its first input, the moving branch's output; the batch branch is then
    unreachable and extract_sub_graph prunes it. Returns the number of conds resolved."""
    conds = {
        node.name.rsplit("/", 1)[0]
        for node in graph_def.node
        if node.op == "Identity"
        and node.name.endswith("/pred_id")
        and node.input[0] == names.IS_TRAINING
        and node.name.split("/")[-2].startswith(names.BATCH_OR_MOVING)
    }
    preds = {f"{scope}/pred_id" for scope in conds}
    pivots = {f"{scope}/Switch" for scope in conds}  # Switch(is_training, is_training)
    for node in graph_def.node:
        if node.op == "Switch" and (node.input[1] in preds or node.name in pivots):
            to_identity(node, node.input[0])
        elif node.op == "Merge" and node.name.rsplit("/", 1)[0] in conds:
            to_identity(node, node.input[0])  # cond_v1 merges (false, true)
    return len(conds)


def to_identity(node, source):
    """Make a NodeDef an Identity of `source`, keeping its dtype attr `T` (a resolved switch,
    merge, select, pad or crop)."""
    dtype = node.attr["T"].type
    node.op = "Identity"
    del node.input[:]
    node.input.append(source)
    node.attr.clear()
    node.attr["T"].type = dtype


def im2col_as_conv(graph_def):
    """Rewrite in place every im2col convolution (fcn.models.encoders.vgg16._im2col_conv_relu):

        x (N, h, w, C) -> ExtractImagePatches (k x k, stride 1, SAME) -> Reshape (N*h*w, k*k*C)
          -> MatMul with Reshape(kernel (k, k, C, F), (k*k*C, F)) -> BiasAdd -> Relu
          -> Reshape (N, h, w, F)

    as Relu(BiasAdd(Conv2D(x, kernel, SAME))): the last Reshape becomes the Relu, so its
    consumers are untouched, and the chain is left for extract_sub_graph to prune. The patch
    order (row, column, channel) is the kernel's (k, k, C, F) order, so both compute the same
    sums (in another order: equal to float32 rounding). Returns the number rewritten; a chain
    of another shape is a ValueError naming the node, never a silently different graph.
    """
    ops = {n.name: n for n in graph_def.node}
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node)

    def only_consumer(node, op):
        found = consumers.get(node.name, [])
        if len(found) != 1 or found[0].op != op:
            raise ValueError(
                f"{node.name} ({node.op}) is not followed by one {op} as the im2col form of a "
                f"convolution is: {[(c.name, c.op) for c in found]}"
            )
        return found[0]

    rewritten = 0
    for patches in [n for n in graph_def.node if n.op == "ExtractImagePatches"]:
        strides, rates = list(patches.attr["strides"].list.i), list(patches.attr["rates"].list.i)
        if strides != [1, 1, 1, 1] or rates != [1, 1, 1, 1]:
            raise ValueError(f"{patches.name}: only stride-1, rate-1 patches are convolutions here")
        rows = only_consumer(patches, "Reshape")
        matmul = only_consumer(rows, "MatMul")
        if matmul.input[0] != rows.name or matmul.attr["transpose_a"].b:
            raise ValueError(f"{matmul.name} does not multiply the patches from the left")
        kernel_2d = ops[matmul.input[1].split(":")[0]]
        if kernel_2d.op != "Reshape" or matmul.attr["transpose_b"].b:
            raise ValueError(f"{matmul.name}'s right operand is not a reshaped kernel")
        bias_add = only_consumer(matmul, "BiasAdd")
        relu = only_consumer(bias_add, "Relu")
        out = only_consumer(relu, "Reshape")
        dtype = patches.attr["T"].type
        scope = patches.name.rsplit("/", 1)[0]
        conv = graph_def.node.add(
            name=f"{scope}/im2col_as_conv/Conv2D",
            op="Conv2D",
            input=[patches.input[0], kernel_2d.input[0]],
        )
        conv.attr["T"].type = dtype
        conv.attr["strides"].list.i.extend([1, 1, 1, 1])
        conv.attr["dilations"].list.i.extend([1, 1, 1, 1])
        conv.attr["padding"].s = patches.attr["padding"].s
        conv.attr["data_format"].s = b"NHWC"
        biased = graph_def.node.add(
            name=f"{scope}/im2col_as_conv/BiasAdd",
            op="BiasAdd",
            input=[conv.name, bias_add.input[1]],
        )
        biased.attr["T"].type = dtype
        biased.attr["data_format"].s = b"NHWC"
        out.op = "Relu"
        del out.input[:]
        out.input.append(biased.name)
        out.attr.clear()
        out.attr["T"].type = dtype
        rewritten += 1
    return rewritten
