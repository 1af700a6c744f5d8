"""Checks of option values written once, for Config (train's flags) and every command's options.

Each returns None when the value is fine, else the one-line message naming the flag and what to
pass; `raise_first` turns the first message into a UserError (exit code 2).
"""

from fcn.errors import UserError


def in_range(flag, value, low, high, low_closed=False, high_closed=False):
    """None if low < value < high (<= where closed), else '--flag must be in (low, high], ...';
    high None: no upper bound ('--flag must be >= low' or '> low')."""
    above = value >= low if low_closed else value > low
    below = high is None or (value <= high if high_closed else value < high)
    if above and below:
        return None
    if high is None:
        return f"{flag} must be {'>=' if low_closed else '>'} {low}, got {value}"
    interval = f"{'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
    return f"{flag} must be in {interval}, got {value}"


def at_least(flag, value, minimum):
    return None if value >= minimum else f"{flag} must be >= {minimum}, got {value}"


def one_of(flag, value, choices):
    return None if value in choices else f"{flag} {value!r} is not one of {list(choices)}"


def threshold(value, flag="--threshold"):
    """A positive-class probability threshold: 0 and 1 would make every pixel one class."""
    return in_range(flag, value, 0, 1)


def width(value, flag="--width"):
    """An encoder channel multiplier: 1 is the published network, tests use 1/16."""
    return in_range(flag, value, 0, 1, high_closed=True)


def batch_size(value, flag="--batch-size"):
    return at_least(flag, value, 1)


def overlap(value, flag="--overlap"):
    """Sliding windows' overlap, a fraction of the window: 1 would never move the window."""
    return in_range(flag, value, 0, 1, low_closed=True)


def scales(values, flag="--scales"):
    """Image scale factors (multi-scale prediction): each > 0, at least one."""
    values = tuple(values)
    if values and all(v > 0 for v in values):
        return None
    shown = ",".join(f"{v:g}" for v in values) or "nothing"
    return f"{flag} must be factors > 0 such as 0.5,1,1.5, got {shown}"


def raise_first(problems):
    """Raise the first message of `problems` (None entries are fine values) as a UserError."""
    for problem in problems:
        if problem is not None:
            raise UserError(problem)
