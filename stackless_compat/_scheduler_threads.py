"""The scheduler's side of threads: what other threads hand it, and waiting for them.

These are ``Scheduler`` methods (``SchedulerThreads`` is a mixin of that one
class, kept apart because it is its own concern): the ring stays the
scheduler's, changed here only through its ring operations, except
``remove_from_afar``/``insert_from_afar``, whose plans name the links (and
``current``/``runcount``) that ``_threads.change_from_afar`` sets in one step
from the other thread.

Other threads never touch a run queue directly: they post tasklets to the
scheduler's ``Inbox`` (``post``), which the owner drains at its next switch
(``take_posted``), and an owner whose last runnable tasklet blocks waits
there (``wait_for_work``, ``wait_for_posted``) while another thread might
still wake it.  ``thread_ended`` empties the ring of a thread that is gone.
"""

from . import _threads

__all__ = ["OnOwner", "RunNext", "SchedulerThreads"]


class RunNext:
    """An inbox entry: another thread ran ``task``, so it runs next here."""

    __slots__ = ("task",)

    def __init__(self, task):
        self.task = task


class OnOwner:
    """An inbox entry: call ``function(scheduler)`` on the owner thread (what
    another thread may not change itself, such as the switch hooks)."""

    __slots__ = ("function",)

    def __init__(self, function):
        self.function = function


class SchedulerThreads:
    """The ``Scheduler`` methods about other threads (a mixin of ``Scheduler``
    only; it has no state of its own).  Each says which thread calls it."""

    __slots__ = ()

    def thread_ended(self):
        """The thread has ended (called once, by ``_threads``): nothing will
        run this ring again, so every tasklet leaves it.  Tasklets report
        this thread as gone from now on (``thread_alive``); blocked ones stay
        linked into their channels, as in Stackless."""
        self.thread_alive = False
        self.unlink_all()

    def take_posted(self):
        """Insert the tasklets other threads made runnable (owner thread):
        at the end, or right after the head if they asked it to run next;
        make the calls they asked for (``OnOwner``)."""
        posted = self.inbox.tasklets
        for _ in range(len(posted)):  # only what is there now: a bounded batch
            task = posted.popleft()
            if task.__class__ is RunNext:
                task = task.task
                if task._sched is not self:
                    continue  # moved to another thread meanwhile (bind_thread)
                if task._channel is None and task.alive and task is not self.current:
                    if task._next is not None:
                        self.remove(task)
                    self.insert_next(task)
            elif task.__class__ is OnOwner:
                task.function(self)
            elif task._next is None and task.alive and task._sched is self:
                self.insert(task)

    def wait_for_work(self, channel, source):
        """Block the thread until another thread makes a tasklet runnable.

        ``source`` is the tasklet that left the ring (blocked on ``channel``,
        or paused if ``channel`` is None).  Returns the new head; if every
        other thread ends or waits too, ``source`` is put back and the
        deadlock ``RuntimeError`` is raised.
        """
        inbox = self.inbox
        while True:
            if inbox.wait(0.25):
                self.take_posted()
                if self.current is not None:
                    return self.current
                continue  # only calls, or tasklets no longer runnable here: wait on
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

    def remove_from_afar(self, task):
        """Another thread's ``task.remove()``: unlink it from this ring, which
        only changes under ``_threads.change_from_afar``'s conditions."""
        def plan():
            after, before, head, count = task._next, task._prev, self.current, self.runcount
            if after is None or task._channel is not None:
                return None  # it left the ring meanwhile, or blocked (the caller re-checks)
            if task is head:
                raise RuntimeError("The current tasklet cannot be removed.")
            return (((task, "_next", after), (task, "_prev", before), (before, "_next", task),
                     (after, "_prev", task), (self, "current", head), (self, "runcount", count)),
                    ((before, "_next", after), (after, "_prev", before), (task, "_next", None),
                     (task, "_prev", None), (self, "runcount", count - 1)))
        _threads.change_from_afar(self, plan, wait=True)

    def insert_from_afar(self, task):
        """Another thread's ``task.insert()``: link it at the end of this ring
        now if the owner allows it (``_threads.change_from_afar``), else post it
        (it becomes runnable at the owner's next switch, which wakes a waiting one)."""
        def plan():
            head, count = self.current, self.runcount
            if head is None or self.inbox.thread_blocked:
                return None  # an idle owner: posting wakes it
            last = head._prev
            return (((self, "current", head), (head, "_prev", last), (last, "_next", head),
                     (task, "_next", None), (task, "_channel", None), (task, "_sched", self),
                     (self, "runcount", count)),
                    ((last, "_next", task), (task, "_prev", last), (task, "_next", head),
                     (head, "_prev", task), (self, "runcount", count + 1)))
        if not _threads.change_from_afar(self, plan, wait=False):
            self.post(task)

    def post(self, task, next=False):
        """Make ``task`` (of this scheduler) runnable from another thread;
        with ``next``, the next one this thread runs (``tasklet.run()``)."""
        self.inbox.post(RunNext(task) if next else task)

    def call_on_owner(self, function):
        """Have the owner thread call ``function(self)`` at its next switch (any thread)."""
        self.inbox.post(OnOwner(function))

    def wait_for_posted(self):
        """Wait until another thread makes a tasklet runnable here (owner
        thread); False once no thread could."""
        inbox = self.inbox
        count = self.runcount
        while True:
            while not inbox.tasklets:
                if not _threads.others_can_wake(self):
                    return False
                inbox.wait(0.25)
            self.take_posted()
            if self.runcount > count:
                return True
