"""The one rule for a store that failed: answer 503 at once for a while.

A store that failed less than ``RETRY_AFTER`` seconds ago is not asked
again: a request gets its 503 page (with ``Retry-After``) without waiting,
so a down store costs nothing per request.  Past that, one request at a
time gets through and tries it again.  Both the app (before the durable
chains are opened) and the chains (``DurableChains.unavailable``) use it.
"""

import logging

from . import _clock
from ._ratelog import ThrottledLog
from ._refusals import Refusal

log = logging.getLogger(__name__)

__all__ = ["RETRY_AFTER", "recent_failure", "unavailable"]

#: seconds a failed store is left alone (503 at once, and the Retry-After of those pages)
RETRY_AFTER = 1.0


def recent_failure(store):
    """The message of ``store``'s failure if it failed less than ``RETRY_AFTER`` s ago, else None."""
    failure = store.failure
    if failure is not None and _clock.monotonic() - failure[1] < RETRY_AFTER:
        return failure[0]
    return None


_log_unavailable = ThrottledLog(log, logging.WARNING, "durable request answered 503: %s")


def unavailable(exc):
    """The 503 refusal of a request the store could not serve (``exc`` says why)."""
    _log_unavailable(exc)  # the store logged when it went down: not a line per request
    return Refusal("unavailable")
