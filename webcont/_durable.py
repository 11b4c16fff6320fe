"""Durable continuations: games that survive a restart, by deterministic replay.

A durable chain is (controller, code version, ordered event log).  Each
transition, from one suspension of the controller to the next, appends one
step to the log: the request input and every nondeterministic value the
controller drew (``_recorder``).  The step is committed (compare-and-set on
the chain's step counter; by the hub itself on SQLite, by the store's
writer thread otherwise, ``_store``) before the page leaves the process.  The controller's tasklet is only a cache: a chain that
is not in memory (after a restart, a failover, or when the in-memory cap
unloaded it) is replayed lazily from its log, in one store query, by running
the controller again and feeding it the recorded inputs and draws.

Ids are ``<chain>.<step>.<mac>``: a chain id (128 random bits and the tag
binding the game to the browser that started it, ``_owner``), the step the
next request answers, and a MAC of both keyed with the server secret
(128-bit keyed BLAKE2b), so ids are
unguessable, unforgeable, and the same on every replay (a replay re-renders
the identical page).  A request answers a step once: the same input again
gets the same page, a different one a 409 page; only for the browser that
started the game do these carry the current step's id.

Determinism rules for durable controllers: draw randomness and time through
``req.randint/random/choice/now/uuid4`` (or module-level ``random``/``time``
functions, which are routed there while the controller runs); keep side
effects out of the replay, through ``req.to_thread`` (its outcome is
recorded once, ``_calls``); use ``req.patched(name)`` to branch
deliberately when the code changes.  The chain in memory is ``_chain``,
ids ``_ids``, what stays in memory and expiry ``_expiry``, loading by
replay ``_replay``, opening the store for an app ``_durable_backend``.
"""

import json
import logging
import secrets
from collections import OrderedDict

from . import _clock
from ._continuations import parameters_digest
from ._chain import Chain, _input_of
from ._expiry import ChainsInMemory
from ._hub import WaitTimedOut, current_hub
from ._ids import code_version
from ._outage import recent_failure, unavailable as _unavailable
from ._owner import Owners
from ._recorder import install_patches
from ._refusals import Refusal
from ._replay import ChainsFromLog, _text
from ._operations import RecordStep, log_json
from ._store import StoreUnavailable

log = logging.getLogger(__name__)

__all__ = ["DurableChains", "code_version"]


