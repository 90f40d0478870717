"""``python -m controlplane.cli``: the same as the ``edgefleet`` console script."""

import sys

from controlplane.cli.main import main

sys.exit(main())
