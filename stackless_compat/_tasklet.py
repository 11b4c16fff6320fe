"""``tasklet``: a microthread, run on a greenlet created when it first runs.

Defined by Stackless' ``Doc/library/stackless/tasklets.rst``.  This module
has what changes a tasklet (binding, the run queue, exceptions, flags,
threads); what it reports about itself is ``_tasklet_state.TaskletState``.
Every change to the run queue is a request to the tasklet's ``Scheduler``;
a blocked tasklet is held by its channel.
"""

from functools import partial

from . import _threads, _tracing
from ._errors import TaskletExit, bomb, exc_to_bomb, make_bomb
from ._state import current_scheduler
from ._tasklet_state import TaskletState, as_flag

__all__ = ["tasklet"]


# Wrong-arity calls raise TypeError in the words of Stackless C's builtins
# (Stackless C names them so; legacy code and its tests read them): each
# method takes the arguments it needs plus *extra, which only the error uses.

def _no_arguments(name, extra):
    return TypeError("%s() takes no arguments (%d given)" % (name, len(extra)))


_MISSING = object()

# where Stackless C keeps these flags in the integer its __reduce__ gives
_ATOMIC_BIT, _IGNORE_NESTING_BIT, _BLOCK_TRAP_BIT = 2, 3, 5


def _one_argument(name, flag, extra):
    return TypeError("%s() takes exactly one argument (%d given)"
                     % (name, (flag is not _MISSING) + len(extra)))


