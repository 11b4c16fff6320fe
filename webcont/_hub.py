"""The hub: the one thread that owns every webcont tasklet.

greenlets cannot move between threads, and WSGI servers call the app from a
pool of threads.  So every tasklet lives on one scheduler thread, the hub:
server threads hand it requests (``Job``) and wait, and the hub runs each
request in a tasklet of its own.

The rule that makes the seed's "register the continuation after send()
returns" safe: after starting a request the hub runs every runnable tasklet
until the run queue is empty (``drain``) before it looks at anything else.
Timers (continuation expiry) also run on the hub, between requests, whether
or not traffic arrives.

Two drivers share this core:

* ``ThreadHub`` has a thread of its own with an inbox; other threads only
  append to the inbox (a ``deque`` under a condition variable) and wait for
  their job.  Each pass takes only what was queued when it began.
* ``InlineHub`` (``_inline``) is driven by the thread that calls it: ``serve()`` makes
  waitress' single worker thread the hub, which removes a thread hop per
  request.  There each waitress task (a connection's next request) runs in
  a tasklet of its own (``serve_task``), so a request that waits (for a
  store commit, for another request) leaves the thread to the others, and
  the durable steps of one pass share a commit.  Its timers are brought to
  that thread by a small timer thread that posts them through ``post``.

Methods marked "(hub)" run only on the hub thread; the others are safe from
any thread.
"""

import heapq
import itertools
import logging
import threading
import weakref
from collections import deque

import stackless_compat as stackless

from . import _clock
from ._deadlines import Deadlines
from ._job import Job, serve_job

log = logging.getLogger(__name__)

__all__ = ["Hub", "ThreadHub", "Job", "WaitTimedOut", "current_hub"]  # Job: from _job

_local = threading.local()


class WaitTimedOut(TimeoutError):
    """``Hub.wait`` had no outcome within its timeout (the future may still complete)."""


def current_hub():
    """The hub owning the calling thread, or None outside any hub."""
    return getattr(_local, "hub", None)


