"""Threads: the scheduler registry, each scheduler's inbox, and thread waits.

Every thread has its own ``Scheduler`` (greenlets cannot switch across
threads, Stackless' ``Doc/library/stackless/threads.rst``).  To make one of
its tasklets runnable, other threads append it to that scheduler's ``Inbox``
and wake the thread; the owner drains the inbox at its next switch.  The
one exception, Stackless' ``remove()``/``insert()`` of another thread's
tasklet, changes that thread's run queue from here in one step under the
GIL, while that thread is outside this package (``change_from_afar``).  A thread whose last runnable tasklet
blocks waits on its inbox instead of declaring a deadlock while some other
live thread might still wake it (Stackless' ``check_for_deadlock``).

Channel bookkeeping needs a lock only once a second thread uses stackless:
``shared.lock`` is ``None`` until then, so a single-threaded program never
pays for it.  When it turns into a lock, the new thread first waits until no
other thread is in the middle of an unlocked hand-over (see ``_go_shared``).
"""

import os
import sys
import threading
import time
import weakref
from collections import deque

from . import _greenlets
from ._core import Shared
from ._state import current_scheduler

if os.environ.get("STACKLESS_COMPAT_PURE"):
    _remote = None
else:
    try:
        from . import _remote  # optional C (_remote.c), built beside the C core
    except ImportError:
        _remote = None

__all__ = ["get_thread_info", "thread_ids"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

# thread id -> Scheduler of a live thread
_schedulers = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


#: the channel lock, once two threads use stackless (a core type: the C hand-over reads it)
shared = Shared()


class _NoLock:
    """Stands in for the channel lock while only one thread uses stackless."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


NO_LOCK = _NoLock()


def channel_lock():
    """The channel lock, or a no-op stand-in while single-threaded."""
    return shared.lock or NO_LOCK


class Inbox:
    """Tasklets other threads made runnable, for one scheduler; thread-safe."""

    __slots__ = ("tasklets", "cond", "thread_blocked")

    def __init__(self):
        self.tasklets = deque()
        self.cond = threading.Condition(threading.Lock())
        self.thread_blocked = False  # the owner thread waits for other threads

    def post(self, task):
        """Hand ``task`` to the owner thread (any thread)."""
        with self.cond:
            self.tasklets.append(task)
            self.thread_blocked = False  # it is being woken: it can wake others again
            self.cond.notify()

    def wait(self, timeout):
        """Wait (owner thread) until something is posted; True if something is there.

        ``thread_blocked`` is true only while the owner sits in the wait, so
        other threads never take a thread that is being woken for a dead one.
        """
        with self.cond:
            if not self.tasklets:
                self.thread_blocked = True
                self.cond.wait(timeout)
                self.thread_blocked = False
            return bool(self.tasklets)


class _ThreadGuard:
    """Lives in the thread's locals: when the thread ends, its scheduler learns it."""

    __slots__ = ("scheduler", "__weakref__")

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def __del__(self, _lock=_registry_lock, _schedulers=_schedulers):
        # the defaults: at interpreter exit this may run after the module's globals are gone
        scheduler = self.scheduler
        scheduler.thread_ended()
        with _lock:
            if _schedulers.get(scheduler.thread_id) is scheduler:
                del _schedulers[scheduler.thread_id]


def register(scheduler, local):
    """Record a new thread's scheduler (called once, by that thread)."""
    local.guard = _ThreadGuard(scheduler)
    with _registry_lock:
        _schedulers[scheduler.thread_id] = scheduler
        others = len(_schedulers) > 1
    if others and shared.lock is None:
        _go_shared()


def _go_shared():
    """Switch channels to locked hand-overs, safely.

    Another thread may be halfway through an unlocked hand-over right now
    (the GIL can switch threads between any two bytecodes), so after
    publishing the lock we wait until no other thread's innermost frame is
    in this package's code (a thread waiting for work sits in
    ``threading``, not here).  This runs once per process.
    """
    shared.lock = threading.Lock()
    me = threading.get_ident()
    for _ in range(10_000):
        busy = any(frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                   for tid, frame in sys._current_frames().items() if tid != me)
        if not busy:
            return
        time.sleep(0.0001)


#: how long a change from another thread waits for the owner to leave this package's code
PATIENCE = 2.0


def change_from_afar(scheduler, plan, wait):
    """Change another live thread's run queue from this thread, safely.

    ``plan()`` reads the ring and returns ``(checks, sets)``, tuples of
    ``(object, attribute, value)``, or None if nothing is left to do.  The
    C helper ``_remote`` makes the sets in one step under the GIL, only
    while every check holds and the owner thread is outside this package's
    code (so not in the middle of a scheduling step).  Returns True once
    changed, None if there was nothing to do.  While the owner is busy in the
    package: False at once without ``wait``, else retries for up to
    ``PATIENCE`` seconds, then ``RuntimeError``.  Without the C helper (the
    pure-Python core): False without ``wait``, else ``RuntimeError``.
    Other threads' changes of the same ring take turns on its inbox's lock.
    """
    deadline = time.monotonic() + PATIENCE
    while True:
        with scheduler.inbox.cond:
            planned = plan()
            if planned is None:
                return None
            if _remote is None:
                if not wait:
                    return False
                raise RuntimeError(
                    "another thread's run queue can be changed from here only with the C core"
                    " (pure Python cannot check that thread and change its queue in one step"
                    " under the GIL)")
            checks, sets = planned
            if _remote.apply_when_outside(scheduler.thread_id, _PACKAGE_DIR,
                                          _greenlets.body.__code__, checks, sets):
                return True
        if not wait:
            return False
        if time.monotonic() > deadline:
            raise RuntimeError("the thread of %r stayed inside stackless_compat for %s s:"
                               " its run queue was not changed" % (scheduler.main, PATIENCE))
        time.sleep(0.0002)


def scheduler_of(thread_id):
    """The scheduler of ``thread_id``, or None if that thread never used stackless."""
    return _schedulers.get(thread_id)


def others_can_wake(scheduler):
    """True while some other live thread is not itself waiting in stackless.

    Such a thread might still send to us (Stackless' ``check_for_deadlock``).
    """
    me = scheduler.thread_id
    for tid in sys._current_frames():
        if tid != me:
            other = _schedulers.get(tid)
            if other is None or not other.inbox.thread_blocked:
                return True
    return False


def thread_ids():
    """All live thread ids, the main thread first (``stackless.threads``)."""
    main_id = threading.main_thread().ident
    others = sorted(tid for tid in sys._current_frames() if tid != main_id)
    return [main_id] + others


def get_thread_info(thread_id=None, flags=0):
    """Return ``(main, current, runcount)`` of a thread's scheduler.

    ``thread_id`` defaults to the calling thread.  A live thread that never
    used stackless answers ``(None, None, 0)``; an unknown id raises
    ``RuntimeError`` as in Stackless.  ``flags`` is accepted, as in
    Stackless, and changes nothing (its debugging counters do not exist here).
    """
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
