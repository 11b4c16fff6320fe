"""Tests of ``stackless_compat.tasklet`` (Stackless' Doc/library/stackless/tasklets.rst).

Order of execution is checked with an ``events`` list.  Every test leaves
only the main tasklet runnable (the autouse fixture in ``tests/conftest.py``
checks it), so tasklets are run to completion or killed.
"""

import copy
import pickle
import sys
import threading

import pytest

import stackless_compat as stackless
from stackless_compat import TaskletExit


def record(events, name):
    """A tasklet function that records ``name``."""
    def body(*args, **kwargs):
        events.append((name, args, kwargs))
    return body


def noop():
    pass


CALLS = []


def record_call(*args, **kwargs):
    """A module-level function: pickle can name it."""
    CALLS.append((args, kwargs))


# -- construction, bind, setup ------------------------------------------------


def test_constructor_with_a_function_binds_it_without_scheduling():
    t = stackless.tasklet(noop)
    assert not t.alive
    assert not t.scheduled
    assert t.tempval is noop
    assert stackless.getruncount() == 1


def test_calling_a_bound_tasklet_returns_itself_and_schedules_it():
    events = []
    t = stackless.tasklet(record(events, "t"))
    assert t(1, 2, key="value") is t
    assert t.alive and t.scheduled
    assert stackless.getruncount() == 2
    assert events == []
    stackless.run()
    assert events == [("t", (1, 2), {"key": "value"})]
    assert not t.alive


def test_setup_returns_the_tasklet_and_schedules_it():
    events = []
    t = stackless.tasklet()
    assert t.bind(record(events, "t")) is t
    assert t.setup(3, name="x") is t
    assert t.scheduled
    stackless.run()
    assert events == [("t", (3,), {"name": "x"})]


def test_the_one_line_launch_idiom_needs_no_reference():
    events = []
    stackless.tasklet(record(events, "anon"))("a")
    stackless.run()
    assert events == [("anon", ("a",), {})]


def test_bind_with_args_leaves_the_tasklet_alive_but_paused():
    events = []
    t = stackless.tasklet()
    assert t.bind(record(events, "t"), (1, 2), {"k": 3}) is t
    assert t.alive
    assert t.paused
    assert not t.scheduled
    assert stackless.getruncount() == 1
    stackless.run()
    assert events == []  # not runnable until inserted
    t.insert()
    stackless.run()
    assert events == [("t", (1, 2), {"k": 3})]


def test_bind_with_only_kwargs_also_leaves_the_tasklet_paused():
    events = []
    t = stackless.tasklet().bind(record(events, "t"), kwargs={"k": 1})
    assert t.paused
    t.insert()
    stackless.run()
    assert events == [("t", (), {"k": 1})]


def test_constructor_with_args_is_bind_and_leaves_the_tasklet_paused():
    events = []
    t = stackless.tasklet(record(events, "t"), (5,))
    assert t.paused and not t.scheduled
    t.insert()
    stackless.run()
    assert events == [("t", (5,), {})]


def test_bind_none_with_args_keeps_the_previously_bound_function():
    events = []
    t = stackless.tasklet(record(events, "t"))
    t.bind(None, (7,))
    assert t.paused
    t.run()
    assert events == [("t", (7,), {})]


def test_bind_none_unbinds_a_tasklet_that_is_not_alive():
    t = stackless.tasklet(noop)
    assert t.bind(None) is t
    assert t.tempval is None
    assert not t.alive
    with pytest.raises(RuntimeError):
        t.setup()
    assert not t.scheduled


def test_bind_none_unbinds_a_paused_tasklet_that_never_ran():
    events = []
    t = stackless.tasklet(record(events, "t"), ())
    assert t.alive
    t.bind(None)
    assert not t.alive and not t.paused
    with pytest.raises(RuntimeError):
        t.insert()
    assert events == []


def test_a_finished_tasklet_can_be_rebound_and_run_again():
    events = []
    t = stackless.tasklet(record(events, "first"))()
    stackless.run()
    assert not t.alive
    t.bind(record(events, "second"))
    t.setup()
    stackless.run()
    assert events == [("first", (), {}), ("second", (), {})]


def test_setup_of_an_alive_tasklet_raises_runtime_error():
    t = stackless.tasklet(noop)()
    with pytest.raises(RuntimeError):
        t.setup()
    assert stackless.getruncount() == 2  # not inserted twice
    stackless.run()


def test_setup_of_an_unbound_tasklet_raises_runtime_error():
    t = stackless.tasklet()
    with pytest.raises(RuntimeError):
        t()
    assert not t.alive and not t.scheduled


