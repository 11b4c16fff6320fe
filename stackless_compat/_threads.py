"""Which threads have a scheduler: ``threads`` and ``get_thread_info``.

Every thread gets its own ``Scheduler`` (greenlets cannot switch across
threads); this module only keeps the registry that other threads may read.
Defined by ``reference/stackless-docs/threads.rst``.
"""

import sys
import threading
import weakref

__all__ = ["get_thread_info", "thread_ids"]

# thread id -> Scheduler; weak, so a finished thread's scheduler can go away
_schedulers = weakref.WeakValueDictionary()


def register(scheduler):
    """Record a new thread's scheduler (called once, by that thread)."""
    _schedulers[scheduler.thread_id] = scheduler


def scheduler_of(thread_id):
    """The scheduler of ``thread_id``, or None if that thread never used stackless."""
    return _schedulers.get(thread_id)


def thread_ids():
    """All live thread ids, the main thread first (``stackless.threads``)."""
    main_id = threading.main_thread().ident
    others = sorted(tid for tid in sys._current_frames() if tid != main_id)
    return [main_id] + others


def get_thread_info(thread_id=None):
    """Return ``(main, current, runcount)`` of a thread's scheduler.

    ``thread_id`` defaults to the calling thread.  A live thread that never
    used stackless answers ``(None, None, 0)``; an unknown id raises
    ``RuntimeError`` as in Stackless.
    """
    from ._scheduler import current_scheduler
    if thread_id is None or thread_id == threading.get_ident():
        scheduler = current_scheduler()
    else:
        if not isinstance(thread_id, int):
            raise TypeError("thread_id must be an int, not %s" % type(thread_id).__name__)
        scheduler = scheduler_of(thread_id)
        if scheduler is None:
            if thread_id in sys._current_frames():
                return (None, None, 0)
            raise RuntimeError("Thread id not found: %r" % (thread_id,))
    return (scheduler.main, scheduler.current, scheduler.runcount)
