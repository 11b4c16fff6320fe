"""Tests of ``stackless_compat.channel`` (Stackless' Doc/library/stackless/channels.rst).

Where channels.rst is vague about who runs first, the ``preference``
section and Stackless C (``generic_channel_action``) decide: the preferred
side resumes immediately, the other one is appended to the run queue.
Order is checked with an ``events`` list.
"""

import pickle
import sys

import pytest

import stackless_compat as stackless
from stackless_compat import bomb


def receiver(ch, events, name="R"):
    def body():
        value = ch.receive()
        events.append((name, "received", value))
    return body


def sender(ch, events, value, name="S"):
    def body():
        ch.send(value)
        events.append((name, "sent"))
    return body


def bystander(events, name="B"):
    def body():
        events.append(name)
    return body


# -- send and receive ---------------------------------------------------------


def test_a_waiting_receiver_gets_the_value_from_a_later_sender():
    ch = stackless.channel()
    events = []
    stackless.tasklet(receiver(ch, events))()
    stackless.run()
    assert ch.balance == -1
    ch.send(5)
    assert events == [("R", "received", 5)]
    assert ch.balance == 0


def test_a_waiting_sender_gives_its_value_to_a_later_receiver():
    # the first example of channels.rst: the sender blocks, main receives
    ch = stackless.channel()
    events = []
    stackless.tasklet(sender(ch, events, 5))()
    stackless.run()
    assert ch.balance == 1
    assert ch.receive() == 5
    assert ch.balance == 0
    stackless.run()
    assert events == [("S", "sent")]


def test_send_returns_none_and_the_value_is_passed_by_identity():
    ch = stackless.channel()
    got = []
    obj = object()
    stackless.tasklet(lambda: got.append(ch.receive()))()
    stackless.run()
    assert ch.send(obj) is None
    assert got[0] is obj


def test_waiting_tasklets_are_served_in_fifo_order():
    ch = stackless.channel()
    events = []
    for name in ("R1", "R2", "R3"):
        stackless.tasklet(receiver(ch, events, name))()
    stackless.run()
    for value in (1, 2, 3):
        ch.send(value)
    assert events == [("R1", "received", 1), ("R2", "received", 2), ("R3", "received", 3)]


# -- balance and queue --------------------------------------------------------


def test_balance_counts_waiting_receivers_negative_and_senders_positive():
    ch = stackless.channel()
    assert ch.balance == 0
    for _ in range(2):
        stackless.tasklet(ch.receive)()
    stackless.run()
    assert ch.balance == -2
    ch.send(None)
    assert ch.balance == -1
    ch.send(None)
    assert ch.balance == 0
    for value in range(3):
        stackless.tasklet(ch.send)(value)
    stackless.run()
    assert ch.balance == 3
    assert [ch.receive() for _ in range(3)] == [0, 1, 2]
    assert ch.balance == 0
    stackless.run()


def test_the_reawaken_all_senders_idiom_empties_the_channel():
    ch = stackless.channel()
    for value in range(3):
        stackless.tasklet(ch.send)(value)
    stackless.run()
    received = []
    while ch.balance > 0:
        received.append(ch.receive())
    assert received == [0, 1, 2]
    stackless.run()


def test_queue_is_the_first_waiting_tasklet_or_none():
    ch = stackless.channel()
    assert ch.queue is None
    t1 = stackless.tasklet(ch.receive)()
    t2 = stackless.tasklet(ch.receive)()
    stackless.run()
    assert ch.queue is t1
    assert t1.next is t2 and t2.next is None
    ch.send(None)
    assert ch.queue is t2
    ch.send(None)
    assert ch.queue is None


# -- preference and schedule_all ----------------------------------------------

# Tasklets are created in this order: the first side (which blocks), the
# second side, then a bystander "B" that only records its name.  The second
# side's hand-over decides who runs next.

RECEIVE_FIRST_ORDERS = {
    # send to a waiting receiver
    "prefer-receiver": [("R", "received", 1), "B", ("S", "sent")],
    "prefer-sender": [("S", "sent"), "B", ("R", "received", 1)],
    "prefer-neither": [("S", "sent"), "B", ("R", "received", 1)],
    "schedule-all": ["B", ("R", "received", 1), ("S", "sent")],
}

