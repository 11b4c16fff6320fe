"""``serve()``: waitress wiring, signals, and a graceful stop.

With one worker thread (the default) waitress' worker is the hub itself, so
a request costs no thread hop; with ``threads > 1`` the workers hand requests
to a hub thread through ``Gateway``.  SIGINT/SIGTERM stop the server
gracefully: no new connections are accepted, requests in flight are
answered, then the suspended controllers are killed on the hub so their
``finally:`` blocks run.  Each of the two waits lasts at most
``shutdown_grace`` seconds, so a stop is bounded even when a controller
holds the hub forever (then its ``finally:`` blocks cannot run, and the log
says so).

waitress' own limits are tightened where its defaults let a client make the
server hold far more than webcont will accept (``WAITRESS_DEFAULTS``;
``docs/security.md`` lists them).
"""

import logging
import signal
import threading

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import WSGITask

from . import _clock
from ._app import SessionlessApp
from ._gateway import Gateway, InlineGateway
from ._ratelog import ThrottledLog
from ._settings import GATEWAY_OPTIONS, SERVE_OPTIONS, WAITRESS_DEFAULTS, validate
from ._stall import describe

log = logging.getLogger(__name__)

__all__ = ["serve"]


class _HubTask:
    """A callback queued in waitress' task queue, so the worker thread runs it."""

    def __init__(self, callback):
        self.callback = callback

    def service(self):
        self.callback()

    def cancel(self):
        pass

    def defer(self):
        pass


class _Task(WSGITask):
    """waitress' request task, sending a response's head and body in one go.

    waitress writes the status line and headers, then the body, each with a
    ``send()`` of its own (its ``send_bytes`` is 1): two system calls a page,
    and the worker drops the GIL in each, so at 8 connections it then waits
    for the main loop twice.  A first write whose bytes the Content-Length
    covers goes out with the head: wrk on the demo game, 8 connections, 1.20x
    requests/s and 1.18x less server CPU a request (one interleaved run).
    Anything else (no length, chunked, HEAD, an app writing more than it
    said) takes waitress' own path.  (worker thread)
    """

    def write(self, data):
        if self.wrote_header or not data or not self.complete or not self.has_body:
            return WSGITask.write(self, data)
        head = self.build_response_header()
        if self.chunked_response or self.content_length is None or len(data) > self.content_length:
            self.channel.write_soon(head)
            self.wrote_header = True
            return WSGITask.write(self, data)
        self.channel.write_soon(head + data)
        self.wrote_header = True
        self.content_bytes_written += len(data)
        return None


class _Channel(HTTPChannel):
    """waitress' connection, minus a busy loop its main thread falls into.

    waitress' main loop asks to write to a connection whenever its output
    buffer holds data, even while a worker still answers on it.  The worker
    sends the response itself, holding the connection's ``outbuf_lock``; if
    it loses the GIL in that ``send``, the main loop finds the connection
    writable but the lock taken, and ``select()``s again at once: about 30
    turns a request until CPython forces a GIL switch, each taking CPU from
    the worker.  Measured with wrk on the demo game (8 connections): 430-620
    us of CPU a request and 2,000 requests/s with it, 210-270 us and 3,700
    requests/s without.  So while a request runs, the connection is writable
    only if the worker waits for the main loop (output past
    ``outbuf_high_watermark``); the worker pulls the trigger when it ends and
    the main loop sends whatever is left.  (Main thread, read without lock:
    a stale answer costs one turn of the loop or waits for that trigger.)
    """

    task_class = _Task

    def writable(self):
        if self.requests and not (self.will_close or self.close_when_flushed):
            return self.total_outbufs_len > self.adj.outbuf_high_watermark
        return HTTPChannel.writable(self)

    # -- the read timeout (main thread) --------------------------------------------
    #
    # waitress closes only *idle* connections (channel_timeout), so a client
    # that sends a request a byte at a time, or half a request and then
    # nothing, keeps its connection for as long as it likes, and
    # connection_limit of them lock everyone out.  reading_since says since
    # when this connection has been sending the request now being read: from
    # its first byte, or from the connection for the first request; None while
    # it waits between requests (that is channel_timeout's business).

    def __init__(self, *args, **kwargs):
        HTTPChannel.__init__(self, *args, **kwargs)
        self.reading_since = _clock.monotonic()

    def received(self, data):
        if data and self.reading_since is None:
            self.reading_since = _clock.monotonic()
        result = HTTPChannel.received(self, data)
        if self.request is None:  # nothing half read is left
            self.reading_since = None
        return result


