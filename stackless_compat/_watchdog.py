"""``run(timeout=N)``: preemptive scheduling by the watchdog.

Stackless counts interpreter instructions and interrupts a tasklet that runs
``N`` of them without switching (Stackless' ``Doc/library/stackless/scheduler.rst``,
"Pre-emptive scheduling").  CPython 3.11 has no instruction counter for us,
so while a timed ``run()`` is in progress a trace function counts *line*
events of tasklet code: one tick is one line of Python executed (a one-line
loop body costs a tick or two per turn; a loop that is one jump to itself,
``while True: pass``, a tick per turn, see ``Watchdog.tracer_for``).
Counting opcodes instead (``f_trace_opcodes``) would follow Stackless more
closely but measured ~25x slower than untraced code against ~5x for lines,
and the "find uncooperative tasklets" idiom runs a whole program under
``run(timeout)``.  When the budget is spent the tracer, running inside the
tasklet, switches straight back to the ``run()`` caller, which returns the
interrupted tasklet; inserting it again resumes it inside the tracer,
exactly where it stopped.

Costs and limits: tracing is installed only for the duration of a timed
``run()`` (the normal path never pays for it); a tasklet stuck in one long C
call cannot be interrupted; ``sys.settrace`` users (debuggers, coverage) are
suspended during the timed run and restored after.  Code of this package is
never traced, so scheduler state stays consistent.
"""

import ctypes
import opcode
import os
import sys

from ._state import _local

