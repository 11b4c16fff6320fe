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

The app parses (``_parameters``), routes, and hands the request to a
backend: ``MemoryContinuations`` (``_memory``) for routes kept in memory,
``DurableBackend`` (``_durable_backend``) for durable ones.  Either answers with a
page or a ``Refusal``, and the app renders that one way (``_refusals``).
"""

import ipaddress
import logging
import os
import re

from . import _clock
from ._continuations import CONTINUATION_PARAMETER, KeptPages, TimeoutException
from ._durable import code_version
from ._durable_backend import DurableBackend
from ._hub import current_hub
from ._offload import EventLoopThread, ThreadPool
from ._memory import MemoryContinuations
from ._owner import cookie_token, new_token, set_cookie_header
from ._parameters import BadRequest, parse_parameters
from ._pages import CONTENT_TYPE, SECURITY_HEADERS, error_page, page
from ._ratelog import log_refused
from ._refusals import Refusal, Rendered, render
from ._request import Failure, SessionlessRequest
from ._outage import RETRY_AFTER
from ._settings import APP_OPTIONS, validate
from ._dialects import parse_store_url

log = logging.getLogger(__name__)

__all__ = ["SessionlessApp", "SessionlessRequest", "TimeoutException", "parse_parameters"]

_UNSAFE_IN_LINK = re.compile(r"[\\\x00-\x20\x7f]")


def _trusted(address, networks):
    """True if ``address`` (text, maybe None) is in one of ``networks``."""
    if not networks or not address:
        return False
    try:
        address = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    return any(address in network for network in networks)


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
        self._durable = DurableBackend(self)  # the backend of durable routes
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
        # the pages games wait on, for their owners: one budget for both backends
        self._pages = KeptPages(self.max_kept_page_bytes)
        self._memory = MemoryContinuations(self)  # the backend of in-memory routes
        self._pool = ThreadPool(self.to_thread_workers)  # req.to_thread's threads
        self._loop = EventLoopThread()                   # req.await_'s event loop

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
        ``to_thread`` and ``await_`` calls (then give up on them, logged; queued
        ``to_thread`` calls never run), then close the durable store after its
        queued writes are committed."""
        deadline = _clock.monotonic() + timeout
        self._pool.shutdown(timeout)
        self._loop.shutdown(max(0.0, deadline - _clock.monotonic()))
        self._durable.close()
        # served again after this: a new pool and loop (each starts at its first use)
        self._pool = ThreadPool(self.to_thread_workers)
        self._loop = EventLoopThread()

    def open(self, timeout=10.0, secret_source=None):
        """Open the durable store now, from the thread starting the server (not the hub).

        ``serve()`` calls it before it listens.  Returns one line saying
        where the games are kept and where the id secret comes from
        (``secret_source`` says where ``secret=`` was read, e.g. a file); None
        if there is nothing to open, or it is open already.  Raises
        ``webcont._store.StoreUnavailable`` naming the store and the reason
        when it cannot be reached within ``timeout`` seconds.
        """
        if not self.durable_routes:
            return None
        return self._durable.open(timeout, secret_source)

    @property
    def _chains(self):
        """The ``DurableChains`` once opened, else None (for tests and benches)."""
        return self._durable.chains

    @property
    def continuations(self):
        """The ids of the live continuations, oldest first."""
        return self._memory.store.ids()

    def register_continuation(self, id, game=None):
        """Create the channel a controller waits on until a request names ``id`` (hub)."""
        return self._memory.register(id, game)

    def _hub(self):
        hub = current_hub()
        if hub is None:
            raise RuntimeError("SessionlessApp runs inside webcont's hub: serve it with"
                               " webcont.serve(app) or wrap it with webcont.gateway(app)")
        return hub

    # -- requests (hub) -------------------------------------------------------------

    def __call__(self, environ, start_response):
        self._hub()
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "POST"):
            log_refused(log, environ, "405", "method")
            return self._respond(start_response, "405 Method Not Allowed",
                                 error_page("405 Method Not Allowed",
                                            "Only GET and POST are supported.",
                                            self._start_link(environ)),
                                 [("Allow", "GET, POST")])
        try:
            parameters = parse_parameters(environ, self.max_query_bytes, self.max_fields)
        except BadRequest as bad:
            status, message = bad.args
            log_refused(log, environ, status[:3], message)
            return self._respond(start_response, status,
                                 error_page(status, message, self._start_link(environ)))
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
                return self._reply(self._durable.resume(wc, parameters, environ),
                                   environ, start_response)
            return self._reply(self._memory.resume(parameters, environ), environ, start_response)
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
            return self._reply(self._durable.start(path, parameters, environ, token),
                               environ, start_response, cookie)
        return self._reply(self._memory.start(path, controller, parameters, environ, token),
                           environ, start_response, cookie)

    def _health(self, environ, start_response):
        """``GET /healthz``: 200 while this node can reach its store (if it has one).

        How many games it holds, and why the store failed, are told only to
        the addresses of ``health_details`` (by default this machine's).
        """
        detailed = _trusted(environ.get("REMOTE_ADDR"), self.health_details)
        if self.durable_routes:
            healthy, detail = self._durable.health(detailed)
        else:
            healthy, detail = True, "in-memory"
        status = "200 OK" if healthy else "503 Service Unavailable"
        body = ("%s %s node=%s\n" % ("ok" if healthy else "unhealthy", detail,
                                     self.node or "-")).encode()
        start_response(status, self._headers(body, "text/plain; charset=utf-8"))
        return [body]

    def _start_route(self):
        """Where "Start again" goes when the refused id's route is unknown."""
        if "/" in self.routes or not self.routes:
            return "/"
        return next(iter(self.routes))

    def _start_link(self, environ):
        """Where "Start again" leads on a page refusing this request as a whole
        (400, 405, and the gateway's 413, 503 and 504): the request's path if it
        is a route (a path that is not one is whatever the client sent, and may
        read as another host), else the start route.  (any thread: reads only)"""
        path = environ.get("PATH_INFO") or "/"
        return path if path in self.routes else self._start_route()

    def _reply(self, reply, environ, start_response, extra_headers=()):
        """Answer what a backend answered: a page, a ``Rendered`` one, or a ``Refusal``."""
        if isinstance(reply, Refusal):
            return self._refuse(reply, environ, start_response, reply.reason)
        status, headers, body = reply if isinstance(reply, Rendered) else self._render(reply)
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
        """A controller's answer (a page, or ``Failure``) as a ``Rendered`` response."""
        if isinstance(reply, Failure):
            status = "500 Internal Server Error"
            document = error_page(status, "The application failed while answering this"
                                  " request. The error has been logged.")
        else:
            status = "200 OK"
            if isinstance(reply, bytes):
                reply = reply.decode("utf-8", "replace")
            document = page("" if reply is None else str(reply))
        body = document.encode("utf-8")
        return Rendered(status, self._headers(body), body)

    def _headers(self, body, content_type=CONTENT_TYPE):
        """The headers of every response the app writes itself: ``response_headers``."""
        return [("Content-Type", content_type),
                ("Content-Length", str(len(body)))] + list(self.response_headers)

    def _respond(self, start_response, status, document, extra_headers=()):
        body = document.encode("utf-8")
        start_response(status, self._headers(body) + list(extra_headers))
        return [body]

