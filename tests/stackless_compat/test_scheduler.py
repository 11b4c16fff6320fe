"""Tests of the scheduler functions (Stackless' Doc/library/stackless/stackless.rst,
scheduler.rst): run, schedule, schedule_remove, the introspection functions
and module attributes, atomic, enable_softswitch, switch_trap and the
schedule callback.  ``run(timeout=...)`` and threads are not covered here.
"""

import threading

import pytest

import stackless_compat as stackless
from stackless_compat import TaskletExit


def noop():
    pass


# -- run ----------------------------------------------------------------------


def test_run_returns_once_the_run_queue_is_empty():
    events = []

    def counter(n):
        for i in range(n):
            events.append(i + 1)
            stackless.schedule()

    stackless.tasklet(counter)(3)
    assert stackless.run() is None
    assert events == [1, 2, 3]
    assert stackless.getruncount() == 1


def test_run_with_nothing_scheduled_returns_at_once():
    assert stackless.run() is None
    assert stackless.getcurrent() is stackless.getmain()


def test_run_interleaves_tasklets_in_fifo_order():
    events = []

    def worker(name):
        for i in range(2):
            events.append((name, i))
            stackless.schedule()

    for name in "abc":
        stackless.tasklet(worker)(name)
    stackless.run()
    assert events == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1)]


def test_run_returns_even_if_tasklets_are_left_blocked():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    assert t.alive and t.blocked
    ch.send(None)


def test_a_nested_run_returns_when_the_queue_empties_and_the_outer_caller_stays_paused():
    events = []

    def inner(name):
        events.append(name)

    def nesting():
        stackless.tasklet(inner)("c")
        events.append(("main paused", stackless.getmain().paused))
        stackless.run()
        events.append("nested run returned")
        events.append(("main paused", stackless.getmain().paused))

    stackless.tasklet(nesting)()
    stackless.tasklet(inner)("b")
    stackless.run()
    events.append("outer run returned")
    assert events == [("main paused", True), "b", "c", "nested run returned",
                      ("main paused", True), "outer run returned"]


def test_run_pauses_the_caller_as_the_watchdog():
    seen = []
    stackless.tasklet(lambda: seen.append((stackless.getmain().paused,
                                           stackless.getruncount())))()
    stackless.run()
    assert seen == [(True, 1)]
    assert stackless.getmain().scheduled


# -- schedule and schedule_remove ---------------------------------------------


def test_schedule_moves_the_current_tasklet_to_the_end_of_the_queue():
    events = []
    stackless.tasklet(lambda: events.append("t1"))()
    stackless.tasklet(lambda: events.append("t2"))()
    stackless.schedule()
    events.append("main")
    assert events == ["t1", "t2", "main"]


def test_schedule_returns_the_current_tasklet_by_default():
    assert stackless.schedule() is stackless.getmain()  # nothing else runnable
    results = []
    stackless.tasklet(noop)()
    results.append(stackless.schedule())
    assert results == [stackless.getmain()]

    def body():
        results.append(stackless.schedule() is stackless.getcurrent())

    stackless.tasklet(body)()
    stackless.run()
    assert results[1] is True


def test_schedule_returns_its_retval():
    assert stackless.schedule(42) == 42
    stackless.tasklet(noop)()
    assert stackless.schedule("value") == "value"
    assert stackless.schedule(None) is None


def test_schedule_remove_with_nothing_else_runnable_returns_at_once():
    assert stackless.schedule_remove("x") == "x"
    assert stackless.getmain().scheduled


def test_schedule_remove_from_main_resumes_main_once_the_queue_runs_dry():
    events = []
    stackless.tasklet(lambda: events.append(("t", stackless.getmain().paused)))()
    assert stackless.schedule_remove(7) == 7
    events.append("main")
    assert events == [("t", True), "main"]
    assert stackless.getmain().scheduled


def test_schedule_remove_pauses_the_tasklet_until_it_is_inserted_and_returns_retval():
    events = []

    def body():
        events.append(stackless.schedule_remove("retval"))

    t = stackless.tasklet(body)()
    stackless.run()
    assert t.paused and t.tempval == "retval"
    assert events == []
    t.insert()
    stackless.run()
    assert events == ["retval"]


def test_schedule_remove_returns_a_tempval_set_before_reinsertion():
    # the wait_for_result / event_callback idiom of stackless.rst
    waiting = []
    events = []

    def wait_for_result():
        waiting.append(stackless.getcurrent())
        return stackless.schedule_remove()

    def event_callback(result):
        for task in waiting:
            task.tempval = result
            task.insert()
        del waiting[:]

    def tasklet_function(name):
        events.append((name, wait_for_result()))

    stackless.tasklet(tasklet_function)("a")
    stackless.tasklet(tasklet_function)("b")
    stackless.run()
    assert events == [] and len(waiting) == 2
    event_callback("the result")
    stackless.run()
    assert events == [("a", "the result"), ("b", "the result")]


