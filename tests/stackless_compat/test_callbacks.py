"""The process-wide error handler (``set_error_handler``), as Stackless C calls it."""

import pytest

import stackless_compat as stackless


@pytest.fixture
def handler():
    calls = []

    def record(type_, value, tb):
        calls.append((type_, str(value), stackless.getcurrent(), tb is not None))
    old = stackless.set_error_handler(record)
    yield calls
    assert stackless.set_error_handler(old) is record


def test_set_error_handler_returns_the_previous_one():
    first = lambda *exc_info: None  # noqa: E731
    assert stackless.set_error_handler(first) is None
    assert stackless.set_error_handler(None) is first
    with pytest.raises(TypeError):
        stackless.set_error_handler(42)


def test_a_tasklet_that_raises_calls_the_handler_while_it_is_current_and_run_goes_on(handler):
    after = []

    def fails():
        1 / 0

    task = stackless.tasklet(fails)()
    stackless.tasklet(after.append)("after")
    assert stackless.run() is None
    assert handler == [(ZeroDivisionError, "division by zero", task, True)]
    assert after == ["after"] and not task.alive


def test_an_exception_thrown_in_before_the_start_goes_to_the_handler_too(handler):
    ran = []
    task = stackless.tasklet(ran.append)("ran")
    assert task.throw(ValueError, "early") is None
    assert handler == [(ValueError, "early", task, True)]
    assert ran == [] and not task.alive


def test_an_exception_the_handler_raises_reaches_run():
    def handler(*exc_info):
        raise KeyError("from the handler")
    old = stackless.set_error_handler(handler)
    try:
        stackless.tasklet(lambda: 1 / 0)()
        with pytest.raises(KeyError, match="from the handler"):
            stackless.run()
    finally:
        stackless.set_error_handler(old)


def test_kills_never_reach_the_handler(handler):
    channel = stackless.channel()
    task = stackless.tasklet(channel.receive)()
    stackless.run()
    task.kill()
    assert handler == [] and not task.alive


# -- schedule and channel callbacks, in Stackless C's order (c9a, c9b, c9c) --------

def test_the_channel_callback_sees_the_value_being_sent_in_the_senders_tempval():
    seen = []
    stackless.set_channel_callback(
        lambda channel, task, sending, willblock: seen.append((sending, willblock, task.tempval)))
    try:
        channel = stackless.channel()
        stackless.tasklet(channel.receive)()
        channel.send(42)
    finally:
        stackless.set_channel_callback(None)
    assert seen == [(1, 1, 42), (0, 0, None)]


def test_the_schedule_callback_runs_before_the_switch_with_prev_still_current():
    seen = []

    def callback(prev, next):
        seen.append((prev, next, stackless.getcurrent()))

    task = stackless.tasklet(stackless.schedule)()
    main = stackless.getmain()
    stackless.set_schedule_callback(callback)
    try:
        task.run()
    finally:
        stackless.set_schedule_callback(None)
    stackless.run()
    assert seen[0] == (main, task, main)
    assert seen[1] == (task, main, task)


def test_an_exception_in_the_schedule_callback_is_unraisable_and_run_goes_on():
    import sys
    reports = []

    def callback(prev, next):
        if next.is_main:
            raise RuntimeError("boom")

    ran = []
    stackless.tasklet(ran.append)("ran")
    old, sys.unraisablehook = sys.unraisablehook, reports.append
    stackless.set_schedule_callback(callback)
    try:
        assert stackless.run() is None
    finally:
        stackless.set_schedule_callback(None)
        sys.unraisablehook = old
    assert ran == ["ran"]
    assert [(r.exc_type, str(r.exc_value), r.object) for r in reports] == \
        [(RuntimeError, "boom", "Error in scheduling callback")]


def test_with_the_default_hook_a_schedule_callback_error_is_printed_as_cpython_does(capsys):
    import sys

    def callback(prev, next):
        if next.is_main:
            raise RuntimeError("boom")

    stackless.tasklet(lambda: None)()
    old, sys.unraisablehook = sys.unraisablehook, sys.__unraisablehook__  # pytest has its own
    stackless.set_schedule_callback(callback)
    try:
        stackless.run()
    finally:
        stackless.set_schedule_callback(None)
        sys.unraisablehook = old
    err = capsys.readouterr().err
    assert err.startswith("Exception ignored in: 'Error in scheduling callback'\n"
                          "Traceback (most recent call last):\n")
    assert err.endswith("RuntimeError: boom\n")