class Hub:
    """The scheduler-owning core shared by both drivers.

    ``busy_since``/``busy_with`` say since when (monotonic) and on what the
    hub has been working without coming back to its loop (None when idle);
    written only by the hub, read by ``StallWatch`` from its own thread.
    """

    def __init__(self):
        self.thread_id = None
        self._timers = []               # heap of (when, seq, callback)
        self._timer_seq = itertools.count()
        self.stopped = False
        self.busy_with = None
        self.busy_since = None
        self.awaiting = 0  # tasklets waiting for a callback another thread will post
        self.task_tasklets = set()  # InlineHub: tasklets running waitress' own code
        self._spawned = weakref.WeakSet()  # the app's tasklets, for kill_all (spawn)
        self.deadlines = Deadlines(self.call_at)  # the timeouts of waits on this hub

    # -- binding -----------------------------------------------------------

    def _bind(self):
        """Make the calling thread this hub's thread (once), and this hub its current one.

        (A thread may drive several inline hubs, one gateway each, as tests
        and benchmarks do: ``current_hub()`` is the one running now.)
        """
        if self.thread_id is None:
            self.thread_id = threading.get_ident()
        elif self.thread_id != threading.get_ident():
            raise RuntimeError("this hub belongs to thread %d" % self.thread_id)
        _local.hub = self

    def spawn(self, function, *args):
        """A new tasklet running ``function(*args)``, killed at shutdown if still alive. (hub)

        Requests and controllers are spawned here, so that the hub knows what
        to kill (``kill_all``): tasklets an app makes itself with
        ``stackless.tasklet`` are its own to end.
        """
        task = stackless.tasklet(function)(*args)
        self._spawned.add(task)
        return task

    def spawn_request(self, app, job):
        """The request tasklet answering ``job`` with ``app`` (``serve_job``). (hub)"""
        task = job.tasklet = _RequestTasklet(serve_job)(app, job)
        self._spawned.add(task)
        return task

    def unbind(self):
        """Stop being the calling thread's current hub (after a stop). (hub)"""
        if getattr(_local, "hub", None) is self:
            _local.hub = None

    # -- requests (hub) -----------------------------------------------------------

    def run_job(self, app, job):
        """Run ``app`` for ``job`` in a new tasklet, then drain the run queue. (hub)"""
        self.busy_with = job
        self.busy_since = _clock.monotonic()
        try:
            self.spawn_request(app, job)
            self.drain()
        finally:
            self.busy_since = None

    def run_callback(self, callback, what):
        """Run a callback posted from another thread, then drain. (hub)

        Store completions resume tasklets here, so a stuck controller shows
        up in ``busy_since`` as it does when run by a request.
        """
        self.busy_with = what
        self.busy_since = _clock.monotonic()
        try:
            try:
                callback()
            except Exception:
                log.exception("a posted hub callback raised")
            self.drain()
        finally:
            self.busy_since = None

    def abandon(self, job, status, message):
        """Answer a job the app left unanswered, killing its request tasklet. (hub)"""
        if job.finished:
            return
        task, job.tasklet = job.tasklet, None
        job.cancel_reason = (status, message)
        if task is not None and task.alive:
            try:
                task.kill()
            except Exception:
                log.exception("killing the request tasklet of an abandoned request")
            self.drain()
        if not job.finished:
            job.respond(status, message)
            job.finish()

    def drain(self):
        """Run tasklets until none is runnable. (hub)

        An exception escaping a tasklet lands here: it is logged and the
        other tasklets go on.
        """
        while True:
            try:
                stackless.run()
                return
            except (Exception, SystemExit):
                log.exception("a tasklet on the hub raised")

    def wait(self, future, timeout=None):
        """Wait, in a hub tasklet, for a ``concurrent.futures.Future``; its result or exception. (hub)

        The future may be completed by any thread: from another thread the
        completion is posted to the hub; on the hub itself (a commit the hub
        made) it is handed over at once.  Only the waiting tasklet blocks.
        With ``timeout`` (seconds), ``WaitTimedOut`` is raised if the future
        is not done by then (``deadlines``); it may still complete later.
        """
        if future.done():
            return future.result()
        outcome = stackless.channel()
        outcome.preference = 1  # the completing side goes on; the waiter runs at the drain

        def hand_over(done):  # on the hub; the waiter may have been abandoned or timed out
            if outcome.balance < 0:
                outcome.send(done)

        if getattr(future, "settles_on_hub", False):  # (HubFuture: two calls less a wait)
            future.add_done_callback(hand_over)
        else:
            def completed(done):
                if threading.get_ident() == self.thread_id:
                    hand_over(done)
                elif not self.stopped:  # (a stopped hub killed its waiters: nobody to wake)
                    try:
                        self.post(lambda: hand_over(done))
                    except RuntimeError:  # it is stopping: the same
                        pass
            future.add_done_callback(completed)
            if future.done():  # done before the callback was added: it found no waiter
                return future.result()
        token = None if timeout is None else self.deadlines.add(timeout, lambda: hand_over(None))
        self.awaiting += 1
        try:
            done = outcome.receive()
        finally:
            self.awaiting -= 1
            if token is not None:
                self.deadlines.cancel(token)
        if done is None:
            raise WaitTimedOut("no outcome within %g s" % timeout)
        return done.result()

    # -- timers (hub) -----------------------------------------------------------

    def call_at(self, when, callback):
        """Run ``callback()`` on the hub at ``_clock.monotonic()`` >= ``when``. (hub)"""
        seq = next(self._timer_seq)
        heapq.heappush(self._timers, (when, seq, callback))
        if self._timers[0][1] == seq:  # a new earliest timer: only then must a driver know
            self._timers_changed()

    def call_soon(self, callback):
        """Run ``callback()`` on the hub after the current drain. (hub)"""
        self.call_at(0.0, callback)

    def next_timer(self):
        """When the earliest timer is due (monotonic seconds), or None."""
        try:
            return self._timers[0][0]
        except IndexError:  # read from other threads too: empty, or emptied meanwhile
            return None

    def fire_due_timers(self):
        """Run every due timer callback, each followed by a drain. (hub)"""
        now = _clock.monotonic()
        timers = self._timers
        if not timers or timers[0][0] > now:
            return
        self.busy_with = "timers"
        self.busy_since = now
        try:
            while timers and timers[0][0] <= now:
                _, _, callback = heapq.heappop(timers)
                try:
                    callback()
                except Exception:
                    log.exception("a hub timer callback raised")
                self.drain()
        finally:
            self.busy_since = None

    def _timers_changed(self):
        """Hook for drivers that must wake up for an earlier timer."""

    def alone(self):
        """True if this pass will end with nothing else to run: then a write made
        now may be committed at once, with no other step to wait for. (hub)"""
        return False

    # -- shutdown (hub) -----------------------------------------------------------

    def kill_all(self):
        """Kill every live tasklet of the hub so their ``finally:`` blocks run. (hub)"""
        # what spawn() made; not the task tasklets (they run waitress' code, and
        # answer once their request tasklets are killed).  Requests first: a
        # request killed while it waits gets the 503 "shutting down" page and
        # ends its controller; a controller killed first would hand it a 500
        # "the application failed", which nothing logged.
        victims = sorted((task for task in list(self._spawned) if task.alive),
                         key=lambda task: not isinstance(task, _RequestTasklet))
        self.busy_with = "shutdown"
        self.busy_since = _clock.monotonic()
        try:
            for task in victims:
                if not task.alive:  # killing an earlier one (its request) ended it
                    continue
                try:
                    task.kill()
                except Exception:
                    log.exception("killing %r at shutdown", task)
                self.drain()
        finally:
            self.busy_since = None
        self._timers.clear()
        self.deadlines = Deadlines(self.call_at)  # their timers went with the heap
        self.stopped = True
        log.info("hub stopped: %d suspended tasklet(s) killed", len(victims))
        return len(victims)


