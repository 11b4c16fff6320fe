"""tasklet.trace_function / profile_function (debugging.rst): per tasklet, as in Stackless."""

import cProfile
import os
import pstats
import re
import subprocess
import sys
import threading
import time

import pytest

import stackless_compat as stackless
from stackless_compat import _core

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_current_tasklets_trace_function_is_sys_gettrace():
    def tracer(frame, event, arg):
        return None
    main = stackless.getmain()
    main.trace_function = tracer
    try:
        assert sys.gettrace() is tracer
        assert main.trace_function is tracer
    finally:
        main.trace_function = None
    assert sys.gettrace() is None


def _suspended(work, gate):
    """A tasklet that waits on ``gate`` and then calls ``work``."""
    def body():
        gate.receive()
        work()
    task = stackless.tasklet(body)()
    stackless.run()
    assert task.blocked
    return task


def test_a_trace_function_set_on_one_tasklet_traces_only_that_tasklet():
    seen = []

    def tracer(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)
        return None

    def traced_work():
        pass

    def untraced_work():
        pass

    gate = stackless.channel()
    gate.preference = 1  # main's sends do not switch: both wake up in run()
    traced = _suspended(traced_work, gate)
    _suspended(untraced_work, gate)
    traced.trace_function = tracer
    assert traced.trace_function is tracer
    assert sys.gettrace() is None
    gate.send(None)
    gate.send(None)
    stackless.run()
    assert "traced_work" in seen
    assert "untraced_work" not in seen
    assert sys.gettrace() is None  # main's own trace function is untouched


