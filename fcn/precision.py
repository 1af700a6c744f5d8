"""Compute precision and session options: bf16 on AMX/AVX512-BF16 CPUs, fp16 on CUDA GPUs.

Mixed precision is done by Grappler's graph rewrite (the graph stays float32; the rewriter casts
matmul/conv islands to bf16/fp16 and keeps softmax and the loss in float32), so the same graph,
checkpoints and exports serve every precision.
"""

import functools
import os

import tensorflow.compat.v1 as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from fcn.errors import UserError

_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.cache
def cpu_has_bf16():
    """True when the CPU has native bf16 matrix instructions (oneDNN's fast path)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in _BF16_FLAGS)


@functools.cache
def has_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def resolve(precision):
    """'auto' -> float16 on a GPU, bfloat16 on a bf16-capable CPU, else float32."""
    if precision == "auto":
        if has_gpu():
            return "float16"
        return "bfloat16" if cpu_has_bf16() else "float32"
    if precision == "float16" and not has_gpu():
        raise UserError("--precision float16 needs a CUDA GPU; use bfloat16 or float32 on a CPU")
    if precision == "bfloat16" and not has_gpu() and not cpu_has_bf16():
        print("warning: this CPU lacks bf16 instructions; bfloat16 will be emulated and slow")
    return precision


def session_config(precision="float32", xla=False, threads=None):
    """A ConfigProto with the mixed-precision rewrite for an already resolved precision;
    threads: intra-op threads (oneDNN's), None for the machine's cores."""
    config = tf.ConfigProto()
    config.gpu_options.allow_growth = True
    # Use the cores we have for intra-op parallelism; inter-op 2 lets data and compute overlap.
    config.intra_op_parallelism_threads = threads or os.cpu_count() or 0
    config.inter_op_parallelism_threads = 2
    rewrite = config.graph_options.rewrite_options
    on = rewriter_config_pb2.RewriterConfig.ON
    if precision == "bfloat16":
        rewrite.auto_mixed_precision_onednn_bfloat16 = on
    elif precision == "float16":
        rewrite.auto_mixed_precision = on
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return config


def for_server(config):
    """`config` (a session_config) fitted for a graph that a tf.distribute.Server runs.

    A server's worker checks every node of the graph it is sent against the op registry
    (GraphMgr::InitItem builds it with validate_nodes) before oneDNN's layout pass rewrites it.
    Grappler's remapper, run by the master, fuses a bf16 Conv2D + BiasAdd into `_FusedConv2D`,
    whose registered op takes no bfloat16: a local session never checks and oneDNN turns it into
    `_MklNativeFusedConv2D`, but the worker rejects it at the first step. Without the remapper
    the bf16 rewrite still casts the convolutions and the worker's oneDNN pass fuses them itself
    (`_MklNativeConv2DWithBias`), as fast as the local session (docs/distributed.md).
    """
    rewrite = config.graph_options.rewrite_options
    if rewrite.auto_mixed_precision_onednn_bfloat16 == rewriter_config_pb2.RewriterConfig.ON:
        rewrite.remapping = rewriter_config_pb2.RewriterConfig.OFF
    return config


def loss_scale_for(precision):
    """fp16 gradients underflow without loss scaling; bf16 has float32's exponent range."""
    return "dynamic" if precision == "float16" else None
