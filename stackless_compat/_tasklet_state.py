"""What a tasklet reports about itself: its state properties and its repr.

``TaskletState`` sits between the core fields (``_core.TaskletCore``) and
``tasklet`` (``_tasklet``), which adds everything that changes a tasklet.
The states are Stackless' life cycle (``Doc/library/stackless/tasklets.rst``):
not alive (unbound, or bound to a function) -> alive (paused, scheduled,
blocked, or current) -> dead.  They read the core fields only, so they
answer the same on the C and the pure-Python core.
"""

import sys

from . import _threads, _tracing
from ._core import TaskletCore
from ._state import current_scheduler

__all__ = ["TaskletState"]

_PACKAGE = __name__.rpartition(".")[0]


def as_flag(value, what):
    """``value`` as a bool; ``TypeError`` unless it is a bool or an integer."""
    if not isinstance(value, int):
        raise TypeError("%s needs a bool or an integer, not %s" % (what, type(value).__name__))
    return bool(value)


class TaskletState(TaskletCore):
    """The read side of ``tasklet``: its state, flags, frames and tracing."""

    # _tracers: [trace, profile] once it has either (_tracing), unset before
    __slots__ = ("_tracers",)

    @property
    def alive(self):
        """True from ``setup``/``bind(func, args)`` until the function ends
        (or its thread does)."""
        return (self._start is not None or self._greenlet is not None) and \
            self._sched.thread_alive

    @property
    def paused(self):
        """Alive but neither in the run queue nor blocked on a channel."""
        return self._next is None and self.alive

    @property
    def blocked(self):
        """True while blocked on a channel."""
        return self._channel is not None

    @property
    def scheduled(self):
        """True while in the run queue or blocked on a channel (of a live thread)."""
        return self._next is not None and self._sched.thread_alive

    @property
    def restorable(self):
        """True if no greenlet stack is attached (it has not started, or ended)."""
        return self._greenlet is None

    @property
    def atomic(self):
        """The flag set by ``set_atomic``."""
        return self._atomic

    @property
    def ignore_nesting(self):
        """The flag set by ``set_ignore_nesting``."""
        return self._ignore_nesting

    @property
    def block_trap(self):
        """When true, blocking on a channel raises ``RuntimeError`` instead."""
        return self._block_trap

    @block_trap.setter
    def block_trap(self, value):
        self._block_trap = as_flag(value, "block_trap")

    @property
    def is_current(self):
        """True if it is the running tasklet of its thread."""
        return self is self._sched.current

    @property
    def is_main(self):
        """True if it is the main tasklet of its thread."""
        return self is self._sched.main

    @property
    def thread_id(self):
        """The id of the thread it belongs to, ``-1`` once that thread has ended."""
        sched = self._sched
        if _threads.scheduler_of(sched.thread_id) is sched:
            return sched.thread_id
        return -1

    @property
    def next(self):
        """The next tasklet in the chain it is linked into (run queue or channel)."""
        after = self._next
        return None if after is self._channel else after

    @property
    def prev(self):
        """The previous tasklet in the chain it is linked into (run queue or channel)."""
        before = self._prev
        return None if before is self._channel else before

    @property
    def tempval(self):
        """The value in transit: returned by the next switch back into this tasklet."""
        return self._tempval

    @tempval.setter
    def tempval(self, value):
        self._tempval = value

    @property
    def frame(self):
        """The innermost frame of the tasklet's own code, or None if not running."""
        if self is self._sched.current and self._sched is current_scheduler():
            frame = sys._getframe(1)
        elif self._greenlet is not None:
            frame = self._greenlet.gr_frame
        else:
            return None
        while frame is not None and frame.f_globals.get("__name__", "").startswith(_PACKAGE):
            frame = frame.f_back
        return frame

    @property
    def recursion_depth(self):
        """How many Python frames of its own the tasklet is running."""
        depth = 0
        frame = self.frame
        while frame is not None:
            if not frame.f_globals.get("__name__", "").startswith(_PACKAGE):
                depth += 1
            frame = frame.f_back
        return depth

    @property
    def nesting_level(self):
        """Always 0: greenlet switches any stack, so no C nesting blocks a switch."""
        return 0

    @property
    def trace_function(self):
        """The tasklet's own ``sys.settrace`` function (see ``_tracing``)."""
        return _tracing.get_function(self, "trace")

    @trace_function.setter
    def trace_function(self, function):
        _tracing.set_function(self, "trace", function)

    @property
    def profile_function(self):
        """The tasklet's own ``sys.setprofile`` function (see ``_tracing``)."""
        return _tracing.get_function(self, "profile")

    @profile_function.setter
    def profile_function(self, function):
        _tracing.set_function(self, "profile", function)

    def __repr__(self):
        state = ("main" if self.is_main else "current" if self.is_current else
                 "blocked" if self.blocked else "scheduled" if self.scheduled else
                 "paused" if self.alive else "dead")
        return "<%s.%s %s at %#x>" % (type(self).__module__, type(self).__qualname__,
                                      state, id(self))
