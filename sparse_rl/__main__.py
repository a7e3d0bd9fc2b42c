"""``python -m sparse_rl``: the ``sparse-rl`` command line."""

import sys

from sparse_rl.cli import main

if __name__ == "__main__":
    sys.exit(main())