def test_bind_of_a_non_callable_raises_type_error():
    t = stackless.tasklet()
    with pytest.raises(TypeError):
        t.bind(42)
    with pytest.raises(TypeError):
        stackless.tasklet("not callable")


def test_bind_of_a_scheduled_tasklet_raises_runtime_error():
    events = []
    t = stackless.tasklet(record(events, "t"))()
    with pytest.raises(RuntimeError):
        t.bind(noop)
    stackless.run()
    assert events == [("t", (), {})]  # the original binding survived


def test_bind_of_the_current_tasklet_raises_runtime_error():
    events = []

    def body():
        try:
            stackless.getcurrent().bind(noop)
        except RuntimeError:
            events.append("RuntimeError")

    stackless.tasklet(body)()
    stackless.run()
    assert events == ["RuntimeError"]
    with pytest.raises(RuntimeError):
        stackless.getmain().bind(noop)


def test_bind_of_a_suspended_tasklet_raises_runtime_error_because_it_is_not_restorable():
    # The docs allow rebinding a paused tasklet only if it is restorable; on
    # greenlet a tasklet suspended mid-run always has C state.
    events = []

    def body():
        try:
            events.append("part 1")
            stackless.schedule_remove()
            events.append("part 2")
        finally:
            events.append("cleanup")

    t = stackless.tasklet(body)()
    stackless.run()
    assert t.paused and not t.restorable
    with pytest.raises(RuntimeError):
        t.bind(None)
    assert t.alive
    t.kill()
    assert events == ["part 1", "cleanup"]


def test_replacing_tempval_before_setup_changes_the_function_called():
    # the monkey-patching idiom of scheduler.rst relies on tempval holding the function
    events = []
    original = record(events, "original")
    t = stackless.tasklet(original)
    assert t.tempval is original

    def wrapper(*args):
        events.append("wrapper")
        original(*args)

    t.tempval = wrapper
    t.setup(1)
    stackless.run()
    assert events == ["wrapper", ("original", (1,), {})]


# -- state attributes ---------------------------------------------------------


def test_a_new_tasklet_has_the_documented_initial_state():
    t = stackless.tasklet()
    assert t.alive is False
    assert t.paused is False
    assert t.blocked is False
    assert t.scheduled is False
    assert t.restorable is True
    assert t.atomic is False
    assert t.ignore_nesting is False
    assert t.block_trap is False
    assert t.is_current is False
    assert t.is_main is False
    assert t.thread_id == threading.get_ident()
    assert t.next is None
    assert t.prev is None
    assert t.tempval is None
    assert t.frame is None
    assert t.recursion_depth == 0
    assert t.nesting_level == 0


def test_the_main_tasklet_is_main_current_alive_and_scheduled():
    main = stackless.getmain()
    assert main.is_main and main.is_current
    assert main.alive and main.scheduled
    assert not main.paused and not main.blocked
    assert main.thread_id == threading.get_ident()
    assert main.frame is sys._getframe()
    assert main.nesting_level == 0


def test_a_scheduled_tasklet_is_alive_scheduled_and_not_current():
    t = stackless.tasklet(noop)()
    assert t.alive and t.scheduled
    assert not t.paused and not t.blocked
    assert not t.is_current and not t.is_main
    assert t.restorable  # it never ran: no C state yet
    stackless.run()


def test_the_running_tasklet_sees_itself_current_and_main_paused_by_run():
    seen = {}

    def body():
        me = stackless.getcurrent()
        main = stackless.getmain()
        seen.update(is_current=me.is_current, is_main=me.is_main, alive=me.alive,
                    scheduled=me.scheduled, paused=me.paused, blocked=me.blocked,
                    main_is_current=main.is_current, main_paused=main.paused,
                    main_scheduled=main.scheduled, nesting_level=me.nesting_level,
                    frame_code=me.frame.f_code)

    stackless.tasklet(body)()
    stackless.run()
    assert seen == dict(is_current=True, is_main=False, alive=True, scheduled=True,
                        paused=False, blocked=False, main_is_current=False,
                        main_paused=True, main_scheduled=False, nesting_level=0,
                        frame_code=body.__code__)


def test_a_blocked_tasklet_is_blocked_and_scheduled_but_not_paused():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    assert t.alive and t.blocked and t.scheduled
    assert not t.paused and not t.is_current
    assert not t.restorable  # suspended greenlet: C state on its stack
    ch.send(None)
    assert not t.alive


def test_a_finished_tasklet_is_dead_and_unlinked():
    t = stackless.tasklet(noop)()
    stackless.run()
    assert not t.alive and not t.paused and not t.blocked and not t.scheduled
    assert t.next is None and t.prev is None
    assert t.frame is None
    assert t.recursion_depth == 0
    assert t.restorable


