"""``python -m ml`` = ``ctr-pipeline``."""

import sys

from ml.cli import main

if __name__ == "__main__":
    sys.exit(main())
