"""Model-based stateful tests: real channels and tasklets against a pure-Python model.

``ChannelMachine`` drives real ``stackless_compat`` tasklets ("actors") and
channels, and at the same time a small model (``Model``) of what Stackless C
does (``channelobject.c``/``scheduling.c``, and
Stackless' ``Doc/library/stackless/``): the run queue is a list whose first element
is the running tasklet, each channel holds a FIFO of blocked tasklets.

Every actor executes a *script*: a list of operations ("send", "sendx"
(``send_exception``), "recv" on channel k, "schedule").  Both the real actor
and the model record the same events into their own event lists::

    ("do",   tid, op)           about to perform op
    ("ok",   tid, op, result)   op returned result
    ("exc",  tid, op, value)    op raised Boom(value) (a send_exception arrived)
    ("err",  tid, op, name)     op raised ValueError / RuntimeError (deadlock)
    ("exit", tid)               TaskletExit (kill) arrived
    ("end",  tid)               the script ran out, the tasklet ends

Main (tid 0) records its own operations the same way.  After every rule the
event lists, the run queue, every channel's waiting queue and attributes and
every tasklet's state flags are compared, and some model-independent
invariants are checked on the real objects alone.

The model is plain data, so every operation of main is first simulated on a
copy.  If the simulation reaches a situation the test deliberately leaves
open (``Unpinned``: main blocked while nothing else can run, or the last
runnable tasklet blocking in ``send_exception`` while main is in run()),
the rule does nothing.

Killing a tasklet that was set up but never ran is modelled as Stackless C
does it (it is alive, so kill() switches to it like to any runnable
tasklet); the state machine only generates the cases where stackless_compat
agrees, and the two tests at the end of the file pin the others down.
"""

import copy

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant,
                                 precondition, rule, run_state_machine_as_test)

import stackless_compat as stackless

NCH = 2      # number of channels
MAIN = 0     # tid of the main tasklet


class Boom(Exception):
    """Sent with ``send_exception``; the receiver raises ``Boom(value)``."""


class Unpinned(Exception):
    """The model reached a situation this test deliberately does not pin down."""


class Deadlock(Unpinned):
    """Main is blocked and nothing else can run (how that is reported varies)."""


class BombRevivesMain(Unpinned):
    """The last runnable tasklet blocks in send_exception while main is in run().

    Stackless C (``schedule_task_block``, "emulate old revive_main
    behavior") hands the bomb to main as well, so run() raises it, while
    stackless_compat's run() just returns.  Which is wanted is left open.
    """


# -- the model ---------------------------------------------------------------


class MTasklet:
    """The model of one tasklet.

    state: "new" (scheduled, never ran), "ready" (in the run queue),
    "blocked" (in a channel), "dead".  ``resume`` is what happens when it is
    switched to next: ("start",), ("ok", value), ("exc", value), ("kill",).
    """

    def __init__(self, tid, script):
        self.tid = tid
        self.script = list(script)
        self.state = "new"
        self.resume = ("start",)
        self.op = None
        self.channel = None


class MChannel:
    def __init__(self):
        self.waiting = []     # FIFO of (tid, direction, payload)
        self.preference = -1
        self.schedule_all = False
        self.closing = False

    @property
    def balance(self):
        return sum(direction for _, direction, _ in self.waiting)