def test_schedule_remove_returns_the_current_tasklet_by_default():
    results = []

    def body():
        results.append(stackless.schedule_remove())

    t = stackless.tasklet(body)()
    stackless.run()
    t.insert()
    stackless.run()
    assert results == [t]


def test_a_bomb_as_retval_explodes_when_the_tasklet_resumes():
    with pytest.raises(ValueError):
        stackless.schedule(stackless.bomb(ValueError, ValueError("v")))
    stackless.tasklet(noop)()
    with pytest.raises(KeyError):
        stackless.schedule(stackless.bomb(KeyError))


# -- exceptions ---------------------------------------------------------------


def test_an_exception_escaping_a_tasklet_is_raised_from_run():
    # scheduler.rst, "an exception raised out of the scheduler"
    def func_loop():
        while True:
            stackless.schedule()

    def func_exception():
        raise Exception("catch this")

    loop = stackless.tasklet(func_loop)()
    failing = stackless.tasklet(func_exception)()
    with pytest.raises(Exception, match="catch this"):
        stackless.run()
    assert stackless.getcurrent() is stackless.getmain()
    assert not failing.alive
    assert loop.alive and loop.scheduled  # the others stay in the queue
    assert stackless.getruncount() == 2
    loop.kill()


def test_an_exception_escaping_a_tasklet_is_raised_from_schedule_in_main():
    stackless.tasklet(lambda: 1 / 0)()
    with pytest.raises(ZeroDivisionError):
        stackless.schedule()
    assert stackless.getcurrent() is stackless.getmain()


def test_an_exception_escaping_a_tasklet_reaches_the_innermost_run_caller():
    events = []

    def fails():
        raise KeyError("inner")

    def nesting():
        stackless.tasklet(fails)()
        try:
            stackless.run()
        except KeyError:
            events.append("caught by nested run")

    stackless.tasklet(nesting)()
    stackless.run()
    assert events == ["caught by nested run"]


def test_the_scheduler_keeps_working_after_an_escaped_exception():
    events = []
    stackless.tasklet(lambda: 1 / 0)()
    stackless.tasklet(lambda: events.append("second"))()
    with pytest.raises(ZeroDivisionError):
        stackless.run()
    stackless.run()
    assert events == ["second"]


def test_tasklet_exit_ends_a_tasklet_silently():
    events = []

    def body():
        events.append("before")
        raise TaskletExit
        events.append("after")

    t = stackless.tasklet(body)()
    stackless.run()
    assert events == ["before"]
    assert not t.alive


def test_system_exit_escaping_a_tasklet_reaches_main():
    def body():
        raise SystemExit(3)

    stackless.tasklet(body)()
    with pytest.raises(SystemExit) as info:
        stackless.run()
    assert info.value.code == 3
    assert not isinstance(info.value, TaskletExit)


# -- deadlock -----------------------------------------------------------------


def test_blocking_the_last_runnable_tasklet_raises_runtime_error_and_leaves_state_intact():
    ch = stackless.channel()
    main = stackless.getmain()
    with pytest.raises(RuntimeError):
        ch.receive()
    assert ch.balance == 0 and ch.queue is None
    assert stackless.getcurrent() is main and main.scheduled and not main.blocked
    assert stackless.getruncount() == 1
    events = []
    stackless.tasklet(lambda: events.append("still works"))()
    stackless.run()
    assert events == ["still works"]


def test_a_tasklet_blocking_while_main_is_blocked_gets_runtime_error():
    main_channel = stackless.channel()
    other = stackless.channel()
    events = []

    def body():
        try:
            other.receive()
        except RuntimeError:
            events.append(("deadlock", other.balance, stackless.getruncount()))
        main_channel.send("wake main")

    stackless.tasklet(body)()
    assert main_channel.receive() == "wake main"
    stackless.run()
    assert events == [("deadlock", 0, 1)]


def test_main_blocked_when_the_last_tasklet_ends_gets_runtime_error():
    ch = stackless.channel()
    stackless.tasklet(noop)()
    with pytest.raises(RuntimeError):
        ch.receive()
    assert ch.balance == 0
    assert stackless.getmain().scheduled and not stackless.getmain().blocked


# -- introspection ------------------------------------------------------------


def test_getcurrent_getmain_and_getruncount_follow_the_running_tasklet():
    seen = []
    main = stackless.getmain()
    assert stackless.getcurrent() is main
    assert stackless.getruncount() == 1
    t = stackless.tasklet(lambda: seen.append((stackless.getcurrent(), stackless.getmain(),
                                               stackless.getruncount())))()
    stackless.tasklet(noop)()
    assert stackless.getruncount() == 3
    stackless.run()
    assert seen == [(t, main, 2)]  # main is paused inside run()


