"""``python -m wedge`` runs the command line (and so does ``torchrun -m wedge …``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