class DurableChains(ChainsInMemory, ChainsFromLog):
    """The durable chains of one app: in-memory cache, store, ids, expiry.

    Used only on the hub.  ``live`` holds at most ``max_live`` chains in
    memory, least recently used first; past that the oldest is unloaded
    (not destroyed: its log stays and it is replayed when next needed).
    """

    def __init__(self, app, store, signer, max_live, sweep_interval=5.0,
                 tombstone_ttl=86400.0, owners=None, store_timeout=5.0):
        self.app = app
        self.store = store
        self.signer = signer
        self.owners = owners or Owners()
        self.max_live = max_live
        self.sweep_interval = sweep_interval
        self.tombstone_ttl = tombstone_ttl
        self.live = OrderedDict()
        self.replays = 0  # how many chains were loaded from the log (for tests)
        self._loading = {}  # chain id -> channels of the tasklets waiting for its replay
        self.store_timeout = store_timeout
        self._sweep_hub = None  # the hub a sweep is scheduled on (a new hub starts its own)
        install_patches()

    def on_hub(self):
        """Called (hub) at each use: the sweeps start at the first, also in a
        process that only resumes games, and again on a new hub when the app
        is served again.  (The chains may be made off the hub.)"""
        if self._sweep_hub is not current_hub():
            self._schedule_sweep()

    def _wait(self, future, hub=None):
        """Wait (hub tasklet) for a store ``future``, at most ``store_timeout`` seconds.

        With no outcome by then, ``StoreUnavailable`` is raised here instead
        and the store counts as failed (503 at once for a while).  The
        operation may still commit later: callers treat that as a failure of
        unknown outcome, as after a crash, and the next request replays
        whatever the log holds.
        """
        try:
            return (hub or current_hub()).wait(future, self.store_timeout)
        except WaitTimedOut:
            message = "no answer from the store within %g s" % self.store_timeout
            if not future.done():  # it hangs: answer 503 at once until it comes back
                self.store.note_failure(message)
            raise StoreUnavailable(message) from None

    def unavailable(self):
        """A 503 reply while the store failed less than ``RETRY_AFTER`` s ago, else None
        (``_outage``)."""
        down = recent_failure(self.store)
        return None if down is None else _unavailable(StoreUnavailable(down))

    # -- requests ---------------------------------------------------------------

    def _new_chain_id(self, owner_token):
        """128 random bits, after this node's name: ``n0-...`` (a load balancer
        routes on that prefix; it is covered by the id's MAC), then the tag of
        the browser's owner token (``_owner``)."""
        token = secrets.token_urlsafe(16)
        base = "%s-%s" % (self.app.node, token) if self.app.node else token
        return self.owners.tagged_id(owner_token, base)

    def _commit(self, operation):
        """Commit a step's write with the others of this hub pass, or at once if the
        pass has no other; its result (hub tasklet)."""
        hub = current_hub()
        future = self.store.commit_soon(operation, hub.post, hub.alone())
        if future.done():  # committed at once (the pass's only write)
            return future.result()
        return self._wait(future, hub)

    def health(self, detailed=True):
        """``(reachable, detail)`` of the store: a write through the writer thread
        (a store that can only read cannot record a step); the error and the
        count of games in memory only if ``detailed``."""
        failure = self.store.failure
        if self.unavailable() is not None:
            return False, ("store unreachable: %s" % (failure[0],) if detailed
                           else "store unreachable")
        try:
            self._wait(self.store.submit(lambda store, cursor: store.op_touch(cursor)))
        except Exception as exc:
            return False, "store unreachable: %s" % (exc,) if detailed else "store unreachable"
        if not detailed:
            return True, "store ok"
        return True, "store ok, %d game(s) in memory" % len(self.live)

    def start(self, route, parameters, environ, owner_token):
        """A new chain for ``route``, owned by the browser with ``owner_token``:
        run it to its first page and record step 0.

        Returns the page, or a ``Refusal``.
        """
        down = self.unavailable()
        if down is not None:
            return down
        controller, version = self.app.durable_routes[route]
        request_input = _input_of(parameters)
        input_text = log_json(request_input)
        if _utf8_len(input_text) > self.app.max_step_bytes:
            return Refusal("too big", route)
        chain = Chain(self, self._new_chain_id(owner_token), route, controller, version)
        try:
            kind, page, events = chain.start(parameters, environ, request_input=request_input)
            if kind == "final":
                return page  # answered at once: nothing to remember
            if kind != "page":
                return Refusal("error")
            text = _events_text(input_text, events)
            self._commit(lambda store, cursor: store.op_start(
                cursor, chain.id, route, version, events, self.app.continuation_timeout,
                text=text))
        except BaseException as exc:  # the store failed, or the request was abandoned
            chain.unload()
            if not isinstance(exc, Exception):
                raise
            return _unavailable(exc)
        self._advanced(chain, events, page, text)
        self._keep(chain)
        self._check_replay(chain.id, 1, page)
        return page

    def resume_id(self, text, parameters, environ):
        """A request carrying the durable id ``text``: check it, then ``resume``."""
        parsed = self.signer.parse(text, self._issued)
        if parsed is None:
            return Refusal("forged")
        if self.store.failure is not None:  # (a call less a step while it is up)
            down = self.unavailable()
            if down is not None:
                return down
        return self.resume(parsed[0], parsed[1], parameters, environ)

    def _issued(self, chain_id):
        """The last id made for ``chain_id`` in memory, or None (``IdSigner.parse``)."""
        chain = self.live.get(chain_id)
        return None if chain is None else chain.issued

    def resume(self, chain_id, step, parameters, environ, reloaded=False):
        """A request answering step ``step`` of ``chain_id``: the page, or a ``Refusal``.

        A used or stale id never leads to the live one, except for the
        browser that started the game (``_owner``): the duplicate's page,
        ``__show`` and the 409's link all carry the current step's id.
        """
        chain = self.live.get(chain_id)
        if chain is not None and step > chain.step:
            self._drop(chain)  # another process moved it on: our copy is stale
            chain = None
        if chain is None:
            chain = self._load(chain_id, step, parameters)
            if not isinstance(chain, Chain):
                return chain
        self.live.move_to_end(chain_id)
        if not chain.busy and self._expired(chain):
            return Refusal("expired", chain.route)
        if "__show" in parameters and step == chain.step:
            if not self.owners.owns_id(chain_id, environ):
                return Refusal("not owner", chain.route)
            return self._last_page(chain)
        if chain.busy:
            return Refusal("running", chain.route)
        if (step == chain.step - 1
                and parameters_digest(_input_of(parameters)) == chain.last_digest):
            if self.owners.owns_id(chain_id, environ):
                return self._last_page(chain)  # the same answer again: the same page
            return Refusal("used", chain.route)  # that page holds the live id
        if step != chain.step:
            return self._stale(chain, chain.step, environ)
        # the input copied and written as JSON once: for the limits, then the log
        request_input = _input_of(parameters)
        input_text = log_json(request_input)
        size = _utf8_len(input_text)
        if size > self.app.max_step_bytes:
            return Refusal("too big", chain.route)
        if chain.log_bytes + size > self.app.max_game_bytes:
            return Refusal("game too big", chain.route)
        return self._transition(chain, step, parameters, environ, request_input, input_text,
                                reloaded)

    def _stale(self, chain, current, environ):
        """The 409 for an answer to an old step; the owner gets the way on."""
        live_id = None
        if self.owners.owns_id(chain.id, environ):
            live_id = self.signer.make(chain.id, current)
        return Refusal("used", chain.route, live_id)

    def _transition(self, chain, step, parameters, environ, request_input, input_text,
                    reloaded=False):
        chain.busy = True
        try:
            try:
                kind, page, events = chain.resume(parameters, environ, request_input)
                if kind == "unavailable":  # a call's outcome could not be recorded
                    self._drop(chain)
                    return _unavailable(page)
                if kind not in ("page", "final"):
                    self._drop(chain)
                    self._end(chain.id, "failed", step)
                    return Refusal("error")
                final = text = None
                if kind == "final":  # the tombstone keeps the last answer and its page
                    final = json.dumps([events[0], _text(page)], separators=(",", ":"))
                else:
                    text = _events_text(input_text, events)
                recorded = self._commit(RecordStep(chain.id, step, events, final, text))
            except BaseException as exc:
                # the store failed, or this request was abandoned (killed) while the
                # commit was under way: memory may be ahead of the log, so it goes,
                # and the next request replays whatever the log ends up holding
                self._drop(chain)
                if not isinstance(exc, Exception):
                    raise
                return _unavailable(exc)
            if not recorded:  # another process answered this step first
                self._drop(chain)
                if not reloaded:  # from the log: the same answer gets the same page
                    return self.resume(chain.id, step, parameters, environ, reloaded=True)
                return self._stale(chain, step + 1, environ)
            if final is not None:
                self.live.pop(chain.id, None)
                self.app._pages.pop(chain.id)
                return page
            self._advanced(chain, events, page, text)
            self._check_replay(chain.id, chain.step, page)
            return page
        finally:
            chain.busy = False

    def _expired(self, chain):
        """True (and the chain expired) if ``chain`` outlived its deadline unswept."""
        if _clock.monotonic() < chain.deadline:
            return False
        self.expire(chain.id)
        return True

    def _advanced(self, chain, events, page, text):
        """``chain`` recorded ``events`` (JSON ``text``) and answers ``page``."""
        chain.step += 1
        chain.last_digest = parameters_digest(events[0])
        chain.log_bytes += _utf8_len(text)
        self._keep_page(chain, page)
        chain.pending_calls = []
        # the store's deadline is the reference; this one stops a resume before a sweep
        chain.deadline = _clock.monotonic() + self.app.continuation_timeout


def _events_text(input_text, events):
    """``log_json(events)`` of a step's ``[input, draws]``, from its input's JSON."""
    draws = events[1]
    return "[%s,%s]" % (input_text, log_json(draws) if draws else "[]")


def _utf8_len(text):
    """UTF-8 bytes of ``text`` (no copy when it is ASCII)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))
