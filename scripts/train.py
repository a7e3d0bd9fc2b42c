"""Train a run from YAML config(s), or resume one: ``python scripts/train.py CONFIG [--set KEY=VALUE ...]``
or ``python scripts/train.py --resume RUN_DIR``. The same as ``sparse-rl train``."""

import sys

from sparse_rl.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
