"""``python -m materialsearch``."""

from materialsearch.cli import main
from materialsearch.jobs.shutdown import exit_now

exit_now(main())