class Model:
    """Run queue + channels, as Stackless C defines them."""

    def __init__(self):
        main = MTasklet(MAIN, [])
        main.state, main.resume = "ready", None
        self.tasklets = {MAIN: main}
        self.queue = [MAIN]          # queue[0] is the running tasklet
        self.channels = [MChannel() for _ in range(NCH)]
        self.in_run = False          # main is paused inside stackless.run()
        self.events = []

    # -- ring helpers --

    def rotate(self):
        """The head yields: it moves to the end, the next one runs."""
        self.queue.append(self.queue.pop(0))

    def wake_watchdog(self):
        """The run queue became empty: main, paused in run(), is revived."""
        assert not self.queue
        if not self.in_run:
            raise Deadlock()
        self.in_run = False
        self.queue.append(MAIN)
        self.tasklets[MAIN].resume = ("ok", None)   # run() returns None

    def finish(self, t):
        assert self.queue[0] == t.tid
        self.queue.pop(0)
        t.state = "dead"
        if not self.queue:
            self.wake_watchdog()

    def drive(self):
        """Let the tasklets run until main is the head again."""
        while self.queue[0] != MAIN:
            self.run_actor(self.tasklets[self.queue[0]])

    def run_actor(self, t):
        """``t`` is the head: it runs until it switches away or ends."""
        how, t.resume = t.resume, None
        if how[0] == "kill":
            if t.state != "new":   # else TaskletExit hits before the function starts
                self.events.append(("exit", t.tid))
            self.finish(t)
            return
        if how[0] == "start":
            t.state = "ready"
        else:
            self.events.append((how[0], t.tid, t.op, how[1]))
        while t.script:
            op = t.op = t.script.pop(0)
            self.events.append(("do", t.tid, op))
            outcome = self.perform(t, op)
            if outcome is None:
                return          # switched away; ``t.resume`` says how it goes on
            self.events.append((outcome[0], t.tid, op, outcome[1]))
        self.events.append(("end", t.tid))
        self.finish(t)

    def perform(self, t, op):
        """The head ``t`` performs ``op``: returns its outcome, or None if it switched away."""
        assert self.queue[0] == t.tid
        kind = op[0]
        if kind == "schedule":
            if len(self.queue) == 1:
                return ("ok", "self")
            t.resume = ("ok", "self")
            self.rotate()
            return None
        ch = self.channels[op[1]]
        if kind == "recv":
            direction, payload = -1, None
        else:
            direction = 1
            payload = ("ok" if kind == "send" else "exc", op[2])
        partner_waits = ch.balance < 0 if direction > 0 else ch.balance > 0
        if partner_waits:
            ptid, _, ppayload = ch.waiting.pop(0)
            partner = self.tasklets[ptid]
            partner.state, partner.channel = "ready", None
            if direction > 0:
                partner.resume, mine = payload, ("ok", None)
            else:
                partner.resume, mine = ("ok", None), ppayload
            if ch.schedule_all:
                self.queue.append(ptid)
                t.resume = mine
                self.rotate()
                return None
            if ch.preference == -direction:
                self.queue.insert(1, ptid)
                t.resume = mine
                self.rotate()
                return None
            self.queue.append(ptid)
            return mine
        if ch.closing:
            return ("err", "ValueError")
        if t.tid == MAIN and len(self.queue) == 1:
            return ("err", "RuntimeError")
        # block
        self.queue.pop(0)
        t.state, t.channel = "blocked", op[1]
        ch.waiting.append((t.tid, direction, payload))
        if not self.queue:
            if self.in_run and kind == "sendx":
                raise BombRevivesMain()
            self.wake_watchdog()
        return None

    # -- what main does (main is the head when these are called) --

    def main_op(self, op):
        """Main performs ``op``; returns after everything ran that runs before main again."""
        assert self.queue[0] == MAIN and not self.in_run
        main = self.tasklets[MAIN]
        self.events.append(("do", MAIN, op))
        kind = op[0]
        if kind == "run":
            if len(self.queue) == 1:
                outcome = ("ok", None)
            else:
                self.queue.pop(0)
                self.in_run = True
                self.drive()
                outcome = main.resume
        elif kind == "kill":
            self.kill(op[1], op[2])
            outcome = ("ok", None)
        else:
            outcome = self.perform(main, op)
            if outcome is None:
                self.drive()
                outcome = main.resume
        main.resume = None
        assert main.state != "blocked" and self.queue[0] == MAIN
        self.events.append((outcome[0], MAIN, op, outcome[1]))

    def spawn(self, tid, script):
        self.tasklets[tid] = MTasklet(tid, script)
        self.queue.append(tid)

    def kill(self, tid, pending):
        """``tasklet.kill``: Stackless C's ``_impl_tasklet_throw_bomb``.

        A tasklet that was set up but never ran is alive (it has a frame), so
        it is treated like any runnable one: TaskletExit is its tempval.
        """
        t = self.tasklets[tid]
        if t.state == "dead":
            return
        was_blocked = t.state == "blocked"
        if was_blocked:
            ch = self.channels[t.channel]
            ch.waiting = [w for w in ch.waiting if w[0] != tid]
            t.state, t.channel = "ready", None
        t.resume = ("kill",)
        if pending:
            if was_blocked:
                self.queue.append(tid)
            return
        if was_blocked:
            self.queue.insert(0, tid)   # appended, then made the head
        else:
            i = self.queue.index(tid)   # the ring rotates to it
            self.queue = self.queue[i:] + self.queue[:i]
        self.drive()


