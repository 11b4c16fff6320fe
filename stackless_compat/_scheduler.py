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

Other threads never touch this ring: they post tasklets to the scheduler's
``Inbox`` (``_threads``), which ``switch`` drains, and a thread whose last
runnable tasklet blocks waits there while another thread might wake it.

greenlet never garbage-collects a cycle that runs through a suspended
greenlet's frames, so the frames we leave suspended hold no reference to a
tasklet: ``_bootstrap`` finds its tasklet through ``scheduler.current`` and
``switch`` deletes its tasklet arguments before it switches.
"""

import logging
import threading

from greenlet import GreenletExit, getcurrent, greenlet

from . import _callbacks, _threads
from ._errors import _GarbageCollected, TaskletExit, bomb

log = logging.getLogger(__name__)

_hooks = _callbacks.hooks
_local = threading.local()


def current_scheduler():
    """Return this thread's scheduler, creating it (and its main tasklet) on first use."""
    try:
        return _local.scheduler
    except AttributeError:
        scheduler = _local.scheduler = Scheduler()
        _threads.register(scheduler, _local)
        if _hooks.schedule is not None:
            _callbacks.notify_schedule(scheduler, None, scheduler.main)
        return scheduler


class Scheduler:
    """One thread's run queue and scheduling state; used only by that thread.

    ``current`` is the head of the ring: the running tasklet, except inside
    a scheduling operation, between choosing the next tasklet and switching.
    """

    __slots__ = ("thread_id", "thread_alive", "main", "current", "runcount", "root",
                 "inbox", "posted", "watchdogs", "threadblock", "watchdog", "switch_hooks",
                 "switch_trap",
                 "in_callback", "in_channel_callback", "__weakref__")

    def __init__(self):
        from ._tasklet import tasklet
        self.thread_id = threading.get_ident()
        self.thread_alive = True
        self.inbox = _threads.Inbox()
        self.posted = self.inbox.tasklets  # the same deque: one load on the switch path
        self.threadblock = False  # run(threadblock=True): wait for other threads when idle
        self.watchdog = None      # the preemption watchdog of run(timeout=...), if active
        self.switch_hooks = ()    # hook(prev, next) -> next, run on every switch (rarely any)
        self.root = getcurrent()
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

    def insert_after_current(self, task):
        """Put ``task`` right after the head, so it runs next."""
        head = self.current
        after = head._next
        head._next = task
        task._prev = head
        task._next = after
        after._prev = task
        self.runcount += 1

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

    # -- switching --------------------------------------------------------

    def check_trap(self):
        """Refuse to switch while ``switch_trap`` is set (checked before any state changes)."""
        if self.switch_trap:
            if self.in_callback or self.in_channel_callback:
                raise RuntimeError("Recursive scheduler call due to callbacks!")
            raise RuntimeError("switch_trap: tasklet switching is trapped in this thread")

    def switch(self, prev, next):
        """Switch from the running tasklet ``prev`` to ``next``, already made head.

        Returns the value handed to ``prev`` when something switches back to
        it, raising it instead if it is a bomb.
        """
        if self.posted:
            self.take_posted()
        if self.switch_hooks:
            for hook in self.switch_hooks:
                next = hook(prev, next)
            if next is prev:
                return self.claim(prev)
        if _hooks.schedule is not None:
            _callbacks.notify_schedule(self, prev, next)
        value = next._tempval
        next._tempval = None
        target = next._greenlet
        if target is None:  # a first run
            target = next._greenlet = greenlet(_bootstrap, self.root)
            if getcurrent() is not self.root:
                value = _Start(target, value)
                target = self.root  # the root greenlet starts it (see _Start)
        del prev, next
        try:
            value = target.switch(value)
            while value.__class__ is _Start:  # only the root greenlet receives these
                value = value.greenlet.switch(value.value)
        except GreenletExit:
            raise _GarbageCollected from None
        if value.__class__ is bomb:
            value.raise_()
        return value

    def make_current(self, task):
        """Make ``task`` the head: unblock it from its channel or reinsert it if paused."""
        channel = task._channel
        if channel is not None and channel._unblock_safely(task):
            self.insert(task)
        elif task._next is None:
            self.insert(task)
        self.current = task

    def run_task(self, prev, next):
        """Switch from ``prev`` (the running tasklet) to any tasklet ``next``.

        This is Stackless' ``slp_schedule_task``: ``next`` is unblocked or
        reinserted if needed and becomes the head; switching to oneself just
        returns one's ``tempval``.
        """
        self.make_current(next)
        if next is prev:
            return self.claim(prev)
        return self.switch(prev, next)

    @staticmethod
    def claim(task):
        """Return ``task``'s tempval without switching (raising it if a bomb)."""
        value = task._tempval
        task._tempval = None
        if value.__class__ is bomb:
            value.raise_()
        return value

    def take_posted(self):
        """Insert the tasklets other threads made runnable (owner thread)."""
        posted = self.inbox.tasklets
        for _ in range(len(posted)):  # only what is there now: a bounded batch
            task = posted.popleft()
            if task._next is None and task.alive:
                self.insert(task)

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

    def wait_for_work(self, channel, source):
        """Block the thread until another thread makes a tasklet runnable.

        ``source`` is the tasklet that left the ring (blocked on ``channel``,
        or paused if ``channel`` is None).  Returns the new head; if every
        other thread ends or waits too, ``source`` is put back and the
        deadlock ``RuntimeError`` is raised.
        """
        inbox = self.inbox
        while not inbox.wait(0.25):
            if _threads.others_can_wake(self):
                continue
            if channel is not None:
                with _threads.channel_lock():
                    if source._channel is not channel:
                        continue  # handed over meanwhile: it is in the inbox
                    channel._unblock(source)
            self.insert(source)
            raise RuntimeError("Deadlock: the last runnable tasklet cannot be blocked"
                               " and no other thread can wake it.")
        self.take_posted()
        return self.current

    def post(self, task):
        """Make ``task`` (of this scheduler) runnable from another thread."""
        self.inbox.post(task)

    def wakeup_target(self):
        """Who runs when nothing else can: the innermost ``run()`` caller, else main."""
        watchdogs = self.watchdogs
        return watchdogs[-1] if watchdogs else self.main

    def end_current(self, error):
        """The running tasklet has finished (``error`` is what escaped it, or None).

        Called from the dying greenlet: picks the next tasklet, makes it the
        dying greenlet's parent, and returns the value greenlet hands to it
        (or raises ``error``, which greenlet then raises in it).
        """
        task = self.current
        self.remove(task)
        task._greenlet = None
        next = self.current
        if next is None and error is None:
            next = self._next_after_last_ended()
        if error is not None or next is None:
            # errors, and a thread with nothing left, go to the innermost run() caller or main
            next = self.wakeup_target()
            if error is None:
                side = "receiving" if next._channel._balance < 0 else "sending"
                error = RuntimeError("the main tasklet is %s without a %s available."
                                     % (side, "sender" if side == "receiving" else "receiver"))
        self.make_current(next)
        if self.inbox.tasklets:
            self.take_posted()
        for hook in self.switch_hooks:
            next = hook(task, next)
        if _hooks.schedule is not None:
            _callbacks.notify_schedule(self, task, next)
        del task
        value = next._tempval
        next._tempval = None
        target = next._greenlet
        if target is None:  # a first run: the root greenlet starts it (see _Start)
            value = _Start(greenlet(_bootstrap, self.root), value)
            next._greenlet = value.greenlet
            target = self.root
        getcurrent().parent = target
        if error is not None:
            raise error
        return value

    def _next_after_last_ended(self):
        """The last runnable tasklet ended: revive the watchdog or main if paused
        (as Stackless' ``tasklet_end`` does, whatever ``threadblock`` says); if it
        is blocked, wait while another thread may still wake someone; else None."""
        target = self.wakeup_target()
        if target._next is None and target._channel is None:
            return target
        if _wait_for_posted(self):
            return self.current
        return None


