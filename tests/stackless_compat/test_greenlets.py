"""Recycled greenlets (``_greenlets``): a new tasklet runs on the greenlet of
one that ended, and nothing observable changes."""

import contextvars
import gc
import sys
import threading
import weakref

import greenlet
import pytest

import stackless_compat as stackless
from stackless_compat._greenlets import POOL_LIMIT
from stackless_compat._state import current_scheduler

var = contextvars.ContextVar("var", default="unset")


def _greenlet_of(record):
    record.append(greenlet.getcurrent())


def test_a_tasklet_started_by_main_runs_on_the_greenlet_of_one_that_ended():
    seen = []
    stackless.tasklet(_greenlet_of)(seen).run()
    stackless.tasklet(_greenlet_of)(seen).run()
    assert seen[0] is seen[1]
    assert len(current_scheduler().pool) >= 1


def test_queued_tasklets_run_one_after_another_in_the_same_greenlet():
    seen = []
    for _ in range(5):
        stackless.tasklet(_greenlet_of)(seen)
    stackless.run()
    assert len(seen) == 5 and all(g is seen[0] for g in seen)


def test_each_tasklet_starts_in_an_empty_context_even_on_a_recycled_greenlet():
    var.set("main")
    seen = []

    def body(tag):
        seen.append(var.get())
        var.set(tag)

    for tag in "ab":
        stackless.tasklet(body)(tag)
    stackless.run()
    stackless.tasklet(body)("c").run()
    assert seen == ["unset", "unset", "unset"]
    assert var.get() == "main"


def test_a_tasklet_that_raises_reaches_main_and_the_next_ones_still_run():
    record = []

    def fails():
        record.append("fails")
        raise ValueError("boom")

    stackless.tasklet(fails)()
    stackless.tasklet(record.append)("after")
    with pytest.raises(ValueError, match="boom") as info:
        stackless.run()
    assert any(entry.name == "fails" for entry in info.traceback)
    stackless.run()
    stackless.tasklet(record.append)("later").run()
    assert record == ["fails", "after", "later"]


def test_killed_tasklets_run_their_finally_and_leave_greenlets_for_new_ones():
    record = []
    channel = stackless.channel()

    def waits(n):
        try:
            channel.receive()
        finally:
            record.append(n)

    tasks = [stackless.tasklet(waits)(n) for n in range(3)]
    stackless.run()
    for task in tasks:
        task.kill()
    assert record == [0, 1, 2] and not any(task.alive for task in tasks)
    pooled = list(current_scheduler().pool)
    seen = []
    stackless.tasklet(_greenlet_of)(seen).run()
    assert seen[0] in pooled


def test_kill_and_throw_before_start_never_run_the_function():
    ran = []
    killed = stackless.tasklet(ran.append)("killed")
    killed.kill()
    assert not killed.alive
    thrown = stackless.tasklet(ran.append)("thrown")
    with pytest.raises(KeyError):
        thrown.throw(KeyError("k"))
    assert not thrown.alive
    stackless.tasklet(ran.append)("runs").run()
    assert ran == ["runs"]


def test_tasklets_created_while_one_ends_run_in_order():
    record = []

    def child(n):
        record.append(("child", n, stackless.getcurrent().recursion_depth))

    def parent():
        try:
            record.append("parent")
        finally:
            stackless.tasklet(child)(1)
            stackless.tasklet(child)(2)

    stackless.tasklet(parent)()
    stackless.run()
    assert record == ["parent", ("child", 1, 1), ("child", 2, 1)]


def test_frame_and_recursion_depth_are_the_tasklets_own_on_a_recycled_greenlet():
    seen = []

    def outer():
        inner()

    def inner():
        me = stackless.getcurrent()
        seen.append((me.frame.f_code.co_name, me.frame.f_back.f_code.co_name,
                     me.recursion_depth))

    stackless.tasklet(outer)().run()
    stackless.tasklet(outer)().run()
    assert seen == [("inner", "outer", 2)] * 2


def test_a_trace_function_sees_tasklets_on_recycled_greenlets():
    stackless.tasklet(lambda: None)().run()  # leave a parked greenlet
    events = []

    def traced():
        return 1

    def tracer(frame, event, arg):
        if frame.f_code is traced.__code__:
            events.append(event)
        return tracer

    task = stackless.tasklet(traced)()
    task.trace_function = tracer
    task.run()
    assert events == ["call", "line", "return"]


