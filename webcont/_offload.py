"""``req.to_thread``: blocking calls of controllers, run in a bounded pool of threads.

Every controller runs on the hub, so a controller that calls a database, an
HTTP API or ``time.sleep`` directly holds every other request.  Through
``req.to_thread(fn, ...)`` the call runs in one of the app's pool threads
while only the calling tasklet waits (``Hub.wait``); the hub serves the
others meanwhile.  When every pool thread is busy, calls queue.

The threads are daemon threads of our own rather than a
``concurrent.futures.ThreadPoolExecutor``: the executor joins its threads at
interpreter exit, so one call that never returns would keep a stopped server
from exiting; here ``shutdown`` waits up to its timeout, then gives up on
the calls still running and says so in the log.

A pool thread is not the hub: code run there must not use tasklets or
channels of the hub's (it would get a scheduler of its own in that thread;
a channel operation there blocks the pool thread, and may never return).
"""

import concurrent.futures
import logging
import queue
import threading

from . import _clock
from ._hub import current_hub

log = logging.getLogger(__name__)

__all__ = ["ThreadPool"]


class ThreadPool:
    """``size`` daemon threads running submitted calls, started at the first call.

    ``submit`` is safe from any thread; the threads never touch a tasklet.
    """

    def __init__(self, size, name="webcont-to-thread"):
        self.size = size
        self.name = name
        self._calls = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._running = 0  # calls being run now (for shutdown)
        self._closed = False

    def submit(self, fn, args=(), kwargs=None):
        """Queue ``fn(*args, **kwargs)``; a ``concurrent.futures.Future`` of its outcome."""
        future = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the app is shut down: no more to_thread calls")
            start, self._threads = self.size - self._threads, self.size
        for number in range(start):
            threading.Thread(target=self._work, name="%s-%d" % (self.name, number),
                             daemon=True).start()
        self._calls.put((fn, args, kwargs or {}, future))
        return future

    def call(self, fn, args=(), kwargs=None):
        """Run ``fn`` in the pool and wait for it in the calling hub tasklet; its result.

        Raises what ``fn`` raised.  Only the calling tasklet waits.
        """
        hub = current_hub()
        if hub is None or threading.get_ident() != hub.thread_id:
            raise RuntimeError("req.to_thread() is for controllers running on webcont's hub")
        return hub.wait(self.submit(fn, args, kwargs))

    def _work(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, args, kwargs, future = item
            if future.set_running_or_notify_cancel():
                with self._lock:
                    self._running += 1
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
                finally:
                    with self._lock:
                        self._running -= 1
                del fn, args, kwargs, future, item  # hold nothing while idle

    def shutdown(self, timeout):
        """Refuse new calls; wait up to ``timeout`` s for running ones, then give up on them."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._calls.put(None)
        deadline = _clock.monotonic() + timeout
        while True:
            with self._lock:
                running = self._running
            if not running or _clock.monotonic() >= deadline:
                break
            threading.Event().wait(0.01)
        if running:
            log.error("%d to_thread call(s) still running %.1f s after the stop began:"
                      " given up (their threads end with the process)", running, timeout)
        return running == 0