SEND_FIRST_ORDERS = {
    # receive from a waiting sender
    "prefer-receiver": [("R", "received", 1), "B", ("S", "sent")],
    "prefer-sender": [("S", "sent"), "B", ("R", "received", 1)],
    "prefer-neither": [("R", "received", 1), "B", ("S", "sent")],
    "schedule-all": ["B", ("S", "sent"), ("R", "received", 1)],
}

SETTINGS = {
    "prefer-receiver": (-1, 0),
    "prefer-sender": (1, 0),
    "prefer-neither": (0, 0),
    "schedule-all": (-1, 1),
}


def configured_channel(setting):
    ch = stackless.channel()
    ch.preference, ch.schedule_all = SETTINGS[setting]
    return ch


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_send_to_a_waiting_receiver_orders_tasklets_by_preference(setting):
    ch = configured_channel(setting)
    events = []
    stackless.tasklet(receiver(ch, events))()
    stackless.tasklet(sender(ch, events, 1))()
    stackless.tasklet(bystander(events))()
    stackless.run()
    assert events == RECEIVE_FIRST_ORDERS[setting]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_receive_from_a_waiting_sender_orders_tasklets_by_preference(setting):
    ch = configured_channel(setting)
    events = []
    stackless.tasklet(sender(ch, events, 1))()
    stackless.tasklet(receiver(ch, events))()
    stackless.tasklet(bystander(events))()
    stackless.run()
    assert events == SEND_FIRST_ORDERS[setting]


def test_send_to_waiting_receiver_runs_receiver_first_by_default():
    ch = stackless.channel()
    events = []
    stackless.tasklet(receiver(ch, events))()
    stackless.run()
    ch.send(1)
    events.append("main after send")
    assert events == [("R", "received", 1), "main after send"]


def test_prefer_sender_lets_the_sender_pump_all_waiting_receivers_without_blocking():
    # the "pumping the scheduler" idiom of scheduler.rst
    ch = stackless.channel()
    ch.preference = 1
    events = []
    for name in ("R1", "R2"):
        stackless.tasklet(receiver(ch, events, name))()
    stackless.run()
    stackless.getcurrent().block_trap = True
    try:
        while ch.balance < 0:
            ch.send("go")
    finally:
        stackless.getcurrent().block_trap = False
    assert events == []  # receivers were only made runnable
    assert stackless.getruncount() == 3
    stackless.run()
    assert events == [("R1", "received", "go"), ("R2", "received", "go")]


def test_default_preference_lets_a_receiver_collect_all_waiting_senders_without_blocking():
    # channels.rst: "receiving it all, without blocking"
    ch = stackless.channel()
    for value in (1, 2, 3):
        stackless.tasklet(ch.send)(value)
    stackless.run()
    total = 0
    stackless.getcurrent().block_trap = True
    try:
        while ch.balance > 0:
            total += ch.receive()
    finally:
        stackless.getcurrent().block_trap = False
    assert total == 6
    stackless.run()


def test_schedule_all_overrides_preference():
    events = []
    ch = stackless.channel()
    ch.preference = 1
    ch.schedule_all = 1
    stackless.tasklet(receiver(ch, events))()
    stackless.tasklet(sender(ch, events, 1))()
    stackless.tasklet(bystander(events))()
    stackless.run()
    assert events == RECEIVE_FIRST_ORDERS["schedule-all"]


def test_preference_defaults_to_prefer_receiver_and_schedule_all_to_off():
    ch = stackless.channel()
    assert ch.preference == -1
    assert ch.schedule_all == 0


@pytest.mark.parametrize("value, stored", [(-1, -1), (0, 0), (1, 1), (5, 1), (-7, -1), (True, 1)])
def test_preference_accepts_integers_and_clamps_them(value, stored):
    ch = stackless.channel()
    ch.preference = value
    assert ch.preference == stored


@pytest.mark.parametrize("value, stored", [(0, 0), (1, 1), (3, 1), (True, 1), (False, 0)])
def test_schedule_all_accepts_integers_and_reads_back_zero_or_one(value, stored):
    ch = stackless.channel()
    ch.schedule_all = value
    assert ch.schedule_all == stored


