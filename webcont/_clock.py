"""The real clock, taken before durable mode wraps the ``time`` module.

While a durable controller runs, ``time.monotonic()`` & co. are recorded and
replayed (``_recorder``).  webcont's own bookkeeping (hub timers, request
deadlines, the stall watch, expiry) reads this one instead: it can never be
mistaken for a controller's draw, and it skips the wrapper (~1 us a call).
This module is imported with ``webcont``, before any wrapper exists.
"""

import time

monotonic = time.monotonic