# -- the state machine -----------------------------------------------------------

# as many receives as sends, so that both sides get to wait
op_templates = st.one_of(
    st.tuples(st.sampled_from(["recv", "send", "recv", "sendx"]), st.integers(0, NCH - 1)),
    st.just(("schedule",)),
)


class ChannelMachine(RuleBasedStateMachine):

    def __init__(self):
        super().__init__()
        assert stackless.getcurrent() is stackless.getmain()
        assert stackless.getruncount() == 1, "scheduler not clean at start"
        self.model = Model()
        self.channels = [stackless.channel() for _ in range(NCH)]
        self.tasklets = {MAIN: stackless.getmain()}
        self.scripts = {}      # tid -> the real actor's remaining script
        self.events = []       # what really happened
        self.counter = 0
        self.sent = {}         # value -> channel, for everything ever offered

    # -- helpers --

    def fill(self, template):
        """Turn an op template into an op; sends get a fresh value v with v % NCH == k."""
        if template[0] in ("send", "sendx"):
            self.counter += 1
            value = self.counter * NCH + template[1]
            self.sent[value] = template[1]
            return template + (value,)
        return template

    def perform_real(self, op):
        kind = op[0]
        if kind == "schedule":
            return "self" if stackless.schedule() is stackless.getcurrent() else "other"
        ch = self.channels[op[1]]
        if kind == "send":
            return ch.send(op[2])
        if kind == "sendx":
            return ch.send_exception(Boom, op[2])
        return ch.receive()

    def actor(self, tid):
        events, script = self.events, self.scripts[tid]
        try:
            while script:
                op = script.pop(0)
                events.append(("do", tid, op))
                try:
                    result = self.perform_real(op)
                except Boom as exc:
                    events.append(("exc", tid, op, exc.args[0]))
                except ValueError:
                    events.append(("err", tid, op, "ValueError"))
                else:
                    events.append(("ok", tid, op, result))
        except stackless.TaskletExit:
            events.append(("exit", tid))
            raise
        events.append(("end", tid))

    def main_real(self, op):
        self.events.append(("do", MAIN, op))
        kind = op[0]
        try:
            if kind == "run":
                result = stackless.run()
            elif kind == "kill":
                result = self.tasklets[op[1]].kill(pending=op[2])
            else:
                result = self.perform_real(op)
        except Boom as exc:
            self.events.append(("exc", MAIN, op, exc.args[0]))
        except ValueError:
            self.events.append(("err", MAIN, op, "ValueError"))
        except RuntimeError as exc:
            if "eadlock" not in str(exc):
                raise
            self.events.append(("err", MAIN, op, "RuntimeError"))
        else:
            self.events.append(("ok", MAIN, op, result))

    def main_do(self, op):
        """Main performs ``op`` in the model (on a copy first) and for real.

        If the model runs into a situation the test does not pin down
        (``Unpinned``), nothing is done at all.
        """
        model = copy.deepcopy(self.model)
        try:
            model.main_op(op)
        except Unpinned:
            return
        self.model = model
        self.main_real(op)

    def actors_where(self, *states):
        return [tid for tid, t in sorted(self.model.tasklets.items())
                if tid != MAIN and t.state in states]

    # -- rules --

    @initialize(script=st.lists(op_templates, min_size=1, max_size=3))
    def first_actor(self, script):
        self.spawn(script)

    @rule(script=st.lists(op_templates, min_size=1, max_size=3), then_run=st.booleans())
    def spawn_actor(self, script, then_run):
        self.spawn(script)
        if then_run:
            self.run()

    def spawn(self, script):
        tid = len(self.tasklets)
        ops = [self.fill(t) for t in script]
        self.scripts[tid] = list(ops)
        self.tasklets[tid] = stackless.tasklet(self.actor)(tid)
        self.model.spawn(tid, ops)

    @precondition(lambda self: self.actors_where("new", "ready", "blocked"))
    @rule(i=st.integers(0, 50), template=op_templates)
    def extend_script(self, i, template):
        alive = self.actors_where("new", "ready", "blocked")
        tid = alive[i % len(alive)]
        op = self.fill(template)
        self.scripts[tid].append(op)
        self.model.tasklets[tid].script.append(op)

    def waiting_channels(self):
        return [k for k, ch in enumerate(self.model.channels) if ch.waiting]

    @precondition(lambda self: self.waiting_channels())
    @rule(i=st.integers(0, 50), exc=st.booleans(),
          rest=st.lists(op_templates, max_size=2), then_run=st.booleans())
    def spawn_partner(self, i, exc, rest, then_run):
        """Spawn an actor whose first op meets a tasklet waiting on a channel."""
        self.spawn([self.partner_op(i, exc)] + rest)
        if then_run:
            self.run()

    @precondition(lambda self: self.waiting_channels())
    @rule(i=st.integers(0, 50), exc=st.booleans())
    def main_partner(self, i, exc):
        """Main meets a tasklet waiting on a channel (a hand-over: never blocks)."""
        self.main_do(self.fill(self.partner_op(i, exc)))

    def partner_op(self, i, exc):
        waiting = self.waiting_channels()
        k = waiting[i % len(waiting)]
        if self.model.channels[k].balance > 0:
            return ("recv", k)
        return ("sendx" if exc else "send", k)

    def run(self):
        self.main_do(("run",))

    @rule(schedule=st.booleans())
    def main_yields(self, schedule):
        """Main calls stackless.schedule() or stackless.run()."""
        self.main_do(("schedule",) if schedule else ("run",))

    @rule(template=st.tuples(st.sampled_from(["recv", "send", "recv", "sendx"]),
                             st.integers(0, NCH - 1)))
    def main_channel_op(self, template):
        """Main sends or receives (skipped if the model says main would deadlock)."""
        self.main_do(self.fill(template))

    @rule(k=st.integers(0, NCH - 1), preference=st.sampled_from([-1, 0, 1]),
          schedule_all=st.booleans())
    def configure(self, k, preference, schedule_all):
        self.channels[k].preference = preference
        self.channels[k].schedule_all = schedule_all
        self.model.channels[k].preference = preference
        self.model.channels[k].schedule_all = schedule_all

    @rule(k=st.integers(0, NCH - 1), closing=st.booleans())
    def close_or_open(self, k, closing):
        if closing:
            self.channels[k].close()
        else:
            self.channels[k].open()
        self.model.channels[k].closing = closing

    @precondition(lambda self: self.actors_where("blocked"))
    @rule(i=st.integers(0, 50), pending=st.booleans())
    def kill_blocked(self, i, pending):
        blocked = self.actors_where("blocked")
        self.main_do(("kill", blocked[i % len(blocked)], pending))

    @precondition(lambda self: self.actors_where("new", "ready"))
    @rule(i=st.integers(0, 50), pending=st.booleans())
    def kill_runnable(self, i, pending):
        # A tasklet that never ran is only killed where Stackless C and
        # stackless_compat agree (see test_kill_of_a_tasklet_that_never_ran).
        last = self.model.queue[-1]
        runnable = [tid for tid in self.actors_where("new", "ready")
                    if self.model.tasklets[tid].state == "ready"
                    or (tid == last and not pending)]
        if runnable:
            self.main_do(("kill", runnable[i % len(runnable)], pending))

    # -- checks --

    @invariant()
    def events_match(self):
        assert self.events == self.model.events

    @invariant()
    def run_queue_matches(self):
        main = stackless.getmain()
        assert stackless.getcurrent() is main
        ring = [main]
        task = main.next
        while task is not main:
            assert task is not None and len(ring) <= len(self.tasklets)
            ring.append(task)
            task = task.next
        expected = [self.tasklets[tid] for tid in self.model.queue]
        assert ring == expected, (self.tids(ring), self.model.queue)
        assert stackless.getruncount() == len(expected)

    @invariant()
    def channels_match(self):
        for k, (ch, mch) in enumerate(zip(self.channels, self.model.channels)):
            waiting, task = [], ch.queue
            while task is not None:
                assert len(waiting) <= len(self.tasklets)
                waiting.append(task)
                task = task.next
            expected = [self.tasklets[tid] for tid, _, _ in mch.waiting]
            assert waiting == expected, (k, self.tids(waiting), mch.waiting)
            assert ch.balance == mch.balance, k
            assert ch.closing == mch.closing, k
            assert ch.closed == (mch.closing and mch.balance == 0), k
            assert ch.preference == mch.preference, k
            assert ch.schedule_all == mch.schedule_all, k

    @invariant()
    def tasklet_states_match(self):
        for tid, task in self.tasklets.items():
            state = self.model.tasklets[tid].state
            assert task.alive == (state != "dead"), (tid, state)
            assert task.blocked == (state == "blocked"), (tid, state)
            assert task.scheduled == (state != "dead"), (tid, state)
            assert not task.paused, (tid, state)

    @invariant()
    def real_invariants(self):
        """Checked on the real objects and real events only, not on the model."""
        main = stackless.getmain()
        runnable, task = set(), main
        while True:
            runnable.add(id(task))
            task = task.next
            if task is main:
                break
        last_op = {}
        received = []
        for event in self.events:
            if event[0] == "do":
                last_op[event[1]] = event[2]
            elif event[0] in ("ok", "exc") and event[2][0] == "recv":
                received.append((event[2][1], event[3]))
        for k, ch in enumerate(self.channels):
            senders = receivers = 0
            task = ch.queue
            while task is not None:
                assert task.blocked and task.scheduled
                assert id(task) not in runnable
                tid = self.tids([task])[0]
                op = last_op[tid]
                assert op[1] == k
                if op[0] == "recv":
                    receivers += 1
                else:
                    senders += 1
                task = task.next
            assert ch.balance == senders - receivers
        values = [value for _, value in received]
        assert len(values) == len(set(values)), "a value arrived twice"
        for k, value in received:
            assert self.sent[value] == k, "a value arrived on the wrong channel"

    def check_all(self):
        self.events_match()
        self.run_queue_matches()
        self.channels_match()
        self.tasklet_states_match()
        self.real_invariants()

    def tids(self, tasks):
        by_id = {id(t): tid for tid, t in self.tasklets.items()}
        return [by_id.get(id(t), t) for t in tasks]

    def teardown(self):
        """Kill every actor left, so the scheduler is clean for the next example."""
        for script in self.scripts.values():
            script.clear()
        for _ in range(10 * len(self.tasklets) + 10):
            alive = [t for tid, t in self.tasklets.items() if tid != MAIN and t.alive]
            if not alive:
                break
            alive[0].kill()
        assert stackless.getcurrent() is stackless.getmain()
        assert stackless.getruncount() == 1


