"""`python main.py report RUN [RUN...]` / `--all RUNS_DIR`: rebuild run pages and runs/index.html.

Training writes a run's page when it ends and evaluate refreshes it; this command rebuilds pages
of older runs or after a change by hand. Each RUN that is not a run folder is one error line; the
others are still built, and the exit code is then 1.
"""

import sys

from fcn.errors import UserError


def add_arguments(parser):
    parser.add_argument("runs", nargs="*", metavar="RUN", help="run folders from runs/")
    parser.add_argument(
        "--all",
        metavar="RUNS_DIR",
        help="every run folder in RUNS_DIR (e.g. runs), and RUNS_DIR/index.html",
    )


def run(args):
    """Entry point; returns 0, or 1 when a folder could not be built."""
    from fcn import report

    if not args.runs and not args.all:
        raise UserError("report needs RUN folders or --all RUNS_DIR (e.g. `report --all runs`)")
    folders = list(args.runs)
    if args.all:
        folders += report.index.run_dirs(args.all)
    failed = False
    for folder in folders:
        try:
            print(f"wrote {report.write_run_page(folder)}")
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            failed = True
    if args.all:
        print(f"wrote {report.write_index(args.all)}")
    return 1 if failed else 0
