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
ids ``_ids``, what stays in memory and expiry ``_expiry``.
"""

import concurrent.futures
import json
import logging
import os
import secrets
from collections import OrderedDict

import stackless_compat as stackless

from . import _clock
from ._continuations import parameters_digest
from ._chain import Chain, _input_of
from ._expiry import ChainsInMemory
from ._hub import current_hub
from ._ids import IdSigner, code_version
from ._owner import Owners
from ._recorder import install_patches
from ._ratelog import ThrottledLog
from ._refusals import Refusal
from ._dialects import open_store
from ._store import StoreUnavailable

log = logging.getLogger(__name__)

__all__ = ["DurableChains", "open_chains", "open_log_store", "code_version"]


def _copy(source, target):
    """Complete ``target`` as ``source`` was completed (any thread)."""
    error = source.exception()
    _settle(target, None if error is not None else source.result(), error)


def _settle(future, result=None, error=None):
    """Complete ``future`` unless the other side did first (the store or the timeout)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


class DurableChains(ChainsInMemory):
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
        self._sweeping = False
        self._on_hub = False
        self._waiting = OrderedDict()  # channel of a tasklet waiting for the store -> deadline
        self._waiting_timer = False
        install_patches()

    def on_hub(self):
        """Called (hub) at each use: the sweeps start at the first, also in a
        process that only resumes games.  (The chains may be made off the hub.)"""
        if not self._on_hub:
            self._on_hub = True
            self._schedule_sweep()

    def _wait(self, future):
        """Wait (hub tasklet) for a store ``future``, at most ``store_timeout`` seconds.

        With no outcome by then, ``StoreUnavailable`` is raised here instead
        and the store counts as failed (503 at once for a while).  The
        operation may still commit later: callers treat that as a failure of
        unknown outcome, as after a crash, and the next request replays
        whatever the log holds.
        """
        if future.done():
            return future.result()
        # the wait is on a future of our own, which the store's outcome or the
        # timeout completes, whichever comes first (the store's stays the store's)
        mine = concurrent.futures.Future()
        future.add_done_callback(lambda done: _copy(done, mine))
        # one timeout for all: the oldest waiter is always the first due, so one
        # timer and an ordered dict do (no timer per store operation)
        self._waiting[mine] = _clock.monotonic() + self.store_timeout
        if not self._waiting_timer:
            self._waiting_timer = True
            current_hub().call_at(self._waiting[mine], self._give_up_waiting)
        try:
            return current_hub().wait(mine)
        except StoreUnavailable as exc:
            if not future.done():  # it hangs: answer 503 at once until it comes back
                self.store.note_failure(str(exc))
            raise
        finally:
            self._waiting.pop(mine, None)

    def _give_up_waiting(self):
        """Hub timer: fail the waits past their deadline with ``StoreUnavailable``."""
        waiting, now = self._waiting, _clock.monotonic()
        while waiting:
            mine, deadline = next(iter(waiting.items()))
            if deadline > now:
                current_hub().call_at(deadline, self._give_up_waiting)
                return
            del waiting[mine]
            _settle(mine, error=StoreUnavailable("no answer from the store within %g s"
                                                 % self.store_timeout))
        self._waiting_timer = False

    def unavailable(self):
        """A 503 reply while the store failed less than ``RETRY_AFTER`` s ago, else None.

        Nothing is queued meanwhile: a down store costs a request no wait.
        Past that, one request at a time gets through and tries it again.
        """
        failure = self.store.failure
        if failure is not None and _clock.monotonic() - failure[1] < RETRY_AFTER:
            return _unavailable(StoreUnavailable(failure[0]))
        return None

    # -- requests ---------------------------------------------------------------

    def _new_chain_id(self, owner_token):
        """128 random bits, after this node's name: ``n0-...`` (a load balancer
        routes on that prefix; it is covered by the id's MAC), then the tag of
        the browser's owner token (``_owner``)."""
        token = secrets.token_urlsafe(16)
        base = "%s-%s" % (self.app.node, token) if self.app.node else token
        return self.owners.tagged_id(owner_token, base)

    def _commit(self, operation):
        """Commit a step's write with the others of this hub pass; its result (hub tasklet)."""
        return self._wait(self.store.commit_soon(operation, current_hub().post))

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
        if _size(_input_of(parameters)) > self.app.max_step_bytes:
            return Refusal("too big", route)
        chain = Chain(self, self._new_chain_id(owner_token), route, controller, version)
        try:
            kind, page, events = chain.start(parameters, environ)
            if kind == "final":
                return page  # answered at once: nothing to remember
            if kind != "page":
                return Refusal("error")
            self._commit(lambda store, cursor: store.op_start(
                cursor, chain.id, route, version, events, self.app.continuation_timeout))
        except BaseException as exc:  # the store failed, or the request was abandoned
            chain.unload()
            if not isinstance(exc, Exception):
                raise
            return _unavailable(exc)
        self._advanced(chain, events, page)
        self._keep(chain)
        self._check_replay(chain.id, 1, page)
        return page

    def resume_id(self, text, parameters, environ):
        """A request carrying the durable id ``text``: check it, then ``resume``."""
        parsed = self.signer.parse(text)
        if parsed is None:
            return Refusal("forged")
        down = self.unavailable()
        if down is not None:
            return down
        return self.resume(parsed[0], parsed[1], parameters, environ)

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
        size = _size(_input_of(parameters))
        if size > self.app.max_step_bytes:
            return Refusal("too big", chain.route)
        if chain.log_bytes + size > self.app.max_game_bytes:
            return Refusal("game too big", chain.route)
        return self._transition(chain, step, parameters, environ, reloaded)

    def _last_page(self, chain):
        """The page ``chain`` waits on: kept (``max_kept_page_bytes``), else rendered
        again by a replay into a scratch copy (the live one is left alone)."""
        page = self.app._pages.get(chain.id)
        if page is not None:
            return page
        try:
            record = self._wait(self.store.read(lambda store, cursor: store.op_load(cursor, chain.id)))
        except Exception as exc:
            return _unavailable(exc)
        if record is None or record.state != "live" or record.step != chain.step:
            return Refusal("page gone", chain.route)
        scratch = Chain(self, chain.id, record.route, chain.controller, chain.version)
        kind, page, _ = scratch.start(record.steps[0][0], {}, replay_steps=record.steps)
        scratch.unload()
        if kind != "ready":
            return Refusal("page gone", chain.route)
        self._keep_page(chain, page)
        return page

    def _keep_page(self, chain, page):
        self.app._pages.put(chain.id, _text(page).encode("utf-8"))

    def _stale(self, chain, current, environ):
        """The 409 for an answer to an old step; the owner gets the way on."""
        live_id = None
        if self.owners.owns_id(chain.id, environ):
            live_id = self.signer.make(chain.id, current)
        return Refusal("used", chain.route, live_id)

    def _transition(self, chain, step, parameters, environ, reloaded=False):
        chain.busy = True
        try:
            try:
                kind, page, events = chain.resume(parameters, environ)
                if kind == "unavailable":  # a call's outcome could not be recorded
                    self._drop(chain)
                    return _unavailable(page)
                if kind not in ("page", "final"):
                    self._drop(chain)
                    self._end(chain.id, "failed", step)
                    return Refusal("error")
                final = None
                if kind == "final":  # the tombstone keeps the last answer and its page
                    final = json.dumps([events[0], _text(page)], separators=(",", ":"))
                recorded = self._commit(lambda store, cursor: store.op_record(
                    cursor, chain.id, step, events, self.app.continuation_timeout,
                    final=final))
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
            self._advanced(chain, events, page)
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

    def _advanced(self, chain, events, page):
        chain.step += 1
        chain.last_digest = parameters_digest(events[0])
        chain.log_bytes += _size(events)
        self._keep_page(chain, page)
        chain.pending_calls = []
        # the store's deadline is the reference; this one stops a resume before a sweep
        chain.deadline = _clock.monotonic() + self.app.continuation_timeout

    # -- loading by replay ------------------------------------------------------

    def _load(self, chain_id, step=None, parameters=None):
        """Replay ``chain_id`` from its log; a Chain, a ``Refusal``, or the last page
        of a finished game (answered to its winning move sent again).

        One replay at a time per chain: a double submit just after a restart,
        or a request racing the sweeper, waits for the replay under way
        instead of making a second copy of the controller.
        """
        while chain_id in self._loading:
            done = stackless.channel()
            self._loading[chain_id].append(done)
            done.receive()
            chain = self.live.get(chain_id)
            if chain is not None:
                return chain
        waiting = self._loading[chain_id] = []
        try:
            return self._replay(chain_id, step, parameters)
        finally:
            del self._loading[chain_id]
            for done in waiting:
                if done.balance < 0:  # (a waiter whose request was abandoned is gone)
                    done.send(None)

    def _replay(self, chain_id, step, parameters):
        try:
            record = self._wait(self.store.read(lambda store, cursor: store.op_load(cursor, chain_id)))
        except Exception as exc:
            return _unavailable(exc)
        if record is None:
            return Refusal("unknown")
        route = record.route if record.route in self.app.durable_routes else None
        if record.state == "done":
            last_input, last_page = json.loads(record.final) if record.final else (None, None)
            if step is not None and step == record.step - 1:
                if parameters is not None and _input_of(parameters) == last_input:
                    return last_page  # the winning move again: the same page (no live id)
                return Refusal("too late", route)
            return Refusal("finished", route)
        if record.state in ("expired", "failed"):
            return Refusal(record.state, route)
        if record.state == "broken" or route is None:
            return Refusal("version", route)
        controller, version = self.app.durable_routes[record.route]
        chain = Chain(self, chain_id, record.route, controller, version)
        kind, page, _ = chain.start(record.steps[0][0], {}, replay_steps=record.steps)
        self.replays += 1
        if kind != "ready" or chain.step != record.step:
            chain.unload()
            if kind == "error":  # the controller raised while replaying (logged)
                self._end(chain_id, "failed")
                return Refusal("failed", route)
            log.warning("chain %s (version %s, now %s) diverged on replay: %s",
                        chain_id[:6], record.version, version, page)
            self._end(chain_id, "broken")
            return Refusal("version", route)
        chain.last_digest = parameters_digest(record.steps[-1][0])
        chain.log_bytes = record.size
        self._keep_page(chain, page)
        chain.pending_calls = record.calls  # of a step whose page was never recorded
        chain.deadline = _clock.monotonic() + max(record.remaining, 0.0)
        self._keep(chain)
        if record.remaining <= 0:  # past its deadline, not swept yet
            self.expire(chain_id)
            return Refusal("expired", route)
        return chain

    def _check_replay(self, chain_id, step, page):
        """Under ``webcont.testing.replay_check``: replay the chain from the store
        into a scratch copy and compare the page it renders with ``page``."""
        failures = getattr(self.app, "replay_failures", None)
        if failures is None:
            return
        try:
            record = self._wait(self.store.read(lambda store, cursor: store.op_load(cursor, chain_id)))
            controller, version = self.app.durable_routes[record.route]
            scratch = Chain(self, chain_id, record.route, controller, version)
            kind, replayed, _ = scratch.start(record.steps[0][0], {}, replay_steps=record.steps)
            scratch.unload()
        except Exception as exc:
            failures.append((chain_id, step, "replay failed: %r" % (exc,)))
            return
        if kind != "ready":
            failures.append((chain_id, step, "replay ended with %s: %s" % (kind, replayed)))
        elif replayed != page:
            failures.append((chain_id, step, "the replayed page differs from the served one"))


