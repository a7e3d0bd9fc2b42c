"""Plot the input-layer connectivity of training runs (what ``sparse-rl analyze RUN_DIR`` does)::

    python scripts/analyze.py RUN_DIR [RUN_DIR ...] [--out DIR] [--no-gif] [--no-tensorboard]
    python scripts/analyze.py SPARSE_RUN DENSE_RUN --compare comparison.png

Each run gets PNGs, a GIF, CSV/JSON metrics and TensorBoard scalars and images (see
:func:`sparse_rl.analysis.report.analyze_run`); ``--compare`` also plots the runs' curves side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparse_rl.analysis.report import analyze_run, compare_runs


def main(argv: list[str] | None = None) -> int:
    """Analyse the runs given on the command line; returns the exit status.

    :param argv: the arguments (default: ``sys.argv[1:]``)
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (runs/<name>/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the files go (default: RUN_DIR/plots; with several runs, OUT/<run name>)")
    parser.add_argument("--no-gif", action="store_true", help="skip the animated GIF (the slowest part)")
    parser.add_argument("--no-tensorboard", action="store_true", help="write nothing to RUN_DIR/tb/analysis")
    parser.add_argument("--compare", type=Path, default=None, metavar="PNG",
                        help="also plot the runs' connectivity curves side by side into this PNG")
    args = parser.parse_args(argv)
    status = 0
    for run_dir in args.run_dirs:
        out = args.out / Path(run_dir).resolve().name if args.out and len(args.run_dirs) > 1 else args.out
        try:
            result = analyze_run(run_dir, out_dir=out, tensorboard=not args.no_tensorboard, gif=not args.no_gif)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 2
            continue
        print(f"{run_dir}: {len(result['files'])} files in {result['out_dir']}")
        for name, path in result["files"].items():
            print(f"  {name}: {path}")
    if args.compare is not None:
        try:
            print(f"comparison: {compare_runs(args.run_dirs, args.compare)}")
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
