"""Per-tasklet trace and profile functions (``tasklet.trace_function``).

In Stackless, ``sys.settrace`` covers only the current tasklet and a new
tasklet starts with no trace or profile function (Stackless'
``Doc/library/stackless/debugging.rst``).  CPython keeps both per thread, so
here each switch would have to save the outgoing tasklet's functions and
install the incoming one's.  Asking CPython for them costs about 40 ns, 4%
of a switch, so a thread swaps only once it is seen to trace.  On the C
core every switch of a thread that swaps nothing compares its functions with
the ones last seen here (the scheduler's ``seen_trace``/``seen_profile``:
two loads in C, ``_core.tracing_moved``); a change means the tasklet
running until now set one, so it is that tasklet's own and the thread
starts swapping (``seen``): ``sys.settrace`` inside a tasklet stays with
it, as in Stackless (c6b).  On the pure-Python core that check would cost
a switch 6-13%, so there such a function reaches the next tasklet until
the thread swaps.  Setting a tasklet's ``trace_function`` or
``profile_function`` starts swapping, and so does a tasklet that never ran
starting while the thread has one (``start_untraced``).  During a timed
``run()`` the watchdog owns ``sys.settrace`` (``_watchdog``).

A tasklet's functions live in its ``_tracers`` slot (``[trace, profile]``,
unset until it has one), so swapping needs no table and any tasklet
subclass can have them.  Each scheduler's tasklets that hold one are known
(``_holders``, changed only when a function is set or dropped), so a
thread stops swapping once no tasklet of it has one: then its switches
are as cheap as before and the C hand-over takes them again.

A profiler or tracer installed from C, such as ``cProfile`` (CPython 3.11
and before: 3.12's ``cProfile`` uses ``sys.monitoring``, which no thread
state holds) or coverage's ``CTracer``, is not swapped: ``sys.set*`` could
only put it back as a Python function to call, which it is not.  The C
core tells one from the function ``sys.settrace`` installs
(``_core.from_c``); the pure-Python core only knows that an object that is
not callable (cProfile's) came from C, so there a callable one, such as
coverage's, is swapped like a Python function.  One from C stays
thread-wide, never saved, cleared or replaced here, and sees every
tasklet's frames: ``python -m cProfile prog.py`` and ``coverage run``
measure the whole program, which is what their users ask for (Stackless C
would keep it to the tasklet that enabled it).  While one holds the slot,
a tasklet's own Python function of that kind waits, saved, until it is
gone.
"""

import os
import sys
import weakref

from ._core import from_c as _from_c
from ._state import current_scheduler

