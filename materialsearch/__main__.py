"""``python -m materialsearch``."""

import sys

from materialsearch.cli import main

sys.exit(main())
