"""`python -m rzero_worker PHASE --task FILE`: the worker CLI without the `rzero` console script."""

import sys

from rzero_worker.cli import main

if __name__ == "__main__":
    sys.exit(main())