__all__ = ["get_function", "moved", "seen", "set_function", "start_untraced"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_KINDS = {"trace": 0, "profile": 1}
_GETTERS = (sys.gettrace, sys.getprofile)
_SETTERS = (sys.settrace, sys.setprofile)


# scheduler -> {id(tasklet): weakref to it} of its tasklets holding a function
_holders = weakref.WeakKeyDictionary()


def _thread_wide(kind, function):
    # ``function``, the thread's current one of ``kind``, was installed from C
    # (see the module docstring): never swapped
    if function is None:
        return False
    if _from_c is not None:
        return _from_c(kind)
    return not callable(function)


def _saved(task, kind):
    functions = getattr(task, "_tracers", None)
    return None if functions is None else functions[kind]


def _save(task, kind, function):
    functions = getattr(task, "_tracers", None)
    if functions is None:
        if function is None:
            return
        functions = task._tracers = [None, None]
    functions[kind] = function
    holders = _holders.setdefault(task._sched, {})
    if functions[0] is None and functions[1] is None:
        holders.pop(id(task), None)
    elif id(task) not in holders:
        key = id(task)
        holders[key] = weakref.ref(task, lambda _, key=key: holders.pop(key, None))


def _is_running(task):
    return task._sched is current_scheduler() and task is task._sched.current


def _start_swapping(sched):
    if _swap not in sched.switch_hooks:
        sched.switch_hooks = sched.switch_hooks + (_swap,)


def _look(sched):
    # what the switches compare with from now on (_core.tracing_moved)
    sched.seen_trace = sys.gettrace()
    sched.seen_profile = sys.getprofile()


def get_function(task, kind):
    """The trace or profile function (``kind``) of ``task``; None once it ended."""
    if not task.alive:
        return None
    if _is_running(task):
        return _GETTERS[_KINDS[kind]]()
    return _saved(task, _KINDS[kind])


def set_function(task, kind, function):
    """Set ``task``'s trace or profile function, starting per-tasklet swapping.

    ``RuntimeError`` if the tasklet is not alive, as in Stackless C.
    """
    if function is not None and not callable(function):
        raise TypeError("%s_function must be callable or None" % kind)
    if not task.alive:
        raise RuntimeError("tasklet is not alive")
    index = _KINDS[kind]
    _save(task, index, function)
    _start_swapping(task._sched)
    if _is_running(task):
        _SETTERS[index](function)
    elif index == 0 and function is not None:
        _trace_frames(task, function)


def moved(task, old):
    """``task``, which never ran, moved to another thread's scheduler from
    ``old`` (``bind_thread``): its functions, if it has any, go with it.

    The new scheduler learns it holds them and swaps from its next switch
    on (the new thread's own switch hooks change on that thread: asked
    through its inbox when another thread moved the tasklet there).
    """
    record = _holders.get(old)
    if not record or record.pop(id(task), None) is None:
        return
    functions = task._tracers
    _save(task, 0, functions[0])  # recorded under task._sched, the new scheduler
    _save(task, 1, functions[1])
    sched = task._sched
    if sched is current_scheduler():
        _start_swapping(sched)
    else:
        sched.call_on_owner(_start_swapping)


def start_untraced(sched, prev):
    """A tasklet that never ran starts while the thread has a trace or
    profile function (the caller checked): it starts with neither.

    They were ``prev``'s, the tasklet running until now (None if it ended),
    and stay its own: the thread starts swapping.  One installed from C
    stays thread-wide (``_thread_wide``): the new tasklet runs under it.
    """
    if _swap in sched.switch_hooks:
        return  # swapping already: the switch gave it its own, none (the watchdog's aside)
    watched = sched.watchdog is not None  # a timed run's trace function is the watchdog's
    profile = sys.getprofile()
    trace = None if watched else sys.gettrace()
    profile = None if _thread_wide(1, profile) else profile
    trace = None if _thread_wide(0, trace) else trace
    if profile is None and trace is None:
        return  # nothing of a tasklet's own to take away
    if prev is not None and prev.alive:
        _save(prev, 1, profile)
        _save(prev, 0, trace)
    if profile is not None:
        sys.setprofile(None)
    if trace is not None:
        sys.settrace(None)
    _start_swapping(sched)


def seen(sched):
    """A switch found the thread's trace or profile function changed since
    the last look (``_core.tracing_moved``).

    The tasklet running until now set it, so it is that tasklet's own: the
    thread starts swapping, and the switch's ``_swap`` saves it with that
    tasklet.  A timed run's trace function is the watchdog's and one
    installed from C stays thread-wide: neither starts anything.
    """
    _look(sched)
    trace = None if sched.watchdog is not None else sched.seen_trace
    profile = sched.seen_profile
    if ((trace is not None and not _thread_wide(0, trace))
            or (profile is not None and not _thread_wide(1, profile))):
        _start_swapping(sched)


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
    so only profile functions are swapped then; a function installed from C
    (``_thread_wide``) is left where it is.  The functions are installed
    last, so they see as little of this package as the switch allows.
    """
    sched = next._sched
    outgoing_profile = sys.getprofile()
    swap_profile = not _thread_wide(1, outgoing_profile)
    if swap_profile:
        sys.setprofile(None)  # first: the rest of this hook is nobody's to see
    swap_trace = sched.watchdog is None
    if swap_trace:
        outgoing_trace = sys.gettrace()
        swap_trace = not _thread_wide(0, outgoing_trace)
        if swap_trace:
            sys.settrace(None)
    if prev is None or not prev.alive:  # an ended one's functions end with it
        _save(prev, 0, None)
        _save(prev, 1, None)
    else:
        if swap_profile:
            _save(prev, 1, outgoing_profile)
        if swap_trace:
            _save(prev, 0, outgoing_trace)
    profile = _saved(next, 1) if swap_profile else None
    trace = _saved(next, 0) if swap_trace else None
    if trace is not None:
        _trace_frames(next, trace)
    if swap_profile:
        sys.setprofile(profile)
    if swap_trace:
        sys.settrace(trace)
    if (trace is None and profile is None and sched.watchdog is None
            and not _holders.get(sched)):
        # nobody here traces any more: stop swapping; a function set from now
        # on is seen at the next switch (seen)
        sched.switch_hooks = tuple(hook for hook in sched.switch_hooks if hook is not _swap)
    _look(sched)
    return next