def test_next_and_prev_follow_the_run_queue_around_to_main():
    main = stackless.getmain()
    t1 = stackless.tasklet(noop)()
    t2 = stackless.tasklet(noop)()
    assert [main.next, t1.next, t2.next] == [t1, t2, main]
    assert [main.prev, t1.prev, t2.prev] == [t2, main, t1]
    stackless.run()


def test_next_and_prev_follow_the_channel_queue_and_end_with_none():
    ch = stackless.channel()
    tasks = [stackless.tasklet(ch.receive)() for _ in range(3)]
    stackless.run()
    walked = []
    t = ch.queue
    while t is not None:
        walked.append(t)
        t = t.next
    assert walked == tasks
    assert tasks[0].prev is None
    assert tasks[2].prev is tasks[1]
    for _ in tasks:
        ch.send(None)


def test_frame_of_a_blocked_tasklet_is_its_innermost_frame():
    ch = stackless.channel()

    def inner():
        ch.receive()

    def outer():
        inner()

    t = stackless.tasklet(outer)()
    stackless.run()
    assert t.frame.f_code is inner.__code__
    assert t.frame.f_back.f_code is outer.__code__
    ch.send(None)
    assert t.frame is None


def test_recursion_depth_counts_the_tasklets_own_nested_calls():
    ch = stackless.channel()
    depths = []

    def inner():
        depths.append(stackless.getcurrent().recursion_depth)
        ch.receive()

    def outer():
        depths.append(stackless.getcurrent().recursion_depth)
        inner()

    t = stackless.tasklet(outer)()
    stackless.run()
    assert depths[1] == depths[0] + 1
    assert t.recursion_depth == depths[1]  # seen from outside while blocked
    t.kill()


def test_flags_default_to_false_and_block_trap_is_settable():
    t = stackless.tasklet()
    t.block_trap = True
    assert t.block_trap is True
    t.block_trap = 0
    assert t.block_trap is False


@pytest.mark.parametrize("bad", ["1", None, 1.0, object()])
def test_block_trap_rejects_a_non_integer_with_type_error(bad):
    t = stackless.tasklet()
    with pytest.raises(TypeError):
        t.block_trap = bad
    assert t.block_trap is False


def test_tempval_can_be_read_and_written():
    t = stackless.tasklet()
    t.tempval = "value"
    assert t.tempval == "value"


def test_tempval_holds_the_bound_function_until_setup_then_none_as_in_stackless_c():
    # taskletobject.c: bind(func) without arguments stores func in tempval
    # (TASKLET_SETVAL), setup takes it from there and leaves None
    t = stackless.tasklet(noop)
    assert t.tempval is noop
    t.bind(len)
    assert t.tempval is len
    t.bind(noop)
    t.setup()
    assert t.tempval is None and t.alive
    t.kill()
    assert stackless.tasklet().bind(noop, ()).tempval is None  # bind with arguments sets it up
    assert stackless.tasklet(noop).bind(None).tempval is None


# -- insert, remove -----------------------------------------------------------


def test_insert_appends_a_paused_tasklet_at_the_end_of_the_run_queue():
    events = []
    t1 = stackless.tasklet(record(events, "t1"), ())
    stackless.tasklet(record(events, "t2"))()
    assert t1.insert() is t1
    assert t1.scheduled and not t1.paused
    assert stackless.getmain().prev is t1
    stackless.run()
    assert [e[0] for e in events] == ["t2", "t1"]


def test_insert_of_a_scheduled_tasklet_does_nothing():
    t = stackless.tasklet(noop)()
    t.insert()
    assert stackless.getruncount() == 2
    stackless.run()


def test_insert_of_a_blocked_tasklet_raises_runtime_error():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(RuntimeError):
        t.insert()
    assert t.blocked and ch.balance == -1
    ch.send(None)


@pytest.mark.parametrize("make", [
    lambda: stackless.tasklet(),
    lambda: stackless.tasklet(noop),
], ids=["unbound", "bound-without-args"])
def test_insert_of_a_tasklet_that_is_not_alive_raises_runtime_error(make):
    t = make()
    with pytest.raises(RuntimeError):
        t.insert()
    assert not t.scheduled


def test_insert_of_a_dead_tasklet_raises_runtime_error():
    t = stackless.tasklet(noop)()
    stackless.run()
    with pytest.raises(RuntimeError):
        t.insert()


def test_remove_takes_a_tasklet_out_of_the_run_queue_and_pauses_it():
    events = []
    t = stackless.tasklet(record(events, "t"))()
    assert t.remove() is t
    assert t.paused and not t.scheduled
    assert stackless.getruncount() == 1
    stackless.run()
    assert events == []
    t.insert()
    stackless.run()
    assert events == [("t", (), {})]