class _Start:
    """A request to the root greenlet: start ``greenlet`` with ``value``.

    A new greenlet begins on the stack of whoever first switches to it.
    Started from inside other tasklets (or from one that is ending), C stacks
    and recursion depths pile up (a segfault after ~13k chained starts, a
    RecursionError after ~200 blocked tasklets), so non-root tasklets ask the
    root greenlet, always suspended inside ``Scheduler.switch``, to start it
    from there.  The root's stack stays one contiguous chain of real frames,
    which the thread's exit at interpreter shutdown needs to unwind.
    """

    __slots__ = ("greenlet", "value")

    def __init__(self, greenlet, value):
        self.greenlet = greenlet
        self.value = value


def _bootstrap(value):
    """The body of every tasklet's greenlet (it never references its tasklet
    while suspended, so an unreachable blocked tasklet can be collected)."""
    scheduler = _local.scheduler
    error = None
    try:
        task = scheduler.current
        func, args, kwargs = task._start
        task._start = None  # first: thrown at before it ran, it must still end dead
        del task
        if value.__class__ is bomb:
            value.raise_()
        func(*args, **kwargs)
    except _GarbageCollected:
        return None  # greenlet is collecting us: not current, leave the scheduler alone
    except TaskletExit:
        pass
    except BaseException as exc:  # re-raised in the innermost run() caller or main
        error = exc
    return scheduler.end_current(error)


