"""``python -m webcont nginx-config ...`` (see ``webcont._nginx``)."""

import sys

from ._nginx import main

sys.exit(main())
