"""The public scheduling functions: ``schedule``, ``schedule_remove``, ``run``.

Thin wrappers over the thread's ``Scheduler`` (``_scheduler``), defined by
Stackless' ``Doc/library/stackless/stackless.rst``.  They take the running
tasklet out of their own frame before switching (``Scheduler.leaving``), so
a tasklet left suspended here can still be collected.
"""

from . import _watchdog
from ._errors import bomb
from ._state import current_scheduler

__all__ = ["schedule", "schedule_remove", "run"]

_CURRENT = object()  # the default of schedule()'s retval: the current tasklet


def schedule(retval=_CURRENT):
    """Move the current tasklet to the end of the run queue and run the next.

    Returns ``retval`` (default: the current tasklet) when it is resumed.
    """
    sched = current_scheduler()
    if sched.inbox.tasklets:
        sched.take_posted()
    prev = sched.current
    if retval is _CURRENT:
        retval = prev
    next = prev._next
    if next is prev:
        if retval.__class__ is bomb:
            retval.raise_()
        return retval
    sched.check_trap()
    prev._tempval = retval
    sched.make_head(next)
    sched.leaving = prev
    del prev, retval  # the GC promise (see Scheduler.switch)
    return sched.switch(next)


def schedule_remove(retval=_CURRENT):
    """Like ``schedule()``, but the current tasklet leaves the run queue (paused).

    Someone must ``insert()`` it again; its ``tempval`` is what this returns.
    If it is the last runnable tasklet, the innermost ``run()`` caller (or
    main) is resumed instead; if that is the caller itself, nothing happens.
    """
    sched = current_scheduler()
    prev = sched.current
    if retval is _CURRENT:
        retval = prev
    if prev._next is prev and sched.wakeup_target() is prev:
        if retval.__class__ is bomb:
            retval.raise_()
        return retval
    sched.check_trap()
    prev._tempval = retval
    was_last = prev._next is prev
    next = sched.suspend_current(prev)
    if was_last and next is not None and retval.__class__ is bomb:
        next._tempval = retval  # as Stackless' revive: the pending exception goes to main
    if next is None:
        next = sched.wait_for_work(None, prev)
    sched.leaving = prev
    del prev, retval  # the GC promise (see Scheduler.switch)
    return sched.run_task(next)


def run(timeout=0, threadblock=False, soft=False, ignore_nesting=False, totaltimeout=False,
        *extra):
    """Run the other tasklets until none is runnable; the caller waits, paused.

    Returns None, or with a ``timeout`` the tasklet the watchdog interrupted
    (see ``_watchdog``).  An exception escaping a tasklet is raised here.
    Calls nest: a ``run()`` inside a tasklet returns when the queue empties.
    """
    if extra:  # in Stackless C's words: its run() is run_watchdog()
        raise TypeError("run_watchdog() takes at most 5 arguments (%d given)" % (5 + len(extra)))
    sched = current_scheduler()
    if timeout:
        return _watchdog.run_with_timeout(sched, timeout, bool(threadblock), bool(soft),
                                          bool(ignore_nesting), bool(totaltimeout))
    return sched.run_until_idle(bool(threadblock))
