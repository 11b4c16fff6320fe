"""Threads: one scheduler per thread, channels across threads, thread waits.

Defined by Stackless' Doc/library/stackless/threads.rst.  These tests use real
threads; every thread they start is joined.
"""

import threading
import time

import pytest

import stackless_compat as stackless
from stackless_compat import _greenlets, _threads


def start(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def test_every_thread_has_its_own_main_tasklet_and_run_queue():
    seen = {}

    def other():
        seen["runcount"] = stackless.runcount
        seen["main"] = stackless.getmain()
        seen["is_main"] = stackless.current.is_main
        seen["thread_id"] = stackless.current.thread_id

    stackless.tasklet(lambda: None)()  # our queue has two runnable tasklets
    start(other).join()
    assert seen["runcount"] == 1
    assert seen["main"] is not stackless.getmain()
    assert seen["is_main"] is True
    assert seen["thread_id"] != threading.get_ident()
    stackless.run()


def test_threads_lists_live_threads_main_first_and_get_thread_info_answers():
    ready, release = threading.Event(), threading.Event()
    info = {}

    def other():
        info["main"] = stackless.getmain()
        ready.set()
        release.wait(10)

    thread = start(other)
    ready.wait(10)
    try:
        assert stackless.threads[0] == threading.main_thread().ident
        assert thread.ident in stackless.threads
        main, current, runcount = stackless.get_thread_info(thread.ident)
        assert main is info["main"] and current is main and runcount == 1
        assert stackless.get_thread_info(threading.get_ident())[0] is stackless.getmain()
    finally:
        release.set()
        thread.join()
    with pytest.raises(RuntimeError):
        stackless.get_thread_info(1)  # no such thread
    with pytest.raises(TypeError):
        stackless.get_thread_info("x")


def test_a_tasklets_thread_id_becomes_minus_one_when_its_thread_ends():
    made = []
    start(lambda: made.append(stackless.tasklet(lambda: None))).join()
    deadline = time.monotonic() + 5
    while made[0].thread_id != -1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert made[0].thread_id == -1


def test_the_documented_master_and_slave_example_runs_across_threads():
    command_channel = stackless.channel()
    output = []

    def master():
        for command in ("ECHO 1", "ECHO 2", "ECHO 3", "QUIT"):
            command_channel.send(command)

    def slave():
        output.append("SLAVE STARTING")
        while True:
            command = command_channel.receive()
            output.append("SLAVE: " + command)
            if command == "QUIT":
                break
        output.append("SLAVE ENDING")

    def scheduler_run(function):
        task = stackless.tasklet(function)()
        while task.alive:
            stackless.run()

    thread = start(scheduler_run, master)
    scheduler_run(slave)
    thread.join(10)
    assert output == ["SLAVE STARTING", "SLAVE: ECHO 1", "SLAVE: ECHO 2", "SLAVE: ECHO 3",
                      "SLAVE: QUIT", "SLAVE ENDING"]


def test_main_blocking_on_a_channel_waits_for_another_thread_instead_of_deadlock():
    channel = stackless.channel()

    def later():
        time.sleep(0.2)
        channel.send("from the other thread")

    thread = start(later)
    assert channel.receive() == "from the other thread"
    thread.join()


def test_a_woken_tasklet_runs_in_its_own_thread():
    channel = stackless.channel()
    where = []

    def receiver():
        where.append(("received", channel.receive(), threading.get_ident()))

    stackless.tasklet(receiver)()
    stackless.run()
    assert channel.balance == -1
    thread = start(channel.send, "x")
    thread.join(10)
    assert where == []  # made runnable here, not run there
    stackless.run()
    assert where == [("received", "x", threading.get_ident())]


def test_thousands_of_messages_between_threads_arrive_once_and_in_order():
    channel = stackless.channel()
    producers, per_producer = 4, 2000

    def produce(number):
        for index in range(per_producer):
            channel.send((number, index))

    threads = [start(produce, number) for number in range(producers)]
    received = [channel.receive() for _ in range(producers * per_producer)]
    for thread in threads:
        thread.join(10)
    assert len(set(received)) == producers * per_producer
    for number in range(producers):
        assert [i for n, i in received if n == number] == list(range(per_producer))


def test_tasklets_of_two_threads_exchange_values_both_ways_under_load():
    ping, pong = stackless.channel(), stackless.channel()
    rounds = 3000

    def echo():
        def body():
            for _ in range(rounds):
                pong.send(ping.receive() + 1)
        task = stackless.tasklet(body)()
        while task.alive:
            stackless.run(threadblock=True)  # wait for the other thread, don't spin

    thread = start(echo)
    results = []
    for value in range(rounds):
        ping.send(value)
        results.append(pong.receive())
    thread.join(10)
    assert results == [value + 1 for value in range(rounds)]


def test_blocking_with_every_other_thread_waiting_too_is_a_deadlock_not_a_hang():
    channel, other_channel = stackless.channel(), stackless.channel()
    received = []

    def other():
        received.append(other_channel.receive())  # waits: main might still send

    thread = start(other)
    while other_channel.balance == 0:
        time.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="Deadlock"):
        channel.receive()  # the only other thread waits in stackless too
    assert time.monotonic() - started < 5
    assert channel.balance == 0  # the failed receive left nothing behind
    other_channel.send("released")
    thread.join(10)
    assert received == ["released"]


