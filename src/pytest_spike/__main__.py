"""``python -m pytest_spike``: the same as the ``pytest-spike`` command."""

import sys

from pytest_spike.cli import main

sys.exit(main())
