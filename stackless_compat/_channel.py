"""``channel``: a rendezvous between tasklets, not a queue.

Defined by Stackless' ``Doc/library/stackless/channels.rst``.  Whichever side comes
first blocks in the channel (``balance`` > 0: senders wait, < 0: receivers
wait); when the other side arrives the value passes directly.
``_hand_over`` is the one hand-over, shared by every send and receive
flavour (made once per direction, see there): it applies
``preference`` and ``schedule_all`` exactly as Stackless C does
(``generic_channel_action`` in ``channelobject.c``):

* the waiting side is preferred (``preference == -direction``): it is put
  right after the running tasklet and switched to, so the running tasklet
  ends up last in the run queue;
* ``schedule_all``: the waiting side goes to the end of the run queue and
  the running tasklet yields to whoever is next;
* otherwise the waiting side goes to the end and the caller just goes on.

Blocked tasklets wait in a circular doubly linked list threaded through
their ``_next``/``_prev`` links, with the channel itself as the list head,
as in Stackless C: FIFO order, O(1) removal when a waiting tasklet is
killed, and no allocation per block (an ``OrderedDict`` measured ~240 ns
slower per hand-over).  An empty channel's links are None, not itself, so
it is freed as soon as its last reference goes (no cycle for the collector).

With the C extension, ``send`` and ``receive`` come from ``ChannelCore``
(``_core``): they do the plain single-thread hand-overs in C and call
``_send``/``_receive`` for the rest.  In pure Python, ``send`` is the
hand-over itself and ``receive`` one call of it.  A pure round trip
(bench/channels.py) costs about twice the instructions of the least any
pure-Python channel must do (the bench's floor): each ring and chain
change is one call of its owner (``Scheduler``, ``_unblock``), and the
hooks, traps, threads and preference are checked on every action.
"""

from . import _callbacks, _threads
from ._core import SPEEDUPS, ChannelCore
from ._errors import bomb, exc_to_bomb, make_bomb
from ._state import _local, current_scheduler
from ._threads import shared as _shared

__all__ = ["channel"]

_hooks = _callbacks.hooks


def _hand_over(direction, name):
    """Make the hand-over for one ``direction``: 1 sends, -1 receives.

    The one hand-over, made twice from this body, so that a pure-Python
    ``send`` is the hand-over itself: no wrapper frame holds the value
    while the sender waits (it lives in the sender's tempval until taken).
    The bookkeeping runs under the channel lock once threads share
    channels (``_threads``); it leaves the caller's result in its
    ``_tempval`` and decides whom to switch to: the caller itself (go
    on), another tasklet, or nobody yet (wait for another thread).
    """
    def hand_over(self, value):
        try:
            sched = _local.scheduler
        except AttributeError:
            sched = current_scheduler()
        source = sched.current
        if _hooks.channel is not None:
            self._notify(sched, source, direction, value)
        lock = _shared.lock
        if lock is not None:
            lock.acquire()
        try:
            balance = self._balance
            if (balance < 0) if direction > 0 else (balance > 0):  # a partner waits
                if sched.switch_trap and (self._preference == -direction or self._schedule_all):
                    sched.check_trap()
                target = self._next
                self._unblock(target)
                # exchange: the receiver gets the value, the sender gets None
                if direction > 0:
                    target._tempval = value
                    value = None
                else:
                    value = target._tempval
                    target._tempval = None
                if target._sched is not sched:
                    target._sched.post(target)  # another thread's: it just becomes runnable there
                    next = source
                elif self._schedule_all:
                    sched.insert(target)
                    next = source._next
                    sched.make_head(next)
                    source._tempval = value
                elif self._preference == -direction:  # the partner is preferred
                    sched.insert_next(target, True)  # it runs now; the caller ends up last
                    next = target
                    source._tempval = value
                else:
                    sched.insert(target)
                    next = source
            else:
                if source._block_trap:
                    raise RuntimeError("this tasklet does not like to be blocked.")
                if self._closing:
                    raise ValueError("Send/receive operation on a closed channel")
                if sched.switch_trap:
                    sched.check_trap()
                was_last = source._next is source
                next = sched.suspend_current(source)  # None: wait for another thread
                if was_last and next is not None and value.__class__ is bomb:
                    next._tempval = value  # Stackless hands a revived main the exception
                source._tempval = value  # before it is visible: another thread may take it
                last = self._prev
                if last is None:
                    last = self  # the first to wait: both ends of the chain are the channel
                last._next = self._prev = source
                source._prev = last
                source._next = self
                self._balance = balance + direction
                source._channel = self
        finally:
            if lock is not None:
                lock.release()
        if next is source:  # no switch: the caller goes on with its result
            if value.__class__ is bomb:
                value.raise_()
            return value
        # the value is in a tempval by now: a frame left suspended keeps no
        # reference to it, nor to its own tasklet (the GC promise, see Scheduler.switch)
        if next is None:  # the thread's last tasklet blocked: wait for another thread
            next = sched.wait_for_work(self, source)
            sched.leaving = source
            del source, value
            return sched.run_task(next)
        sched.leaving = source
        del source, value
        return sched.switch(next)

    hand_over.__name__ = name
    hand_over.__qualname__ = "channel." + name
    return hand_over