def test_remove_of_a_paused_tasklet_does_nothing():
    t = stackless.tasklet(noop, ())
    assert t.remove() is t
    assert t.paused


def test_remove_of_a_blocked_tasklet_raises_runtime_error():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(RuntimeError):
        t.remove()
    assert t.blocked
    ch.send(None)


def test_remove_of_the_current_tasklet_raises_runtime_error():
    events = []

    def body():
        try:
            stackless.getcurrent().remove()
        except RuntimeError:
            events.append("RuntimeError")
        events.append(stackless.getcurrent().scheduled)

    stackless.tasklet(body)()
    stackless.run()
    assert events == ["RuntimeError", True]
    with pytest.raises(RuntimeError):
        stackless.getmain().remove()


# -- run, switch --------------------------------------------------------------


def yielder(events, name):
    """Records ``name``, yields once with schedule(), then records ``name done``."""
    def body():
        events.append(name)
        stackless.schedule()
        events.append(name + " done")
    return body


def test_run_of_the_first_tasklet_runs_the_whole_queue_before_the_caller_resumes():
    # tasklets.rst, tasklet.run: the queue [main, t1, t2, t3] is rotated to t1
    events = []
    t1, t2, t3 = (stackless.tasklet(yielder(events, n))() for n in ("t1", "t2", "t3"))
    t1.run()
    events.append("main")
    assert stackless.getmain().scheduled
    stackless.run()
    assert events == ["t1", "t2", "t3", "main", "t1 done", "t2 done", "t3 done"]


def test_run_of_a_later_tasklet_runs_only_it_and_those_after_it_before_the_caller():
    events = []
    t1, t2, t3 = (stackless.tasklet(yielder(events, n))() for n in ("t1", "t2", "t3"))
    t2.run()
    events.append("main")
    assert t1.scheduled and t1.restorable  # t1 has not run yet
    stackless.run()
    assert events == ["t2", "t3", "main", "t1", "t2 done", "t3 done", "t1 done"]


def test_run_of_a_removed_tasklet_returns_to_the_caller_next():
    # tasklets.rst: removing first effectively moves it before the caller
    events = []
    seen = []

    def body():
        events.append("t2")
        seen.append(stackless.getcurrent().next is stackless.getmain())
        stackless.schedule()
        events.append("t2 done")

    t1 = stackless.tasklet(yielder(events, "t1"))()
    t2 = stackless.tasklet(body)()
    t2.remove()
    t2.run()
    events.append("main")
    assert t2.scheduled
    assert seen == [True]
    stackless.run()
    assert events == ["t2", "main", "t1", "t2 done", "t1 done"]
    assert not t1.alive


def test_run_of_a_paused_tasklet_inserts_it_and_keeps_the_caller_runnable():
    events = []
    t = stackless.tasklet(record(events, "t"), ())
    t.run()
    assert events == [("t", (), {})]
    assert stackless.getcurrent() is stackless.getmain()
    assert stackless.getmain().scheduled


def test_run_of_the_current_tasklet_returns_at_once():
    main = stackless.getmain()
    main.run()
    assert stackless.getcurrent() is main


def test_switch_pauses_the_caller_until_the_queue_runs_dry():
    events = []

    def body(name):
        events.append((name, stackless.getmain().scheduled, stackless.getmain().paused))
        stackless.schedule()

    t1, t2, t3 = (stackless.tasklet(body)(n) for n in ("t1", "t2", "t3"))
    t1.switch()
    events.append("main")
    assert events == [("t1", False, True), ("t2", False, True), ("t3", False, True), "main"]
    assert not (t1.alive or t2.alive or t3.alive)


def test_switch_back_to_main_pauses_the_switching_tasklet():
    events = []
    main = stackless.getmain()

    def body():
        events.append("t")
        main.switch()
        events.append("never")

    t = stackless.tasklet(body)()
    t.switch()
    events.append("main")
    assert t.paused and t.alive
    t.kill()
    assert events == ["t", "main"]


def test_run_or_switch_of_a_blocked_tasklet_raises_runtime_error():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(RuntimeError):
        t.run()
    with pytest.raises(RuntimeError):
        t.switch()
    assert t.blocked and stackless.getmain().scheduled
    ch.send(None)


def test_run_of_a_dead_tasklet_raises_runtime_error():
    t = stackless.tasklet(noop)()
    stackless.run()
    with pytest.raises(RuntimeError):
        t.run()
    with pytest.raises(RuntimeError):
        t.switch()