def test_a_per_tasklet_trace_function_does_not_stay_with_the_greenlet():
    events = []

    def tracer(frame, event, arg):
        events.append(frame.f_code.co_name)
        return tracer

    def traced_one():
        stackless.getcurrent().trace_function = tracer
        stackless.schedule()

    def untraced_one():
        pass

    stackless.tasklet(traced_one)()
    stackless.run()
    events.clear()
    stackless.tasklet(untraced_one)().run()
    assert "untraced_one" not in events


def test_a_tasklet_that_hands_over_to_a_suspended_one_leaves_its_greenlet_for_the_next():
    # B ends while A waits in schedule(): its greenlet parks (the root hands
    # over to A) for a tasklet started later, instead of ending
    seen = []

    def waits():
        stackless.schedule()
        seen.append("A resumed")
    stackless.tasklet(waits)()
    stackless.tasklet(_greenlet_of)(seen)
    stackless.run()
    assert seen[1] == "A resumed" and not seen[0].dead
    assert seen[0] in current_scheduler().pool


@pytest.mark.parametrize("root_waits_in", ["run", "receive"])  # (C core: its own hand-over)
def test_a_parked_greenlet_keeps_nothing_it_handed_over_to_alive(root_waits_in):
    record, refs = [], []

    class Payload:
        pass

    channel = stackless.channel()
    channel.preference = 1  # the sender goes on: no new tasklet takes the parked greenlet

    def waits(payload):
        refs.append(weakref.ref(greenlet.getcurrent()))
        try:
            stackless.schedule()  # (back to main: the next switch to it is a resume)
            stackless.schedule()
            if root_waits_in == "receive":
                channel.send("done")  # main runs once this one pauses
            stackless.schedule_remove()  # paused: the program drops it there
            record.append("resumed")
        finally:
            record.append("finally")
    payload = Payload()
    refs.append(weakref.ref(payload))
    task = stackless.tasklet(waits)(payload)
    task.run()
    stackless.tasklet(_greenlet_of)([])  # ends with waits next: parks, the root hands over
    del payload
    if root_waits_in == "run":
        stackless.run()
    else:
        assert channel.receive() == "done"  # main waits in the C core's hand-over
    assert task.paused
    refs.append(weakref.ref(task))
    del task
    for _ in range(3):
        gc.collect()
    assert [ref() for ref in refs] == [None, None, None] and record == ["finally"]


def test_the_pool_is_bounded():
    channel = stackless.channel()
    tasks = [stackless.tasklet(channel.receive)() for _ in range(POOL_LIMIT + 20)]
    stackless.run()
    for task in tasks:
        task.kill()
    assert len(current_scheduler().pool) == POOL_LIMIT


def test_each_thread_recycles_its_own_greenlets():
    results = {}

    def worker():
        seen = []
        stackless.tasklet(_greenlet_of)(seen).run()
        stackless.tasklet(_greenlet_of)(seen).run()
        task = stackless.tasklet(lambda: seen.append(threading.get_ident()))
        results["task"] = task
        results["seen"] = seen
        results["pool"] = list(current_scheduler().pool)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    seen = results["seen"]
    assert seen[0] is seen[1]
    mine = []
    stackless.tasklet(_greenlet_of)(mine).run()
    assert mine[0] not in results["pool"]
    # a tasklet bound here from a finished thread runs here, on a greenlet of this thread
    moved = []
    task = stackless.tasklet(lambda: moved.append((threading.get_ident(),
                                                   greenlet.getcurrent())))
    other = threading.Thread(target=lambda: task.bind_thread())
    other.start()
    other.join()
    task.bind_thread()
    task().run()
    assert moved[0][0] == threading.get_ident()
    assert moved[0][1] not in results["pool"]


def test_a_dropped_pool_ends_its_greenlets_quietly():
    stackless.tasklet(lambda: None)().run()
    pool = current_scheduler().pool
    parked = weakref.ref(pool[-1])
    unraisable = []
    old, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        pool.clear()
        gc.collect()
    finally:
        sys.unraisablehook = old
    assert parked() is None and not unraisable
    stackless.tasklet(lambda: None)().run()
