"""The per-thread scheduler: the run queue, switching, and how tasklets end.

Stackless keeps one circular run queue per thread whose head is the running
tasklet (Stackless' ``Doc/library/stackless/tasklets.rst``, "Tasklet Life Cycle").
``Scheduler`` owns that ring; nothing else changes its links.  Switching to
a tasklet that is already in the ring just rotates the ring so it becomes the
head, which is why ``t.run()`` of a scheduled tasklet also runs whoever
follows it before control comes back (see ``tasklet.run`` in the docs).

Values travel the way Stackless C moves ``tempval``: whoever switches to a
tasklet hands it that tasklet's ``_tempval``; if it is a ``bomb``, it
explodes in the resumed tasklet.  ``Scheduler.switch`` is the only function
that calls ``greenlet.switch``.

The ring operations are the methods under "the ring" below: ``insert``
(link before the head), ``insert_next`` (link after it, and maybe make it
head), ``remove`` (unlink), ``make_head`` and ``unlink_all``.  Channels,
``schedule()``, the watchdog and the thread inbox all go through them; nothing else writes ``current`` or a
tasklet's ring links (a channel links its own blocked tasklets).

What concerns other threads (the inbox they post to, waiting for them,
``remove()``/``insert()`` from another thread, a thread's end) is in
``_scheduler_threads``: methods of this same class, kept in their own module.

greenlet never garbage-collects a cycle that runs through a suspended
greenlet's frames, so the frames we leave suspended hold no reference to a
tasklet: a tasklet's greenlet finds its tasklet through ``scheduler.current``
(``_greenlets``) and ``switch`` deletes its tasklet arguments before it switches.
"""

import logging
import sys
import threading

from greenlet import GreenletExit, getcurrent

from . import _callbacks, _core, _state, _threads, _tracing
from ._core import SchedulerCore
from ._errors import _GarbageCollected, bomb
from ._greenlets import Start, start_greenlet
from ._state import _local
from ._scheduler_threads import SchedulerThreads
from ._tasklet import tasklet

log = logging.getLogger(__name__)

_hooks = _callbacks.hooks
_gettrace, _getprofile = sys.gettrace, sys.getprofile
_tracing_moved = _core.tracing_moved
_SEES_TRACING = _tracing_moved is not None  # the C core only (_core.tracing_moved)


def _new_scheduler():
    """The ``_state`` factory: make and register this thread's scheduler."""
    scheduler = _local.scheduler = Scheduler()
    scheduler.bind_thread()
    _threads.register(scheduler, _local)
    if _hooks.schedule is not None:
        _callbacks.notify_schedule(scheduler, None, scheduler.main)
    return scheduler