def test_profile_functions_are_kept_per_tasklet_too():
    calls = []

    def profiler(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def leaf():
        pass

    gate = stackless.channel()
    task = _suspended(leaf, gate)
    task.profile_function = profiler
    assert task.profile_function is profiler
    gate.send(None)
    assert "leaf" in calls
    assert sys.getprofile() is None


def test_a_tasklet_that_is_not_alive_refuses_a_function_and_an_ended_one_reads_none():
    def tracer(frame, event, arg):
        return None

    for kind in ("trace_function", "profile_function"):
        with pytest.raises(RuntimeError, match="^tasklet is not alive$"):
            setattr(stackless.tasklet(), kind, tracer)
    task = stackless.tasklet(stackless.schedule)()
    task.trace_function = tracer
    task.profile_function = tracer
    stackless.run()
    assert not task.alive
    assert task.trace_function is None and task.profile_function is None


def _profiler(frame, event, arg):
    pass


def _tracer(frame, event, arg):
    return None


def _functions():
    return (sys.gettrace(), sys.getprofile())


def test_a_new_tasklet_starts_with_neither_function_whatever_its_creator_has():
    seen = []
    sys.setprofile(_profiler)
    sys.settrace(_tracer)
    try:
        stackless.tasklet(lambda: seen.append(_functions()))().run()  # started by a switch
        # the second starts on the first one's greenlet, with no switch at all
        stackless.tasklet(lambda: seen.append(_functions()))()
        stackless.tasklet(lambda: seen.append(_functions()))()
        stackless.run()
        assert _functions() == (_tracer, _profiler)  # main's stay main's
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    assert seen == [(None, None)] * 3


def test_while_the_thread_swaps_a_tasklets_own_setprofile_stays_with_it():
    seen = []

    def task():
        sys.setprofile(_profiler)
        stackless.schedule()
        seen.append(sys.getprofile())

    traced = stackless.tasklet(stackless.schedule_remove)()
    traced.trace_function = _tracer  # the thread swaps while this one holds a function
    traced.run()
    t = stackless.tasklet(task)()
    t.run()
    assert sys.getprofile() is None  # the tasklet's profile function is not main's
    assert t.profile_function is _profiler
    t.run()
    assert seen == [_profiler]
    traced.kill()


def test_a_thread_stops_swapping_once_no_tasklet_has_a_function():
    sched = stackless.getcurrent()._sched
    task = stackless.tasklet(stackless.schedule)()
    task.trace_function = _tracer
    assert sched.switch_hooks  # swapping
    stackless.run()
    stackless.tasklet(lambda: None)().run()  # the next switch finds nobody tracing
    assert sched.switch_hooks == ()


def test_a_tasklet_subclass_without_hash_gets_a_trace_function():
    class Unhashable(stackless.tasklet):
        __slots__ = ()

        def __eq__(self, other):
            return self is other

    assert Unhashable.__hash__ is None
    events = []

    def tracer(frame, event, arg):
        events.append(event)

    task = Unhashable(stackless.schedule)()
    task.trace_function = tracer
    stackless.run()
    assert "call" in events


# -- profilers installed from C (cProfile): thread-wide, never swapped ----------

def _pass_values(count):
    """Two tasklets hand ``count`` values over a channel; returns the sum received."""
    channel, got = stackless.channel(), []

    def producer():
        for i in range(count):
            channel.send(i)

    def consumer():
        got.append(sum(channel.receive() for _ in range(count)))

    stackless.tasklet(producer)()
    stackless.tasklet(consumer)()
    stackless.run()
    return got[0]


# cProfile holds the thread state's profile slot up to 3.11; 3.12's uses
# sys.monitoring, which per-tasklet swapping never touches
CPROFILE_IN_THREAD_STATE = sys.version_info < (3, 12)


def _profiled_names(profiler):
    return {name for (_, _, name) in pstats.Stats(profiler).stats}


def test_cprofile_stays_enabled_and_sees_the_functions_tasklets_run():
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        assert _pass_values(50) == sum(range(50))
        if CPROFILE_IN_THREAD_STATE:
            assert sys.getprofile() is profiler  # never swapped out nor cleared
    finally:
        profiler.disable()
    assert {"producer", "consumer", "_pass_values"} <= _profiled_names(profiler)


def test_cprofile_stays_thread_wide_while_the_thread_swaps_a_tasklets_trace_function():
    seen = []

    def tracer(frame, event, arg):
        if event == "call":
            seen.append(frame.f_code.co_name)

    def traced():
        stackless.schedule()
        traced_work()

    def traced_work():
        pass

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        task = stackless.tasklet(traced)()
        task.run()
        task.trace_function = tracer  # the thread swaps trace functions from now on
        assert _pass_values(10) == sum(range(10))
        stackless.run()
        assert sys.gettrace() is None
        if CPROFILE_IN_THREAD_STATE:
            assert sys.getprofile() is profiler
    finally:
        profiler.disable()
    assert "traced_work" in seen and "producer" not in seen  # the tracer is the tasklet's
    assert {"producer", "consumer", "traced_work"} <= _profiled_names(profiler)


@pytest.mark.skipif(not CPROFILE_IN_THREAD_STATE, reason="3.12+ cProfile uses sys.monitoring:"
                    " it holds no thread's profile slot")
def test_a_tasklets_own_profile_function_waits_while_cprofile_holds_the_thread():
    calls = []

    def own(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def leaf():
        pass

    def work():
        stackless.schedule()
        leaf()

    task = stackless.tasklet(work)()
    task.run()
    task.profile_function = own
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        stackless.run()
    finally:
        profiler.disable()
    assert "leaf" not in calls  # cProfile had the thread: the tasklet's function waited
    assert "leaf" in _profiled_names(profiler)


_CPROFILED_PROGRAM = """
import stackless_compat as stackless

def echo(channel):
    for _ in range(100):
        channel.send(channel.receive() + 1)

def client(channel, results):
    for i in range(100):
        channel.send(i)
        results.append(channel.receive())

channel, results = stackless.channel(), []
stackless.tasklet(echo)(channel)
stackless.tasklet(client)(channel, results)
stackless.run()
print("results", sum(results))
"""


def test_python_m_cprofile_runs_a_program_of_tasklets_and_profiles_them(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text(_CPROFILED_PROGRAM)
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, "-m", "cProfile", "-s", "ncalls", str(program)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "results %d" % sum(range(1, 101)) in done.stdout
    # cProfile lists a function once it returned: both tasklets ran to their end under it
    assert "prog.py:4(echo)" in done.stdout and "prog.py:8(client)" in done.stdout



# -- bind_thread: a traced tasklet that never ran takes its functions along -------

def _call_names(log):
    def tracer(frame, event, arg):  # the package's own frames aside (see compatibility.md)
        if event == "call" and frame.f_code.co_filename == __file__:
            log.append(frame.f_code.co_name)
    return tracer


def _traced_work():
    pass


def test_a_never_started_tasklet_moved_here_keeps_its_trace_function_and_the_old_thread_stops_swapping():
    seen, box = [], {}

    def other():
        task = stackless.tasklet(_traced_work)
        task.bind(_traced_work, ())  # alive, paused, never run
        task.trace_function = _call_names(seen)
        box["task"], box["sched"] = task, task._sched
        box["moved"].wait(10)
        stackless.tasklet(lambda: None)().run()  # a switch there, after the move
        box["hooks"] = task._sched.switch_hooks, box["sched"].switch_hooks

    box["moved"] = threading.Event()
    thread = threading.Thread(target=other)
    thread.start()
    while "task" not in box:
        time.sleep(0.001)
    task = box["task"]
    task.bind_thread()  # it moves here, with its trace function
    box["moved"].set()
    thread.join(10)
    assert task.trace_function is not None
    task.insert()
    stackless.run()
    assert seen == ["_traced_work"]
    assert box["hooks"][1] == ()  # the old thread stopped swapping: the tasklet is not its


def test_a_traced_tasklet_sent_to_another_thread_is_traced_there():
    seen, box = [], {}
    ready, moved = threading.Event(), threading.Event()

    def other():
        box["thread"] = threading.get_ident()
        stackless.getcurrent()  # this thread's scheduler
        ready.set()
        moved.wait(10)
        box["task"].insert()
        stackless.run()

    thread = threading.Thread(target=other)
    thread.start()
    ready.wait(10)
    task = box["task"] = stackless.tasklet(_traced_work)
    task.bind(_traced_work, ())
    task.trace_function = _call_names(seen)
    task.bind_thread(box["thread"])  # its functions go along, swapping starts there
    moved.set()
    thread.join(10)
    assert seen == ["_traced_work"]
    stackless.tasklet(lambda: None)().run()
    assert stackless.getcurrent()._sched.switch_hooks == ()  # and stops here


def test_a_thread_waiting_for_work_that_is_sent_a_traced_tasklet_waits_on():
    seen, box = [], {}
    ready = threading.Event()
    channel = stackless.channel()

    def other():
        box["thread"] = threading.get_ident()
        ready.set()
        task = channel.receive()  # waits for this thread: only another one can wake it
        task.insert()
        stackless.run()

    thread = threading.Thread(target=other)
    thread.start()
    ready.wait(10)
    while not channel.balance:
        time.sleep(0.001)
    task = stackless.tasklet(_traced_work)
    task.bind(_traced_work, ())
    task.trace_function = _call_names(seen)
    task.bind_thread(box["thread"])  # wakes the waiting thread, which has nothing to run yet
    time.sleep(0.05)
    assert thread.is_alive() and channel.balance == -1
    channel.send(task)
    thread.join(10)
    assert seen == ["_traced_work"]


@pytest.mark.skipif(_core.tracing_moved is None, reason="the pure-Python core does not look at"
                    " each switch (compatibility.md, trace_function)")
def test_sys_setprofile_inside_a_tasklet_stays_with_it_while_nobody_else_traces():
    seen = []

    def task():
        sys.setprofile(_profiler)
        stackless.schedule()
        seen.append(sys.getprofile())
        sys.setprofile(None)

    sched = stackless.getcurrent()._sched
    stackless.tasklet(lambda: None)().run()  # a switch: a thread nobody traces stops swapping
    assert sched.switch_hooks == ()  # so it swaps nothing before the call (c6b)
    t = stackless.tasklet(task)()
    t.run()
    assert sys.getprofile() is None  # main's own: none
    assert t.profile_function is _profiler
    t.run()
    assert seen == [_profiler]
    stackless.tasklet(lambda: None)().run()
    assert sched.switch_hooks == ()  # and stops swapping once nobody holds one


def _blocked_on(channel):
    channel.receive()


def _ended(channel):
    pass


def _scheduled(channel):
    stackless.schedule()


@pytest.mark.skipif(_core.tracing_moved is None, reason="the pure-Python core does not look at"
                    " each switch (compatibility.md, trace_function)")
@pytest.mark.parametrize("kind", ["trace", "profile"])
@pytest.mark.parametrize("leave", [_scheduled, _blocked_on, _ended])
def test_a_function_a_tasklet_sets_never_reaches_the_next_tasklet(kind, leave):
    # c6b: each way out of a tasklet that set a function (schedule(), the C
    # channel hand-over, ending) is a switch that must see it
    getter, setter = {"trace": (sys.gettrace, sys.settrace),
                      "profile": (sys.getprofile, sys.setprofile)}[kind]
    function = _tracer if kind == "trace" else _profiler
    channel = stackless.channel()
    seen = []

    def setter_task():
        setter(function)
        waiting.insert()
        leave(channel)
        if leave is not _ended:
            seen.append(getter())  # back in the tasklet that set it
            setter(None)

    def waiting_task():
        stackless.schedule_remove()  # paused, so it resumes (not a first run)
        seen.append(getter())
        if channel.balance < 0:
            channel.send(None)

    sched = stackless.getcurrent()._sched
    waiting = stackless.tasklet(waiting_task)()
    waiting.run()
    assert sched.switch_hooks == ()  # nobody traces: the thread swaps nothing
    stackless.tasklet(setter_task)()
    stackless.run()
    assert getter() is None
    assert seen == [None] + ([] if leave is _ended else [function])
    stackless.tasklet(lambda: None)().run()
    assert sched.switch_hooks == ()  # swapping stops once nobody holds one


_COVERED_PROGRAM = """\
import stackless_compat as stackless

def work(channel):
    doubled = channel.receive() * 2
    channel.send(doubled)

channel = stackless.channel()
stackless.tasklet(work)(channel)
stackless.run()
channel.send(21)
print(channel.receive())
"""


@pytest.mark.skipif(_core.from_c is None, reason="the pure-Python core cannot tell coverage's"
                    " C tracer from a Python function: it is swapped per tasklet there")
def test_coverage_measures_the_code_tasklets_run(tmp_path):
    # a tracer installed from C (coverage's CTracer is callable, unlike
    # cProfile's profiler) stays thread-wide: every tasklet's lines count
    pytest.importorskip("coverage")
    program = tmp_path / "prog.py"
    program.write_text(_COVERED_PROGRAM)
    env = dict(os.environ, PYTHONPATH=ROOT, COVERAGE_FILE=str(tmp_path / "data"))
    run = subprocess.run([sys.executable, "-m", "coverage", "run", "--concurrency=greenlet",
                          str(program)], capture_output=True, text=True, timeout=60, env=env,
                         cwd=tmp_path)
    assert run.returncode == 0 and run.stdout == "42\n", run.stderr
    report = subprocess.run([sys.executable, "-m", "coverage", "report", "-m",
                             "--include=prog.py"],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert re.search(r"prog\.py\s+9\s+0\s+100%", report.stdout), report.stdout


@pytest.mark.skipif(_core.from_c is None, reason="the C core's check")
def test_from_c_tells_a_c_installed_profiler_from_a_python_function():
    assert not _core.from_c(1)
    sys.setprofile(_profiler)
    try:
        assert not _core.from_c(1)  # sys.setprofile's own
    finally:
        sys.setprofile(None)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        assert _core.from_c(1)
    finally:
        profiler.disable()
    assert not _core.from_c(0) and not _core.from_c(1)
