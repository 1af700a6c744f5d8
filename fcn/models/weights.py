"""Pretrained weights into a built model: names and shapes matched explicitly, in one place."""

import numpy as np

from fcn.errors import UserError

# A mismatch message lists this many names of each kind, then a count.
_SHOWN = 4


def relative_name(variable, scope):
    """'encoder/conv1_1/kernel' -> 'conv1_1/kernel' for scope 'encoder'."""
    name = variable.op.name
    prefix = scope.rstrip("/") + "/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def assign(sess, variables, weights, scope, source):
    """Load {relative name: array} into `variables` (all under `scope`); every variable needs
    exactly one array of its shape and every array a variable. A mismatch is one UserError that
    lists what is missing, what is extra and which shapes differ. Returns the number loaded."""
    by_name = {relative_name(v, scope): v for v in variables}
    missing = sorted(set(by_name) - set(weights))
    extra = sorted(set(weights) - set(by_name))
    wrong = [
        f"{n} {list(np.shape(weights[n]))} (model {by_name[n].shape.as_list()})"
        for n in sorted(set(by_name) & set(weights))
        if list(np.shape(weights[n])) != by_name[n].shape.as_list()
    ]
    if missing or extra or wrong:
        parts = []
        for label, names in (("missing", missing), ("unexpected", extra), ("shape", wrong)):
            if names:
                more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
                parts.append(f"{label}: {', '.join(names[:_SHOWN])}{more}")
        raise UserError(
            f"the weights in {source} do not fit the model: {'; '.join(parts)}; "
            "pass weights made for this encoder (or --weights random)"
        )
    # One session run that feeds every variable's initial value (Variable.load would run one per
    # array: ~30 ms each, 8 s for MobileNetV2's 255 arrays). A variable mirrored by
    # tf.distribute (fcn.training.distribute) has one copy per device in `values`: each gets the
    # array.
    feed, initializers = {}, []
    for n, v in by_name.items():
        array = np.asarray(weights[n], v.dtype.base_dtype.as_numpy_dtype)
        for copy in getattr(v, "values", None) or (v,):
            feed[copy.initializer.inputs[1]] = array
            initializers.append(copy.initializer)
    sess.run(initializers, feed)
    return len(by_name)
