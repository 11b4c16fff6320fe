"""The GC promise (docs/compatibility.md, "Garbage collection"): no frame of
stackless_compat that stays suspended references its own tasklet, so a
tasklet the program drops is freed and its ``finally:`` runs, except where
greenlet itself cannot see the cycle (checked here too, so the docs stay true).

The pure-Python path runs these through test_speedups' subprocess."""

import gc
import weakref

import stackless_compat as stackless
from stackless_compat import _core


def _collect():
    for _ in range(3):
        gc.collect()


def _waiting(record, wait):
    def body():
        try:
            wait()
            record.append("resumed")
        finally:
            record.append("finally")
    return body


def test_a_tasklet_removed_while_suspended_in_schedule_is_freed_and_runs_its_finally():
    record = []
    task = stackless.tasklet(_waiting(record, stackless.schedule))()
    task.run()  # it runs up to schedule(); main goes on
    task.remove()
    ref = weakref.ref(task)
    del task
    _collect()
    assert ref() is None
    assert record == ["finally"]


def test_a_tasklet_paused_by_schedule_remove_is_freed_and_runs_its_finally():
    record = []
    task = stackless.tasklet(_waiting(record, stackless.schedule_remove))()
    task.run()
    assert task.paused
    ref = weakref.ref(task)
    del task
    _collect()
    assert ref() is None
    assert record == ["finally"]


def test_a_tasklet_that_switched_away_is_freed_and_runs_its_finally():
    record = []
    main = stackless.getmain()
    task = stackless.tasklet(_waiting(record, main.switch))()
    task.run()
    assert task.paused
    ref = weakref.ref(task)
    del task
    _collect()
    assert ref() is None
    assert record == ["finally"]


def test_a_paused_tasklet_that_never_ran_is_freed_without_running():
    record = []
    task = stackless.tasklet(record.append)("ran")
    task.remove()
    ref = weakref.ref(task)
    del task
    _collect()
    assert ref() is None and record == []


def test_a_killed_tasklet_is_freed():
    record = []
    channel = stackless.channel()
    task = stackless.tasklet(_waiting(record, channel.receive))()
    stackless.run()
    task.kill()
    ref = weakref.ref(task)
    del task
    _collect()
    assert ref() is None
    assert record == ["finally"]


def test_a_dropped_tasklet_blocked_on_a_channel_the_program_keeps_still_receives():
    record = []
    channel = stackless.channel()
    stackless.tasklet(_waiting(record, channel.receive))()
    stackless.run()
    _collect()
    channel.send("value")
    stackless.run()
    assert record == ["resumed", "finally"]


def test_a_tasklet_blocked_on_a_channel_nobody_else_references_is_kept_until_killed():
    """greenlet's limit: the tasklet's own frame (its call of receive)
    references the channel, the channel the tasklet, the tasklet its greenlet,
    and greenlet does not traverse a suspended greenlet's frames."""
    record = []

    def start():
        channel = stackless.channel()
        stackless.tasklet(_waiting(record, channel.receive))()
        stackless.run()
        return weakref.ref(channel.queue)

    ref = start()
    _collect()
    task = ref()
    assert task is not None and task.blocked and record == []
    task.kill()
    del task
    _collect()
    assert ref() is None
    assert record == ["finally"]


def test_a_dropped_tasklet_on_a_recycled_greenlet_is_freed_and_runs_its_finally():
    """Greenlets of ended tasklets wait in a pool; none may keep another alive."""
    gate = stackless.channel()
    gate.preference = 1  # main's sends do not switch: both wake up in run()
    for _ in range(2):
        stackless.tasklet(gate.receive)()
    stackless.run()
    gate.send(None)
    gate.send(None)
    stackless.run()  # the first ends into the second, the second into main
    record = []
    task = stackless.tasklet(_waiting(record, stackless.schedule))()
    task.run()
    task.remove()
    ref = weakref.ref(task)
    del task
    _collect()
    assert ref() is None
    assert record == ["finally"]


class _Value:
    """A value to hand over that a weak reference can watch."""


def _send_a_fresh_value(channel):
    channel.send(_Value())  # nothing here names the value


# CPython keeps the arguments of a call into C until it returns, so on the C
# core the sender's own call of send holds its value (as in Stackless C)
_HELD_BY_THE_SENDERS_CALL = _core.SPEEDUPS


def test_a_value_taken_from_a_blocked_sender_is_not_kept_by_its_suspended_send():
    channel = stackless.channel()
    stackless.tasklet(_send_a_fresh_value)(channel)
    stackless.run()  # the sender blocks
    ref = weakref.ref(channel.receive())  # taken without a switch: the sender waits in send()
    _collect()
    assert (ref() is not None) == _HELD_BY_THE_SENDERS_CALL
    stackless.run()  # the sender's send returns
    _collect()
    assert ref() is None