class _RequestTasklet(stackless.tasklet):
    """A request tasklet (it runs ``serve_job``): ``kill_all`` ends these
    first, started or not.  A class, not a registry: a second WeakSet cost
    ~3,000 instructions a request."""
    __slots__ = ()


class ThreadHub(Hub):
    """A hub with its own thread; other threads ``submit`` jobs to it."""

    def __init__(self, name="webcont-hub"):
        super().__init__()
        self._inbox = deque()
        self._wakeup = threading.Condition(threading.Lock())
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def post(self, callback):
        """Run ``callback()`` on the hub thread soon (any thread)."""
        with self._wakeup:
            if self._stopping:
                raise RuntimeError("the hub is stopped")
            self._inbox.append(callback)
            self._wakeup.notify()

    def submit(self, app, job):
        """Hand ``job`` to the hub to be answered by ``app`` (any thread)."""
        self.post(lambda: self.run_job(app, job))

    def stop(self, timeout=10.0):
        """Kill suspended tasklets on the hub, then end its thread (any thread)."""
        with self._wakeup:
            if self._stopping:
                return
            self._inbox.append(self.kill_all)
            self._stopping = True
            self._wakeup.notify()
        self._thread.join(timeout)

    def _timers_changed(self):
        pass  # the loop recomputes its wait after every pass

    def _loop(self):
        self._bind()
        inbox, wakeup = self._inbox, self._wakeup
        while True:
            with wakeup:
                while not inbox and not self._stopping:
                    due = self.next_timer()
                    delay = None if due is None else due - _clock.monotonic()
                    if delay is not None and delay <= 0:
                        break
                    wakeup.wait(delay)
                # take only what is queued now: later arrivals wait for the next pass
                batch = list(inbox)
                inbox.clear()
                stopping = self._stopping
            for callback in batch:  # what a posted wake-up made runnable runs now
                self.run_callback(callback, "a posted callback")
            self.fire_due_timers()
            if stopping and not inbox:
                return