def test_run_with_threadblock_waits_for_work_from_another_thread():
    channel = stackless.channel()
    got = []

    def receiver():
        got.append(channel.receive())

    stackless.tasklet(receiver)()
    stackless.run()  # receiver blocks; plain run() returns
    thread = start(lambda: (time.sleep(0.2), channel.send("late")))
    stackless.run(threadblock=True)
    thread.join()
    assert got == ["late"]


def test_kill_and_insert_from_another_thread_take_effect_in_the_owner_thread():
    channel = stackless.channel()
    events = []

    def blocked():
        try:
            channel.receive()
        finally:
            events.append(("finally", threading.get_ident()))

    task = stackless.tasklet(blocked)()
    stackless.run()
    start(task.kill).join(10)
    assert task.alive and not task.blocked  # made runnable here, with the kill pending
    stackless.run()
    assert events == [("finally", threading.get_ident())] and not task.alive

    paused = stackless.tasklet(lambda: events.append("ran"))
    paused.bind(paused.tempval, ())
    start(paused.insert).join(10)
    stackless.run()
    assert events[-1] == "ran"


def _tasklets_of_a_waiting_thread(count):
    """``count`` never-run tasklets of another thread, which then waits (outside
    stackless) until ``release`` is set and runs them: (tasklets, release,
    thread, names of the tasklets it ran)."""
    made, release, ran = [], threading.Event(), []

    def other():
        made.extend(stackless.tasklet(ran.append)(i) for i in range(count))
        release.wait(10)
        stackless.run()

    thread = start(other)
    while len(made) < count:
        time.sleep(0.01)
    return made, release, thread, ran


def test_switching_to_another_threads_tasklet_is_refused():
    made, release, thread, _ = _tasklets_of_a_waiting_thread(1)
    try:
        with pytest.raises(RuntimeError, match="^can't switch to a different thread.$"):
            made[0].switch()
    finally:
        release.set()
        thread.join(10)


needs_remote = pytest.mark.skipif(_threads._remote is None,
                                  reason="needs the C helper _remote (not on the pure core)")


@needs_remote
def test_remove_and_insert_of_another_threads_tasklet_change_only_its_run_queue():
    (first, second, third), release, thread, ran = _tasklets_of_a_waiting_thread(3)
    other = first._sched
    mine = stackless.getruncount()
    try:
        assert second.remove() is second
        assert (second.scheduled, second.paused, other.runcount) == (False, True, 3)
        assert (first.next, third.prev) == (third, first)  # its ring closed over the gap
        assert second.insert() is second
        assert (second.scheduled, other.runcount, third.next, second.prev) == \
            (True, 4, second, third)
        assert stackless.getruncount() == mine  # this thread's queue never changed
        second.remove()
        second.bind_thread()  # paused and never run: it moves here (c1a)
        assert second.thread_id == threading.get_ident() and second.paused
    finally:
        release.set()
        thread.join(10)
    assert ran == [0, 2]  # that thread ran the rest in order
    second.run()
    assert ran == [0, 2, 1]


@needs_remote
def test_remote_changes_wait_while_the_owner_is_inside_stackless():
    channel, entered, done = stackless.channel(), threading.Event(), threading.Event()

    def other():
        entered.set()
        channel.receive()  # its main waits in stackless for this thread
        done.set()

    thread = start(other)
    entered.wait(10)
    time.sleep(0.05)
    args = (_threads._PACKAGE_DIR, _greenlets.body.__code__, (), ())
    assert _threads._remote.apply_when_outside(thread.ident, *args) is False
    channel.send(None)
    done.wait(10)
    waiting = threading.Event()
    plain = start(waiting.wait, 10)  # a thread outside the package
    time.sleep(0.05)
    assert _threads._remote.apply_when_outside(plain.ident, *args) is True
    holder = stackless.tasklet()
    assert _threads._remote.apply_when_outside(
        plain.ident, args[0], args[1], ((holder, "_next", holder),), ((holder, "_tempval", 1),)) \
        is False  # a check that fails changes nothing
    assert holder.tempval is None
    waiting.set()
    thread.join(10)
    plain.join(10)


