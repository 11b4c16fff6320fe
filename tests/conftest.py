"""Shared fixtures: every test must leave the scheduler as it found it."""

import pytest

import stackless_compat as stackless
from stackless_compat._state import current_scheduler


@pytest.fixture(autouse=True)
def clean_scheduler():
    """After each test only main is alive and runnable, and no hook is left.

    A test that leaves tasklets behind fails; they are killed first so the
    next test starts clean.
    """
    stackless.set_channel_callback(None)
    stackless.set_schedule_callback(None)
    yield
    sched = current_scheduler()
    leftovers = []
    task = sched.main._next
    while task is not sched.main:
        leftovers.append(task)
        task = task._next
    stackless.set_channel_callback(None)
    stackless.set_schedule_callback(None)
    for task in leftovers:
        task.kill()
    assert sched.current is sched.main, "the test did not return to the main tasklet"
    assert not leftovers, "tasklets left runnable: %r" % leftovers
    assert sched.runcount == 1
    assert sched.switch_trap == 0
    assert not sched.watchdogs
