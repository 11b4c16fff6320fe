"""``serve()``: waitress wiring, signals, and a graceful stop.

With one worker thread (the default) waitress' worker is the hub itself, so
a request costs no thread hop; with ``threads > 1`` the workers hand requests
to a hub thread through ``Gateway``.  SIGINT/SIGTERM stop the server
gracefully: no new connections are accepted, requests in flight are
answered, then the suspended controllers are killed on the hub so their
``finally:`` blocks run.
"""

import logging
import signal
import threading
import time

from waitress import wasyncore
from waitress.server import create_server

from ._gateway import Gateway, InlineGateway
from ._settings import GATEWAY_OPTIONS

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


class Server:
    """A running webcont server: waitress plus the hub (used by ``serve``)."""

    def __init__(self, wsgi_app, host="127.0.0.1", port=8080, threads=1, **options):
        gateway_options = {name: options.pop(name) for name in list(options)
                           if name in GATEWAY_OPTIONS}
        self.grace = float(options.pop("shutdown_grace", 10.0))
        if threads == 1:
            self.gateway = InlineGateway(wsgi_app, self._post, **gateway_options)
        else:
            self.gateway = Gateway(wsgi_app, **gateway_options)
        self.waitress = create_server(self.gateway, host=host, port=port, threads=threads,
                                      **options)
        self._stop_requested = threading.Event()

    @property
    def url(self):
        return "http://%s:%s/" % (self.waitress.effective_host, self.waitress.effective_port)

    def _post(self, callback):
        self.waitress.task_dispatcher.add_task(_HubTask(callback))

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
        while not self._stop_requested.is_set():
            wasyncore.loop(timeout=adj.asyncore_loop_timeout, map=map,
                           use_poll=adj.asyncore_use_poll, count=1)
        self._shutdown(map, adj)

    def _shutdown(self, map, adj):
        log.info("stopping: no new connections; finishing requests in flight")
        waitress = self.waitress
        waitress.accepting = False
        deadline = time.monotonic() + self.grace
        while time.monotonic() < deadline and self._busy():
            wasyncore.loop(timeout=0.05, map=map, use_poll=adj.asyncore_use_poll, count=1)
        self._stop_hub()
        waitress.task_dispatcher.shutdown(timeout=5)
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

    def _stop_hub(self):
        gateway = self.gateway
        if isinstance(gateway, InlineGateway):
            done = threading.Event()

            def kill_all():
                try:
                    gateway.hub._bind()
                    gateway.hub.kill_all()
                finally:
                    done.set()
            self._post(kill_all)
            if not done.wait(10):
                log.warning("the hub did not stop within 10 s")
            gateway.hub.close()
        else:
            gateway.close()


def serve(wsgi_app, host="127.0.0.1", port=8080, *, ready=None, **waitress_options):
    """Serve ``gateway(wsgi_app)`` with waitress until SIGINT or SIGTERM.

    ``threads`` defaults to 1: waitress' single worker thread is then the hub
    itself.  webcont's own options (``max_body_bytes``, ``request_timeout``,
    ``shutdown_grace``) are taken out; the rest go to waitress.  ``ready``,
    if given, is called with the server's URL once it listens (useful with
    ``port=0``).  Returns after a graceful stop.
    """
    waitress_options.setdefault("threads", 1)
    server = Server(wsgi_app, host=host, port=port, **waitress_options)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, server.request_stop)
    log.info("serving on %s", server.url)
    if ready is not None:
        ready(server.url)
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