@pytest.mark.parametrize("attribute", ["preference", "schedule_all"])
@pytest.mark.parametrize("bad", ["1", None, 1.0, object()])
def test_preference_and_schedule_all_reject_non_integers_with_type_error(attribute, bad):
    ch = stackless.channel()
    before = getattr(ch, attribute)
    with pytest.raises(TypeError):
        setattr(ch, attribute, bad)
    assert getattr(ch, attribute) == before


@pytest.mark.parametrize("attribute", ["balance", "queue", "closing", "closed"])
def test_state_attributes_are_read_only(attribute):
    ch = stackless.channel()
    with pytest.raises(AttributeError):
        setattr(ch, attribute, 1)


# -- exceptions over channels -------------------------------------------------


def catching_receiver(ch, events):
    def body():
        try:
            ch.receive()
        except BaseException as exc:
            events.append(exc)
    return body


def test_send_exception_raises_it_in_a_waiting_receiver():
    ch = stackless.channel()
    events = []
    stackless.tasklet(catching_receiver(ch, events))()
    stackless.run()
    ch.send_exception(KeyError, "a", 1)
    assert type(events[0]) is KeyError and events[0].args == ("a", 1)


def test_send_exception_from_a_waiting_sender_raises_in_the_receiver():
    ch = stackless.channel()
    stackless.tasklet(ch.send_exception)(ValueError, "late")
    # Stackless C: a last runnable tasklet that blocks sending an exception
    # hands it to the main tasklet it revives ("old revive_main behavior")
    with pytest.raises(ValueError, match="late"):
        stackless.run()
    assert ch.balance == 1
    with pytest.raises(ValueError, match="late"):
        ch.receive()
    assert ch.balance == 0
    stackless.run()


def test_an_uncaught_exception_sent_to_a_receiver_propagates_to_main():
    # channels.rst, send_exception example
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(Exception, match="xxx"):
        ch.send_exception(Exception, "xxx")
    assert not t.alive


@pytest.mark.parametrize("bad", [ValueError("instance"), 42, object])
def test_send_exception_requires_an_exception_class(bad):
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(TypeError):
        ch.send_exception(bad)
    assert ch.balance == -1 and t.blocked
    ch.send(None)


def test_send_throw_of_an_instance_raises_that_instance():
    ch = stackless.channel()
    events = []
    exc = ValueError("mine")
    stackless.tasklet(catching_receiver(ch, events))()
    stackless.run()
    ch.send_throw(exc)
    assert events[0] is exc


def test_send_throw_of_a_class_and_value_builds_the_exception():
    ch = stackless.channel()
    events = []
    stackless.tasklet(catching_receiver(ch, events))()
    stackless.tasklet(catching_receiver(ch, events))()
    stackless.run()
    ch.send_throw(ValueError, "v")
    ch.send_throw(KeyError)
    assert type(events[0]) is ValueError and events[0].args == ("v",)
    assert type(events[1]) is KeyError and events[1].args == ()


def test_send_throw_of_exc_info_propagates_the_traceback():
    def origin():
        raise ValueError("origin")

    ch = stackless.channel()
    events = []
    stackless.tasklet(catching_receiver(ch, events))()
    stackless.run()
    try:
        origin()
    except ValueError:
        ch.send_throw(*sys.exc_info())
    codes = []
    tb = events[0].__traceback__
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    assert origin.__code__ in codes


@pytest.mark.parametrize("args", [(ValueError("x"), "v"), (ValueError, None, "tb"), (42,)],
                         ids=["instance-with-value", "bad-traceback", "non-exception"])
def test_send_throw_with_bad_arguments_raises_type_error(args):
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    with pytest.raises(TypeError):
        ch.send_throw(*args)
    assert ch.balance == -1
    t.kill()


def test_a_bomb_sent_as_a_value_explodes_in_the_waiting_receiver():
    ch = stackless.channel()
    events = []
    stackless.tasklet(catching_receiver(ch, events))()
    stackless.run()
    ch.send(bomb(ValueError, ValueError("bomb")))
    assert type(events[0]) is ValueError and events[0].args == ("bomb",)


def test_a_bomb_from_a_waiting_sender_explodes_in_the_receiver():
    ch = stackless.channel()
    stackless.tasklet(ch.send)(bomb(KeyError, KeyError("k")))
    with pytest.raises(KeyError):
        stackless.run()  # the revived main gets the pending exception too, as in C
    with pytest.raises(KeyError):
        ch.receive()
    stackless.run()


