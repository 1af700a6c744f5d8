"""The ONNX Runtime backend: an export folder's model.onnx (or model_int8.onnx) as a Predictor.

The ONNX graph is the SavedModel's prediction path converted by tf2onnx (fcn.inference.export):
it takes the same uint8 (N, H, W, 3) images of any size and gives probs_full (N, H, W, C), so
resizing and upsampling happen inside it as in TensorFlow. Its threshold and --tta switch were
fixed to the run's when it was converted; the mask is decided here in NumPy from the
probabilities (fcn.data.task.decide, the graph's twin), so --threshold works as with TF.

onnxruntime is optional (requirements-extra.txt): `onnxruntime_module` says how to install it.
"""

from fcn import names
from fcn.errors import UserError
from fcn.inference.predictor import DEFAULT_BATCH_SIZE, Predictor

INPUT = names.tensor(names.IMAGES)  # uint8 (N, H, W, 3)
PROBS = names.tensor(names.PROBS_FULL)  # float32 (N, H, W, C)


def onnxruntime_module():
    """onnxruntime, or a one-line UserError naming requirements-extra.txt."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(
            "--backend onnxruntime needs onnxruntime, which is not installed: "
            "pip install -r requirements-extra.txt"
        ) from None
    return onnxruntime


def session(path, threads):
    """An InferenceSession on the CPU with `threads` intra-op threads (one inter-op thread:
    the graph is a chain, so parallelism within each op is what pays)."""
    onnxruntime = onnxruntime_module()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return onnxruntime.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"onnxruntime cannot load {path}: {first[:200]}; re-export it") from None


class OrtPredictor(Predictor):
    """An ONNX file of an export folder through ONNX Runtime.

    config, spec: the export's (fcn.inference.restore reads them from export.json); precision
    'float32' for model.onnx, 'int8' for the quantised model; tta is the run's, built into the
    graph (it cannot be switched off: the graph has no switch).
    """

    def __init__(self, path, config, spec, threads, precision="float32", batch_size=None):
        self.path = path
        self.config = config
        self.spec = spec
        self.network_size = tuple(config.image_shape)
        self.threshold = float(config.threshold)
        self.tta = config.tta
        self.precision = precision
        self.threads = int(threads)
        self.source = f"{path} (onnxruntime, {self.threads} threads)"
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        self._session = session(path, self.threads)

    def _predict_batch(self, batch, threshold):
        (probs,) = self._session.run([PROBS], {INPUT: batch})
        return probs, self.decide(probs, threshold)

    def close(self):
        self._session = None  # onnxruntime frees the session with its last reference
