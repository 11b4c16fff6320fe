"""Server-thread code: read the body, hand the request to the hub, wait, answer.

Nothing here touches a tasklet.  The request body is read completely by the
server thread (bounded by ``max_body_bytes``) before the hand-off, so the hub
never waits on a slow client; the response is produced whole on the hub and
written out by the server thread.
"""

import inspect
import io
import logging
import threading

import stackless_compat as stackless

from ._hub import Job, ThreadHub
from ._inline import InlineHub
from ._job import OwnPages
from ._ratelog import log_refused
from ._settings import GATEWAY_OPTIONS, validate
from ._stall import StallWatch

log = logging.getLogger(__name__)

__all__ = ["gateway", "Gateway", "InlineGateway"]


class _Refused(Exception):
    """A request refused before it reaches the app (status, message)."""


def read_body(environ, max_bytes):
    """Read the whole request body, refusing more than ``max_bytes``.

    Returns the bytes; raises ``_Refused`` for a bad or too large body.
    """
    length = environ.get("CONTENT_LENGTH") or "0"
    try:
        length = int(length)
    except ValueError:
        raise _Refused("400 Bad Request", "The Content-Length header is not a number.") from None
    if length < 0:
        raise _Refused("400 Bad Request", "The Content-Length header is negative.")
    if length > max_bytes:
        raise _Refused("413 Content Too Large",
                       "The request body is larger than %d bytes." % max_bytes)
    stream = environ.get("wsgi.input")
    body = stream.read(length) if (stream is not None and length) else b""
    if len(body) < length:
        raise _Refused("400 Bad Request", "The request body ended early.")
    return body


class _GatewayBase:
    """What both gateways share: option checking, preparing a ``Job``, the stall watch."""

    def __init__(self, app, **options):
        self.app = app
        settings = validate(options, GATEWAY_OPTIONS)
        self.max_body_bytes = settings["max_body_bytes"]
        self.request_timeout = settings["request_timeout"]
        self.stall_warning = settings["stall_warning"]
        self.watch = None  # a StallWatch once the hub exists
        # the pages we write ourselves link and carry headers as the app's do
        self._pages = OwnPages(app)

    def _error(self, environ, start_response, status, message):
        """An error page of our own for this request (any thread)."""
        headers, body = self._pages(environ, status, message)
        start_response(status, headers)
        return [body]

    def _refuse(self, environ, start_response, refused):
        status, message = refused.args
        log_refused(log, environ, status[:3], message)
        return self._error(environ, start_response, status, message)

    def _job(self, environ, wait_here=False):
        body = read_body(environ, self.max_body_bytes)
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return Job(environ, wait_here, self._pages)

    def _close_app(self, timeout):
        """Let the app release what it holds (a durable store flushes its writes;
        a ``close`` that takes a ``timeout``, as SessionlessApp's does, gets
        ``timeout``: it waits that long at most for its ``to_thread`` calls)."""
        close = getattr(self.app, "close", None)
        if close is None:
            return
        try:
            takes_timeout = "timeout" in inspect.signature(close).parameters
        except (TypeError, ValueError):  # no signature to read (a builtin)
            takes_timeout = False
        try:
            close(timeout=timeout) if takes_timeout else close()
        except Exception:
            log.exception("closing the application")

    @staticmethod
    def _answer(job, start_response):
        start_response(job.status, job.headers)
        return job.body


