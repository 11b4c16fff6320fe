"""The ``stackless`` module of Stackless Python, on greenlet.

Use it as ``import stackless_compat as stackless``, or call
``stackless_compat.install()`` once so that ``import stackless`` works
unchanged.  The behaviour is the one documented for Stackless Python 3
(Stackless' ``Doc/library/stackless/``); ``docs/compatibility.md`` lists where it
differs (a started tasklet cannot be pickled on greenlet).
"""

import sys
import threading

from . import _scheduler  # noqa: F401  (it registers how a thread makes its scheduler)
from ._callbacks import (get_channel_callback, get_schedule_callback,
                         set_channel_callback, set_error_handler, set_schedule_callback)
from ._channel import channel
from ._errors import TaskletExit, bomb
from ._install import install
from ._schedule import run, schedule, schedule_remove
from ._state import current_scheduler
from ._tasklet import tasklet
from ._threads import get_thread_info, thread_ids

__all__ = [
    "tasklet", "channel", "bomb", "TaskletExit",
    "run", "schedule", "schedule_remove",
    "getcurrent", "getmain", "getruncount", "getcurrentid", "get_thread_info",
    "atomic", "enable_softswitch", "switch_trap",
    "set_channel_callback", "get_channel_callback",
    "set_schedule_callback", "get_schedule_callback", "set_error_handler",
    "getdebug", "getuncollectables", "getthreads",
    "install", "stackless",
]

#: Stackless' debug-build flag: this is never a debug build of Stackless.
debug = False

#: ``stackless.stackless`` is the module itself, as in Stackless.
stackless = sys.modules[__name__]


def getcurrent():
    """Return the running tasklet of this thread."""
    return current_scheduler().current


def getmain():
    """Return the main tasklet of this thread."""
    return current_scheduler().main


def getruncount():
    """Return the number of runnable tasklets, the running one included (at least 1)."""
    return current_scheduler().runcount


def getcurrentid():
    """Return an id of the running tasklet: the thread id for a main tasklet."""
    sched = current_scheduler()
    current = sched.current
    if current is sched.main:
        return threading.get_ident()
    return id(current)


def __reduce__():
    """``stackless.__reduce__()``: the module reduces to its name, as in Stackless."""
    return "stackless"


def getdebug():
    """Return ``debug``: False (there is no debug build of stackless_compat)."""
    return debug


def getuncollectables():
    """Return the tasklets Stackless found it could not collect: here always
    an empty list, because greenlet gives no way to find them (see
    docs/compatibility.md, "Garbage collection")."""
    return []


def getthreads():
    """Return the ids of the live threads, the main thread first (``threads``)."""
    return thread_ids()


def switch_trap(change):
    """Add ``change`` to this thread's switch trap level and return the old level.

    While the level is non-zero, any tasklet switch raises ``RuntimeError``.
    """
    if not isinstance(change, int):
        raise TypeError("switch_trap needs an integer, not %s" % type(change).__name__)
    sched = current_scheduler()
    old = sched.switch_trap
    sched.switch_trap = old + change
    return old


_softswitch = True


def enable_softswitch(flag):
    """Set the soft-switching flag and return the old one (``None`` only asks).

    Kept for compatibility: greenlet always switches whole stacks, so the
    flag changes nothing.
    """
    global _softswitch
    old = _softswitch
    if flag is not None:
        _softswitch = bool(flag)
    return old


class atomic:
    """Context manager: the current tasklet is atomic inside the block.

    ``with stackless.atomic(): ...`` sets ``current.set_atomic(True)`` and
    restores the previous value on the way out.
    """

    __slots__ = ("_old", "_task")

    def __enter__(self):
        task = self._task = current_scheduler().current
        self._old = task.set_atomic(True)
        return self

    def __exit__(self, *exc_info):
        self._task.set_atomic(self._old)
        return False


def __getattr__(name):
    """The live module attributes ``current``, ``main``, ``runcount``, ``threads``,
    ``uncollectables``."""
    if name == "current":
        return current_scheduler().current
    if name == "main":
        return current_scheduler().main
    if name == "runcount":
        return current_scheduler().runcount
    if name == "threads":
        return thread_ids()
    if name == "uncollectables":
        return getuncollectables()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
