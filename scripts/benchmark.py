"""Run a benchmark sweep: ``python scripts/benchmark.py configs/bench/quick.yaml [--workers N]
[--backend ray [--address ADDR]] [--out DIR] [--set KEY=VALUE ...]``. The same as ``sparse-rl benchmark``."""

import sys

from sparse_rl.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
