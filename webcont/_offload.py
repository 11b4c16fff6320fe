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

import asyncio
import concurrent.futures
import logging
import queue
import threading

from . import _clock
from ._hub import current_hub

log = logging.getLogger(__name__)

__all__ = ["ThreadPool", "EventLoopThread", "wait_here"]


def wait_here(future):
    """Wait for ``future`` in the calling hub tasklet (``Hub.wait``); its result."""
    hub = current_hub()
    if hub is None or threading.get_ident() != hub.thread_id:
        raise RuntimeError("req.to_thread() and req.await_() are for controllers running on"
                           " webcont's hub")
    return hub.wait(future)


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
        return wait_here(self.submit(fn, args, kwargs))

    def _work(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, args, kwargs, future = item
            if future.set_running_or_notify_cancel():
                with self._lock:
                    closed = self._closed
                    if not closed:
                        self._running += 1
                if closed:  # queued before the shutdown, taken after: never run
                    future.set_exception(_not_run())
                else:
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
        """Refuse new calls and fail the queued ones (``RuntimeError``: they never
        run); wait up to ``timeout`` s for running ones, then give up on them."""
        with self._lock:
            self._closed = True  # from now on no queued call starts (_work)
            threads = self._threads
        dropped = 0
        while True:  # fail the queued calls now, not when a thread frees up
            try:
                item = self._calls.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[3].set_running_or_notify_cancel():
                item[3].set_exception(_not_run())
                dropped += 1
        for _ in range(threads):
            self._calls.put(None)
        if dropped:
            log.warning("%d queued to_thread call(s) dropped at the stop: they never ran",
                        dropped)
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


def _not_run():
    return RuntimeError("the app shut down before this to_thread call ran: it never ran")


class EventLoopThread:
    """One asyncio event loop in a daemon thread of its own, started at the first use.

    ``req.await_(coro)`` runs coroutines there: one loop shared by every
    controller costs far less per call than ``asyncio.run`` in a pool
    thread, which makes and closes a loop each time (``bench/to_thread.py``).
    """

    def __init__(self, name="webcont-asyncio"):
        self.name = name
        self._loop = None
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, coro):
        """Schedule ``coro`` on the loop; a ``concurrent.futures.Future`` of its outcome."""
        with self._lock:
            if self._closed:
                coro.close()
                raise RuntimeError("the app is shut down: no more await_ calls")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name=self.name,
                                 daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro):
        """Run ``coro`` on the loop, waiting in the calling hub tasklet; its result."""
        return wait_here(self.submit(coro))

    def shutdown(self, timeout):
        """Cancel what still runs on the loop (after ``timeout`` s at most) and stop it."""
        with self._lock:
            self._closed = True
            loop = self._loop
        if loop is None:
            return True

        async def finish():
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            done, left = await asyncio.wait(pending, timeout=timeout) if pending else ((), ())
            for task in left:
                task.cancel()
            return len(left)
        try:
            left = asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout + 5)
        except Exception:
            left = -1
        loop.call_soon_threadsafe(loop.stop)
        if left:
            log.error("await_ coroutine(s) still running %.1f s after the stop began:"
                      " cancelled", timeout)
        return left == 0