# Deterministic (derandomize, no database) and ~5 s when passing.  On a
# failure only the first bug is shrunk, which keeps the report short.
SETTINGS = settings(max_examples=200, stateful_step_count=40, derandomize=True,
                    database=None, deadline=None, print_blob=False,
                    report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow])


def test_channels_and_run_queue_follow_the_model():
    run_state_machine_as_test(ChannelMachine, settings=SETTINGS)


# -- the model itself, on hand-checked scenarios from the spec -------------------------


def replay(steps):
    """Run ``steps`` (method name, kwargs) on a machine, checking after each one."""
    machine = ChannelMachine()
    try:
        for name, kwargs in steps:
            getattr(machine, name)(**kwargs)
            machine.check_all()
        return list(machine.events)    # teardown adds the kills
    finally:
        machine.teardown()


def value(n, k):
    """The value of the ``n``-th send of a machine, on channel ``k``."""
    return n * NCH + k


def test_model_send_to_waiting_receiver_runs_receiver_first():
    # A waits on channel 0, B is runnable; main sends: A (the preferred
    # receiver) is put right after main and runs at once, main goes to the
    # end of the queue, behind B; when B yields, main is next.
    events = replay([
        ("spawn", {"script": [("recv", 0)]}),
        ("run", {}),
        ("spawn", {"script": [("schedule",)]}),
        ("main_channel_op", {"template": ("send", 0)}),
    ])
    send = ("send", 0, value(1, 0))
    assert events[-5:] == [
        ("do", MAIN, send),
        ("ok", 1, ("recv", 0), value(1, 0)), ("end", 1),
        ("do", 2, ("schedule",)),
        ("ok", MAIN, send, None),
    ]