def test_a_bomb_can_be_built_from_exc_info():
    try:
        raise ValueError("info")
    except ValueError:
        info = sys.exc_info()
    for b in (bomb(*info), bomb(info)):
        assert (b.type, b.value, b.traceback) == info
        with pytest.raises(ValueError, match="info"):
            b.raise_()


def test_a_bomb_with_a_class_only_raises_a_new_instance():
    with pytest.raises(KeyError):
        bomb(KeyError).raise_()


def test_a_bomb_can_be_pickled():
    b = pickle.loads(pickle.dumps(bomb(ValueError, ValueError("p"))))
    assert b.type is ValueError
    with pytest.raises(ValueError, match="p"):
        b.raise_()


# -- send_sequence and iteration ----------------------------------------------


def test_send_sequence_returns_the_number_of_items_sent():
    ch = stackless.channel()
    received = []
    results = []

    def consumer():
        for _ in range(4):
            received.append(ch.receive())

    stackless.tasklet(lambda: results.append(ch.send_sequence(range(4))))()
    stackless.tasklet(consumer)()
    stackless.run()
    assert received == [0, 1, 2, 3]
    assert results == [4]


def test_send_sequence_accepts_a_generator_and_an_empty_sequence():
    ch = stackless.channel()
    received = []
    stackless.tasklet(lambda: received.extend([ch.receive(), ch.receive()]))()
    stackless.run()
    assert ch.send_sequence(x * 10 for x in (1, 2)) == 2
    assert ch.send_sequence([]) == 0
    assert received == [10, 20]


def test_iteration_ends_when_stop_iteration_is_sent():
    ch = stackless.channel()
    received = []

    def producer():
        ch.send_sequence(range(4))
        ch.send_exception(StopIteration)

    def consumer():
        for value in ch:
            received.append(value)
        received.append("end")

    stackless.tasklet(producer)()
    stackless.tasklet(consumer)()
    stackless.run()
    assert received == [0, 1, 2, 3, "end"]


def test_iteration_ends_once_the_channel_is_closed_and_drained():
    ch = stackless.channel()
    for value in range(3):
        stackless.tasklet(ch.send)(value)
    stackless.run()
    ch.close()
    assert ch.closing and not ch.closed
    assert list(ch) == [0, 1, 2]
    assert ch.closed
    stackless.run()


def test_next_on_a_closed_empty_channel_raises_stop_iteration():
    ch = stackless.channel()
    ch.close()
    assert iter(ch) is ch
    with pytest.raises(StopIteration):
        next(ch)
    with pytest.raises(StopIteration):
        ch.next()


# -- open and close -----------------------------------------------------------


def test_close_of_an_empty_channel_makes_it_closed():
    ch = stackless.channel()
    assert not ch.closing and not ch.closed
    ch.close()
    assert ch.closing and ch.closed


def test_close_of_a_channel_with_waiters_makes_it_closing_until_they_are_served():
    ch = stackless.channel()
    stackless.tasklet(ch.send)("last")
    stackless.run()
    ch.close()
    assert ch.closing and not ch.closed
    assert ch.receive() == "last"  # a waiting partner is still handed over
    assert ch.closed
    stackless.run()


@pytest.mark.parametrize("action", [
    lambda ch: ch.send(1),
    lambda ch: ch.receive(),
    lambda ch: ch.send_exception(ValueError),
    lambda ch: ch.send_throw(ValueError),
], ids=["send", "receive", "send_exception", "send_throw"])
def test_a_closed_channel_refuses_to_block_with_value_error(action):
    ch = stackless.channel()
    ch.close()
    with pytest.raises(ValueError):
        action(ch)
    assert ch.balance == 0 and ch.queue is None
    assert stackless.getruncount() == 1


def test_a_closed_channel_refuses_to_block_inside_a_tasklet_too():
    ch = stackless.channel()
    ch.close()
    events = []

    def body():
        try:
            ch.receive()
        except ValueError:
            events.append("ValueError")

    stackless.tasklet(body)()
    stackless.run()
    assert events == ["ValueError"]


