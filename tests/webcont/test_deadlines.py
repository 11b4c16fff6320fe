"""The hub's deadlines: one timer per length, cancellable, oldest first."""

import concurrent.futures
import threading

import pytest

import stackless_compat as stackless
from webcont import _clock
from webcont._deadlines import Deadlines
from webcont._hub import Hub, WaitTimedOut


class ManualTimers:
    """A hub's ``call_at`` whose timers run when the test says the time has come."""

    def __init__(self):
        self.timers = []

    def call_at(self, when, callback):
        self.timers.append((when, callback))

    def fire_until(self, now):
        while True:
            due = sorted((t for t in self.timers if t[0] <= now), key=lambda t: t[0])
            if not due:
                return
            self.timers.remove(due[0])
            due[0][1]()


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(_clock, "monotonic", lambda: now[0])
    return now


def test_deadlines_of_one_length_expire_oldest_first_with_one_timer(clock):
    timers, record = ManualTimers(), []
    deadlines = Deadlines(timers.call_at)
    deadlines.add(5.0, lambda: record.append("a"))
    clock[0] += 1
    deadlines.add(5.0, lambda: record.append("b"))
    deadlines.add(5.0, lambda: record.append("c"))
    assert len(timers.timers) == 1  # one hub timer for the three
    clock[0] += 4.5
    timers.fire_until(clock[0])
    assert record == ["a"] and len(deadlines) == 2
    clock[0] += 1
    timers.fire_until(clock[0])
    assert record == ["a", "b", "c"] and len(deadlines) == 0 and timers.timers == []


def test_a_cancelled_deadline_never_fires_and_others_of_its_length_still_do(clock):
    timers, record = ManualTimers(), []
    deadlines = Deadlines(timers.call_at)
    first = deadlines.add(2.0, lambda: record.append("first"))
    deadlines.add(2.0, lambda: record.append("second"))
    deadlines.cancel(first)
    deadlines.cancel(first)  # twice, or after it fired: nothing happens
    clock[0] += 3
    timers.fire_until(clock[0])
    assert record == ["second"]


def test_deadlines_of_different_lengths_each_fire_on_time(clock):
    timers, record = ManualTimers(), []
    deadlines = Deadlines(timers.call_at)
    deadlines.add(30.0, lambda: record.append("long"))
    deadlines.add(5.0, lambda: record.append("short"))
    clock[0] += 6
    timers.fire_until(clock[0])
    assert record == ["short"]
    clock[0] += 30
    timers.fire_until(clock[0])
    assert record == ["short", "long"]


def test_a_raising_callback_does_not_stop_the_others(clock):
    timers, record = ManualTimers(), []
    deadlines = Deadlines(timers.call_at)
    deadlines.add(1.0, lambda: 1 / 0)
    deadlines.add(1.0, lambda: record.append("after"))
    clock[0] += 2
    timers.fire_until(clock[0])
    assert record == ["after"]
    deadlines.add(1.0, lambda: record.append("again"))  # the queue re-arms
    clock[0] += 2
    timers.fire_until(clock[0])
    assert record == ["after", "again"]


def _on_a_hub(body):
    """Run ``body(hub)`` in a tasklet of a hub bound to a fresh thread; its outcome."""
    outcome = {}

    def thread():
        hub = Hub()
        hub._bind()
        hub.post = lambda callback: None  # nothing comes from other threads here

        def task():
            try:
                outcome["result"] = body(hub)
            except BaseException as exc:
                outcome["error"] = exc
        stackless.tasklet(task)()
        hub.drain()
        while not outcome and hub.next_timer() is not None:
            threading.Event().wait(max(0.0, hub.next_timer() - _clock.monotonic()))
            hub.fire_due_timers()
        hub.unbind()
    runner = threading.Thread(target=thread)
    runner.start()
    runner.join(10)
    return outcome


def test_hub_wait_with_a_timeout_raises_wait_timed_out_and_leaves_no_deadline():
    def body(hub):
        started = _clock.monotonic()
        try:
            hub.wait(concurrent.futures.Future(), 0.05)
        except WaitTimedOut:
            return _clock.monotonic() - started, len(hub.deadlines)
    elapsed, left = _on_a_hub(body)["result"]
    assert 0.04 <= elapsed < 2.0 and left == 0


def test_hub_wait_answered_in_time_cancels_its_deadline():
    def body(hub):
        future = concurrent.futures.Future()
        hub.call_at(_clock.monotonic() + 0.02, lambda: future.set_result("answer"))
        return hub.wait(future, 30.0), len(hub.deadlines)
    assert _on_a_hub(body)["result"] == ("answer", 0)