class _HubChannel(_Channel):
    """A connection served by the hub itself (one worker thread).

    waitress' worker calls ``service()`` to answer the connection's next
    request; here it runs in a tasklet of its own, so a request that waits
    (a durable step for its commit) frees the worker for the next task, and
    the steps waiting together share one commit.
    """

    hub = None  # set on the subclass a Server makes for its hub

    def service(self):
        self.hub.serve_task(super().service, self)


class _QueueWarnings:
    """Stands in for waitress' queue logger (its only use is ``warning``).

    waitress warns on every request queued while its workers are busy: with
    one worker (the hub) that is every burst, and one browser makes bursts
    (a page and its favicon arrive together: "Task queue depth is 1").  Only
    a backlog of ``QUEUE_WARNING_DEPTH`` requests is worth a line, throttled.
    """

    def __init__(self):
        self._log = ThrottledLog(logging.getLogger("waitress.queue"), logging.WARNING,
                                 "Task queue depth is %d")

    def warning(self, message, depth, *args):
        if depth >= QUEUE_WARNING_DEPTH:
            self._log(depth)


#: the waitress queue depth from which a backlog is logged
QUEUE_WARNING_DEPTH = 10


class Server:
    """A running webcont server: waitress plus the hub (used by ``serve``)."""

    def __init__(self, wsgi_app, host="127.0.0.1", port=8080, threads=1, **options):
        gateway_options = {name: options.pop(name) for name in list(options)
                           if name in GATEWAY_OPTIONS}
        serve_options = validate({name: options.pop(name) for name in list(options)
                                  if name in SERVE_OPTIONS}, SERVE_OPTIONS)
        self.grace = serve_options["shutdown_grace"]
        if threads == 1:
            self.gateway = InlineGateway(wsgi_app, self._post, self._idle, **gateway_options)
        else:
            self.gateway = Gateway(wsgi_app, **gateway_options)
        options = waitress_defaults(options, self.gateway.max_body_bytes)
        self.waitress = create_server(self.gateway, host=host, port=port, threads=threads,
                                      **options)
        if threads == 1:
            self.waitress.channel_class = type("HubChannel", (_HubChannel,),
                                               {"hub": self.gateway.hub})
        else:
            self.waitress.channel_class = _Channel
        dispatcher = self.waitress.task_dispatcher
        if hasattr(dispatcher, "queue_logger"):
            dispatcher.queue_logger = _QueueWarnings()
        self._stop_requested = threading.Event()
        self.read_timeout = serve_options["read_timeout"]
        self._next_read_check = 0.0
        self._log_slow = ThrottledLog(log, logging.INFO, "closed %d connection(s) that sent no"
                                      " complete request within read_timeout (%.0f s)")

    @property
    def url(self):
        return "http://%s:%s/" % (self.waitress.effective_host, self.waitress.effective_port)

    def _post(self, callback):
        self.waitress.task_dispatcher.add_task(_HubTask(callback))

    def _idle(self):
        """True if no task waits in waitress' queue (the worker, the hub, asks)."""
        return not self.waitress.task_dispatcher.queue

    def request_stop(self, *_signal_args):
        """Ask the serving loop to stop (safe from a signal handler or any thread)."""
        self._stop_requested.set()
        try:
            self.waitress.pull_trigger()  # wake the loop now
        except Exception:  # the trigger may already be closed
            pass

    def run(self):
        """Serve until ``request_stop()``, then stop gracefully."""
        adj = self.waitress.adj
        map = self.waitress._map
        # the loop wakes at least this often, to close slow readers on time
        timeout = min(adj.asyncore_loop_timeout, self.read_timeout / 4)
        while not self._stop_requested.is_set():
            wasyncore.loop(timeout=timeout, map=map, use_poll=adj.asyncore_use_poll, count=1)
            now = _clock.monotonic()
            if now >= self._next_read_check:
                self._next_read_check = now + timeout
                self._close_slow_readers(now)
        self._shutdown(map, adj)

    def _close_slow_readers(self, now):
        """Close the connections whose request has been arriving for longer
        than ``read_timeout`` (main thread, which owns the connections)."""
        cutoff = now - self.read_timeout
        closed = 0
        for channel in list(self.waitress.active_channels.values()):
            since = getattr(channel, "reading_since", None)
            if (since is not None and since < cutoff and not channel.requests
                    and not channel.will_close):
                channel.will_close = True  # waitress' own way: closed by its next write turn
                closed += 1
        if closed:
            self._log_slow(closed, self.read_timeout)

    def _shutdown(self, map, adj):
        log.info("stopping: no new connections; finishing requests in flight")
        waitress = self.waitress
        waitress.accepting = False
        deadline = _clock.monotonic() + self.grace
        while _clock.monotonic() < deadline and self._busy():
            wasyncore.loop(timeout=0.05, map=map, use_poll=adj.asyncore_use_poll, count=1)
        hub = self.gateway.hub
        busy_with, since = hub.busy_with, hub.busy_since
        if not self.gateway.close(self.grace):
            stuck = ("%s for %.0f s" % (describe(busy_with), _clock.monotonic() - since)
                     if since is not None else "something")
            log.error("the hub did not stop within %.1f s: it is still running %s."
                      " Suspended controllers were not killed and their finally: blocks"
                      " did not run", self.grace, stuck)
        # a worker stuck in a controller never ends: don't wait long for it
        waitress.task_dispatcher.shutdown(timeout=min(5.0, self.grace))
        for channel in list(map.values()):
            try:
                channel.close()
            except Exception:
                pass
        log.info("stopped")

    def _busy(self):
        dispatcher = self.waitress.task_dispatcher
        if dispatcher.queue or dispatcher.active_count:
            return True
        return any(getattr(channel, "requests", None) or getattr(channel, "total_outbufs_len", 0)
                   for channel in self.waitress.active_channels.values())