def test_a_closing_channel_still_hands_over_to_a_waiting_receiver():
    ch = stackless.channel()
    events = []
    stackless.tasklet(receiver(ch, events))()
    stackless.run()
    ch.close()
    ch.send("to waiting")
    assert events == [("R", "received", "to waiting")]
    with pytest.raises(ValueError):
        ch.send("nobody")


def test_open_reopens_a_closed_channel():
    ch = stackless.channel()
    ch.close()
    ch.open()
    assert not ch.closing and not ch.closed
    stackless.tasklet(ch.send)("again")
    stackless.run()
    assert ch.receive() == "again"
    stackless.run()


# -- block_trap ---------------------------------------------------------------


def test_blocking_with_block_trap_set_raises_runtime_error_and_changes_nothing():
    ch = stackless.channel()
    main = stackless.getcurrent()
    main.block_trap = True
    try:
        with pytest.raises(RuntimeError):
            ch.receive()
        with pytest.raises(RuntimeError):
            ch.send(1)
    finally:
        main.block_trap = False
    assert ch.balance == 0
    assert main.scheduled and not main.blocked


def test_block_trap_in_a_tasklet_raises_there():
    ch = stackless.channel()
    events = []

    def body():
        stackless.getcurrent().block_trap = True
        try:
            ch.receive()
        except RuntimeError:
            events.append("RuntimeError")

    stackless.tasklet(body)()
    stackless.run()
    assert events == ["RuntimeError"]
    assert ch.balance == 0


def test_block_trap_does_not_prevent_a_hand_over_that_does_not_block():
    ch = stackless.channel()
    stackless.tasklet(ch.send)(9)
    stackless.run()
    stackless.getcurrent().block_trap = True
    try:
        assert ch.receive() == 9
    finally:
        stackless.getcurrent().block_trap = False
    stackless.run()


# -- deadlock -----------------------------------------------------------------


def test_blocking_main_with_nothing_else_runnable_raises_runtime_error():
    ch = stackless.channel()
    with pytest.raises(RuntimeError):
        ch.receive()
    with pytest.raises(RuntimeError):
        ch.send(1)
    assert ch.balance == 0 and ch.queue is None
    assert stackless.getcurrent().scheduled


# -- subclassing --------------------------------------------------------------


def test_a_subclass_of_channel_works_without_calling_the_base_init():
    class Named(stackless.channel):
        def __init__(self, name):
            self.name = name

    ch = Named("pipe")
    assert ch.name == "pipe" and ch.balance == 0 and ch.preference == -1
    stackless.tasklet(ch.send)("through subclass")
    stackless.run()
    assert ch.receive() == "through subclass"
    stackless.run()


def test_a_subclass_of_channel_with_slots_and_overridden_send():
    class Counting(stackless.channel):
        __slots__ = ("sent",)

        def __init__(self):
            super().__init__()
            self.sent = 0

        def send(self, value):
            self.sent += 1
            return stackless.channel.send(self, value)

    ch = Counting()
    received = []
    stackless.tasklet(lambda: received.append(ch.receive()))()
    stackless.run()
    ch.send("x")
    assert received == ["x"] and ch.sent == 1
    assert isinstance(ch, stackless.channel)


# -- the channel callback -----------------------------------------------------


@pytest.fixture
def channel_calls():
    """Install a channel callback recording (channel, tasklet, sending, willblock)."""
    calls = []

    def callback(channel, tasklet, sending, willblock):
        calls.append((channel, tasklet, sending, willblock))

    stackless.set_channel_callback(callback)
    yield calls
    stackless.set_channel_callback(None)


def test_channel_callback_for_a_receive_that_blocks(channel_calls):
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.run()
    assert channel_calls == [(ch, t, 0, 1)]
    del channel_calls[:]
    ch.send(1)
    assert channel_calls == [(ch, stackless.getmain(), 1, 0)]


def test_channel_callback_for_a_send_that_blocks(channel_calls):
    ch = stackless.channel()
    t = stackless.tasklet(ch.send)(1)
    stackless.run()
    assert channel_calls == [(ch, t, 1, 1)]
    del channel_calls[:]
    assert ch.receive() == 1
    assert channel_calls == [(ch, stackless.getmain(), 0, 0)]
    stackless.run()


