"""python -m shipshape: the same as the shipshape command."""

import sys

from shipshape.cli import main

sys.exit(main())