class Scheduler(SchedulerThreads, SchedulerCore):
    """One thread's run queue and scheduling state; used only by that thread.

    ``current`` is the head of the ring: the running tasklet, except inside
    a scheduling operation, between choosing the next tasklet and switching.
    The head, counters and hand-over flags live in ``SchedulerCore``.
    """

    __slots__ = ("thread_id", "thread_alive", "root", "inbox", "watchdog", "pool", "leaving",
                 "in_callback", "in_channel_callback", "__weakref__")

    def __init__(self):
        self.thread_id = threading.get_ident()
        self.thread_alive = True
        self.inbox = _threads.Inbox()
        self.posted = self.inbox.tasklets  # the same deque: one load on the switch path
        self.threadblock = False  # run(threadblock=True): wait for other threads when idle
        self.watchdog = None      # the preemption watchdog of run(timeout=...), if active
        self.switch_hooks = ()    # hook(prev, next) -> next, run on every switch (rarely any)
        self.seen_trace = self.seen_profile = None  # the thread's functions _tracing last saw
        self.root = getcurrent()
        self.pool = []  # parked greenlets of ended tasklets, for new ones (_greenlets)
        self.leaving = None  # the tasklet switch() leaves, handed over without a local
        self.runcount = 0
        self.current = None
        self.watchdogs = []  # tasklets inside run(), innermost last
        self.switch_trap = 0
        self.in_callback = False
        self.in_channel_callback = False
        main = tasklet._new_in(self)
        main._greenlet = self.root
        self.main = main
        self.insert(main)

    # -- the ring ---------------------------------------------------------

    def insert(self, task):
        """Append ``task`` at the end of the ring (just before the head)."""
        head = self.current
        if head is None:
            task._next = task._prev = task
            self.current = task
        else:
            last = head._prev
            last._next = task
            task._prev = last
            task._next = head
            head._prev = task
        self.runcount += 1

    def insert_next(self, task, make_head=False):
        """Link ``task`` right after the head: it runs next.  With
        ``make_head`` it becomes the head (it runs now, the old head is last)."""
        head = self.current
        after = head._next
        head._next = task
        task._prev = head
        task._next = after
        after._prev = task
        self.runcount += 1
        if make_head:
            self.current = task

    def make_head(self, task):
        """Make ``task``, already in the ring, its head (rotating the ring)."""
        self.current = task

    def remove(self, task):
        """Unlink ``task`` from the ring; if it was the head, its successor becomes head."""
        after = task._next
        if after is task:
            self.current = None
        else:
            before = task._prev
            before._next = after
            after._prev = before
            if self.current is task:
                self.current = after
        task._next = task._prev = None
        self.runcount -= 1

    def unlink_all(self):
        """Empty the ring (its thread ended): every tasklet in it is unlinked."""
        head = getattr(self, "current", None)  # None too if the collector cleared it
        task = head
        while task is not None:
            after = task._next
            task._next = task._prev = None
            task = None if after is head else after
        self.current = None
        self.runcount = 0

    # -- switching --------------------------------------------------------

    def check_trap(self):
        """Refuse to switch while ``switch_trap`` is set (checked before any state changes)."""
        if self.switch_trap:
            if self.in_callback or self.in_channel_callback:
                raise RuntimeError("Recursive scheduler call due to callbacks!")
            raise RuntimeError("switch_trap: tasklet switching is trapped in this thread")

    def switch(self, next):
        """Switch from the running tasklet to ``next``, already made head.

        The caller puts the running tasklet in ``leaving`` and keeps no
        local reference to it: a frame that stays suspended must not
        reference its own tasklet, or dropping a paused tasklet would leak
        it (greenlet never collects a cycle through suspended frames).
        Returns the value handed to it when something switches back to it,
        raising it instead if it is a bomb.
        """
        prev = self.leaving
        self.leaving = None
        if (self.posted or self.switch_hooks or _hooks.schedule is not None
                or _SEES_TRACING and _tracing_moved(self)):
            next = self.announce(prev, next)
            if next is prev:  # a switch hook kept the running tasklet
                return self.claim(prev)
        value = next._tempval
        next._tempval = None
        target = next._greenlet
        if target is None:  # a first run
            if _gettrace() is not None or _getprofile() is not None:
                _tracing.start_untraced(self, prev)  # it starts with neither, as in Stackless
            target, value = start_greenlet(self, next, value)
        del prev, next
        try:
            value = target.switch(value)
            while value.__class__ is Start:  # only the root greenlet receives these
                value = value.forward()
        except GreenletExit:
            raise _GarbageCollected from None
        if value.__class__ is bomb:
            value.raise_()
        return value

    def announce(self, prev, next):
        """What precedes every switch from ``prev`` to ``next`` (the head),
        including the one out of an ended tasklet: take what other threads
        posted, tell ``_tracing`` if the thread's trace or profile function
        changed, let the switch hooks (tracing, the watchdog) pick another
        ``next``, and call the schedule callback unless a hook kept ``prev``.
        Returns whom to switch to."""
        if self.posted:
            self.take_posted()
        if _SEES_TRACING and _tracing_moved(self):
            _tracing.seen(self)  # may start swapping: then _tracing's hook runs below
        for hook in self.switch_hooks:
            next = hook(prev, next)
        if next is not prev and _hooks.schedule is not None:
            self.notify_schedule(prev, next)
        return next

    def notify_schedule(self, prev, next):
        """Call the schedule callback for a switch from ``prev`` to ``next``
        (the head): as in Stackless C it runs before the switch, so inside it
        ``current`` is still ``prev``."""
        self.current = prev
        try:
            _callbacks.notify_schedule(self, prev, next)
        finally:
            self.current = next

    def make_current(self, task):
        """Make ``task`` the head: unblock it from its channel or reinsert it if paused."""
        channel = task._channel
        if channel is not None and channel._unblock_safely(task):
            self.insert(task)
        elif task._next is None:
            self.insert(task)
        self.make_head(task)

    def run_task(self, next):
        """Switch from the running tasklet, in ``leaving`` (see ``switch``), to
        any tasklet ``next``.

        This is Stackless' ``slp_schedule_task``: ``next`` is unblocked or
        reinserted if needed and becomes the head; switching to oneself just
        returns one's ``tempval``.
        """
        self.make_current(next)
        if next is self.leaving:
            self.leaving = None
            return self.claim(next)
        return self.switch(next)

    @staticmethod
    def claim(task):
        """Return ``task``'s tempval without switching (raising it if a bomb)."""
        value = task._tempval
        task._tempval = None
        if value.__class__ is bomb:
            value.raise_()
        return value

    def suspend_current(self, current):
        """Take the running tasklet out of the ring; return the tasklet to run next.

        That is its successor; if it was the last runnable one, the revived
        innermost ``run()`` caller (or main), or None when the thread must
        wait for other threads (``wait_for_work``).  If nothing could ever
        wake it: ``RuntimeError`` (deadlock) and nothing changes.
        """
        next = current._next
        if next is current:
            next = self._idle_target(current)
            self.remove(current)
            if next is not None:
                self.make_current(next)
            return next
        # the head leaves, its successor becomes head: remove(), unrolled, as
        # this is every blocking call's path (a call more cost a pure-Python
        # round trip ~4%)
        before = current._prev
        before._next = next
        next._prev = before
        current._next = current._prev = None
        self.current = next
        self.runcount -= 1
        return next

    def _idle_target(self, leaving):
        """The ring is about to lose its last tasklet, ``leaving``: who runs next?

        Stackless revives the innermost watchdog (or main) if it is paused,
        unless ``run(threadblock=True)`` asked to wait for other threads;
        it waits (None) while another thread could still wake this one.
        """
        target = self.wakeup_target()
        revivable = target is not leaving and target._next is None and target._channel is None
        if revivable and not self.threadblock:
            return target
        if _threads.others_can_wake(self):
            return None
        if revivable:
            return target
        raise RuntimeError("Deadlock: the last runnable tasklet cannot be blocked.")

    def wakeup_target(self):
        """Who runs when nothing else can: the innermost ``run()`` caller, else main."""
        watchdogs = self.watchdogs
        return watchdogs[-1] if watchdogs else self.main

    def end_current(self, error):
        """The running tasklet has finished (``error`` is what escaped it, or None).

        Called from its greenlet (``_greenlets.body``): picks the next
        tasklet, makes it head and returns it.  An ``error``, or a deadlock
        once nothing is left, goes to the innermost ``run()`` caller or main:
        that becomes the dying greenlet's parent and the error is raised, so
        greenlet raises it there.
        """
        task = self.current
        self.remove(task)  # its successor becomes head
        task._greenlet = None
        next = self.current
        if next is None or error is not None:
            next, error = self._end_target(error)
        if (self.posted or self.switch_hooks or _hooks.schedule is not None
                or _SEES_TRACING and _tracing_moved(self)):
            next = self.announce(task, next)
        del task
        if error is not None:
            target = next._greenlet
            if target is None:  # only hooks could pick a tasklet that never ran
                target, next._tempval = start_greenlet(self, next, next._tempval)
            getcurrent().parent = target
            raise error
        return next

    def _end_target(self, error):
        """Who runs after the last runnable tasklet ended, or after one that
        raised: (that tasklet, made head; the error it must raise, if any)."""
        next = None if error is not None else self._next_after_last_ended()
        if next is None:
            # errors, and a thread with nothing left, go to the innermost run() caller or main
            next = self.wakeup_target()
            if error is None:
                side = "receiving" if next._channel._balance < 0 else "sending"
                error = RuntimeError("the main tasklet is %s without a %s available."
                                     % (side, "sender" if side == "receiving" else "receiver"))
        self.make_current(next)
        return next, error

    def _next_after_last_ended(self):
        """The last runnable tasklet ended: revive the watchdog or main if paused
        (as Stackless' ``tasklet_end`` does, whatever ``threadblock`` says); if it
        is blocked, wait while another thread may still wake someone; else None."""
        target = self.wakeup_target()
        if target._next is None and target._channel is None:
            return target
        if self.wait_for_posted():
            return self.current
        return None

    # -- run() --------------------------------------------------------------

    def run_until_idle(self, threadblock=False):
        """The body of ``run()``: pause the caller as a watchdog and switch away.

        With ``threadblock``, an idle thread waits for tasklets other threads
        make runnable instead of returning at once.
        """
        caller = self.current
        if self.inbox.tasklets:
            self.take_posted()
        if caller._next is caller and not (threadblock and self.wait_for_posted()):
            return None
        self.check_trap()
        self.watchdogs.append(caller)
        outer_threadblock, self.threadblock = self.threadblock, threadblock
        try:
            self.remove(caller)
            self.leaving = caller  # a run() caller stays referenced by watchdogs anyway
            self.switch(self.current)
        finally:
            self.threadblock = outer_threadblock
            self.pop_watchdog(caller)
        return None

    def pop_watchdog(self, caller):
        """Leave ``run()``: drop ``caller`` and any deeper watchdogs, making those runnable."""
        watchdogs = self.watchdogs
        while caller in watchdogs:
            popped = watchdogs.pop()
            if popped._next is None and popped._channel is None and popped.alive:
                self.insert(popped)


_state.set_factory(_new_scheduler)
_core.connect(hooks=_hooks, shared=_threads.shared, bomb=bomb, start=Start,
              collected=_GarbageCollected)
