"""The bench command: training, input-pipeline and inference images/s, and a naive baseline;
with --run EXPORT, the export's backends side by side (fcn.bench.backends).

What is measured and how (every figure of RESULT_KEYS) is in fcn.bench, with the options
(BenchOptions: train's Config flags it measures, and bench's own); this module parses the flags,
calls it and prints the table.
"""

from fcn import config as cfg
from fcn import runs
from fcn.bench import backends as bench_backends
from fcn.bench import run as bench


def add_arguments(parser):
    # The Config's own flags first (the augmentation's too), then bench's.
    cfg.add_arguments(parser, only=bench.CONFIG_FIELDS, hidden=bench.HIDDEN_CONFIG_FIELDS)
    cfg.add_arguments(parser, cls=bench.BenchOptions)


def run(args):
    """Entry point of `python main.py bench`; returns the exit code."""
    opts = bench.BenchOptions.from_args(args)
    if opts.run:  # an export's backends side by side
        result = bench_backends.benchmark(opts)
        print(bench_backends.format_table(result))
    else:
        result = bench.benchmark(opts)
        print(bench.format_table(result))
    if opts.json:
        runs.write_json(opts.json, result)
        print(f"wrote {opts.json}")
    return 0