@pytest.mark.skipif(_threads._remote is not None, reason="the C helper is built here")
def test_without_the_c_helper_remove_of_another_threads_tasklet_says_why():
    made, release, thread, ran = _tasklets_of_a_waiting_thread(1)
    try:
        with pytest.raises(RuntimeError, match="only with the C core"):
            made[0].remove()
        made[0].insert()  # already there: nothing to do
    finally:
        release.set()
        thread.join(10)
    assert ran == [0]


def test_bind_thread_moves_a_tasklet_that_has_not_started():
    ready, go = threading.Event(), threading.Event()
    ran_in = []
    holder = {}

    def other():
        holder["thread"] = threading.get_ident()
        stackless.getcurrent()
        ready.set()
        go.wait(10)
        stackless.run()

    thread = start(other)
    ready.wait(10)
    task = stackless.tasklet(lambda: ran_in.append(threading.get_ident()))
    task.bind(task.tempval, ())
    task.bind_thread(holder["thread"])
    assert task.thread_id == holder["thread"]
    task.insert()
    go.set()
    thread.join(10)
    assert ran_in == [holder["thread"]]
    with pytest.raises(ValueError):
        stackless.tasklet(lambda: None).bind_thread(1)


def _made_in_a_thread_that_ends(make):
    box = []
    thread = threading.Thread(target=lambda: box.append(make()))
    thread.start()
    thread.join(10)
    return box[0]


def test_tasklets_of_a_thread_that_ended_are_not_alive_and_refuse_to_run():
    task = _made_in_a_thread_that_ends(lambda: stackless.tasklet(lambda: None)())
    assert (task.alive, task.scheduled, task.thread_id) == (False, False, -1)
    for attempt, message in ((task.run, "tasklet has no thread"),
                             (task.insert, "Target thread isn't initialized"),
                             (lambda: task.throw(ValueError), "tasklet has no thread"),
                             (lambda: task.raise_exception(ValueError), "tasklet has no thread"),
                             (lambda: task.bind(len, ()), "tasklet has no thread"),
                             (lambda: task.setup(), "tasklet has no thread")):
        with pytest.raises(RuntimeError, match="^%s$" % message):
            attempt()
    assert task.remove() is task and task.paused is False
    assert task.__reduce__()[2][3] == [(task._start, (), None)]  # it reduces, as in c1b
    task.bind(None)
    task.bind_thread()
    assert task.thread_id == threading.get_ident()
    ran = []
    task.bind(ran.append)
    task("here").run()
    assert ran == ["here"]


def test_a_never_started_tasklet_of_an_ended_thread_can_be_unbound_and_moved_here():
    task = _made_in_a_thread_that_ends(lambda: stackless.tasklet(lambda: None)())
    task.bind(None)  # it leaves the ended thread's run queue
    task.bind_thread()
    assert task.thread_id == threading.get_ident() and not task.alive


def test_a_thread_that_ends_empties_its_run_queue_once():
    def make():
        first = stackless.tasklet(lambda: None)()
        return first, stackless.tasklet(lambda: None)()

    first, second = _made_in_a_thread_that_ends(make)
    # unlinked when the thread ended, not on each later call
    assert (first.next, first.prev, second.next, second.prev) == (None,) * 4
    dead = first._sched
    assert (dead.thread_alive, dead.current, dead.runcount) == (False, None, 0)


def test_kill_unblocks_a_blocked_tasklet_of_an_ended_thread_and_leaves_it_dead():
    channel = stackless.channel()

    def make():
        task = stackless.tasklet(channel.receive)()
        task.run()
        return task

    task = _made_in_a_thread_that_ends(make)
    assert (task.blocked, task.alive, task.thread_id) == (True, False, -1)
    with pytest.raises(RuntimeError, match="^tasklet has no thread$"):
        task.throw(stackless.TaskletExit, pending=True)
    task.kill(pending=True)
    assert (task.blocked, task.scheduled, task.alive) == (False, False, False)
    assert channel.balance == 0


def test_the_module_reduces_to_its_name():
    assert stackless.__reduce__() == "stackless"


def test_run_of_another_threads_tasklet_makes_it_the_next_one_that_thread_runs():
    ready, go, made, order = threading.Event(), threading.Event(), [], []

    def other():
        made.extend(stackless.tasklet(order.append)(i).remove() for i in range(3))
        ready.set()
        go.wait(10)
        stackless.run()

    thread = start(other)
    ready.wait(10)
    first, second, third = made
    with stackless.atomic():
        second.insert()
        third.insert()
        assert first.run() is None  # the caller goes on; it runs over there
    go.set()
    thread.join(10)
    assert order == [0, 1, 2]
