"""``python -m mtvae`` runs the command line."""

import sys

from mtvae.cli import main

sys.exit(main())