class tasklet(TaskletState):
    """A tasklet: ``tasklet(func)(*args, **kwargs)`` binds and schedules it.

    Constructing with arguments is ``bind(func, args, kwargs)``; calling it
    is ``setup(*args, **kwargs)``, which returns the tasklet itself.
    """

    # Every field lives in _core.TaskletCore (no per-tasklet dict): _greenlet is set
    # when it first runs and None again once dead; _start holds the callable and
    # _args its arguments between setup and the first run (two fields, not a
    # tuple: one object fewer for the collector per spawn); _tempval the bound function
    # before setup, then values in transit; _channel the channel it blocks on.
    __slots__ = ("__weakref__",)

    def __new__(cls, *args, **kwargs):
        self = TaskletState.__new__(cls)
        self._sched = current_scheduler()
        return self

    @classmethod
    def _new_in(cls, sched):
        self = TaskletState.__new__(cls)
        self._sched = sched
        return self

    def __init__(self, func=None, args=None, kwargs=None):
        if func is not None or args is not None or kwargs is not None:
            self.bind(func, args, kwargs)

    # -- binding ------------------------------------------------------------

    def bind(self, func=None, args=None, kwargs=None):
        """Bind a callable and, if given, its arguments, without scheduling.

        With ``args``/``kwargs`` the tasklet becomes alive but paused; with
        everything ``None`` it is unbound.  ``RuntimeError`` if it is current,
        scheduled, or suspended mid-run (its greenlet stack cannot be dropped).
        """
        if func is not None and not callable(func):
            raise TypeError("tasklet function must be a callable or None, not %r" % (func,))
        if args is not None or kwargs is not None:
            self._live_scheduler()
        if self._next is not None or self._greenlet is not None:
            self._refuse_bind()
        self._start = None
        if args is None and kwargs is None:
            self._tempval = func
        else:
            if func is not None:
                self._tempval = func
            self._setup(tuple(args) if args else (), dict(kwargs) if kwargs else None)
        return self

    def _live_scheduler(self):
        # a thread that ended emptied its run queue (Scheduler.thread_ended):
        # what would run the tasklet there is refused, in Stackless' words
        sched = self._sched
        if not sched.thread_alive:
            raise RuntimeError("tasklet has no thread")
        return sched

    def _refuse_bind(self):
        if self is self._sched.current:
            raise RuntimeError("can't (re)bind the current tasklet")
        if self._next is not None:
            raise RuntimeError("tasklet is scheduled")
        if self is self._sched.main:
            raise RuntimeError("can't (re)bind the main tasklet: on greenlet it is the"
                               " thread's own first greenlet")
        raise RuntimeError("tasklet has C state on its stack: a suspended greenlet"
                           " cannot be rebound; kill() it first")

    def _setup(self, args, kwargs):
        # args: a tuple and kwargs a dict or None, both ours to keep
        func = self._tempval
        if func is None:
            raise RuntimeError("the tasklet was not bound to a function")
        self._start = partial(func, **kwargs) if kwargs else func
        self._args = args
        self._tempval = None

    def setup(self, *args, **kwargs):
        """Give the bound callable its arguments and insert at the end of the run queue."""
        sched = self._live_scheduler()
        if self._start is not None or self._greenlet is not None:
            raise RuntimeError("tasklet is alive")
        self._setup(args, kwargs or None)  # a fresh tuple and dict: ours
        sched.insert(self)
        return self

    __call__ = setup

    # -- the run queue -------------------------------------------------------

    def insert(self, *extra):
        """Insert at the end of the run queue, unless already there.

        ``RuntimeError`` if it is blocked on a channel or not alive.
        """
        if extra:
            raise _no_arguments("insert", extra)
        if not self._sched.thread_alive:
            raise RuntimeError("Target thread isn't initialized")  # Stackless' words
        if self._next is None or self._channel is not None:  # not in the run queue
            self._check_can_run()  # refuses a blocked or dead one
            sched = self._sched
            if sched is current_scheduler():
                sched.insert(self)
            else:
                sched.insert_from_afar(self)  # another live thread's run queue
        return self

    def remove(self, *extra):
        """Take it out of the run queue (it becomes paused).

        ``RuntimeError`` if it is blocked or the current tasklet.
        """
        if extra:
            raise _no_arguments("remove", extra)
        if self._channel is not None:
            raise RuntimeError("You cannot remove a blocked tasklet.")
        sched = self._sched
        if self is sched.current:
            raise RuntimeError("The current tasklet cannot be removed.")
        if self._next is not None:
            if sched is current_scheduler():
                sched.remove(self)
            else:
                sched.remove_from_afar(self)  # only that thread's run queue changes
        return self

    def run(self):
        """Insert it if needed and switch to it now; the caller stays runnable.

        A tasklet already in the run queue is reached by rotating the queue,
        so the tasklets after it run before the caller gets back.  Another
        thread's tasklet becomes the next one that thread runs, and the
        caller goes on.
        """
        sched = self._sched
        if sched is not current_scheduler():
            # another thread's tasklet: it runs next there, the caller goes on
            self._live_scheduler()
            self._check_can_run()
            sched.post(self, next=True)
            return None
        if self is not sched.current:
            self._check_runnable(sched)
        self.insert()
        sched.leaving = sched.current
        return sched.run_task(self)

    def switch(self):
        """Like ``run()``, but the caller is paused (removed from the run queue).

        Only within one thread (``RuntimeError`` otherwise).
        """
        sched = self._sched
        if sched is not current_scheduler():
            raise RuntimeError("can't switch to a different thread.")  # Stackless' words
        prev = sched.current
        if self is not prev:
            self._check_runnable(sched)
        self.insert()
        sched.remove(prev)
        sched.leaving = prev
        del prev  # the GC promise (see Scheduler.switch)
        return sched.run_task(self)

    def _check_can_run(self):
        # Stackless' words, a blocked tasklet checked first
        if self._channel is not None:
            raise RuntimeError("You cannot run a blocked tasklet")
        if not self.alive:
            raise RuntimeError("You cannot run an unbound(dead) tasklet")

    def _check_runnable(self, sched):
        # in Stackless C's order: a blocked tasklet is refused before the
        # switch trap, and both before insert(), so a refused switch leaves it paused
        if self._channel is not None:
            raise RuntimeError("You cannot run a blocked tasklet")
        sched.check_trap()

    # -- exceptions ------------------------------------------------------------

    def throw(self, exc=None, val=None, tb=None, pending=False):
        """Raise an exception in the tasklet, with ``raise`` statement semantics.

        With ``pending`` it is only made runnable; otherwise it runs now and
        the caller stays runnable.  ``RuntimeError`` if it is dead, unless
        the exception is ``TaskletExit``.
        """
        return self._throw(exc_to_bomb(exc, val, tb), pending)

    def raise_exception(self, exc_class=_MISSING, *args):
        """Raise ``exc_class(*args)`` in the tasklet now (see ``throw``)."""
        if exc_class is _MISSING:
            raise TypeError("raise_exception() takes at least 1 argument")
        return self._throw(make_bomb(exc_class, args, "tasklet.raise_exception"), False)

    def kill(self, pending=False, *extra):
        """End the tasklet by raising ``TaskletExit`` in it: ``throw(TaskletExit)``.

        A dead tasklet is left alone; one that never ran dies as soon as it
        is switched to, before its function starts.
        """
        if extra:
            raise TypeError("kill() takes at most 1 argument (%d given)" % (1 + len(extra)))
        if not self.alive:
            channel = self._channel
            if channel is not None:  # blocked when its thread ended: it can never run again
                channel._unblock_safely(self)
            return None
        return self._throw(bomb(TaskletExit, None, None), pending)

    def _throw(self, b, pending):
        sched = self._live_scheduler()
        local = sched is current_scheduler()
        if local and self is sched.current:
            b.raise_()
        if not self.alive:
            if issubclass(b.type, TaskletExit):
                return None
            raise RuntimeError("You cannot throw to a dead tasklet")
        if pending or not local:
            # made runnable only; in another thread, its owner runs it there
            channel = self._channel
            if channel is not None:
                channel._unblock_safely(self)
            self._tempval = b
            if self._next is None:
                if local:
                    sched.insert(self)
                else:
                    sched.post(self)
            return None
        sched.check_trap()
        self._tempval = b
        sched.leaving = sched.current
        return sched.run_task(self)

    # -- flags -------------------------------------------------------------------

    def set_atomic(self, flag=_MISSING, *extra):
        """Set the atomic flag (no preemption by the watchdog); returns the old value."""
        if flag is _MISSING or extra:
            raise _one_argument("set_atomic", flag, extra)
        old = self._atomic
        self._atomic = as_flag(flag, "set_atomic")
        return old

    def set_ignore_nesting(self, flag=_MISSING, *extra):
        """Set the ignore_nesting flag; returns the old value."""
        if flag is _MISSING or extra:
            raise _one_argument("set_ignore_nesting", flag, extra)
        old = self._ignore_nesting
        self._ignore_nesting = as_flag(flag, "set_ignore_nesting")
        return old

    def bind_thread(self, thread_id=None):
        """Rebind a tasklet that has not started yet to another thread
        (default: the calling thread).  Started tasklets cannot move: their
        greenlet belongs to the thread that ran them."""
        if thread_id is None:
            target = current_scheduler()
        else:
            if not isinstance(thread_id, int):
                raise TypeError("thread_id must be an int, not %s" % type(thread_id).__name__)
            target = _threads.scheduler_of(thread_id)
            if target is None:
                raise ValueError("bad thread: %r has no stackless scheduler" % (thread_id,))
        if target is self._sched:
            return None
        if self._next is not None:
            raise RuntimeError("can't (re)bind a runnable tasklet")
        if self._greenlet is not None:
            raise RuntimeError("tasklet has C state on its stack: a started tasklet"
                               " cannot move to another thread (a greenlet cannot"
                               " switch across threads)")
        old, self._sched = self._sched, target
        _tracing.moved(self, old)
        return None

    # -- pickling ------------------------------------------------------------------

    def __reduce__(self):
        """``(type(self), (), state)``, as Stackless C reduces a tasklet.

        ``state`` is Stackless' ``(flags, tempval, nesting_level, frames,
        exc_type, exc_value, exc_traceback, exc_info)``.  Where Stackless
        lists the tasklet's frames, ``frames`` holds the call it will make,
        ``[(callable, args, kwargs)]`` (``args`` None if it is only bound;
        ``setup``'s keyword arguments are in a ``functools.partial``), or
        nothing for an unbound or ended tasklet.  A started
        tasklet's frames live on its greenlet, which cannot be pickled:
        ``TypeError``; the current one is refused as in Stackless C.
        """
        sched = self._sched
        if self is sched.current and sched is current_scheduler():
            raise RuntimeError("You cannot __reduce__ the tasklet which is current.")
        if self._greenlet is not None:
            raise TypeError("cannot pickle a started tasklet: stackless_compat runs tasklets"
                            " on greenlet, whose frames cannot be serialised"
                            " (see docs/compatibility.md)")
        tempval = self._tempval
        if self._start is not None:
            frames = [(self._start, self._args, None)]  # keyword arguments: in a partial
        elif callable(tempval):
            frames, tempval = [(tempval, None, None)], None  # bound only: _tempval is its function
        else:
            frames = []
        flags = (self._atomic << _ATOMIC_BIT | self._ignore_nesting << _IGNORE_NESTING_BIT
                 | self._block_trap << _BLOCK_TRAP_BIT)
        return type(self), (), (flags, tempval, 0, frames, None, None, None, None)

    def __reduce_ex__(self, protocol):
        return self.__reduce__()

    def __setstate__(self, state):
        """Restore what ``__reduce__`` gave: the flags, and the call it will make.

        The tasklet is left paused (``insert()`` it), as Stackless leaves an
        unpickled one.  ``RuntimeError`` if it is alive already.
        """
        flags, tempval, _nesting_level, frames = state[:4]
        if self.alive or self._greenlet is not None:
            raise RuntimeError("tasklet is alive: only a new tasklet can be restored")
        if len(frames) > 1:
            raise TypeError("cannot restore a started tasklet's frames on greenlet")
        if frames:
            func, args, kwargs = frames[0]
            self.bind(func, args, kwargs)
        if tempval is not None:
            self._tempval = tempval
        self._atomic = bool(flags >> _ATOMIC_BIT & 1)
        self._ignore_nesting = bool(flags >> _IGNORE_NESTING_BIT & 1)
        self._block_trap = bool(flags >> _BLOCK_TRAP_BIT & 1)
        return self