class Gateway(_GatewayBase):
    """A thread-safe WSGI callable that runs ``app`` on a hub thread of its own.

    Use it under any threaded WSGI server.  A request the app does not answer
    within ``request_timeout`` seconds gets a 504 page and its tasklet is
    killed.  ``close()`` kills suspended tasklets and stops the hub.
    """

    def __init__(self, app, **options):
        super().__init__(app, **options)
        self.hub = ThreadHub()
        self.watch = StallWatch(self.hub, self.stall_warning)

    def __call__(self, environ, start_response):
        try:
            job = self._job(environ, wait_here=True)
        except _Refused as refused:
            return self._refuse(environ, start_response, refused)
        try:
            self.hub.submit(self.app, job)
        except RuntimeError:
            return self._error(environ, start_response, "503 Service Unavailable",
                               "The server is shutting down.")
        if not job.done.wait(self.request_timeout):
            log.warning("no answer within %.1f s to %s %s: giving up", self.request_timeout,
                        environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            try:
                self.hub.post(lambda: self.hub.abandon(
                    job, "504 Gateway Timeout", "The application did not answer in time."))
            except RuntimeError:
                pass
            # the hub answers the abandoned job at its next pass; if it is stuck
            # in a controller (see _stall) it never will, so don't wait long
            job.done.wait(min(5.0, self.request_timeout))
            if not job.finished:
                return self._error(environ, start_response, "504 Gateway Timeout",
                                   "The application did not answer in time.")
        return self._answer(job, start_response)

    def close(self, timeout=10.0):
        """Kill the hub's suspended tasklets (their ``finally:`` runs) and stop it.

        Waits at most ``timeout`` seconds; returns False if the hub did not
        stop by then (it is stuck in a controller: see ``_stall``).
        """
        self.hub.stop(timeout)
        self.watch.close()
        self._close_app(timeout)
        return self.hub.stopped


class InlineGateway(_GatewayBase):
    """The WSGI callable of ``serve()`` with one worker thread: that thread is the hub.

    Under ``serve()`` it is called in a task tasklet (``InlineHub.serve_task``)
    and a request waits there, up to ``request_timeout`` (then 504), while
    the worker answers others.  Called directly by the hub thread's main
    tasklet, a request must be answered once the run queue drains and the
    callbacks it waits for arrived; one still waiting then gets a 500 page.
    """

    def __init__(self, app, post, idle=None, **options):
        super().__init__(app, **options)
        self.hub = InlineHub(post, idle)
        self.watch = StallWatch(self.hub, self.stall_warning)

    def __call__(self, environ, start_response):
        try:
            job = self._job(environ)
        except _Refused as refused:
            return self._refuse(environ, start_response, refused)
        hub = self.hub
        if hub.stopped:
            return self._error(environ, start_response, "503 Service Unavailable",
                               "The server is shutting down.")
        if not stackless.getcurrent().is_main:  # a task tasklet of serve(): wait in it
            hub.wait_job(self.app, job, self.request_timeout)
            return self._answer(job, start_response)
        hub.handle(self.app, job, self.request_timeout)  # called directly by the hub thread
        if not job.finished:
            log.error("%s %s was still waiting after the run queue drained: with one"
                      " worker thread nothing else can answer it",
                      environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            hub.abandon(job, "500 Internal Server Error",
                        "The application did not answer this request.")
        return self._answer(job, start_response)

    def close(self, timeout=10.0):
        """Kill the hub's suspended tasklets on the worker thread and stop the timer thread.

        Waits at most ``timeout`` seconds for the worker to do it; returns
        False if it did not (it is stuck in a controller: see ``_stall``).
        """
        hub = self.hub
        done = threading.Event()

        def kill_all():
            try:
                hub._bind()
                hub.kill_all()
            finally:
                hub.unbind()  # a closed hub is no thread's current hub any more
                done.set()
        try:
            hub.post(kill_all)
        except Exception:
            log.exception("posting the hub's shutdown")
        done.wait(timeout)
        hub.close()
        self.watch.close()
        self._close_app(timeout)
        return hub.stopped


def gateway(wsgi_app, **options):
    """Return a thread-safe WSGI callable running ``wsgi_app`` inside the hub.

    Tasklet and channel code in ``wsgi_app`` then works under any threaded
    WSGI server: every request runs in its own tasklet on one hub thread,
    which drains its run queue before taking the next request.  Options:
    ``max_body_bytes`` (65536: larger bodies get 413), ``request_timeout``
    (30 s: then 504) and ``stall_warning`` (10 s on one request: logged with
    the stack the hub is stuck in).  Call ``.close()`` to stop the hub.
    """
    return Gateway(wsgi_app, **options)