def test_model_preference_zero_and_schedule_all():
    # preference 0: main goes on, the receiver is just made runnable.
    steps = [
        ("spawn", {"script": [("recv", 1)]}),
        ("run", {}),
        ("configure", {"k": 1, "preference": 0, "schedule_all": False}),
    ]
    send = ("send", 1, value(1, 1))
    events = replay(steps + [("main_channel_op", {"template": ("send", 1)})])
    assert events[-2:] == [("do", MAIN, send), ("ok", MAIN, send, None)]
    # schedule_all: both are rescheduled; main yields to the receiver.
    events = replay(steps + [("configure", {"k": 1, "preference": 0, "schedule_all": True}),
                             ("main_channel_op", {"template": ("send", 1)})])
    assert events[-4:] == [("do", MAIN, send), ("ok", 1, ("recv", 1), value(1, 1)),
                           ("end", 1), ("ok", MAIN, send, None)]


def test_model_receive_prefers_sender_with_preference_one():
    # A blocks sending; with preference 1 main's receive switches to A
    # first (A then blocks receiving, so main comes back with the value).
    sent = ("send", 0, value(1, 0))
    steps = [("spawn", {"script": [("send", 0), ("recv", 0)]}), ("run", {})]
    events = replay(steps + [("configure", {"k": 0, "preference": 1, "schedule_all": False}),
                             ("main_channel_op", {"template": ("recv", 0)})])
    assert events[-4:] == [("do", MAIN, ("recv", 0)), ("ok", 1, sent, None),
                           ("do", 1, ("recv", 0)), ("ok", MAIN, ("recv", 0), value(1, 0))]
    # with the default preference -1 main just takes the value and goes on
    events = replay(steps + [("main_channel_op", {"template": ("recv", 0)})])
    assert events[-2:] == [("do", MAIN, ("recv", 0)), ("ok", MAIN, ("recv", 0), value(1, 0))]


