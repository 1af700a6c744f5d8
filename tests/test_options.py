"""The commands' options: flags generated from the dataclasses, each check written once."""

import argparse

import pytest

from fcn import checks, config
from fcn.bench.run import BenchOptions
from fcn.errors import UserError
from fcn.evaluation.evaluate import EvaluateOptions
from fcn.inference.export import ExportOptions
from fcn.inference.infer import InferOptions


def test_shared_checks_name_the_flag_and_the_interval():
    assert checks.threshold(0.5) is None
    assert checks.threshold(1.0) == "--threshold must be in (0, 1), got 1.0"
    assert checks.width(1.0) is None
    assert checks.width(0) == "--width must be in (0, 1], got 0"
    assert checks.batch_size(0) == "--batch-size must be >= 1, got 0"
    assert checks.in_range("--alpha", 1, 0, 1, low_closed=True, high_closed=True) is None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: config.Config(threshold=0.0), "--threshold must be in (0, 1), got 0.0"),
        (lambda: InferOptions(threshold=1.5), "--threshold must be in (0, 1), got 1.5"),
        (lambda: EvaluateOptions(run="r", threshold=0.0), "--threshold must be in (0, 1)"),
        (lambda: config.Config(width=2.0), "--width must be in (0, 1], got 2.0"),
        (lambda: InferOptions(batch_size=0), "--batch-size must be >= 1, got 0"),
        (lambda: InferOptions(alpha=2.0), "--alpha must be in [0, 1], got 2.0"),
        (lambda: InferOptions(legend="some"), "--legend 'some' is not one of"),
        (lambda: EvaluateOptions(run="r", split="test"), "--split 'test' is not one of"),
        (lambda: EvaluateOptions(run="r", bev=True), "add --submit"),
        (lambda: EvaluateOptions(prob_dir="p"), "--gt-dir"),
        (lambda: ExportOptions(checkpoint="first"), "--checkpoint 'first' is not one of"),
        (lambda: BenchOptions(steps=0), "--steps and --repeats must be >= 1"),
    ],
)
def test_bad_values_are_one_user_error(make, message):
    with pytest.raises(UserError) as raised:
        make()
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_flags_parse_into_the_options():
    parser = argparse.ArgumentParser()
    parser.add_argument("--run")
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out")
    config.add_arguments(parser, cls=InferOptions)
    args = parser.parse_args(["--run", "r", "a.png", "--out", "o", "--no-tta", "--crf"])
    opts = InferOptions.from_args(args)
    assert (opts.run, list(opts.inputs), opts.out) == ("r", ["a.png"], "o")
    assert opts.tta is False and opts.crf is True and opts.threshold is None
    assert opts.batch_size == 8 and opts.precision == "auto" and opts.alpha == 0.5