def test_channel_callback_arguments_are_integers(channel_calls):
    ch = stackless.channel()
    stackless.tasklet(ch.send)(1)
    stackless.run()
    ch.receive()
    stackless.run()
    for _, _, sending, willblock in channel_calls:
        assert type(sending) is int and type(willblock) is int


def test_channel_callback_sees_exception_sends_as_sends(channel_calls):
    ch = stackless.channel()
    events = []
    t1 = stackless.tasklet(catching_receiver(ch, events))()
    t2 = stackless.tasklet(catching_receiver(ch, events))()
    stackless.run()
    del channel_calls[:]
    main = stackless.getmain()
    ch.send_exception(ValueError)
    ch.send_throw(KeyError)
    assert channel_calls == [(ch, main, 1, 0), (ch, main, 1, 0)]
    assert not t1.alive and not t2.alive


def test_channel_callback_is_called_for_each_item_of_send_sequence_and_iteration(channel_calls):
    ch = stackless.channel()
    received = []

    def consumer():
        for value in ch:
            received.append(value)

    c = stackless.tasklet(consumer)()
    stackless.run()
    main = stackless.getmain()
    ch.send_sequence([1, 2])
    c.kill()
    assert received == [1, 2]
    assert channel_calls == [(ch, c, 0, 1), (ch, main, 1, 0), (ch, c, 0, 1),
                             (ch, main, 1, 0), (ch, c, 0, 1)]


def test_channel_callback_is_called_before_a_refused_block(channel_calls):
    ch = stackless.channel()
    ch.close()
    with pytest.raises(ValueError):
        ch.receive()
    assert channel_calls == [(ch, stackless.getmain(), 0, 1)]


def test_set_channel_callback_returns_the_previous_one_and_get_reads_it():
    def first(*args):
        pass

    def second(*args):
        pass

    assert stackless.get_channel_callback() is None
    assert stackless.set_channel_callback(first) is None
    assert stackless.get_channel_callback() is first
    assert stackless.set_channel_callback(second) is first
    assert stackless.set_channel_callback(None) is second
    assert stackless.get_channel_callback() is None


def test_set_channel_callback_rejects_a_non_callable():
    with pytest.raises(TypeError):
        stackless.set_channel_callback(42)
    assert stackless.get_channel_callback() is None


def test_a_channel_action_inside_the_channel_callback_raises_runtime_error():
    other = stackless.channel()
    errors = []

    def callback(channel, tasklet, sending, willblock):
        if channel is not other:
            try:
                other.send(None)
            except RuntimeError as exc:
                errors.append(exc)

    stackless.set_channel_callback(callback)
    try:
        ch = stackless.channel()
        stackless.tasklet(ch.send)(1)
        stackless.run()
        assert ch.receive() == 1
    finally:
        stackless.set_channel_callback(None)
    stackless.run()
    assert len(errors) == 2 and other.balance == 0


def test_switching_inside_the_channel_callback_raises_runtime_error():
    # Stackless C holds its schedlock while the channel callback runs; a
    # switch from there would leave the channel action working on stale state
    ch = stackless.channel()
    outcomes = []

    def callback(channel, tasklet, sending, willblock):
        try:
            stackless.schedule()
            outcomes.append("switched")
        except RuntimeError as exc:
            outcomes.append(str(exc))

    stackless.tasklet(ch.send)("value")
    stackless.run()
    other = stackless.tasklet(lambda: None)()
    stackless.set_channel_callback(callback)
    try:
        assert ch.receive() == "value"
    finally:
        stackless.set_channel_callback(None)
    assert outcomes == ["Recursive scheduler call due to callbacks!"]
    assert other.scheduled and ch.balance == 0
    stackless.run()
    assert stackless.switch_trap(0) == 0


def test_a_channel_is_freed_as_soon_as_its_last_reference_goes():
    import gc
    import weakref
    gc.disable()  # reference counting alone must free it: no cycle
    try:
        channel = stackless.channel()
        empty = weakref.ref(channel)
        del channel
        assert empty() is None
        channel = stackless.channel()
        task = stackless.tasklet(channel.receive)()
        stackless.run()
        channel.send("x")  # used and empty again
        used = weakref.ref(channel)
        del channel
        assert used() is None and not task.alive
    finally:
        gc.enable()
