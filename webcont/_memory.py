"""The in-memory backend: games whose controllers wait in this process.

``SessionlessApp`` (``_app``) parses a request, finds its route, and hands it
to a backend: this one for routes kept in memory, ``DurableChains``
(``_durable``) for durable routes.  Both answer with a typed reply: a page
(here already rendered, as ``Rendered``, since the answer to a used id is
remembered with it) or a ``Refusal`` (``_refusals``) that the app renders.

This backend owns the continuation store (single-use ids, expiry on a timer,
the LRU cap, tombstones of used ids) and the owner tags of in-memory games
(``_owner``); the pages games wait on (for the owner's "continue where you
left off") share the app's budget with the durable games.  Used only on the hub.
"""

import logging

import stackless_compat as stackless

from ._continuations import (CONTINUATION_PARAMETER, ContinuationStore, TimeoutException,
                             Tombstone, parameters_digest)
from ._owner import Owners
from ._ratelog import ThrottledLog
from ._refusals import Refusal, Rendered
from ._request import SessionlessRequest, await_page

log = logging.getLogger(__name__)

__all__ = ["MemoryContinuations"]


class MemoryContinuations:
    """The continuations of ``app``'s in-memory routes (hub only)."""

    def __init__(self, app):
        self.app = app
        self.store = ContinuationStore(app.max_continuations,
                                       tombstone_ttl=app.tombstone_timeout,
                                       max_replay_bytes=app.max_replay_bytes)
        self.pages = app._pages  # live id -> the page carrying it (the app's budget)
        # in-memory games die with the process: a per-process key will do
        self.owners = Owners()
        self._expiry_at = None  # when the hub timer for the next expiry is due
        self._expiry_hub = None  # the hub that timer is on
        self._log_eviction = ThrottledLog(log, logging.WARNING,
                                          "continuation(s) evicted: more than %d live")

    # -- continuations ------------------------------------------------------------

    def register(self, id, game=None):
        """Create the channel a controller waits on until a request names ``id``."""
        channel = stackless.channel()
        evicted = self.store.add(id, channel, self.app.continuation_timeout, game)
        if evicted:
            # one per new game during a flood: throttled, or it floods the log too
            self._log_eviction(self.store.max_live)
            self.app._hub().call_soon(lambda: self._expire(evicted))
        self._schedule_expiry()
        return channel

    def _schedule_expiry(self):
        due = self.store.next_due()
        if due is None:
            return
        hub = self.app._hub()
        # a hub serving the app anew has none of the old one's timers
        if self._expiry_hub is not hub or self._expiry_at is None or due < self._expiry_at:
            self._expiry_at, self._expiry_hub = due, hub
            hub.call_at(due, self._expiry_timer)

    def _expiry_timer(self):
        self._expiry_at = None
        try:
            self._expire(self.store.expire_due())
            self.store.forget_due()
        finally:
            self._schedule_expiry()  # even after a failure: expiry must not stop for good

    def _expire(self, continuations):
        for continuation in continuations:
            self.pages.pop(continuation.id)
            channel = continuation.channel
            if channel.balance < 0:  # the controller is still waiting there
                try:
                    channel.send_exception(TimeoutException, "continuation expired")
                except Exception:
                    log.exception("expiring continuation %s", continuation.id[:6])

    # -- requests -------------------------------------------------------------------

    def start(self, route, controller, parameters, environ, owner_token):
        """A new game of ``controller``: run it to its first page; ``Rendered``."""
        channel = stackless.channel()
        request = SessionlessRequest(self.app, channel, controller, parameters, environ, route,
                                     self.owners.tag(owner_token))
        # the bound method, not the request: CPython 3.11 runs a plain
        # function's frame inline in the tasklet's body, where calling an
        # object with __call__ nests an interpreter loop whose C stack every
        # suspended game keeps (~0.7 KiB of its ~8, bench/memory.py)
        task = self.app._hub().spawn(request.__call__)
        answer = self.app._render(await_page(channel, task))
        self._keep_page(request, answer.body)
        return answer

    def _keep_page(self, game, body):
        """Keep ``body`` if ``game`` waits on the id it carries (for ``__show``)."""
        if game is not None and game._continuation_id in self.store:
            self.pages.put(game._continuation_id, body)

    def resume(self, parameters, environ):
        """A request naming an in-memory id: ``Rendered``, or a ``Refusal``."""
        # The id alone is the capability: whoever presents it makes the next
        # move, whatever the path (docs/security.md).
        id = parameters[CONTINUATION_PARAMETER][0]
        store = self.store
        if "__show" in parameters and id in store:
            return self._show(store.get(id), environ)
        continuation = store.take(id)
        if continuation is not None and continuation.channel.balance >= 0:
            store.remember(id, Tombstone("expired", game=continuation.game))  # its controller is gone
            continuation = None
        if continuation is None:
            return self._dead(id, parameters, environ)
        game = continuation.game
        self.pages.pop(id)
        controller = continuation.channel.queue  # the tasklet waiting there
        channel = stackless.channel()
        continuation.channel.send((parameters, channel, environ))
        try:
            reply = await_page(channel, controller)
        except stackless.TaskletExit:  # abandoned: the controller is gone
            store.settle(id, "failed", game)
            raise
        answer = self.app._render(reply)
        if answer.status.startswith("200"):
            store.settle(id, "used", game, parameters_digest(parameters), tuple(answer))
            self._keep_page(game, answer.body)
        else:
            store.settle(id, "failed", game)
        return answer

    def _show(self, continuation, environ):
        """``__show``: the page a game waits on, again, for the browser that owns it."""
        game = continuation.game
        route = getattr(game, "route", None)
        if game is None or not self.owners.owns(game._owner, "", environ):
            return Refusal("not owner", route)
        body = self.pages.get(continuation.id)
        if body is None:
            return Refusal("page gone", route)
        return Rendered("200 OK", self.app._headers(body), body)

    def _dead(self, id, parameters, environ):
        """The answer to an id no controller waits on (any more)."""
        tombstone = self.store.tombstone(id)
        if tombstone is None:
            return Refusal("unknown", reason="unknown continuation %r..." % id[:6])
        reason = "continuation %r... is %s" % (id[:6], tombstone.state)
        game = tombstone.game() if tombstone.game is not None else None
        live_id = None
        if game is not None and game._continuation_id in self.store:
            live_id = game._continuation_id  # the game goes on: only its owner may see it
            if not self.owners.owns(game._owner, "", environ):
                live_id = False
        if tombstone.state in ("expired", "evicted", "running"):
            return Refusal(tombstone.state, tombstone.route, reason=reason)
        if (tombstone.state == "used" and tombstone.response is not None
                and tombstone.digest == parameters_digest(parameters) and live_id is not False):
            # the same form again: the same page (which carries the live id
            # only if this is the owner, or no id that is still live)
            return Rendered(*tombstone.response)
        if live_id and self.pages.get(live_id) is None:
            live_id = None  # nothing to show behind the link
        return Refusal("used", tombstone.route, live_id or None, reason=reason)
