"""``SessionlessApp``: controllers that span several requests, as in the seed.

A controller is a plain function ``controller(req)``.  ``req.continue_(page)``
answers the current request with ``page`` and suspends the controller until
a request carrying ``req.continuation_id`` (the ``__wc`` parameter) arrives;
then ``req.parameters`` holds that request's parameters and the function
goes on.  Its return value is the last page.  All of this runs on the hub
(``_hub``), one tasklet per controller.

Compared with the seed (the original Python 2 program, ported with only
the allowed edits in ``tests/seed_app.py``), ids are unguessable and single
use, expiry runs on a timer in O(log n), the number of live continuations is
capped, bad input and unknown ids get clear pages, and a controller that
raises gets a 500 page instead of a hanging request.
"""

import ipaddress
import logging
import os
import re

import stackless_compat as stackless

from . import _clock
from ._continuations import (CONTINUATION_PARAMETER, ContinuationStore, KeptPages,
                             TimeoutException, Tombstone,
                             mint_id, parameters_digest)
from ._durable import RETRY_AFTER, _unavailable, code_version, open_chains, open_log_store
from ._hub import current_hub
from ._offload import EventLoopThread, ThreadPool
from ._owner import Owners, cookie_token, new_token, set_cookie_header
from ._parameters import BadRequest, parse_parameters
from ._pages import CONTENT_TYPE, SECURITY_HEADERS, error_page, page
from ._ratelog import ThrottledLog, log_refused
from ._refusals import Refusal, render
from ._settings import APP_OPTIONS, validate
from ._dialects import parse_store_url
from ._store import StoreUnavailable

log = logging.getLogger(__name__)

__all__ = ["SessionlessApp", "SessionlessRequest", "TimeoutException", "parse_parameters"]

_UNSAFE_IN_LINK = re.compile(r"[\\\x00-\x20\x7f]")


