"""``python -m ml``: the command line (:mod:`ml.cli`)."""

import sys

from ml.cli import main

sys.exit(main())
