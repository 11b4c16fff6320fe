"""The greenlets tasklets run on: how one starts, the body it runs, and recycling.

Nothing here references a tasklet while suspended: the body finds its
tasklet through the scheduler's ``current`` (the GC promise, ``_scheduler``).
"""

import sys

from greenlet import GreenletExit, getcurrent, greenlet

from . import _callbacks, _tracing
from ._errors import _GarbageCollected, TaskletExit, bomb
from ._state import _local

__all__ = ["Start", "body", "start_greenlet", "POOL_LIMIT"]

_hooks = _callbacks.hooks
_gettrace, _getprofile = sys.gettrace, sys.getprofile

#: parked greenlets a scheduler keeps for new tasklets (each ~20 KiB with its frame chunk)
POOL_LIMIT = 64


class Start:
    """A request to the root greenlet: start ``greenlet`` with ``value``.

    A new greenlet begins on the stack of whoever first switches to it.
    Started from inside other tasklets (or from one that is ending), C stacks
    and recursion depths pile up (a segfault after ~13k chained starts, a
    RecursionError after ~200 blocked tasklets), so non-root tasklets ask the
    root greenlet, always suspended inside ``Scheduler.switch``, to start it
    from there.  The root's stack stays one contiguous chain of real frames,
    which the thread's exit at interpreter shutdown needs to unwind.  A
    greenlet that parks in the pool sends one too, for the suspended
    greenlet it hands over to (``body``).

    The root empties the request before it switches (``forward``; the C
    core does the same): its sender may stay parked with the request on its
    stack, and must not keep the greenlet or the value alive.
    """

    __slots__ = ("greenlet", "value")

    def __init__(self, greenlet, value):
        self.greenlet = greenlet
        self.value = value

    def forward(self):
        """(the root) Switch to the requested greenlet with the value; what comes back."""
        target, value = self.greenlet, self.value
        self.greenlet = self.value = None
        return target.switch(value)


def start_greenlet(scheduler, task, value):
    """Give ``task``, which never ran, a greenlet: a parked one from
    ``scheduler``'s pool, else a new one.  Returns whom to switch to, with
    what value (a new greenlet is started by the root one, see ``Start``)."""
    pool = scheduler.pool
    if pool:
        target = task._greenlet = pool.pop()
        return target, value
    target = task._greenlet = greenlet(body, scheduler.root)
    if getcurrent() is not scheduler.root:
        return scheduler.root, Start(target, value)
    return target, value


def body(value):
    """The body of every tasklet's greenlet: it runs tasklets one after another.

    Creating a greenlet and switching into it for the first time is most of
    what a spawn costs (CPython 3.11 gives each new greenlet its own frame
    chunk, an ``mmap``), so a greenlet whose tasklet ended is not thrown
    away.  If the next tasklet to run never ran, it runs right here, with no
    switch at all; if it is the root greenlet's (main, or the ``run()`` caller
    on it), the greenlet parks in its scheduler's pool, at the bottom of its
    stack, until ``start_greenlet`` hands it a new tasklet (at most
    ``POOL_LIMIT`` wait); otherwise it ends.  Each tasklet
    starts in an empty ``contextvars`` context, as on a new greenlet.  An
    exception that escapes a tasklet ends its greenlet: greenlet raises it in
    the innermost ``run()`` caller or main (``Scheduler.end_current``).

    Nothing here references a tasklet while suspended (the GC promise).
    """
    while True:
        scheduler = _local.scheduler
        error = None
        try:
            task = scheduler.current
            func, args = task._start, task._args
            task._start = task._args = None  # first: thrown at before it ran, it must end dead
            del task
            if value.__class__ is bomb:
                value.raise_()
            value = None
            if len(args) == 1:
                # a call with a fixed number of arguments runs the function in
                # this C frame (CPython 3.11 inlines it), while f(*args) nests
                # another one that every blocked tasklet keeps on its saved
                # stack: ~0.5 KiB each (bench/memory.py)
                func(args[0])
            elif not args:
                func()
            elif len(args) == 2:
                func(args[0], args[1])
            else:
                func(*args)
        except _GarbageCollected:
            return None  # greenlet is collecting us: not current, leave the scheduler alone
        except TaskletExit:
            pass
        except BaseException as exc:  # re-raised in the innermost run() caller or main
            error = exc
        func = args = None
        if error is not None and _hooks.error is not None:
            error = _callbacks.handle_error(error)  # while its tasklet is still current
        next = scheduler.end_current(error)  # raises error, ending this greenlet
        value = next._tempval
        next._tempval = None
        me = getcurrent()
        if next._greenlet is None:  # it never ran: run it here
            next._greenlet = me
            me.gr_context = None
            if _gettrace() is not None or _getprofile() is not None:
                _tracing.start_untraced(scheduler, None)  # it starts with neither
            del next, me, scheduler
            continue
        target = next._greenlet
        pool = scheduler.pool
        if len(pool) >= POOL_LIMIT:  # end: greenlet hands value to target
            me.parent = target
            return value
        del next
        pool.append(me)
        del me, pool
        if target is not scheduler.root:
            # parked, this frame keeps what it switched to alive: the root's
            # greenlet is alive anyway, another tasklet's must not be (it would
            # not be collected with its tasklet), so the root hands over.  An
            # extra switch, but a greenlet that ended freed its frame chunk,
            # and the next new one maps another (durable web steps at c=8:
            # ~0.8 munmap a request, each a TLB flush on every core)
            value = Start(target, value)
            target = scheduler.root
        del scheduler
        try:
            value = target.switch(value)  # parked until start_greenlet picks us
        except GreenletExit:
            return None  # the pool was dropped: end quietly
        del target
        getcurrent().gr_context = None