def test_run_returns_none_when_the_caller_is_resumed_by_the_scheduler():
    t = stackless.tasklet(noop)()
    assert t.run() is None


# -- kill ---------------------------------------------------------------------


def test_kill_of_a_new_scheduled_tasklet_ends_it_without_running_it():
    events = []
    t = stackless.tasklet(record(events, "t"))()
    assert t.kill() is None
    assert not t.alive and not t.scheduled
    assert stackless.getruncount() == 1
    stackless.run()
    assert events == []


def test_kill_of_a_new_paused_tasklet_ends_it_without_running_it():
    events = []
    t = stackless.tasklet(record(events, "t"), ())
    t.kill()
    assert not t.alive and not t.paused
    assert events == []


def test_kill_of_a_blocked_tasklet_unblocks_it_and_runs_its_finally_first():
    ch = stackless.channel()
    events = []

    def body():
        try:
            ch.receive()
        finally:
            events.append("finally")

    t = stackless.tasklet(body)()
    stackless.run()
    t.kill()
    events.append("after kill")
    assert events == ["finally", "after kill"]
    assert not t.alive and not t.blocked
    assert ch.balance == 0 and ch.queue is None


def test_kill_switches_to_the_victim_and_back_before_other_tasklets_run():
    # throw/kill without pending: the target is put before the current tasklet
    # and switched to, so the caller comes next once it ends
    ch = stackless.channel()
    events = []

    def victim():
        try:
            ch.receive()
        finally:
            events.append("victim finally")

    t = stackless.tasklet(victim)()
    stackless.run()
    stackless.tasklet(record(events, "bystander"))()
    t.kill()
    events.append("main")
    stackless.run()
    assert events == ["victim finally", "main", ("bystander", (), {})]


def test_kill_raises_tasklet_exit_which_the_tasklet_may_catch():
    events = []

    def body():
        try:
            stackless.schedule_remove()
        except TaskletExit as exc:
            events.append(type(exc))
        events.append("continues")

    t = stackless.tasklet(body)()
    stackless.run()
    t.kill()
    assert events == [TaskletExit, "continues"]
    assert not t.alive


def test_kill_of_a_dead_tasklet_is_a_no_op():
    t = stackless.tasklet(noop)()
    stackless.run()
    assert t.kill() is None
    assert t.kill(pending=True) is None
    assert not t.alive


def test_kill_of_an_unbound_tasklet_is_a_no_op():
    t = stackless.tasklet()
    t.kill()
    assert not t.alive


def test_kill_with_pending_only_makes_a_blocked_tasklet_runnable():
    ch = stackless.channel()
    events = []

    def body():
        try:
            ch.receive()
        finally:
            events.append("finally")

    t = stackless.tasklet(body)()
    stackless.run()
    t.kill(pending=True)
    events.append("after kill")
    assert t.alive and t.scheduled and not t.blocked
    assert ch.balance == 0
    stackless.run()
    assert events == ["after kill", "finally"]
    assert not t.alive


def test_kill_of_the_current_tasklet_ends_it_silently():
    events = []

    def body():
        events.append("before")
        stackless.getcurrent().kill()
        events.append("after")

    t = stackless.tasklet(body)()
    stackless.run()
    assert events == ["before"]
    assert not t.alive


def test_kill_of_a_tasklet_paused_by_schedule_remove():
    events = []

    def body():
        try:
            stackless.schedule_remove()
        finally:
            events.append("finally")

    t = stackless.tasklet(body)()
    stackless.run()
    assert t.paused
    t.kill()
    assert events == ["finally"]
    assert not t.alive


# -- throw, raise_exception ---------------------------------------------------


def catcher(events, ch=None):
    """A tasklet body that waits (on ``ch`` or paused) and records what it catches."""
    def body():
        try:
            if ch is None:
                stackless.schedule_remove()
            else:
                ch.receive()
        except BaseException as exc:
            events.append(exc)
    return body


def started(body):
    t = stackless.tasklet(body)()
    stackless.run()
    return t


def test_throw_of_a_class_raises_a_new_instance_in_the_tasklet():
    events = []
    t = started(catcher(events))
    t.throw(ValueError)
    assert type(events[0]) is ValueError and events[0].args == ()
    assert not t.alive


def test_throw_of_a_class_with_a_value_calls_the_class_with_it():
    events = []
    t = started(catcher(events))
    t.throw(ValueError, "boom")
    assert type(events[0]) is ValueError and events[0].args == ("boom",)


def test_throw_of_a_class_with_a_tuple_value_unpacks_it():
    events = []
    t = started(catcher(events))
    t.throw(KeyError, ("a", "b"))
    assert type(events[0]) is KeyError and events[0].args == ("a", "b")