def test_model_send_exception_and_deadlock():
    # main blocking with nobody else runnable: RuntimeError, nothing changes;
    # send_exception makes the waiting receiver raise.
    sendx = ("sendx", 1, value(1, 1))
    events = replay([
        ("main_channel_op", {"template": ("recv", 1)}),
        ("spawn", {"script": [("recv", 1)]}),
        ("run", {}),
        ("main_channel_op", {"template": ("sendx", 1)}),
    ])
    assert events == [
        ("do", MAIN, ("recv", 1)), ("err", MAIN, ("recv", 1), "RuntimeError"),
        ("do", MAIN, ("run",)), ("do", 1, ("recv", 1)), ("ok", MAIN, ("run",), None),
        ("do", MAIN, sendx), ("exc", 1, ("recv", 1), value(1, 1)), ("end", 1),
        ("ok", MAIN, sendx, None),
    ]


def test_model_close_and_kill():
    # A blocks sending; after close() main still takes the value (no
    # blocking), then blocking raises ValueError; killing A, runnable with
    # its send's result pending, runs it at once: it exits.
    sent, recv, kill = ("send", 1, value(1, 1)), ("recv", 1), ("kill", 1, False)
    events = replay([
        ("spawn", {"script": [("send", 1), ("recv", 1)]}),
        ("run", {}),
        ("close_or_open", {"k": 1, "closing": True}),
        ("main_channel_op", {"template": ("recv", 1)}),
        ("main_channel_op", {"template": ("recv", 1)}),
        ("kill_runnable", {"i": 0, "pending": False}),
    ])
    assert events == [
        ("do", MAIN, ("run",)), ("do", 1, sent), ("ok", MAIN, ("run",), None),
        ("do", MAIN, recv), ("ok", MAIN, recv, value(1, 1)),
        ("do", MAIN, recv), ("err", MAIN, recv, "ValueError"),
        ("do", MAIN, kill), ("exit", 1), ("ok", MAIN, kill, None),
    ]