def test_getcurrentid_is_the_thread_id_for_main_and_distinct_per_tasklet():
    ids = []
    assert stackless.getcurrentid() == threading.get_ident()

    def body():
        ids.append(stackless.getcurrentid())
        stackless.schedule()
        ids.append(stackless.getcurrentid())

    stackless.tasklet(body)()
    stackless.tasklet(body)()
    stackless.run()
    first, second, first_again, second_again = ids
    assert first == first_again and second == second_again
    assert len({first, second, threading.get_ident()}) == 3
    assert all(isinstance(i, int) for i in ids)


def test_get_thread_info_of_this_thread():
    main = stackless.getmain()
    assert stackless.get_thread_info(threading.get_ident()) == (main, main, 1)
    stackless.tasklet(noop)()
    assert stackless.get_thread_info(threading.get_ident()) == (main, main, 2)
    stackless.run()


def test_module_attributes_current_main_and_runcount_are_live():
    seen = []
    main = stackless.getmain()
    assert stackless.current is main and stackless.main is main
    assert stackless.runcount == 1
    t = stackless.tasklet(lambda: seen.append((stackless.current, stackless.main,
                                               stackless.current.is_main)))()
    assert stackless.runcount == 2
    stackless.run()
    assert seen == [(t, main, False)]
    assert stackless.current is main and stackless.current.is_main


def test_module_attribute_threads_starts_with_the_main_thread():
    threads = stackless.threads
    assert isinstance(threads, list)
    assert threads[0] == threading.main_thread().ident
    assert threading.get_ident() in threads


def test_stackless_stackless_is_the_module_itself():
    assert stackless.stackless is stackless


def test_an_unknown_module_attribute_raises_attribute_error():
    with pytest.raises(AttributeError):
        stackless.no_such_attribute


# -- atomic, enable_softswitch ------------------------------------------------


def test_atomic_sets_the_flag_inside_the_block_and_restores_it():
    main = stackless.getcurrent()
    assert not main.atomic
    with stackless.atomic():
        assert main.atomic
        with stackless.atomic():
            assert main.atomic
        assert main.atomic  # restored to the outer value, not cleared
    assert not main.atomic


def test_atomic_restores_the_flag_when_the_block_raises():
    with pytest.raises(KeyError):
        with stackless.atomic():
            raise KeyError
    assert not stackless.getcurrent().atomic


def test_atomic_keeps_a_flag_that_was_already_set():
    main = stackless.getcurrent()
    main.set_atomic(1)
    try:
        with stackless.atomic():
            pass
        assert main.atomic
    finally:
        main.set_atomic(0)


def test_atomic_applies_to_the_tasklet_that_entered_it():
    seen = []

    def body():
        with stackless.atomic():
            seen.append((stackless.getcurrent().atomic, stackless.getmain().atomic))
            stackless.schedule()
        seen.append(stackless.getcurrent().atomic)

    stackless.tasklet(body)()
    stackless.run()
    assert seen == [(True, False), False]


def test_enable_softswitch_none_only_inquires():
    assert stackless.enable_softswitch(None) is True
    assert stackless.enable_softswitch(None) is True


def test_enable_softswitch_sets_the_flag_and_returns_the_old_one():
    old = stackless.enable_softswitch(False)
    try:
        assert old is True
        assert stackless.enable_softswitch(None) is False
        assert stackless.enable_softswitch(True) is False
        assert stackless.enable_softswitch(None) is True
    finally:
        stackless.enable_softswitch(old)


def test_tasklets_still_run_with_softswitch_disabled():
    events = []
    old = stackless.enable_softswitch(False)
    try:
        stackless.tasklet(lambda: events.append("ran"))()
        stackless.run()
    finally:
        stackless.enable_softswitch(old)
    assert events == ["ran"]


# -- switch_trap --------------------------------------------------------------


@pytest.fixture
def trapped():
    """Set the switch trap for the test body; always released afterwards."""
    assert stackless.switch_trap(1) == 0
    try:
        yield
    finally:
        stackless.switch_trap(-1)


def test_switch_trap_returns_the_old_level():
    assert stackless.switch_trap(1) == 0
    assert stackless.switch_trap(2) == 1
    assert stackless.switch_trap(-2) == 3
    assert stackless.switch_trap(-1) == 1
    assert stackless.switch_trap(0) == 0


def test_switch_trap_rejects_a_non_integer():
    with pytest.raises(TypeError):
        stackless.switch_trap("1")
    assert stackless.switch_trap(0) == 0


