"""The core state of tasklets, channels and schedulers, in C or in Python.

The hot fields (ring and channel links, values in transit, balance, the
scheduler's head and counters, the process-wide hooks and channel lock)
live in small base types that ``tasklet``, ``channel`` and ``Scheduler``
subclass.  When the optional C extension (``_speedups.c``) is built, these
base types are C types and own that state: their ``send``/``receive`` do
the common single-thread hand-overs on their own structs and call the
Python hand-over (``channel._send``/``_receive``) for every other case.
Here are the same types in Python, used when the extension is missing or
``STACKLESS_COMPAT_PURE`` is set; then ``channel`` itself defines
``send``/``receive`` as the Python hand-over.

Either way every field is an attribute with the same name and meaning, so
the Python policy reads and writes it the same way on both paths.
"""

import os

__all__ = ["SPEEDUPS", "TaskletCore", "ChannelCore", "SchedulerCore", "Hooks", "Shared",
           "from_c", "tracing_moved"]


class _PyTaskletCore:
    """A tasklet's state: ring links, scheduler, greenlet, value in transit,
    channel, start arguments, flags."""

    __slots__ = ("_sched", "_next", "_prev", "_greenlet", "_tempval", "_channel", "_start",
                 "_args", "_block_trap", "_atomic", "_ignore_nesting")

    def __new__(cls, *args, **kwargs):
        self = object.__new__(cls)
        self._sched = self._next = self._prev = self._greenlet = None
        self._tempval = self._channel = self._start = self._args = None
        self._block_trap = self._atomic = self._ignore_nesting = False
        return self


class _PyChannelCore:
    """A channel's chain of blocked tasklets, balance and flags."""

    __slots__ = ("_next", "_prev", "_balance", "_preference", "_schedule_all", "_closing")

    def __new__(cls, *args, **kwargs):
        # set up here, not in __init__: legacy subclasses often skip super().__init__
        self = object.__new__(cls)
        self._next = self._prev = None  # the empty chain of waiting tasklets
        self._balance = 0
        self._preference = -1  # prefer the receiver, as Stackless does
        self._schedule_all = self._closing = False
        return self


class _PySchedulerCore:
    """A scheduler's head of the ring, counters and the flags the hand-over checks."""

    __slots__ = ("current", "runcount", "posted", "switch_hooks", "switch_trap", "watchdogs",
                 "main", "threadblock", "seen_trace", "seen_profile")

    def bind_thread(self):
        """Make this the calling thread's scheduler for the C hand-over (nothing to do here)."""


class _PyHooks:
    """The process-wide schedule and channel callbacks and error handler (``_callbacks.hooks``)."""

    __slots__ = ("schedule", "channel", "error")

    def __init__(self):
        self.schedule = self.channel = self.error = None


class _PyShared:
    """The channel lock, None while only one thread uses stackless (``_threads.shared``)."""

    __slots__ = ("lock",)

    def __init__(self):
        self.lock = None


# which Python methods the C core calls and what it offers (bumped when that
# changes): a stale build of _speedups.c would call methods that are gone
_PROTOCOL = 5


def _speedups_or_none():
    if os.environ.get("STACKLESS_COMPAT_PURE"):
        return None
    try:
        from . import _speedups  # optional: built when a C compiler was there
    except ImportError:
        return None
    if getattr(_speedups, "PROTOCOL", 1) != _PROTOCOL:
        raise ImportError("stackless_compat/_speedups was built from older source: rebuild it"
                          " (setup.py build_ext --inplace --force) or set STACKLESS_COMPAT_PURE=1")
    return _speedups


_c = _speedups_or_none()

#: True when the core types are the C ones of ``_speedups``
SPEEDUPS = _c is not None
if SPEEDUPS:
    TaskletCore, ChannelCore, SchedulerCore = _c.TaskletCore, _c.ChannelCore, _c.SchedulerCore
    Hooks, Shared = _c.Hooks, _c.Shared
else:
    TaskletCore, ChannelCore, SchedulerCore = _PyTaskletCore, _PyChannelCore, _PySchedulerCore
    Hooks, Shared = _PyHooks, _PyShared


#: ``tracing_moved(scheduler)``: True if the thread's trace or profile function
#: is not the one ``scheduler.seen_trace``/``seen_profile`` hold (``_tracing``);
#: None on the pure-Python core, where asking at every switch would cost a
#: switch 6-13% (two calls, where C reads two fields)
tracing_moved = _c.tracing_moved if SPEEDUPS else None

#: ``from_c(kind)``: True if the thread's trace (0) or profile (1) function
#: was installed from C (``PyEval_SetTrace``), not by ``sys.settrace``; None
#: on the pure-Python core, which cannot tell
from_c = _c.from_c if SPEEDUPS else None


def connect(**objects):
    """Give the C hand-over the Python objects it consults (once, from ``_scheduler``)."""
    if SPEEDUPS:
        _c.connect(**objects)