def test_throw_of_a_class_with_an_instance_value_raises_that_instance():
    events = []
    exc = ValueError("mine")
    t = started(catcher(events))
    t.throw(ValueError, exc)
    assert events[0] is exc


def test_throw_of_an_instance_raises_that_very_instance():
    events = []
    exc = ValueError("mine")
    t = started(catcher(events))
    t.throw(exc)
    assert events[0] is exc


def test_throw_with_a_traceback_attaches_it():
    events = []

    def origin():
        raise ValueError("from origin")

    try:
        origin()
    except ValueError:
        typ, val, tb = sys.exc_info()
    t = started(catcher(events))
    t.throw(typ, val, tb)
    assert events[0] is val
    codes = []
    tb = events[0].__traceback__
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    assert origin.__code__ in codes


@pytest.mark.parametrize("args", [
    (ValueError("x"), "separate value"),   # instance plus a value
    (ValueError, None, "not a traceback"),
    (42,),
    ("ValueError",),
    (object,),
], ids=["instance-with-value", "bad-traceback", "int", "str", "non-exception-class"])
def test_throw_with_bad_arguments_raises_type_error_and_changes_nothing(args):
    events = []
    t = started(catcher(events))
    with pytest.raises(TypeError):
        t.throw(*args)
    assert t.paused and events == []
    t.kill()


def test_throw_without_arguments_raises_type_error():
    events = []
    t = started(catcher(events))
    with pytest.raises(TypeError):
        t.throw()
    t.kill()


def test_throw_runs_the_tasklet_immediately_and_the_caller_stays_runnable():
    ch = stackless.channel()
    events = []
    t = started(catcher(events, ch))
    t.throw(ValueError)
    events.append("main")
    assert [type(e) if isinstance(e, BaseException) else e for e in events] == [ValueError, "main"]
    assert ch.balance == 0
    assert stackless.getmain().scheduled


def test_throw_with_pending_makes_the_tasklet_runnable_and_the_caller_continues():
    ch = stackless.channel()
    events = []
    t = started(catcher(events, ch))
    assert t.throw(ValueError, pending=True) is None
    events.append("main")
    assert t.scheduled and not t.blocked and ch.balance == 0
    stackless.run()
    assert [type(e) if isinstance(e, BaseException) else e for e in events] == ["main", ValueError]


def test_an_exception_thrown_and_not_caught_propagates_to_the_thrower():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(ValueError, match="uncaught"):
        t.throw(ValueError("uncaught"))
    assert not t.alive
    assert ch.balance == 0
    assert stackless.getcurrent() is stackless.getmain()


def test_throw_to_a_new_tasklet_raises_before_its_function_starts():
    events = []
    t = stackless.tasklet(record(events, "t"))()
    with pytest.raises(ValueError):
        t.throw(ValueError)
    assert events == []
    assert not t.alive and not t.scheduled


def test_a_pending_throw_to_a_new_tasklet_raises_from_run_before_its_function_starts():
    events = []
    t = stackless.tasklet(record(events, "t"))()
    t.throw(ValueError, pending=True)
    assert t.alive and t.scheduled
    with pytest.raises(ValueError):
        stackless.run()
    assert events == []
    assert not t.alive and not t.scheduled


def test_throw_to_the_current_tasklet_raises_at_once():
    events = []

    def body():
        try:
            stackless.getcurrent().throw(ValueError("self"))
        except ValueError as exc:
            events.append(str(exc))

    stackless.tasklet(body)()
    stackless.run()
    assert events == ["self"]


@pytest.mark.parametrize("make", [
    lambda: stackless.tasklet(),
    lambda: stackless.tasklet(noop),
    lambda: started(noop),
], ids=["unbound", "bound", "finished"])
def test_throw_to_a_dead_tasklet_raises_runtime_error(make):
    t = make()
    with pytest.raises(RuntimeError):
        t.throw(ValueError)
    with pytest.raises(RuntimeError):
        t.throw(ValueError, pending=True)
    with pytest.raises(RuntimeError):
        t.raise_exception(ValueError)


def test_throw_of_tasklet_exit_to_a_dead_tasklet_is_allowed():
    class MyExit(TaskletExit):
        pass

    t = started(noop)
    assert t.throw(TaskletExit) is None
    assert t.throw(MyExit()) is None
    assert t.raise_exception(TaskletExit) is None
    assert not t.alive


def test_raise_exception_instantiates_the_class_with_the_arguments():
    events = []
    t = started(catcher(events))
    t.raise_exception(KeyError, "a", 2)
    assert type(events[0]) is KeyError and events[0].args == ("a", 2)
    assert not t.alive