__all__ = ["run_with_timeout"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _tracing_calls():
    """CPython's PyThreadState_LeaveTracing/EnterTracing (3.11+), or None.

    The watchdog switches away from inside a trace function, where CPython
    counts the thread as "tracing" (no trace events at all).  greenlet keeps
    a greenlet's own tracing flag but not that thread-wide counter, so
    without these the thread stayed deaf to tracing (sys.settrace, later
    timed runs) until the interrupted tasklet resumed.
    """
    try:
        api = ctypes.pythonapi  # CPython only
        leave, enter, current = (api.PyThreadState_LeaveTracing,
                                 api.PyThreadState_EnterTracing, api.PyThreadState_Get)
    except AttributeError:
        return None
    current.restype = ctypes.c_void_p
    leave.argtypes = enter.argtypes = [ctypes.c_void_p]
    leave.restype = enter.restype = None
    return leave, enter, current


_TRACING = _tracing_calls()


class Watchdog:
    """The preemption state of one timed ``run()``; used only by its thread."""

    __slots__ = ("sched", "caller", "budget", "remaining", "soft", "totaltimeout",
                 "soft_pending", "interrupted", "local_trace", "loop_trace", "self_jumps")

    def __init__(self, sched, caller, budget, soft, totaltimeout):
        self.sched = sched
        self.caller = caller
        self.budget = self.remaining = budget
        self.soft = soft
        self.totaltimeout = totaltimeout
        self.soft_pending = False
        self.interrupted = None

        def local_trace(frame, event, arg):
            # the per-line hot path of a timed run: keep it this small
            if event == "line":
                self.remaining -= 1
                if self.remaining <= 0:
                    return self._expired(frame)
            return local_trace
        self.local_trace = local_trace
        # id(code) -> (code, offsets of its jumps to themselves), for this run only
        self.self_jumps = {}

        def loop_trace(frame, event, arg):
            # a frame whose code jumps to itself somewhere (tracer_for): a
            # turn of that jump is a tick too
            if event == "line" or (event == "opcode"
                                   and frame.f_lasti in self.self_jumps[id(frame.f_code)][1]):
                self.remaining -= 1
                if self.remaining <= 0:
                    return self._expired(frame)
            return loop_trace
        self.loop_trace = loop_trace

    def tracer_for(self, frame):
        """The local trace function that counts ``frame``'s ticks.

        CPython 3.11 emits a "line" event for a backward jump only when it
        lands before the jump, so a one-line ``while True: pass`` (a jump to
        itself) would run forever without one tick.  A frame whose code has
        such a jump gets opcode events as well (slow, but for that frame
        only), and each turn of that jump counts as a line.
        """
        code = frame.f_code
        known = self.self_jumps.get(id(code))
        if known is None:  # code kept: ids stay unique
            known = self.self_jumps[id(code)] = (code, _jumps_to_themselves(code))
        if known[1]:
            frame.f_trace_opcodes = True
            return self.loop_trace
        return self.local_trace

    def _expired(self, frame):
        """The budget is spent: interrupt if allowed; return the trace function
        ``frame`` goes on with."""
        sched = self.sched
        victim = sched.current
        # not interrupted: the frame goes on with the tracer that called us
        if victim is self.caller or victim is None:
            return frame.f_trace
        if self.soft:
            self.soft_pending = True  # run() returns at the next switch instead
            return frame.f_trace
        if victim._atomic or sched.switch_trap:
            return frame.f_trace  # not now: retried at the next line, once allowed
        self.interrupted = victim
        self.remaining = self.budget
        sched.remove(victim)
        sched.make_current(self.caller)
        sched.leaving = victim
        del victim  # the GC promise (see Scheduler.switch)
        if _TRACING is None:
            sched.switch(self.caller)
        else:
            leave, enter, current = _TRACING
            leave(current())  # the others run untouched by this trace call
            try:
                sched.switch(self.caller)
            finally:
                enter(current())  # back inside the trace call, which CPython ends
        # resumed, inserted again by whoever got it back from run(): maybe in a
        # later timed run, whose tracer must take over this frame
        watchdog = sched.watchdog
        return None if watchdog is None else watchdog.tracer_for(frame)

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
                sched.make_head(caller)
                next = caller
        if not self.totaltimeout:
            self.remaining = self.budget
        if next is not caller and next._greenlet is not None:
            frame = next._greenlet.gr_frame
            while frame is not None:
                if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
                    frame.f_trace = self.tracer_for(frame)
                frame = frame.f_back
        return next


_JUMP_BACKWARD = opcode.opmap.get("JUMP_BACKWARD")  # 3.11+
_EXTENDED_ARG = opcode.EXTENDED_ARG


def _jumps_to_themselves(code):
    """The offsets of ``code``'s ``JUMP_BACKWARD 1`` instructions: jumps to
    themselves.  Read from ``co_code`` here, not with ``dis``: this package's
    code is never traced, and the watchdog must not count its own work."""
    if _JUMP_BACKWARD is None:
        return frozenset()
    raw = code.co_code
    pattern = bytes((_JUMP_BACKWARD, 1))
    offsets = []
    at = raw.find(pattern)
    while at >= 0:
        # an instruction starts at an even offset; EXTENDED_ARG n > 0 makes the jump longer
        if at % 2 == 0 and not (at >= 2 and raw[at - 2] == _EXTENDED_ARG and raw[at - 1]):
            offsets.append(at)
        at = raw.find(pattern, at + 1)
    return frozenset(offsets)


def _trace(frame, event, arg):
    """The global trace function of timed runs: picks which new frames to count."""
    watchdog = _local.scheduler.watchdog
    if watchdog is None or frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        return None  # no timed run now; or this package's code: never interrupted
    return watchdog.tracer_for(frame)


def run_with_timeout(sched, timeout, threadblock, soft, ignore_nesting, totaltimeout):
    """``run(timeout=...)``: run until idle, interrupting a tasklet that runs
    ``timeout`` lines without switching (or, with ``totaltimeout``, once the
    whole run used that many).  Returns the interrupted tasklet, no longer
    scheduled, or None.  Only the outermost timed run counts; nested ones
    behave as plain ``run()``.  ``ignore_nesting`` changes nothing here:
    greenlet can interrupt at any nesting level.
    """
    if not isinstance(timeout, int) or timeout < 0:
        raise TypeError("run() timeout must be a non-negative int, not %r" % (timeout,))
    if sched.watchdog is not None:
        return sched.run_until_idle(threadblock)
    watchdog = Watchdog(sched, sched.current, timeout, soft, totaltimeout)
    outer_trace = sys.gettrace()
    sched.watchdog = watchdog
    on_switch = watchdog.on_switch
    sched.switch_hooks = sched.switch_hooks + (on_switch,)
    sys.settrace(_trace)
    try:
        sched.run_until_idle(threadblock)
    finally:
        sys.settrace(outer_trace)
        # only its own hook goes: per-tasklet tracing may have started meanwhile
        sched.switch_hooks = tuple(hook for hook in sched.switch_hooks if hook != on_switch)
        sched.watchdog = None
    if soft:
        return None
    return watchdog.interrupted
