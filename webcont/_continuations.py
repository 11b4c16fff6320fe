"""The continuation store: single-use ids, deadlines, the live cap, tombstones.

Owned by the hub thread (it is only touched from tasklets and timers running
there), so it takes no lock.  It keeps data only; sending ``TimeoutException``
into an expired controller is the app's job.

* Ids come from ``secrets`` (128 random bits, URL-safe text): unguessable.
* Deadlines sit in a heap with lazy deletion: a resumed continuation leaves a
  stale heap entry that is skipped when popped, and the heap is rebuilt from
  the live entries once stale ones outnumber them.  Expiry is O(log n) per
  continuation and never scans.
* ``_live`` is ordered by creation, so the cap evicts the oldest in O(1).
* A bounded LRU of tombstones remembers recently used or expired ids, so a
  double submission or a late click gets a precise answer instead of 404.
"""

import heapq
import itertools
import secrets
import time
from collections import OrderedDict

__all__ = ["Continuation", "ContinuationStore", "Tombstone", "mint_id"]

ID_BYTES = 16  # 128 bits


def mint_id():
    """A fresh, unguessable continuation id (22 URL-safe characters)."""
    return secrets.token_urlsafe(ID_BYTES)


class Continuation:
    """A suspended controller: its id, the channel it waits on, its deadline."""

    __slots__ = ("id", "channel", "deadline")

    def __init__(self, id, channel, deadline):
        self.id = id
        self.channel = channel
        self.deadline = deadline


class Tombstone:
    """What became of a continuation id that is no longer live.

    ``state`` is ``"running"`` (its request is being answered), ``"used"``
    or ``"expired"``; a used one remembers the parameters it was resumed
    with and the page it produced, so an identical resubmission gets the
    identical page again.
    """

    __slots__ = ("state", "parameters", "response")

    def __init__(self, state, parameters=None, response=None):
        self.state = state
        self.parameters = parameters
        self.response = response


class ContinuationStore:
    """Live continuations of one app.  Used only on the hub thread."""

    def __init__(self, max_live, max_tombstones=None, clock=time.monotonic):
        self.max_live = max_live
        self.max_tombstones = max_tombstones or max_live
        self.clock = clock
        self._live = OrderedDict()   # id -> Continuation, oldest first
        self._deadlines = []         # heap of (deadline, seq, id); may hold stale entries
        self._seq = itertools.count()
        self._tombstones = OrderedDict()

    def __len__(self):
        return len(self._live)

    def __contains__(self, id):
        return id in self._live

    def ids(self):
        """The live ids, oldest first."""
        return list(self._live)

    def add(self, id, channel, timeout):
        """Register a continuation expiring ``timeout`` seconds from now.

        Returns the continuations evicted to respect the cap (oldest first);
        the caller must wake them with ``TimeoutException``.
        """
        if id in self._live:
            raise ValueError("continuation id %r is already registered" % (id,))
        deadline = self.clock() + timeout
        self._live[id] = Continuation(id, channel, deadline)
        heapq.heappush(self._deadlines, (deadline, next(self._seq), id))
        evicted = []
        while len(self._live) > self.max_live:
            _, oldest = self._live.popitem(last=False)
            self.remember(oldest.id, Tombstone("expired"))
            evicted.append(oldest)
        self._prune()
        return evicted

    def take(self, id):
        """Remove and return the live continuation ``id`` (single use), else None."""
        continuation = self._live.pop(id, None)
        if continuation is not None:
            self.remember(id, Tombstone("running"))
        return continuation

    def tombstone(self, id):
        """The tombstone of an id that is not live (or None if never seen / forgotten)."""
        return self._tombstones.get(id)

    def remember(self, id, tombstone):
        """Record what became of ``id``, forgetting the oldest tombstone past the bound."""
        tombstones = self._tombstones
        tombstones[id] = tombstone
        tombstones.move_to_end(id)
        while len(tombstones) > self.max_tombstones:
            tombstones.popitem(last=False)

    def next_deadline(self):
        """The earliest deadline still pending (possibly of a stale entry), or None."""
        return self._deadlines[0][0] if self._deadlines else None

    def expire_due(self, now=None):
        """Remove and return every live continuation whose deadline has passed."""
        now = self.clock() if now is None else now
        heap, live = self._deadlines, self._live
        expired = []
        while heap and heap[0][0] <= now:
            deadline, _, id = heapq.heappop(heap)
            continuation = live.get(id)
            if continuation is not None and continuation.deadline == deadline:
                del live[id]
                self.remember(id, Tombstone("expired"))
                expired.append(continuation)
        return expired

    def _prune(self):
        # stale heap entries (resumed continuations) are dropped in one batch
        # once they outnumber the live ones, keeping the heap O(live)
        if len(self._deadlines) > 2 * len(self._live) + 64:
            self._deadlines = [(c.deadline, next(self._seq), c.id) for c in self._live.values()]
            heapq.heapify(self._deadlines)
