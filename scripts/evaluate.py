"""Print a run's mean ± std return over N episodes: ``python scripts/evaluate.py RUN_DIR [-n N]``.
The same as ``sparse-rl evaluate``."""

import sys

from sparse_rl.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
