"""The serve job: open a run or an export as `infer` does, and serve it with uvicorn.

`ServeOptions` are `python main.py serve`'s flags (fcn.options); `serve(opts)` opens the
Predictor on its --backend (fcn.inference.backends.open_backend, as infer does; wrapped by
fcn.inference.windows for --predict slide and --scales), builds the app (fcn.serving.app) and
runs uvicorn on a socket bound here, so port 0 (any free port) works and the address printed
is the real one.

SIGTERM (or Ctrl-C): uvicorn stops accepting, answers every request in flight, then the
lifespan finishes the batcher's queue; `serve` returns and the command exits 0.
"""

import dataclasses
import signal
import socket
import threading

import numpy as np

from fcn import checks, options
from fcn.config import field
from fcn.inference.overlays import DEFAULT_ALPHA
from fcn.serving.app import Limits, Service, create_app

DEFAULT_NAME = "fcn"
_DEFAULTS = Limits()


@dataclasses.dataclass(frozen=True)
class ServeOptions(options.Options):
    """`serve`'s flags. run has a hand-written flag (fcn.commands.serve)."""

    run: str = field(None, "training run folder or export folder", flag=False)
    # Loopback by default: a model server is not published to the network by accident.
    host: str = field("127.0.0.1", "address to bind; 0.0.0.0 serves every interface")
    port: int = field(8501, "port to listen on (TF Serving's REST port; 0: any free one)")
    name: str = field(DEFAULT_NAME, "the model's name in /v1/models/NAME")
    max_batch: int = field(_DEFAULTS.max_batch, "most images in one forward pass")
    # 10 ms: a batch fills from concurrent clients in that time; a lone client barely waits.
    max_wait_ms: float = field(
        _DEFAULTS.max_wait_s * 1000, "longest a batch waits for more images of its size"
    )
    queue: int = field(_DEFAULTS.queue, "most images waiting; more are answered 503")
    max_pixels: int = field(_DEFAULTS.max_pixels, "largest image (H*W) accepted; more is 413")
    max_body_mb: float = field(_DEFAULTS.max_body / (1 << 20), "largest request body; more 413")
    timeout_s: float = field(_DEFAULTS.timeout_s, "a request waiting longer is answered 504")
    alpha: float = field(DEFAULT_ALPHA, "opacity of the class overlay")
    backend: str = options.backend()
    int8: bool = options.int8()
    threads: int = options.threads()
    precision: str = options.precision()
    tta: bool = options.tta()
    predict: str = options.predict()
    overlap: float = options.overlap()
    scales: tuple = options.scales()
    threshold: float = options.threshold()

    def problems(self):
        yield checks.in_range("--port", self.port, 0, 65535, low_closed=True, high_closed=True)
        yield None if self.name and "/" not in self.name else f"--name {self.name!r}: no '/'"
        yield checks.at_least("--max-batch", self.max_batch, 1)
        yield checks.in_range("--max-wait-ms", self.max_wait_ms, 0, None, low_closed=True)
        yield checks.at_least("--queue", self.queue, 1)
        yield checks.at_least("--max-pixels", self.max_pixels, 1)
        yield checks.in_range("--max-body-mb", self.max_body_mb, 0, None)
        yield checks.in_range("--timeout-s", self.timeout_s, 0, None)
        yield checks.in_range("--alpha", self.alpha, 0, 1, low_closed=True, high_closed=True)
        yield from options.prediction_problems(self)
        yield from options.backend_problems(self)
        if self.threshold is not None:
            yield checks.threshold(self.threshold)

    def limits(self):
        return Limits(
            max_batch=self.max_batch,
            max_wait_s=self.max_wait_ms / 1000,
            queue=self.queue,
            max_pixels=self.max_pixels,
            max_body=int(self.max_body_mb * (1 << 20)),
            timeout_s=self.timeout_s,
        )


def open_model(opts):
    """(the Predictor `infer` would use for these options, which the caller closes; how:
    (predict, overlap, scales), the flags where given, else the run's own: windows.chosen)."""
    from fcn.inference import backends, windows  # TensorFlow: imported only here

    opened = backends.open_backend(
        opts.run, opts.backend, opts.int8, opts.threads, opts.precision, tta=opts.tta,
        batch_size=opts.max_batch,
    )  # fmt: skip
    how = windows.chosen(opts, opened.config)
    return windows.wrap(opened, *how), how


def make_service(predictor, opts, how=("whole", None, (1.0,))):
    """The Service over a Predictor; how: open_model's (predict, overlap, scales)."""
    from fcn.inference import windows

    about = dict(prediction=windows.settings(*how))
    return Service(predictor, opts.name, opts.limits(), opts.alpha, opts.threshold, about)


def bind(host, port):
    """A listening TCP socket on (host, port); UserError when the address is taken."""
    from fcn.errors import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port} ({e.strerror}); pick another --port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_server(app):
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    return uvicorn.Server(config)


def address(sock):
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def serve(opts, log=print):
    """Serve until SIGTERM or Ctrl-C; returns when every request in flight is answered."""
    from fcn.inference import windows

    model, chosen = open_model(opts)
    with model:
        h, w = model.network_size
        model.predict_each([np.zeros((h, w, 3), np.uint8)])  # kernel selection is not latency
        service = make_service(model, opts, chosen)
        sock = bind(opts.host, opts.port)
        where = address(sock)
        scope = "loopback only" if opts.host in ("127.0.0.1", "localhost", "::1") else "network"
        how = windows.describe(*chosen)
        log(
            f"serving {model.source} as {opts.name!r} on {where} ({scope}; input {h}x{w}{how}, "
            f"{model.precision}, batches of up to {opts.max_batch}): {where}/ for the page, "
            f"{where}/v1/models/{opts.name}:predict for TF Serving clients"
        )
        server = uvicorn_server(create_app(service))
        stopped = threading.Event()
        # uvicorn re-raises the signal it stopped on once it has shut down; this handler takes
        # it, so a SIGTERM ends in exit code 0 rather than death by the signal.
        previous = signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            server.run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
            sock.close()
        log("stopped: every request in flight was answered" + (" (SIGTERM)" * stopped.is_set()))
    return 0