def test_switching_while_trapped_raises_runtime_error_and_changes_nothing(trapped):
    events = []
    ch = stackless.channel()
    t = stackless.tasklet(lambda: events.append("ran"))()
    for action in (stackless.schedule, stackless.schedule_remove, stackless.run,
                   t.run, t.switch, ch.receive, lambda: ch.send(1)):
        with pytest.raises(RuntimeError):
            action()
        assert stackless.getcurrent() is stackless.getmain()
        assert stackless.getmain().scheduled and t.scheduled
        assert stackless.getruncount() == 2 and ch.balance == 0
    assert events == []
    stackless.switch_trap(-1)
    try:
        stackless.run()
    finally:
        stackless.switch_trap(1)
    assert events == ["ran"]


@pytest.mark.parametrize("method", ["run", "switch"])
def test_a_trapped_run_or_switch_leaves_a_paused_tasklet_paused(trapped, method):
    # Stackless C undoes the insertion when the switch is refused
    events = []
    t = stackless.tasklet(lambda: events.append("ran"), ())
    with pytest.raises(RuntimeError):
        getattr(t, method)()
    assert t.paused and not t.scheduled
    assert stackless.getruncount() == 1
    assert events == []
    t.bind(None)  # unbinding needs no switch, so it works while trapped


def test_switch_trap_inside_a_tasklet_blocks_switching_out_of_it():
    events = []

    def body():
        stackless.switch_trap(1)
        try:
            stackless.schedule()
        except RuntimeError:
            events.append("trapped")
        finally:
            stackless.switch_trap(-1)

    stackless.tasklet(body)()
    stackless.tasklet(noop)()
    stackless.run()
    assert events == ["trapped"]


def test_a_channel_hand_over_that_does_not_switch_is_allowed_while_trapped():
    ch = stackless.channel()
    ch.preference = 0
    stackless.tasklet(ch.receive)()
    stackless.run()
    stackless.switch_trap(1)
    try:
        ch.send("no switch needed")
    finally:
        stackless.switch_trap(-1)
    assert ch.balance == 0
    stackless.run()


# -- the schedule callback ----------------------------------------------------


@pytest.fixture
def switches():
    """Install a schedule callback recording (prev, next, prev.alive) per switch."""
    calls = []

    def callback(prev, next):
        calls.append((prev, next, prev.alive if prev is not None else None))

    stackless.set_schedule_callback(callback)
    yield calls
    stackless.set_schedule_callback(None)


def test_schedule_callback_sees_every_switch_including_tasklet_death(switches):
    main = stackless.getmain()
    t1 = stackless.tasklet(stackless.schedule)()
    t2 = stackless.tasklet(noop)()
    stackless.run()
    assert switches == [
        (main, t1, True),   # run() leaves main
        (t1, t2, True),     # t1 schedules
        (t2, t1, False),    # t2 ends: prev is the dead tasklet
        (t1, main, False),  # t1 ends, main is revived
    ]


def test_schedule_callback_sees_channel_switches(switches):
    main = stackless.getmain()
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    ch.send(1)
    assert switches == [(main, t, True), (t, main, True), (main, t, True), (t, main, False)]


def test_schedule_callback_is_not_called_without_a_switch(switches):
    stackless.schedule()
    stackless.run()
    ch = stackless.channel()
    ch.preference = 0
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    del switches[:]
    ch.send(1)  # receiver only made runnable
    assert switches == []
    stackless.run()
    assert not t.alive


def test_schedule_callback_for_kill_and_throw(switches):
    main = stackless.getmain()
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    del switches[:]
    t.kill()
    assert switches == [(main, t, True), (t, main, False)]


def test_switching_inside_the_schedule_callback_raises_runtime_error():
    # stackless.rst: the callback must not change the scheduler state
    outcomes = []
    paused = stackless.tasklet(noop, ())

    def callback(prev, next):
        try:
            paused.run()
            outcomes.append("switched")
        except RuntimeError:
            outcomes.append("RuntimeError")

    stackless.tasklet(noop)()
    stackless.set_schedule_callback(callback)
    try:
        stackless.run()
    finally:
        stackless.set_schedule_callback(None)
    assert outcomes == ["RuntimeError", "RuntimeError"]  # main -> t, dead t -> main
    assert paused.paused
    assert stackless.switch_trap(0) == 0
    paused.kill()


def test_set_schedule_callback_returns_the_previous_one_and_get_reads_it():
    def first(prev, next):
        pass

    def second(prev, next):
        pass

    assert stackless.get_schedule_callback() is None
    assert stackless.set_schedule_callback(first) is None
    assert stackless.get_schedule_callback() is first
    assert stackless.set_schedule_callback(second) is first
    assert stackless.set_schedule_callback(None) is second
    assert stackless.get_schedule_callback() is None


def test_set_schedule_callback_rejects_a_non_callable():
    with pytest.raises(TypeError):
        stackless.set_schedule_callback("not callable")
    assert stackless.get_schedule_callback() is None
