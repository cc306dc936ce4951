"""``python -m kaisec``."""

import sys

from kaisec._cli import main

if __name__ == "__main__":
    sys.exit(main())
