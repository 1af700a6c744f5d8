"""The serve command: a run or an export over HTTP (TF Serving's REST API, a page, metrics).

`python main.py serve --run RUN_OR_EXPORT [--host 127.0.0.1] [--port 8501] [--name NAME]
[--max-batch 8] [--max-wait-ms 10] [--queue 64] [--max-pixels 40000000] [--timeout-s 30]`,
with infer's prediction flags (--predict slide, --scales, --no-tta, --precision, --threshold).
The options (ServeOptions) and the server are in fcn.serving.server; this module parses the
flags and calls it. SIGTERM finishes the requests in flight and exits 0.
"""

from fcn import config as cfg
from fcn.serving.server import ServeOptions


def add_arguments(parser):
    parser.add_argument(
        "--run", metavar="RUN_DIR", required=True, help="training run folder or export folder"
    )
    cfg.add_arguments(parser, cls=ServeOptions)


def run(args):
    """Entry point of `python main.py serve`; returns the exit code."""
    from fcn.serving.server import serve

    return serve(ServeOptions.from_args(args))
