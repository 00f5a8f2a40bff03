"""``python -m comemory.cli``: the command line (torchrun starts it this way)."""
import sys

from comemory.cli import main

sys.exit(main())