class channel(ChannelCore):
    """A channel for passing values (and exceptions) between tasklets."""

    # the chain, balance and flags live in ChannelCore, which sets them up in __new__
    __slots__ = ("__weakref__",)

    def __init__(self, *args, **kwargs):
        pass  # Stackless' channel() accepts and ignores any arguments

    # -- the hand-over ----------------------------------------------------------

    _send = _hand_over(1, "_send")  # the C core calls these for what it leaves to Python
    _receive = _hand_over(-1, "_receive")
    if not SPEEDUPS:
        send = _hand_over(1, "send")
        send.__doc__ = "Send ``value``; blocks until a receiver takes it (see ``preference``)."

        def receive(self):
            """Receive a value; blocks until a sender offers one.  A received bomb explodes."""
            return self._receive(None)

    def _notify(self, sched, source, direction, value):
        balance = self._balance
        partner_waits = balance < 0 if direction > 0 else balance > 0
        if sched.in_channel_callback:
            raise RuntimeError("Recursive channel call due to callbacks!")
        sched.in_channel_callback = True
        sched.switch_trap += 1  # Stackless' schedlock: the callback must not switch
        # Stackless C has put the value being sent in the sender's tempval by then
        kept = source._tempval
        if direction > 0:
            source._tempval = value
        try:
            _hooks.channel(self, source, int(direction > 0), int(not partner_waits))
        finally:
            source._tempval = kept
            sched.switch_trap -= 1
            sched.in_channel_callback = False

    def _unblock_safely(self, task):
        """``_unblock`` under the channel lock; False if ``task`` left meanwhile."""
        with _threads.channel_lock():
            if task._channel is not self:
                return False
            self._unblock(task)
            return True

    def _unblock(self, task):
        """Take a blocked ``task`` out of the channel (it was killed or thrown at)."""
        before, after = task._prev, task._next
        if before is after:  # both are the channel: it was the only one
            self._next = self._prev = None  # empty again
        else:
            before._next = after  # the channel's own _next when task was first
            after._prev = before
        task._next = task._prev = task._channel = None
        balance = self._balance
        self._balance = balance - 1 if balance > 0 else balance + 1

    # -- the public actions (send and receive: ChannelCore) ---------------------

    def send_exception(self, exc, *args):
        """Like ``send``, but the receiver raises ``exc(*args)``."""
        self._send(make_bomb(exc, args, "channel.send_exception"))

    def send_throw(self, exc, val=None, tb=None, *extra):
        """Like ``send``, but the receiver raises, with ``raise`` statement semantics."""
        if extra:  # in Stackless C's words
            raise TypeError("send_throw expected at most 3 arguments, got %d" % (3 + len(extra)))
        self._send(exc_to_bomb(exc, val, tb))

    def send_sequence(self, seq):
        """Send every item of ``seq`` in turn; returns how many were sent."""
        count = 0
        send = self.send
        for item in seq:
            send(item)
            count += 1
        return count

    def __iter__(self):
        return self

    def __next__(self, *extra):
        """Receive the next value; stops once the channel is closing and no sender waits."""
        if extra:  # in Stackless C's words
            raise TypeError("expected 0 arguments, got %d" % len(extra))
        if self._closing and self._balance <= 0:
            raise StopIteration
        return self.receive()

    next = __next__  # Python 2 spelling, still used by legacy code

    def open(self):
        """Reopen a closed channel."""
        self._closing = False

    def close(self):
        """Stop the queue from growing: blocking on the channel raises ``ValueError``."""
        self._closing = True

    # -- state ------------------------------------------------------------------

    @property
    def balance(self):
        """Tasklets waiting to send (> 0) or to receive (< 0)."""
        return self._balance

    @property
    def closing(self):
        """True once ``close()`` was called."""
        return self._closing

    @property
    def closed(self):
        """True once ``close()`` was called and nobody waits any more."""
        return self._closing and self._balance == 0

    @property
    def queue(self):
        """The first tasklet blocked on the channel, or None."""
        return self._next  # None when empty

    @property
    def preference(self):
        """-1: prefer the receiver (default); 1: prefer the sender; 0: neither."""
        return self._preference

    @preference.setter
    def preference(self, value):
        if not isinstance(value, int):
            raise TypeError("preference must be set to an integer, not %s"
                            % type(value).__name__)
        self._preference = 1 if value > 0 else -1 if value < 0 else 0

    @property
    def schedule_all(self):
        """When 1, every channel action reschedules both sides; overrides ``preference``."""
        return int(self._schedule_all)

    @schedule_all.setter
    def schedule_all(self, value):
        if not isinstance(value, int):
            raise TypeError("schedule_all must be set to a bool or integer, not %s"
                            % type(value).__name__)
        self._schedule_all = bool(value)

    def __reduce_ex__(self, protocol):
        if self._balance:
            raise TypeError(
                "cannot pickle a channel with blocked tasklets: tasklets cannot be"
                " pickled on greenlet (see docs/compatibility.md)")
        return object.__reduce_ex__(self, protocol)

    def __repr__(self):
        return "<%s.%s balance=%d at %#x>" % (type(self).__module__, type(self).__qualname__,
                                              self._balance, id(self))