def waitress_defaults(options, max_body_bytes):
    """``options`` for waitress with webcont's defaults for the limits that matter.

    waitress buffers a whole request before the app sees it, so its limits,
    not webcont's, decide what a client can make the server hold.  Bodies:
    up to twice ``max_body_bytes`` still reach webcont, which answers an
    HTML 413 page; beyond that waitress answers a plain-text 413 itself and
    closes the connection.
    """
    options = dict(options)
    for name, (default, _why) in WAITRESS_DEFAULTS.items():
        if default is None:  # derived
            default = 2 * max_body_bytes
        options.setdefault(name, default)
    return options


def serve(wsgi_app, host="127.0.0.1", port=8080, *, ready=None, **waitress_options):
    """Serve ``gateway(wsgi_app)`` with waitress until SIGINT or SIGTERM.

    ``threads`` defaults to 1: waitress' single worker thread is then the hub
    itself.  webcont's own options (``max_body_bytes``, ``request_timeout``,
    ``stall_warning``, ``shutdown_grace``, ``read_timeout``) are taken out; the rest go to
    waitress, with the defaults of ``waitress_defaults`` for its limits.  ``ready``,
    if given, is called with the server's URL once it listens (useful with
    ``port=0``) and announces it; without it the URL is logged.  Returns
    after a graceful stop.  A ``SessionlessApp`` with durable routes opens
    its store first (``SessionlessApp.open``): a store that cannot be
    reached raises ``webcont._store.StoreUnavailable`` saying why.
    """
    if isinstance(wsgi_app, SessionlessApp):
        opened = wsgi_app.open()  # a store that cannot be reached fails here, not per request
        if opened:
            log.info("%s", opened)
    waitress_options.setdefault("threads", 1)
    server = Server(wsgi_app, host=host, port=port, **waitress_options)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, server.request_stop)
    if ready is not None:
        ready(server.url)  # the caller announces it: one line, not two
    else:
        log.info("serving on %s", server.url)
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
