"""``InlineHub``: the hub driven by waitress' single worker thread (``serve()``).

``serve()`` with one worker thread makes that worker the hub, which removes a
thread hop per request.  Each waitress task (a connection's next request)
runs in a tasklet of its own (``serve_task``), so a request that waits (for a
store commit, for another request) leaves the worker to the others, and the
durable steps of one pass share a commit.  Callbacks other threads post
(store completions) come through waitress' task queue; timers are brought
by a small timer thread.  Called directly by a thread's main tasklet
(``handle``), as tests and benchmarks do, a request is answered there.
"""

import logging
import threading
from collections import deque

import stackless_compat as stackless

from . import _clock
from ._hub import Hub
from ._stall import describe

log = logging.getLogger(__name__)

__all__ = ["InlineHub"]

class InlineHub(Hub):
    """A hub driven by whichever single thread calls it (waitress' worker).

    ``server_post`` (given by the server) must run a callback on that thread
    when it is idle.  ``post`` queues callbacks here: a request waiting for
    one (a store commit) is kept in ``handle`` until it arrives; otherwise
    the worker runs them when it is next idle.  A timer thread brings due
    timers the same way when no request comes.
    """

    def __init__(self, server_post, server_idle=None):
        super().__init__()
        self.server_post = server_post
        self._posted = deque()
        self._posted_cond = threading.Condition(threading.Lock())
        self._waiting = False  # handle() waits on _posted_cond (read and set under it)
        # what the hub posts itself during a waitress task (a step's commit):
        # run when the task's drain ends if nothing waits in the server's queue
        # (``server_idle()``), else queued behind what waits there (serve_task)
        self.server_idle = server_idle
        self._after_task = None  # a list while serve_task runs
        self._timer_cond = threading.Condition(threading.Lock())
        self._timer_posted = False
        self._closing = False
        self._timer_thread = threading.Thread(target=self._timer_loop,
                                              name="webcont-timers", daemon=True)
        self._timer_thread.start()

    # -- serve(): a tasklet per waitress task (hub) -------------------------------

    def serve_task(self, service, what):
        """Run ``service()`` (waitress answering one request) in a tasklet, then drain. (hub)

        When the request waits (``wait_job``), the drain ends and the worker
        takes its next task; a posted callback resumes the request later.
        """
        self._bind()
        self.busy_with = what
        self.busy_since = _clock.monotonic()
        after = self._after_task = []
        try:
            stackless.tasklet(self._serve_task)(service, what)
            self.drain()
            # The hub's own posts: at once when no request waits in the server's
            # queue (a lone step's commit then skips a round trip through that
            # queue: ~30 us of the ~130 a durable step costs, bench/durable.py
            # c=1); else behind those requests, so that their steps join the
            # same commit.  Either way nothing else runs before them.
            while after and self.server_idle is not None and self.server_idle():
                self.run_callback(after.pop(0), "a posted callback")
        finally:
            self._after_task = None
            self.busy_since = None
            for callback in after:
                self.post(callback)

    def alone(self):
        """In a waitress task, with no request queued behind it nor anything the
        hub posted itself: the task's drain is its whole pass. (hub)"""
        after = self._after_task
        return after is not None and not after and self.server_idle is not None \
            and self.server_idle()

    def _serve_task(self, service, what):
        """The body of a task tasklet: waitress answers one request."""
        me = stackless.getcurrent()
        self.task_tasklets.add(me)
        try:
            service()  # waitress logs the errors of the request itself
        except BaseException:
            log.exception("waitress raised while serving %r", what)
        finally:
            self.task_tasklets.discard(me)

    def wait_job(self, app, job, timeout):
        """Answer ``job`` from inside a task tasklet: run it, wait until it is answered. (hub)

        A job not answered within ``timeout`` seconds is abandoned with a 504
        page, as ``Gateway`` does.
        """
        self.busy_with = job
        task = self.spawn_request(app, job)
        task.run()  # the request runs first; back here once it waits or ends
        if job.finished:
            return
        job.waiter = stackless.channel()
        token = self.deadlines.add(timeout, lambda: self._give_up(job))
        try:
            job.waiter.receive()
        finally:
            self.deadlines.cancel(token)

    def _give_up(self, job):
        """A job's deadline passed (hub timer): it gets a 504, as under ``Gateway``."""
        log.warning("no answer within the request timeout to %s: giving up", describe(job))
        self.abandon(job, "504 Gateway Timeout", "The application did not answer in time.")

    def handle(self, app, job, timeout=30.0):
        """Answer ``job`` right here, on the calling (hub) thread.

        If its tasklets wait for callbacks from other threads (``awaiting``),
        this thread waits for them, up to ``timeout`` seconds.
        """
        self._bind()
        self.fire_due_timers()
        self.run_job(app, job)
        deadline = _clock.monotonic() + timeout
        while not job.finished and self.awaiting:
            remaining = deadline - _clock.monotonic()
            if remaining <= 0:
                break
            with self._posted_cond:
                if not self._posted:
                    self._waiting = True
                    try:
                        self._posted_cond.wait(remaining)
                    finally:
                        self._waiting = False
            self.run_posted()
        with self._posted_cond:
            leftover = bool(self._posted)  # posted after the last run, while we waited
        if leftover:
            self.server_post(self.run_posted)

    def post(self, callback):
        """Run ``callback()`` on the hub thread soon (any thread)."""
        after = self._after_task
        if after is not None and threading.get_ident() == self.thread_id:
            after.append(callback)  # from the hub, in a waitress task: when it ends
            return
        with self._posted_cond:
            first = not self._posted
            self._posted.append(callback)
            self._posted_cond.notify()
            if self._waiting or not first:
                # handle() waits for it, or a run_posted() already queued will take it
                return
        self.server_post(self.run_posted)  # in case the worker is idle

    def run_posted(self):
        """Run the callbacks posted before this call, each followed by a drain. (hub)

        What they post meanwhile waits for the next pass, queued behind the
        server's own tasks: a tasklet that keeps posting (a long replay
        pausing between slices) cannot keep the worker from the requests
        that arrived meanwhile.
        """
        self._bind()
        posted = self._posted
        with self._posted_cond:
            count = len(posted)
        for _ in range(count):
            with self._posted_cond:
                callback = posted.popleft()
            self.run_callback(callback, "a posted callback")
        with self._posted_cond:
            more = bool(posted)
        if more:
            self.server_post(self.run_posted)

    def fire_due_timers(self):
        with self._timer_cond:
            posted, self._timer_posted = self._timer_posted, False
        super().fire_due_timers()
        if posted:
            # The timer thread waits (untimed) until posted timers ran.  It is
            # woken only then: waking it on every request cost a GIL hand-over
            # each (the demo game in-process: 960 us a request, 260 without).
            self._timers_changed()

    def _timers_changed(self):
        with self._timer_cond:
            self._timer_cond.notify()

    def close(self):
        """Stop the timer thread (any thread)."""
        with self._timer_cond:
            self._closing = True
            self._timer_cond.notify()
        self._timer_thread.join(5)

    def _timer_loop(self):
        cond = self._timer_cond
        with cond:
            while not self._closing:
                due = self.next_timer()  # a racy read of the heap head is fine: we recheck
                if due is None or self._timer_posted:
                    cond.wait()
                    continue
                delay = due - _clock.monotonic()
                if delay > 0:
                    cond.wait(delay)
                    continue
                self._timer_posted = True
                try:
                    self.server_post(self._run_timers)
                except Exception:
                    log.exception("posting hub timers")

    def _run_timers(self):
        self._bind()
        self.fire_due_timers()