@pytest.mark.parametrize("bad", [ValueError("instance"), 42, object],
                         ids=["instance", "int", "class"])
def test_raise_exception_requires_an_exception_class(bad):
    events = []
    t = started(catcher(events))
    with pytest.raises(TypeError):
        t.raise_exception(bad)
    assert t.paused and events == []
    t.kill()


# -- flags --------------------------------------------------------------------


@pytest.mark.parametrize("method, attribute", [
    ("set_atomic", "atomic"), ("set_ignore_nesting", "ignore_nesting")])
def test_flag_setters_return_the_old_value(method, attribute):
    t = stackless.getcurrent()
    setter = getattr(t, method)
    assert setter(1) == 0
    assert getattr(t, attribute) is True
    assert setter(True) == 1
    assert setter(0) == 1
    assert getattr(t, attribute) is False
    assert setter(False) == 0


@pytest.mark.parametrize("method", ["set_atomic", "set_ignore_nesting"])
@pytest.mark.parametrize("bad", ["1", None, 1.0, object()])
def test_flag_setters_reject_a_non_integer_with_type_error(method, bad):
    t = stackless.tasklet()
    with pytest.raises(TypeError):
        getattr(t, method)(bad)
    assert not t.atomic and not t.ignore_nesting


def test_flags_are_per_tasklet():
    t = stackless.tasklet()
    t.set_atomic(1)
    assert t.atomic and not stackless.getcurrent().atomic


# -- subclassing --------------------------------------------------------------


class NamedTasklet(stackless.tasklet):
    """The subclass of debugging.rst: __slots__ and an __init__ with an extra argument."""

    __slots__ = ("name",)

    def __init__(self, func, name=None):
        stackless.tasklet.__init__(self, func)
        self.name = name or "at %08x" % id(self)


def test_a_subclass_with_slots_and_its_own_init_works():
    events = []

    def body(arg):
        events.append((stackless.getcurrent().name, arg))

    t = NamedTasklet(body, "tick")(1)
    assert isinstance(t, NamedTasklet) and t.name == "tick"
    stackless.run()
    assert events == [("tick", 1)]


def test_getcurrent_returns_the_subclass_instance():
    seen = []
    t = NamedTasklet(lambda: seen.append(stackless.getcurrent()), "x")()
    stackless.run()
    assert seen == [t]


def test_a_subclass_without_slots_can_have_instance_attributes():
    class Plain(stackless.tasklet):
        def __init__(self, func):
            stackless.tasklet.__init__(self, func)
            self.label = "plain"

    events = []
    t = Plain(lambda: events.append(stackless.getcurrent().label))
    t.extra = 1
    t()
    stackless.run()
    assert events == ["plain"]


def test_a_subclass_without_its_own_init_binds_like_tasklet():
    class Bare(stackless.tasklet):
        pass

    events = []
    t = Bare(record(events, "bare"), (1,))
    assert t.paused
    t.insert()
    stackless.run()
    assert events == [("bare", (1,), {})]


def test_a_subclass_may_override_setup_through_call():
    class Wrapped(stackless.tasklet):
        def __call__(self, *args, **kwargs):
            func = self.tempval

            def wrapper(*a, **kw):
                events.append("wrapped")
                func(*a, **kw)

            self.tempval = wrapper
            return stackless.tasklet.setup(self, *args, **kwargs)

    events = []
    Wrapped(record(events, "inner"))(2)
    stackless.run()
    assert events == ["wrapped", ("inner", (2,), {})]


# -- pickling -----------------------------------------------------------------


def test_a_tasklet_that_never_ran_reduces_to_stackless_state_tuple():
    unbound = stackless.tasklet()
    assert unbound.__reduce__() == (stackless.tasklet, (), (0, None, 0, [], None, None, None, None))
    bound = stackless.tasklet(noop)
    assert bound.__reduce__()[2][:4] == (0, None, 0, [(noop, None, None)])
    task = stackless.tasklet(noop).bind(noop, (1, 2), {"k": 3})
    task.set_atomic(True)
    task.block_trap = True
    flags, tempval, nesting, frames = task.__reduce__()[2][:4]
    assert (flags, tempval, nesting, len(frames)) == (4 | 32, None, 0, 1)
    func, args, kwargs = frames[0]
    assert (func.func, func.args, func.keywords, args, kwargs) == (noop, (), {"k": 3}, (1, 2), None)
    scheduled = stackless.tasklet(noop)(5)
    assert scheduled.__reduce__()[2][3] == [(noop, (5,), None)]
    scheduled.kill()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickled_tasklet_that_never_ran_comes_back_paused_and_runs(protocol):
    task = stackless.tasklet(record_call)("pickled", k=1)
    task.set_ignore_nesting(True)
    copy_ = pickle.loads(pickle.dumps(task, protocol))
    task.kill()
    assert copy_ is not task and copy_.paused and copy_.ignore_nesting and not copy_.atomic
    copy_.insert()
    stackless.run()
    assert CALLS.pop() == (("pickled",), {"k": 1})
    unbound = pickle.loads(pickle.dumps(stackless.tasklet(), protocol))
    assert not unbound.alive