# -- the public scheduling functions (Stackless' Doc/library/stackless/stackless.rst) --

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
    sched.current = next
    return sched.switch(prev, next)


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
    return sched.run_task(prev, next)


def run(timeout=0, threadblock=False, soft=False, ignore_nesting=False, totaltimeout=False):
    """Run the other tasklets until none is runnable; the caller waits, paused.

    Returns None, or with a ``timeout`` the tasklet the watchdog interrupted
    (see ``_watchdog``).  An exception escaping a tasklet is raised here.
    Calls nest: a ``run()`` inside a tasklet returns when the queue empties.
    """
    sched = current_scheduler()
    if timeout:
        from ._watchdog import run_with_timeout
        return run_with_timeout(sched, timeout, bool(threadblock), bool(soft),
                                bool(ignore_nesting), bool(totaltimeout))
    return run_until_idle(sched, bool(threadblock))


def run_until_idle(sched, threadblock=False):
    """The body of ``run()``: pause the caller as a watchdog and switch away.

    With ``threadblock``, an idle thread waits for tasklets other threads
    make runnable instead of returning at once.
    """
    caller = sched.current
    if sched.inbox.tasklets:
        sched.take_posted()
    if caller._next is caller and not (threadblock and _wait_for_posted(sched)):
        return None
    sched.check_trap()
    sched.watchdogs.append(caller)
    outer_threadblock, sched.threadblock = sched.threadblock, threadblock
    try:
        sched.remove(caller)
        sched.switch(caller, sched.current)
    finally:
        sched.threadblock = outer_threadblock
        pop_watchdog(sched, caller)
    return None


def _wait_for_posted(sched):
    """Wait until another thread posts a tasklet; False once no thread could."""
    inbox = sched.inbox
    while not inbox.tasklets:
        if not _threads.others_can_wake(sched):
            return False
        inbox.wait(0.25)
    sched.take_posted()
    return True


def pop_watchdog(sched, caller):
    """Leave ``run()``: drop ``caller`` and any deeper watchdogs, making those runnable."""
    watchdogs = sched.watchdogs
    while caller in watchdogs:
        popped = watchdogs.pop()
        if popped._next is None and popped._channel is None and popped.alive:
            sched.insert(popped)