def test_model_kill_blocked_then_pending():
    # kill() of a blocked tasklet takes it out of the channel and runs it at
    # once; kill(pending=True) only makes it runnable.
    events = replay([
        ("spawn", {"script": [("recv", 0)]}),
        ("spawn", {"script": [("recv", 0)]}),
        ("run", {}),
        ("kill_blocked", {"i": 0, "pending": False}),
        ("kill_blocked", {"i": 0, "pending": True}),
        ("run", {}),
    ])
    assert events[-8:] == [
        ("do", MAIN, ("kill", 1, False)), ("exit", 1), ("ok", MAIN, ("kill", 1, False), None),
        ("do", MAIN, ("kill", 2, True)), ("ok", MAIN, ("kill", 2, True), None),
        ("do", MAIN, ("run",)), ("exit", 2), ("ok", MAIN, ("run",), None),
    ]


# -- a known disagreement with Stackless C (see the module docstring) ---------------


def test_kill_of_a_tasklet_that_never_ran_switches_to_it():
    """A tasklet that was set up but never ran is alive in Stackless C (it
    has a frame), so ``kill()`` goes through ``slp_schedule_task`` like for
    any runnable tasklet (``_impl_tasklet_throw_bomb`` in taskletobject.c):
    the ring rotates to it, it dies before its function starts, and the
    tasklets after it in the queue run before the killer resumes."""
    kill = ("kill", 1, False)
    model = Model()
    model.spawn(1, [("schedule",)])
    model.spawn(2, [("schedule",)])
    model.main_op(kill)
    assert model.events == [("do", MAIN, kill), ("do", 2, ("schedule",)),
                            ("ok", MAIN, kill, None)]
    assert model.queue == [MAIN, 2]
    replay([
        ("spawn", {"script": [("schedule",)]}),
        ("spawn", {"script": [("schedule",)]}),
        ("main_do", {"op": kill}),
    ])


def test_kill_pending_of_a_tasklet_that_never_ran_leaves_it_scheduled():
    """``kill(pending=True)`` only makes the tasklet's tempval a TaskletExit
    bomb (it already is in the run queue): it stays alive and scheduled
    until it runs, and dies then."""
    kill = ("kill", 1, True)
    model = Model()
    model.spawn(1, [("schedule",)])
    model.main_op(kill)
    assert model.queue == [MAIN, 1] and model.tasklets[1].state == "new"
    model.main_op(("run",))
    assert model.tasklets[1].state == "dead"
    assert model.events == [("do", MAIN, kill), ("ok", MAIN, kill, None),
                            ("do", MAIN, ("run",)), ("ok", MAIN, ("run",), None)]
    replay([
        ("spawn", {"script": [("schedule",)]}),
        ("main_do", {"op": kill}),
        ("run", {}),
    ])