def test_pickling_a_started_tasklet_raises_a_type_error_naming_greenlet():
    for paused in (stackless.tasklet(stackless.schedule_remove),
                   NamedTasklet(stackless.schedule_remove, "n")):
        paused().run()
        with pytest.raises(TypeError, match="greenlet"):
            pickle.dumps(paused)
        paused.kill()
    with pytest.raises(RuntimeError, match="^You cannot __reduce__ the tasklet which is current.$"):
        stackless.getcurrent().__reduce__()


def test_restoring_state_into_a_live_tasklet_is_refused():
    state = stackless.tasklet(noop).__reduce__()[2]
    live = stackless.tasklet(noop)()
    with pytest.raises(RuntimeError, match="alive"):
        live.__setstate__(state)
    live.kill()


def test_copying_a_tasklet_that_never_ran_gives_another_one_bound_alike():
    original = stackless.tasklet(record_call)
    twin = copy.copy(original)
    assert twin is not original and not twin.alive
    twin("copied")
    stackless.run()
    assert CALLS.pop() == (("copied",), {})


# -- errors leave the scheduler usable ----------------------------------------


def test_errors_have_stackless_types_and_leave_the_scheduler_usable():
    ch = stackless.channel()
    blocked = stackless.tasklet(ch.receive)()
    stackless.run()
    dead = started(noop)
    failures = [
        (RuntimeError, blocked.insert), (RuntimeError, blocked.remove),
        (RuntimeError, blocked.run), (RuntimeError, blocked.switch),
        (RuntimeError, dead.insert), (RuntimeError, dead.run),
        (RuntimeError, lambda: dead.throw(ValueError)),
        (RuntimeError, stackless.getmain().remove),
        (RuntimeError, lambda: stackless.tasklet()()),
        (TypeError, lambda: stackless.tasklet(1)),
        (TypeError, lambda: blocked.throw(1)),
        (TypeError, lambda: blocked.raise_exception(1)),
        (TypeError, lambda: blocked.set_atomic("x")),
    ]
    for error, action in failures:
        with pytest.raises(error):
            action()
    assert stackless.getcurrent() is stackless.getmain()
    assert stackless.getruncount() == 1
    assert blocked.blocked and ch.balance == -1
    events = []
    stackless.tasklet(record(events, "after"))()
    stackless.run()
    ch.send("wake")
    assert events == [("after", (), {})]
    assert not blocked.alive


def test_repr_names_the_state_for_every_state():
    ch = stackless.channel()
    blocked = stackless.tasklet(ch.receive)()
    stackless.run()
    reprs = {
        "main": repr(stackless.getmain()),
        "scheduled": repr(stackless.tasklet(noop)()),
        "blocked": repr(blocked),
        "paused": repr(stackless.tasklet(noop, ())),
        "dead": repr(stackless.tasklet()),
    }
    for state, text in reprs.items():
        assert state in text
    stackless.run()
    ch.send(None)


def test_a_blocked_tasklet_is_refused_before_the_switch_trap_is_checked():
    channel = stackless.channel()
    blocked = stackless.tasklet(channel.receive)()
    blocked.run()
    old = stackless.switch_trap(1)
    try:
        for attempt in (blocked.switch, blocked.run):
            with pytest.raises(RuntimeError, match="^You cannot run a blocked tasklet$"):
                attempt()
    finally:
        stackless.switch_trap(-1)
    assert old == 0 and blocked.blocked
    channel.send(None)
    stackless.run()


def test_what_greenlet_cannot_do_is_refused_with_greenlet_named():
    errors = []

    def rebind_main():
        try:
            stackless.getmain().bind(noop)
        except RuntimeError as exc:
            errors.append(str(exc))

    stackless.tasklet(rebind_main)().switch()  # main is paused meanwhile, as in c3b
    assert len(errors) == 1 and "greenlet" in errors[0]
    paused = stackless.tasklet(stackless.schedule_remove)()
    paused.run()
    with pytest.raises(RuntimeError, match="greenlet"):
        paused.bind(noop, ())
    with pytest.raises(TypeError, match="greenlet"):
        pickle.dumps(paused)
    paused.kill()
