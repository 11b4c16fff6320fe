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
  Tombstones are bounded three ways, because a client chooses how many ids
  it burns and how big its requests are: by count (``max_tombstones``), by
  age (``tombstone_ttl``: forgotten after it, so memory goes back down once
  the games are over) and by the bytes of the pages they keep for replay
  (``max_replay_bytes``).  They keep a digest of the parameters, never the
  parameters themselves (up to a whole request body each).
"""

import hashlib
import heapq
import itertools
import secrets
import time
import weakref
from collections import OrderedDict

__all__ = ["CONTINUATION_PARAMETER", "Continuation", "ContinuationStore", "KeptPages", "Tombstone", "mint_id",
           "parameters_digest", "TimeoutException"]

ID_BYTES = 16  # 128 bits
CONTINUATION_PARAMETER = "__wc"  # the request parameter that names a continuation


def mint_id():
    """A fresh, unguessable continuation id (22 URL-safe characters)."""
    return secrets.token_urlsafe(ID_BYTES)


def parameters_digest(parameters):
    """A short digest of ``{name: [values]}``: equal parameters, equal digest."""
    text = repr(sorted(parameters.items()))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class TimeoutException(Exception):
    """Raised in a suspended controller whose continuation expired or was evicted."""


class Continuation:
    """A suspended controller: its id, the channel it waits on, its deadline,
    and the game (the app's request object) it belongs to, if any."""

    __slots__ = ("id", "channel", "deadline", "game")

    def __init__(self, id, channel, deadline, game=None):
        self.id = id
        self.channel = channel
        self.deadline = deadline
        self.game = game


class Tombstone:
    """What became of a continuation id that is no longer live.

    ``state`` is ``"running"`` (its request is being answered), ``"used"``,
    ``"failed"`` or ``"expired"``; a used one remembers the digest of the
    parameters it was resumed with (``parameters_digest``) and the page it
    produced, ``(status, headers, body)``, so an identical resubmission gets
    the identical page again.  ``forget_at`` is set by the store.  ``route``
    is the route of the game the id belonged to (for the links of refusal
    pages) and ``game`` a weak reference to that game, while it lives.
    ``"evicted"`` is an id expired early by the ``max_live`` cap.
    """

    __slots__ = ("state", "digest", "response", "forget_at", "route", "game")

    def __init__(self, state, digest=None, response=None, game=None):
        self.state = state
        self.digest = digest
        self.response = response
        self.forget_at = None
        self.route = getattr(game, "route", None)
        self.game = weakref.ref(game) if game is not None else None

    @property
    def size(self):
        """Bytes of the page kept for replay (0 when none is kept)."""
        return len(self.response[2]) if self.response is not None else 0


class ContinuationStore:
    """Live continuations of one app.  Used only on the hub thread."""

    def __init__(self, max_live, max_tombstones=None, clock=time.monotonic,
                 tombstone_ttl=3600.0, max_replay_bytes=16 << 20):
        self.max_live = max_live
        self.max_tombstones = max_tombstones or max_live
        self.tombstone_ttl = tombstone_ttl
        self.max_replay_bytes = max_replay_bytes
        self.clock = clock
        self._live = OrderedDict()   # id -> Continuation, oldest first
        self._deadlines = []         # heap of (deadline, seq, id); may hold stale entries
        self._seq = itertools.count()
        self._tombstones = OrderedDict()  # id -> Tombstone, by forget_at (the TTL is fixed)
        self._replay_bytes = 0       # sum of the tombstones' sizes

    def __len__(self):
        return len(self._live)

    def __contains__(self, id):
        return id in self._live

    def ids(self):
        """The live ids, oldest first."""
        return list(self._live)

    def get(self, id):
        """The live continuation ``id`` (left in place), or None."""
        return self._live.get(id)

    def add(self, id, channel, timeout, game=None):
        """Register a continuation of ``game`` expiring ``timeout`` seconds from now.

        Returns the continuations evicted to respect the cap (oldest first);
        the caller must wake them with ``TimeoutException``.
        """
        if id in self._live:
            raise ValueError("continuation id %r is already registered" % (id,))
        deadline = self.clock() + timeout
        self._live[id] = Continuation(id, channel, deadline, game)
        heapq.heappush(self._deadlines, (deadline, next(self._seq), id))
        evicted = []
        while len(self._live) > self.max_live:
            _, oldest = self._live.popitem(last=False)
            self.remember(oldest.id, Tombstone("evicted", game=oldest.game))
            evicted.append(oldest)
        self._prune()
        return evicted

    def take(self, id):
        """Remove and return the live continuation ``id`` (single use), else None."""
        continuation = self._live.pop(id, None)
        if continuation is not None:
            self.remember(id, Tombstone("running", game=continuation.game))
        return continuation

    def tombstone(self, id):
        """The tombstone of an id that is not live (or None if never seen / forgotten)."""
        tombstone = self._tombstones.get(id)
        if tombstone is not None and tombstone.forget_at <= self.clock():
            return None  # past its TTL: forget_due() drops it soon
        return tombstone

    def remember(self, id, tombstone):
        """Record what became of ``id``, forgetting the oldest tombstones past the bounds."""
        tombstones = self._tombstones
        previous = tombstones.pop(id, None)
        if previous is not None:
            self._replay_bytes -= previous.size
        if tombstone.size > self.max_replay_bytes:
            tombstone.response = None  # too big to keep: a resubmission then gets 409
        tombstone.forget_at = self.clock() + self.tombstone_ttl
        tombstones[id] = tombstone
        self._replay_bytes += tombstone.size
        while len(tombstones) > self.max_tombstones or self._replay_bytes > self.max_replay_bytes:
            self._forget_oldest()

    def settle(self, id, state, game=None, digest=None, response=None):
        """The request that took ``id`` (``take``) ended: its ``"running"``
        tombstone becomes ``state`` in place (``Tombstone`` says what the
        others mean).  One tombstone a step, not two, and it keeps its place
        in the TTL order; a new one if the bounds forgot it meanwhile."""
        tombstone = self._tombstones.get(id)
        if tombstone is None or tombstone.state != "running":
            self.remember(id, Tombstone(state, digest, response, game))
            return
        tombstone.state = state
        tombstone.digest = digest
        if response is not None and len(response[2]) <= self.max_replay_bytes:
            tombstone.response = response  # else a resubmission gets 409, as remember() says
            self._replay_bytes += len(response[2])
            while self._replay_bytes > self.max_replay_bytes:
                self._forget_oldest()

    def forget_due(self, now=None):
        """Drop the tombstones past their TTL (oldest first: O(1) per tombstone)."""
        now = self.clock() if now is None else now
        tombstones = self._tombstones
        while tombstones and next(iter(tombstones.values())).forget_at <= now:
            self._forget_oldest()

    def _forget_oldest(self):
        _, oldest = self._tombstones.popitem(last=False)
        self._replay_bytes -= oldest.size

    def next_deadline(self):
        """The earliest deadline still pending (possibly of a stale entry), or None."""
        return self._deadlines[0][0] if self._deadlines else None

    def next_due(self):
        """When ``expire_due``/``forget_due`` next have work, or None.

        Forgetting tombstones is batched by the second (or by their TTL if
        shorter): under steady traffic their TTLs end every few microseconds,
        and one timer per tombstone would cost more than the memory it frees
        sooner.
        """
        deadline = self._deadlines[0][0] if self._deadlines else None
        if self._tombstones:
            forget = (next(iter(self._tombstones.values())).forget_at
                      + min(1.0, self.tombstone_ttl))
            if deadline is None or forget < deadline:
                return forget
        return deadline

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
                self.remember(id, Tombstone("expired", game=continuation.game))
                expired.append(continuation)
        return expired

    def _prune(self):
        # stale heap entries (resumed continuations) are dropped in one batch
        # once they outnumber the live ones, keeping the heap O(live)
        if len(self._deadlines) > 2 * len(self._live) + 64:
            self._deadlines = [(c.deadline, next(self._seq), c.id) for c in self._live.values()]
            heapq.heapify(self._deadlines)


class KeptPages:
    """The page each game last answered, for "continue where you left off".

    An LRU by key with a budget in bytes for all pages together: a client
    decides how big a page is (a controller may echo what it was sent), so
    a count alone would not bound memory.  Past the budget the least
    recently used pages are dropped; a page bigger than the budget is not
    kept at all.  Used only on the hub.
    """

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._pages = OrderedDict()  # key -> bytes, least recently used first

    def __len__(self):
        return len(self._pages)

    def put(self, key, body):
        """Keep ``body`` (bytes or str) as the page of ``key``."""
        self.pop(key)
        if len(body) > self.max_bytes:
            return
        self._pages[key] = body
        self.bytes += len(body)
        while self.bytes > self.max_bytes:
            _, dropped = self._pages.popitem(last=False)
            self.bytes -= len(dropped)

    def get(self, key):
        """The page of ``key`` (now the most recently used), or None."""
        body = self._pages.get(key)
        if body is not None:
            self._pages.move_to_end(key)
        return body

    def pop(self, key):
        """Forget the page of ``key``; return it (or None)."""
        body = self._pages.pop(key, None)
        if body is not None:
            self.bytes -= len(body)
        return body
