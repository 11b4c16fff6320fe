"""Per-tasklet trace and profile functions (``tasklet.trace_function``).

In Stackless, ``sys.settrace`` covers only the current tasklet
(Stackless' ``Doc/library/stackless/debugging.rst``).  Swapping the thread's trace
and profile functions on every switch would cost every program, so it
starts only once some tasklet's ``trace_function`` or ``profile_function``
is set: from then on this thread's switches save the outgoing tasklet's
functions and install the incoming one's.  A plain ``sys.settrace`` call
before that acts on the whole thread, as in CPython.  During a timed
``run()`` the watchdog owns ``sys.settrace`` (``_watchdog``).
"""

import os
import sys
import weakref

from ._state import current_scheduler

__all__ = ["get_function", "set_function"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_GETTERS = {"trace": sys.gettrace, "profile": sys.getprofile}
_SETTERS = {"trace": sys.settrace, "profile": sys.setprofile}

# tasklet -> {"trace": f, "profile": f}: only tasklets that ever had one (rare),
# so tasklets themselves carry no field for them
_functions = weakref.WeakKeyDictionary()


def _saved(task, kind):
    functions = _functions.get(task)
    return None if functions is None else functions.get(kind)


def _save(task, kind, function):
    functions = _functions.get(task)
    if functions is None:
        if function is None:
            return
        functions = _functions[task] = {}
    functions[kind] = function


def _is_running(task):
    return task._sched is current_scheduler() and task is task._sched.current


def get_function(task, kind):
    """The trace or profile function (``kind``) of ``task``; None once it ended."""
    if not task.alive:
        return None
    if _is_running(task):
        return _GETTERS[kind]()
    return _saved(task, kind)


def set_function(task, kind, function):
    """Set ``task``'s trace or profile function, starting per-tasklet swapping.

    ``RuntimeError`` if the tasklet is not alive, as in Stackless C.
    """
    if function is not None and not callable(function):
        raise TypeError("%s_function must be callable or None" % kind)
    if not task.alive:
        raise RuntimeError("tasklet is not alive")
    _save(task, kind, function)
    sched = task._sched
    if _swap not in sched.switch_hooks:
        sched.switch_hooks = sched.switch_hooks + (_swap,)
    if _is_running(task):
        _SETTERS[kind](function)
    elif kind == "trace" and function is not None:
        _trace_frames(task, function)


def _trace_frames(task, function):
    # frames that started before tracing began need their local trace set too
    frame = task._greenlet.gr_frame if task._greenlet is not None else None
    while frame is not None:
        if not frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            frame.f_trace = function
        frame = frame.f_back


def _swap(prev, next):
    """Switch hook: keep each tasklet's trace/profile functions its own.

    While a timed ``run()`` is in progress its watchdog owns ``sys.settrace``,
    so only profile functions are swapped then.
    """
    _save(prev, "profile", sys.getprofile())
    sys.setprofile(_saved(next, "profile"))
    if next._sched.watchdog is None:
        _save(prev, "trace", sys.gettrace())
        trace = _saved(next, "trace")
        sys.settrace(trace)
        if trace is not None:
            _trace_frames(next, trace)
    return next
