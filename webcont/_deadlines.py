"""``Deadlines``: cancellable timeouts on the hub, one hub timer per length.

Two things on the hub wait with a timeout: a request waiting in its task
tasklet (``InlineHub.wait_job``, ``request_timeout``) and a tasklet waiting
for the store (``Hub.wait`` with ``store_timeout``).  Almost all of them end
in time and cancel their deadline, so a heap entry (and possibly a wake-up
of the timer thread) per wait would be paid for nothing.  Timeouts of one
length expire in the order they were set, so an ordered dict per length
is already sorted by deadline: the oldest entry is the next due, one hub
timer per length suffices, and cancelling is one dict delete.

Owned by its hub (``Hub.deadlines``): a hub served again elsewhere starts
with none of the old one's deadlines or timers.
"""

import logging
from collections import OrderedDict

from . import _clock

log = logging.getLogger(__name__)

__all__ = ["Deadlines"]


class _Queue:
    """The deadlines of one length, oldest (so first due) first."""

    __slots__ = ("seconds", "entries", "armed")

    def __init__(self, seconds):
        self.seconds = seconds
        self.entries = OrderedDict()  # token -> (deadline, callback)
        self.armed = False            # a hub timer for this queue is pending


class Deadlines:
    """Timeouts of a hub: ``add(seconds, callback)``, ``cancel(token)``. (hub)

    ``call_at(when, callback)`` is the hub's timer: the callbacks of expired
    deadlines run there, oldest first.
    """

    def __init__(self, call_at):
        self._call_at = call_at
        self._queues = {}  # seconds -> _Queue

    def add(self, seconds, callback):
        """Run ``callback()`` on the hub ``seconds`` from now unless cancelled first;
        returns the token ``cancel`` takes. (hub)"""
        queue = self._queues.get(seconds)
        if queue is None:
            queue = self._queues[seconds] = _Queue(seconds)
        token = (queue, object())
        deadline = _clock.monotonic() + seconds
        queue.entries[token] = (deadline, callback)
        if not queue.armed:
            queue.armed = True
            self._call_at(deadline, lambda: self._expire(queue))
        return token

    def cancel(self, token):
        """Forget the deadline of ``token`` (expired or not: then nothing happens). (hub)"""
        token[0].entries.pop(token, None)

    def __len__(self):
        return sum(len(queue.entries) for queue in self._queues.values())

    def _expire(self, queue):
        """Hub timer: run the callbacks of ``queue``'s due deadlines, then re-arm."""
        entries, now = queue.entries, _clock.monotonic()
        while entries:
            token, (deadline, callback) = next(iter(entries.items()))
            if deadline > now:
                self._call_at(deadline, lambda: self._expire(queue))
                return
            del entries[token]
            try:
                callback()
            except Exception:  # the others still expire
                log.exception("a hub deadline callback raised")
        queue.armed = False