def _size(value):
    """UTF-8 bytes of ``value`` as the log records it (JSON)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _text(page):
    return page.decode("utf-8", "replace") if isinstance(page, bytes) else str(page)


#: seconds a failed store is left alone (503 at once, and the Retry-After of those pages)
RETRY_AFTER = 1.0

_log_unavailable = ThrottledLog(log, logging.WARNING, "durable request answered 503: %s")


def _unavailable(exc):
    _log_unavailable(exc)  # the store logged when it went down: not a line per request
    return Refusal("unavailable")


DEFAULT_STORE = "sqlite:///webcont-durable.db"


def open_log_store(app):
    """The app's log store (``store=``, else ``WEBCONT_STORE``, else a file here).

    Returns at once: the store connects on its own thread.
    """
    url = app.store_url or os.environ.get("WEBCONT_STORE")
    if not url:
        url = DEFAULT_STORE
        log.warning("durable routes and no store= given: keeping games in %s",
                    os.path.abspath(url[len("sqlite:///"):]))
    return open_store(url, wait=None)


def open_chains(app, store, wait=None, secret_source=None):
    """The durable side of ``app`` on ``store``: ``(DurableChains, description)``.

    ``wait(future)`` returns a store future's result; by default the chains'
    own ``_wait``, which only works on the hub (``SessionlessApp.open`` waits
    with a blocking one at start).  Raises ``StoreUnavailable`` when the
    store cannot answer.
    """
    chains = DurableChains(app, store, None, app.max_continuations,
                           sweep_interval=app.sweep_interval,
                           tombstone_ttl=app.tombstone_timeout,
                           store_timeout=app.store_timeout)
    secret, source = app.secret, secret_source or "given as secret="
    if not secret and os.environ.get("WEBCONT_SECRET"):
        secret, source = os.environ["WEBCONT_SECRET"], "from WEBCONT_SECRET"
    if not secret:
        secret = (wait or chains._wait)(store.submit(
            lambda s, cursor: s.op_secret(cursor, secrets.token_hex(32))))
        source = "kept in the store"
    chains.signer, chains.owners = IdSigner(secret), Owners(secret)
    if source != "kept in the store":  # a secret kept there always fits its games
        fingerprint = chains.signer.fingerprint()
        others = (wait or chains._wait)(store.submit(
            lambda s, cursor: s.op_fingerprint(cursor, fingerprint)))
        if others:
            log.warning("THE ID SECRET DOES NOT FIT THIS STORE: %d game(s) waiting in %s were"
                        " started with another secret, and every link to them will answer"
                        " 404 with this one (id secret %s). Start with the secret they were"
                        " made with (the same --secret-file, secret= or WEBCONT_SECRET)"
                        " unless losing them is what you want", others, store.where, source)
    return chains, "durable games on: kept in %s; id secret %s" % (store.where, source)
