"""``python -m spatialrl.report RUN_DIR``: the same as ``spatialrl report RUN_DIR``."""

import sys

from spatialrl.report.command import main

sys.exit(main())
