import sys

from spatialrl.cli import main

sys.exit(main())
