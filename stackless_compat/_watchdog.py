"""``run(timeout=N)``: preemptive scheduling by the watchdog.

Stackless counts interpreter instructions and interrupts a tasklet that runs
``N`` of them without switching (``reference/stackless-docs/scheduler.rst``,
"Pre-emptive scheduling").  CPython 3.11 has no instruction counter for us,
so while a timed ``run()`` is in progress a trace function counts opcode
events (``frame.f_trace_opcodes``) in tasklet code.  When the budget is spent
the tracer, running inside the tasklet, switches straight back to the
``run()`` caller, which returns the interrupted tasklet; inserting it again
resumes it inside the tracer, exactly where it stopped.

Costs and limits: tracing is installed only for the duration of a timed
``run()`` (the normal path never pays for it), but during one Python code
runs many times slower; a tasklet stuck in one long C call cannot be
interrupted; ``sys.settrace`` users (debuggers, coverage) are suspended
during the timed run and restored after.  Code of this package is never
interrupted, so scheduler state stays consistent.
"""

import os
import sys

from ._scheduler import _local

__all__ = ["run_with_timeout"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Watchdog:
    """The preemption state of one timed ``run()``; used only by its thread."""

    __slots__ = ("sched", "caller", "budget", "remaining", "soft", "totaltimeout",
                 "soft_pending", "interrupted")

    def __init__(self, sched, caller, budget, soft, totaltimeout):
        self.sched = sched
        self.caller = caller
        self.budget = self.remaining = budget
        self.soft = soft
        self.totaltimeout = totaltimeout
        self.soft_pending = False
        self.interrupted = None

    def count(self, frame, event):
        """One trace event of tasklet code: count opcodes, interrupt when spent."""
        if event == "call":
            frame.f_trace_opcodes = True
        elif event == "opcode":
            self.remaining -= 1
            if self.remaining <= 0:
                self._expired()

    def _expired(self):
        sched = self.sched
        victim = sched.current
        if victim is self.caller or victim is None:
            return
        if self.soft:
            self.soft_pending = True  # run() returns at the next switch instead
            return
        if victim._atomic or sched.switch_trap:
            return  # not now: retried at the next opcode, once the tasklet allows it
        self.interrupted = victim
        self.remaining = self.budget
        sched.remove(victim)
        sched.make_current(self.caller)
        sched.switch(victim, self.caller)
        # resumed: inserted again by whoever got it back from run()

    def on_switch(self, prev, next):
        """Called by ``Scheduler.switch``: new timeslice, trace the next tasklet.

        Returns whom to switch to: ``next``, or in soft mode with the budget
        spent, the ``run()`` caller (``next`` then runs after it).
        """
        caller = self.caller
        if self.soft_pending and prev is not caller and next is not caller:
            self.soft_pending = False
            sched = self.sched
            if caller._next is None and caller._channel is None:
                sched.insert(caller)  # at the end of the ring, i.e. just before next
                sched.current = caller
                next = caller
        if not self.totaltimeout:
            self.remaining = self.budget
        if next is not caller and next._greenlet is not None:
            frame = next._greenlet.gr_frame
            while frame is not None:
                if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
                    frame.f_trace = _trace
                    frame.f_trace_opcodes = True
                frame = frame.f_back
        return next


def _trace(frame, event, arg):
    """The trace function of timed runs: one function for every run, because
    a frame keeps the trace function it was given across runs."""
    watchdog = _local.scheduler.watchdog
    if watchdog is None or frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        return None  # no timed run now; or this package's code: never interrupted
    watchdog.count(frame, event)
    return _trace


def run_with_timeout(sched, timeout, threadblock, soft, ignore_nesting, totaltimeout):
    """``run(timeout=...)``: run until idle, interrupting a tasklet that runs
    ``timeout`` opcodes without switching (or, with ``totaltimeout``, once the
    whole run used that many).  Returns the interrupted tasklet, no longer
    scheduled, or None.  Only the outermost timed run counts; nested ones
    behave as plain ``run()``.  ``ignore_nesting`` changes nothing here:
    greenlet can interrupt at any nesting level.
    """
    from ._scheduler import run_until_idle
    if not isinstance(timeout, int) or timeout < 0:
        raise TypeError("run() timeout must be a non-negative int, not %r" % (timeout,))
    if sched.watchdog is not None:
        return run_until_idle(sched, threadblock)
    watchdog = Watchdog(sched, sched.current, timeout, soft, totaltimeout)
    outer_trace = sys.gettrace()
    sched.watchdog = watchdog
    hooks = sched.switch_hooks
    sched.switch_hooks = hooks + (watchdog.on_switch,)
    sys.settrace(_trace)
    try:
        run_until_idle(sched, threadblock)
    finally:
        sys.settrace(outer_trace)
        sched.switch_hooks = hooks
        sched.watchdog = None
    if soft:
        return None
    return watchdog.interrupted
