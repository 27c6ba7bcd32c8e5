"""``python -m crab_eval``: the ``crab-eval`` command line."""

import sys

from crab_eval.cli import main

sys.exit(main())
