"""`python -m monitor` runs the `callmon` command."""

import sys

from .cli import main

sys.exit(main())
