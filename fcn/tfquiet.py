"""TensorFlow, imported once and quietly: no C++ start-up lines, no deprecation warnings.

Commands call `tensorflow()` before anything imports TensorFlow, unless --verbose asked for its
logs; TensorFlow's own messages then stay at their defaults.
"""

import contextlib
import logging
import os
import sys

_state = {"verbose": False}


def set_verbose(verbose):
    _state["verbose"] = bool(verbose)
    if not verbose:
        # C++ logs below ERROR (oneDNN notes, CUDA probing on CPU machines).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def verbose():
    """--verbose was given: errors may show their whole trace."""
    return _state["verbose"]


@contextlib.contextmanager
def _stderr_muted():
    """Silence file descriptor 2 (C++ writes there before absl's logging is set up)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensorflow():
    """`tensorflow.compat.v1` in graph mode (v2 behaviour disabled), imported quietly."""
    if "tensorflow" in sys.modules:
        import tensorflow.compat.v1 as tf
    elif _state["verbose"]:
        import tensorflow.compat.v1 as tf
    else:
        set_verbose(False)
        with _stderr_muted():
            import tensorflow.compat.v1 as tf
    if not _state["verbose"]:
        from tensorflow.python.util import deprecation

        deprecation._PRINT_DEPRECATION_WARNINGS = False
        tf.get_logger().setLevel(logging.ERROR)
        logging.getLogger("absl").setLevel(logging.ERROR)
    tf.disable_v2_behavior()
    return tf


@contextlib.contextmanager
def native_quiet():
    """Mute what native code prints on stderr during a call (TFLite's quantiser prints its
    options), unless --verbose; Python exceptions still carry their messages."""
    if _state["verbose"]:
        yield
        return
    with _stderr_muted():
        yield