class SessionlessRequest:
    """One controller run, spanning as many HTTP requests as it continues.

    The seed's API: ``continue_(data)``, ``parameters``, ``continuation_id``;
    calling the request runs the controller.  ``environ`` is the WSGI
    environ of the request being answered.
    """

    # slots keep a suspended game small; "__dict__" still lets controllers
    # and subclasses add attributes (the dict is only made when they do)
    __slots__ = ("_app", "_controller", "_channel", "parameters", "environ",
                 "_continuation_id", "route", "_owner", "__dict__", "__weakref__")

    def __init__(self, app, channel, controller, parameters, environ=None, route=None,
                 owner=None):
        self._app = app
        self._controller = controller
        self._channel = channel  # where the current request waits for its page; None between requests
        self.parameters = parameters
        self.environ = environ
        self._continuation_id = mint_id()
        self.route = route    # the route that started this game (links of refusal pages)
        self._owner = owner   # the tag of the browser that started it (_owner)

    @property
    def continuation_id(self):
        """The id of the next continuation: put it in forms and links as ``__wc``."""
        return self._continuation_id

    def continue_(self, data):
        """Answer the current request with ``data`` and wait for the next one.

        Returns when a request naming ``continuation_id`` arrives, with
        ``parameters`` and ``environ`` of that request.  Raises
        ``TimeoutException`` if none comes within the app's
        ``continuation_timeout``.  While suspended the request holds nothing of
        the request just answered (``parameters`` is empty, ``environ`` None).
        """
        if self._channel is None:
            raise RuntimeError("continue_() called with no request waiting for a page")
        # register before answering: the next request can never miss it
        waiting = self._app.register_continuation(self._continuation_id, self)
        self._answer(data)
        # Drop the answered request and its page: with up to max_continuations
        # suspended controllers, each keeping its last request's body, parsed
        # fields, headers and page, a flood of big requests would pin hundreds
        # of megabytes (the page alone is ~0.5 KiB of a suspended game).
        self.parameters, self.environ = {}, None
        del data
        self.parameters, self._channel, self.environ = waiting.receive()
        self._continuation_id = mint_id()

    def to_thread(self, fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` in the app's thread pool; return its result.

        Only this controller waits meanwhile: the hub goes on answering
        every other request.  What ``fn`` raises is raised here.  Calls
        queue when all ``to_thread_workers`` threads are busy.  ``fn`` runs
        in another thread: it must not use tasklets or channels (docs/blocking.md).
        """
        return self._app._pool.call(fn, args, kwargs)

    def await_(self, coro):
        """Run the coroutine ``coro`` on the app's asyncio event loop; return its result.

        As ``to_thread``, but for async code: one loop, in a thread of its
        own, is shared by every controller (cheaper than
        ``to_thread(asyncio.run, coro)``, which makes a loop per call).
        """
        return self._app._loop.call(coro)

    def _answer(self, data):
        channel, self._channel = self._channel, None
        if channel.closing:
            # Nobody waits for this page any more: the request was abandoned
            # (see _await_page).  Sending would block this controller forever.
            log.warning("controller %s answered a request that was abandoned; page dropped",
                        _name(self._controller))
            return
        channel.send(data)

    def __call__(self):
        """Run the controller; its return value is the final page."""
        try:
            result = self._controller(self)
            if self._channel is not None:
                self._answer(result)
        except TimeoutException:
            log.debug("controller %r timed out", self._controller)
        except Exception:
            log.exception("controller %s raised", _name(self._controller))
            if self._channel is not None:
                self._answer(_Failure())
        finally:
            if self._channel is not None:  # killed while a request waited
                self._answer(_Failure())


def _trusted(address, networks):
    """True if ``address`` (text, maybe None) is in one of ``networks``."""
    if not networks or not address:
        return False
    try:
        address = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


def _name(controller):
    return getattr(controller, "__name__", None) or repr(controller)


class _Failure:
    """Sent instead of a page when the controller failed."""


def _await_page(reply, controller):
    """Wait on ``reply`` for the page of ``controller`` (a tasklet, or None).

    If this request tasklet is killed meanwhile (its request was abandoned:
    no answer within ``request_timeout``, or the server is stopping), the
    controller is killed too, so its ``finally:`` runs now instead of it
    hanging on to a game that nobody can ever reach again.
    """
    try:
        return reply.receive()
    except stackless.TaskletExit:
        reply.close()  # tells the controller's _answer() that nobody will read its page
        if controller is not None and controller.alive and controller is not stackless.getcurrent():
            try:
                controller.kill()
            except Exception:
                log.exception("killing the controller of an abandoned request")
        raise


class SessionlessApp:
    """A WSGI app whose controllers live across requests.

    ``SessionlessApp(routes=None, store=None, secret=None, node=None, **options)``;
    ``app.route(path, controller, durable=False, version=None)``
    (or as a decorator ``@app.route(path)``) maps a path to a controller.
    Serve it with ``webcont.serve(app)`` or under ``webcont.gateway(app)``.

    Options (see ``_settings.APP_OPTIONS``): ``continuation_timeout``
    (seconds, 300), ``max_continuations`` (10000, the oldest is expired
    first), ``max_query_bytes`` (8192), ``max_fields`` (100),
    ``tombstone_timeout`` (600 s: how long used and expired ids are
    remembered), ``max_replay_bytes`` (16 MiB of answered pages kept for
    double submissions), ``max_kept_page_bytes`` (16 MiB of the pages
    games last answered, for "continue where you left off"),
    ``max_step_bytes`` (16 KiB) and ``max_game_bytes`` (256 KiB) of input a
    durable game records per step and in all, ``health_details`` (who
    ``/healthz`` tells how many games are in memory: ``"127.0.0.0/8,::1"``,
    a list of networks, ``"always"`` or ``"never"``), ``sweep_interval`` (5 s between the durable
    store's expiry sweeps), ``store_timeout`` (5 s a durable request waits
    for the store before it answers 503).  ``store``, ``secret`` and ``node`` are for
    durable routes (``docs/durability.md``, ``docs/deploy.md``).
    Subclasses may also set the options as class attributes, as the seed
    did, and may change ``response_headers`` (added to every page;
    ``docs/security.md`` says why each is there).
    """

    continuation_timeout = APP_OPTIONS["continuation_timeout"][1]
    max_continuations = APP_OPTIONS["max_continuations"][1]
    max_query_bytes = APP_OPTIONS["max_query_bytes"][1]
    max_fields = APP_OPTIONS["max_fields"][1]
    tombstone_timeout = APP_OPTIONS["tombstone_timeout"][1]
    max_replay_bytes = APP_OPTIONS["max_replay_bytes"][1]
    max_kept_page_bytes = APP_OPTIONS["max_kept_page_bytes"][1]
    max_step_bytes = APP_OPTIONS["max_step_bytes"][1]
    max_game_bytes = APP_OPTIONS["max_game_bytes"][1]
    health_details = APP_OPTIONS["health_details"][1]
    sweep_interval = APP_OPTIONS["sweep_interval"][1]
    to_thread_workers = APP_OPTIONS["to_thread_workers"][1]
    store_timeout = APP_OPTIONS["store_timeout"][1]
    response_headers = SECURITY_HEADERS

    def __init__(self, routes=None, store=None, secret=None, node=None, **options):
        if store is not None:
            parse_store_url(store)  # a bad URL fails here, not at the first durable request
        self.store_url = store
        self.secret = secret
        self.node = node or os.environ.get("WEBCONT_NODE") or None
        if self.node is not None:
            if not re.fullmatch(r"[a-z0-9]{1,16}", self.node):
                raise ValueError("node names are 1 to 16 lowercase letters or digits: %r"
                                 % (self.node,))
            # says which process answered (behind a load balancer, for logs and tests)
            self.response_headers = list(self.response_headers) + [("X-Webcont-Node", self.node)]
        self.durable_routes = {}  # path -> (controller, code version)
        self._log_store = None    # the durable routes' LogStore, made once
        self._chains = None       # DurableChains, by open() or on first use
        defaults = {name: getattr(self, name) for name in APP_OPTIONS}
        defaults.update(options)
        for name, value in validate(defaults, APP_OPTIONS).items():
            setattr(self, name, value)
        if self.max_step_bytes > self.max_game_bytes:
            raise ValueError("max_step_bytes (%d) is more than max_game_bytes (%d)"
                             % (self.max_step_bytes, self.max_game_bytes))
        self.routes = {}
        for path, controller in (routes or {}).items():
            self.route(path, controller)
        self._store = ContinuationStore(self.max_continuations,
                                        tombstone_ttl=self.tombstone_timeout,
                                        max_replay_bytes=self.max_replay_bytes)
        self._pages = KeptPages(self.max_kept_page_bytes)  # live id -> the page carrying it
        # in-memory games die with the process: a per-process key will do
        self._owners = Owners()
        self._pool = ThreadPool(self.to_thread_workers)  # req.to_thread's threads
        self._loop = EventLoopThread()                   # req.await_'s event loop
        self._expiry_at = None  # when the hub timer for the next expiry is due
        self._log_eviction = ThrottledLog(log, logging.WARNING,
                                          "continuation(s) evicted: more than %d live")

    def route(self, path, controller=None, durable=False, version=None):
        """Serve ``controller`` at ``path``; without ``controller``, a decorator.

        ``durable=True`` keeps its games in the store (``store=`` of the app):
        they survive restarts and move between processes by replaying their
        event log (``_durable``).  ``version`` names the code version; by
        default it is a hash of the controller's module source.
        """
        if controller is None:
            return lambda function: self.route(path, function, durable, version) or function
        if not path.startswith("/") or path.startswith("//") or _UNSAFE_IN_LINK.search(path):
            # refusal pages link to routes: a route must never read as another host
            raise ValueError("route paths start with one '/' and have no backslash, space"
                             " or control character: %r" % (path,))
        if not callable(controller):
            raise TypeError("controller must be callable, not %r" % (controller,))
        self.routes[path] = controller
        if durable:
            self.durable_routes[path] = (controller, code_version(controller, version))
        else:
            self.durable_routes.pop(path, None)
            if self.node is not None:
                log.warning("route %s is not durable, but this is node %s of a cluster: its"
                            " games live in this process only, and a load balancer may send"
                            " their next step elsewhere (404)", path, self.node)
        return None

    def close(self, timeout=10.0):
        """Release what the app holds: wait up to ``timeout`` s in all for running
        ``to_thread`` and ``await_`` calls (then give up on them, logged), then
        close the durable store after its queued writes are committed."""
        deadline = _clock.monotonic() + timeout
        self._pool.shutdown(timeout)
        self._loop.shutdown(max(0.0, deadline - _clock.monotonic()))
        if self._log_store is not None:
            self._log_store.close()

    def open(self, timeout=10.0, secret_source=None):
        """Open the durable store now, from the thread starting the server (not the hub).

        ``serve()`` calls it before it listens.  Returns one line saying
        where the games are kept and where the id secret comes from
        (``secret_source`` says where ``secret=`` was read, e.g. a file); None
        if there is nothing to open, or it is open already.  Raises
        ``webcont._store.StoreUnavailable`` naming the store and the reason
        when it cannot be reached within ``timeout`` seconds.
        """
        if not self.durable_routes or self._chains is not None:
            return None
        store = self._store_handle()
        store.wait_ready(timeout)

        def wait(future):
            try:
                return future.result(timeout)
            except TimeoutError:
                raise StoreUnavailable("%s: no answer within %g s"
                                       % (store.where, timeout)) from None
        self._chains, description = open_chains(self, store, wait, secret_source)
        return description

    def _store_handle(self):
        if self._log_store is None:
            self._log_store = open_log_store(self)
        return self._log_store

    def _durable(self):
        """The durable chains, opened on first use if ``open()`` was not called (hub).

        Never blocks the hub: it waits in the request's tasklet, and raises
        ``StoreUnavailable`` at once while the store is known to be down.
        """
        chains = self._chains
        if chains is None:
            store = self._store_handle()
            failure = store.failure
            if failure is not None and _clock.monotonic() - failure[1] < RETRY_AFTER:
                raise StoreUnavailable(failure[0])
            chains, description = open_chains(self, store)
            if self._chains is None:  # (another request may have opened it meanwhile)
                self._chains = chains
                log.info("%s", description)
            chains = self._chains
        chains.on_hub()
        return chains

    def _durable_call(self, method):
        """``method(DurableChains)``, or a 503 reply if the store cannot be opened."""
        try:
            chains = self._durable()
        except StoreUnavailable as exc:
            return _unavailable(exc)
        return method(chains)

    @property
    def continuations(self):
        """The ids of the live continuations, oldest first."""
        return self._store.ids()

    # -- continuations (hub) -----------------------------------------------------

    def register_continuation(self, id, game=None):
        """Create the channel a controller waits on until a request names ``id``."""
        channel = stackless.channel()
        evicted = self._store.add(id, channel, self.continuation_timeout, game)
        if evicted:
            # one per new game during a flood: throttled, or it floods the log too
            self._log_eviction(self._store.max_live)
            self._hub().call_soon(lambda: self._expire(evicted))
        self._schedule_expiry()
        return channel

    def _hub(self):
        hub = current_hub()
        if hub is None:
            raise RuntimeError("SessionlessApp runs inside webcont's hub: serve it with"
                               " webcont.serve(app) or wrap it with webcont.gateway(app)")
        return hub

    def _schedule_expiry(self):
        due = self._store.next_due()
        if due is not None and (self._expiry_at is None or due < self._expiry_at):
            self._expiry_at = due
            self._hub().call_at(due, self._expiry_timer)

    def _expiry_timer(self):
        self._expiry_at = None
        try:
            self._expire(self._store.expire_due())
            self._store.forget_due()
        finally:
            self._schedule_expiry()  # even after a failure: expiry must not stop for good

    def _expire(self, continuations):
        for continuation in continuations:
            self._pages.pop(continuation.id)
            channel = continuation.channel
            if channel.balance < 0:  # the controller is still waiting there
                try:
                    channel.send_exception(TimeoutException, "continuation expired")
                except Exception:
                    log.exception("expiring continuation %s", continuation.id[:6])

    # -- requests (hub) -------------------------------------------------------------

    def __call__(self, environ, start_response):
        self._hub()
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "POST"):
            log_refused(log, environ, "405", "method")
            return self._respond(start_response, "405 Method Not Allowed",
                                 error_page("405 Method Not Allowed",
                                            "Only GET and POST are supported."),
                                 [("Allow", "GET, POST")])
        try:
            parameters = parse_parameters(environ, self.max_query_bytes, self.max_fields)
        except BadRequest as bad:
            status, message = bad.args
            log_refused(log, environ, status[:3], message)
            return self._respond(start_response, status, error_page(status, message))
        path = environ.get("PATH_INFO", "/") or "/"
        if path == "/healthz" and "/healthz" not in self.routes:
            return self._health(environ, start_response)
        if path == "/favicon.ico" and path not in self.routes:
            # every browser asks for it with every new page: a 404 and a log
            # line each time is noise; "no icon", cached for a day, is not
            start_response("204 No Content", [("Cache-Control", "max-age=86400")] + [
                header for header in self.response_headers if header[0] != "Cache-Control"])
            return [b""]
        if CONTINUATION_PARAMETER in parameters:
            if self.durable_routes and "." in parameters[CONTINUATION_PARAMETER][0]:
                wc = parameters[CONTINUATION_PARAMETER][0]
                return self._reply(self._durable_call(
                    lambda chains: chains.resume_id(wc, parameters, environ)),
                    environ, start_response)
            return self._resume(parameters, environ, start_response)
        controller = self.routes.get(path)
        if controller is None:
            return self._refuse(Refusal("no route"), environ, start_response)
        # the browser that starts a game is the one shown its live id again (_owner)
        token = cookie_token(environ)
        cookie = []
        if token is None:
            token = new_token()
            cookie = [set_cookie_header(token, environ)]
        if path in self.durable_routes:
            return self._reply(self._durable_call(
                lambda chains: chains.start(path, parameters, environ, token)),
                environ, start_response, cookie)
        channel = stackless.channel()
        request = SessionlessRequest(self, channel, controller, parameters, environ, path,
                                     self._owners.tag(token))
        task = self._hub().spawn(request)
        status, headers, body = self._render(_await_page(channel, task))
        self._keep_page(request, body)
        start_response(status, headers + cookie)
        return [body]

    def _keep_page(self, game, body):
        """Keep ``body`` if ``game`` waits on the id it carries (for ``__show``)."""
        if game is not None and game._continuation_id in self._store:
            self._pages.put(game._continuation_id, body)

    def _resume(self, parameters, environ, start_response):
        # The id alone is the capability: whoever presents it makes the next
        # move, whatever the path (docs/security.md).
        id = parameters[CONTINUATION_PARAMETER][0]
        store = self._store
        if "__show" in parameters and id in store:
            return self._show(store.get(id), environ, start_response)
        continuation = store.take(id)
        if continuation is not None and continuation.channel.balance >= 0:
            store.remember(id, Tombstone("expired", game=continuation.game))  # its controller is gone
            continuation = None
        if continuation is None:
            return self._dead_continuation(id, parameters, environ, start_response)
        game = continuation.game
        self._pages.pop(id)
        controller = continuation.channel.queue  # the tasklet waiting there
        channel = stackless.channel()
        continuation.channel.send((parameters, channel, environ))
        try:
            reply = _await_page(channel, controller)
        except stackless.TaskletExit:  # abandoned: the controller is gone
            store.remember(id, Tombstone("failed", game=game))
            raise
        status, headers, body = self._render(reply)
        if status.startswith("200"):
            store.remember(id, Tombstone("used", parameters_digest(parameters),
                                         (status, headers, body), game))
            self._keep_page(game, body)
        else:
            store.remember(id, Tombstone("failed", game=game))
        start_response(status, headers)
        return [body]

    def _show(self, continuation, environ, start_response):
        """``__show``: the page a game waits on, again, for the browser that owns it."""
        game = continuation.game
        route = getattr(game, "route", None)
        if game is None or not self._owners.owns(game._owner, "", environ):
            return self._refuse(Refusal("not owner", route), environ, start_response)
        body = self._pages.get(continuation.id)
        if body is None:
            return self._refuse(Refusal("page gone", route), environ, start_response)
        start_response("200 OK", self._headers(body))
        return [body]

    def _dead_continuation(self, id, parameters, environ, start_response):
        tombstone = self._store.tombstone(id)
        if tombstone is None:
            return self._refuse(Refusal("unknown"), environ, start_response,
                                "unknown continuation %r..." % id[:6])
        reason = "continuation %r... is %s" % (id[:6], tombstone.state)
        game = tombstone.game() if tombstone.game is not None else None
        live_id = None
        if game is not None and game._continuation_id in self._store:
            live_id = game._continuation_id  # the game goes on: only its owner may see it
            if not self._owners.owns(game._owner, "", environ):
                live_id = False
        if tombstone.state in ("expired", "evicted", "running"):
            return self._refuse(Refusal(tombstone.state, tombstone.route), environ,
                                start_response, reason)
        if (tombstone.state == "used" and tombstone.response is not None
                and tombstone.digest == parameters_digest(parameters) and live_id is not False):
            # the same form again: the same page (which carries the live id
            # only if this is the owner, or no id that is still live)
            status, headers, body = tombstone.response
            start_response(status, headers)
            return [body]
        if live_id and self._pages.get(live_id) is None:
            live_id = None  # nothing to show behind the link
        return self._refuse(Refusal("used", tombstone.route, live_id or None), environ,
                            start_response, reason)

    def _health(self, environ, start_response):
        """``GET /healthz``: 200 while this node can reach its store (if it has one).

        How many games it holds, and why the store failed, are told only to
        the addresses of ``health_details`` (by default this machine's).
        """
        detailed = _trusted(environ.get("REMOTE_ADDR"), self.health_details)
        if self.durable_routes:
            try:
                healthy, detail = self._durable().health(detailed)
            except StoreUnavailable as exc:
                healthy, detail = False, ("store unreachable: %s" % (exc,) if detailed
                                          else "store unreachable")
        else:
            healthy, detail = True, "in-memory"
        status = "200 OK" if healthy else "503 Service Unavailable"
        body = ("%s %s node=%s\n" % ("ok" if healthy else "unhealthy", detail,
                                     self.node or "-")).encode()
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))] + list(self.response_headers))
        return [body]

    def _start_route(self):
        """Where "Start again" goes when the refused id's route is unknown."""
        if "/" in self.routes or not self.routes:
            return "/"
        return next(iter(self.routes))

    def _reply(self, reply, environ, start_response, extra_headers=()):
        """Answer what ``DurableChains`` answered: a page, or a ``Refusal``."""
        if isinstance(reply, Refusal):
            return self._refuse(reply, environ, start_response)
        status, headers, body = self._render(reply)
        start_response(status, headers + list(extra_headers))
        return [body]

    def _refuse(self, refusal, environ, start_response, reason=None):
        status = refusal.status
        if status[0] == "4":  # the client's doing: one INFO line (5xx are logged where they happen)
            log_refused(log, environ, status[:3], reason or refusal.kind)
        status, document = render(refusal, environ, self._start_route(), {
            "timeout": self.continuation_timeout, "cap": self.max_continuations,
            "step": self.max_step_bytes, "game": self.max_game_bytes})
        extra = []
        if refusal.kind == "unavailable":  # the store: ask again soon, the game is safe
            extra = [("Retry-After", "%d" % max(1, RETRY_AFTER))]
        return self._respond(start_response, status, document, extra)

    def _render(self, reply):
        if isinstance(reply, _Failure):
            status = "500 Internal Server Error"
            document = error_page(status, "The application failed while answering this"
                                  " request. The error has been logged.")
        else:
            status = "200 OK"
            if isinstance(reply, bytes):
                reply = reply.decode("utf-8", "replace")
            document = page("" if reply is None else str(reply))
        body = document.encode("utf-8")
        return status, self._headers(body), body

    def _headers(self, body):
        return [("Content-Type", CONTENT_TYPE),
                ("Content-Length", str(len(body)))] + list(self.response_headers)

    def _respond(self, start_response, status, document, extra_headers=()):
        body = document.encode("utf-8")
        start_response(status, [("Content-Type", CONTENT_TYPE),
                                ("Content-Length", str(len(body)))]
                       + list(self.response_headers) + list(extra_headers))
        return [body]

