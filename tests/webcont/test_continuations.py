"""The continuation store: ids, deadlines with lazy deletion, the cap, tombstones."""

import re

from webcont._continuations import ContinuationStore, Tombstone, mint_id, parameters_digest


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_ids_are_128_bit_urlsafe_and_never_repeat():
    ids = {mint_id() for _ in range(100_000)}
    assert len(ids) == 100_000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", id) for id in list(ids)[:1000])


def test_expire_due_returns_exactly_the_overdue_in_deadline_order():
    clock = FakeClock()
    store = ContinuationStore(100, clock=clock)
    for delay, name in [(30, "c"), (10, "a"), (20, "b"), (40, "d")]:
        store.add(name, object(), delay)
    clock.now += 25
    assert [c.id for c in store.expire_due()] == ["a", "b"]
    assert sorted(store.ids()) == ["c", "d"]
    assert store.tombstone("a").state == "expired"
    clock.now += 100
    assert [c.id for c in store.expire_due()] == ["c", "d"]
    assert len(store) == 0


def test_a_taken_continuation_is_single_use_and_never_expires():
    clock = FakeClock()
    store = ContinuationStore(100, clock=clock)
    channel = object()
    store.add("x", channel, 5)
    taken = store.take("x")
    assert taken.channel is channel
    assert store.take("x") is None
    assert store.tombstone("x").state == "running"
    clock.now += 10
    assert store.expire_due() == []  # its stale heap entry is skipped


def test_stale_heap_entries_are_pruned_in_a_batch():
    store = ContinuationStore(10_000, clock=FakeClock())
    for number in range(1000):
        store.add(str(number), None, 60)
        store.take(str(number))
    assert len(store._deadlines) <= 2 * len(store) + 65


def test_the_cap_evicts_the_oldest_first():
    store = ContinuationStore(3, clock=FakeClock())
    evicted = []
    for name in "abcde":
        evicted += [c.id for c in store.add(name, None, 60)]
    assert evicted == ["a", "b"]
    assert store.ids() == ["c", "d", "e"]
    assert store.tombstone("a").state == "evicted"  # not "expired": its 410 says which


def test_tombstones_are_bounded_and_forget_the_oldest():
    store = ContinuationStore(10, max_tombstones=2, clock=FakeClock())
    for name in "abc":
        store.remember(name, Tombstone("used"))
    assert store.tombstone("a") is None
    assert store.tombstone("c").state == "used"


def test_adding_an_existing_id_is_refused():
    store = ContinuationStore(10, clock=FakeClock())
    store.add("x", None, 1)
    try:
        store.add("x", None, 1)
    except ValueError as error:
        assert "already registered" in str(error)
    else:
        raise AssertionError("duplicate id accepted")


def test_tombstones_are_forgotten_after_their_ttl_oldest_first():
    clock = FakeClock()
    store = ContinuationStore(100, clock=clock, tombstone_ttl=10)
    store.remember("a", Tombstone("used"))
    clock.now += 5
    store.remember("b", Tombstone("expired"))
    assert store.next_due() == 1000.0 + 10 + 1.0  # a's TTL, batched by the second
    clock.now += 6
    assert store.tombstone("a") is None and store.tombstone("b").state == "expired"
    store.forget_due()
    assert list(store._tombstones) == ["b"]
    clock.now += 5
    store.forget_due()
    assert not store._tombstones and store.next_due() is None


def test_replayed_pages_are_bounded_in_bytes_and_parameters_kept_as_a_digest():
    store = ContinuationStore(100, clock=FakeClock(), max_replay_bytes=1000)
    parameters = {"answer": ["x" * 50_000]}
    for name in "abc":
        store.remember(name, Tombstone("used", parameters_digest(parameters),
                                       ("200 OK", [], b"p" * 400)))
    assert store.tombstone("a") is None  # forgotten: 1200 bytes of pages > 1000
    assert store.tombstone("c").digest == parameters_digest({"answer": ["x" * 50_000]})
    assert len(store.tombstone("c").digest) == 16
    store.remember("d", Tombstone("used", b"", ("200 OK", [], b"p" * 5000)))
    assert store.tombstone("d").response is None  # too big to keep at all: 409 later
    assert store._replay_bytes == 800


def test_the_parameters_digest_tells_different_submissions_apart():
    assert (parameters_digest({"a": ["1"], "b": ["2"]})
            == parameters_digest({"b": ["2"], "a": ["1"]}))
    assert parameters_digest({"a": ["1"]}) != parameters_digest({"a": ["1", "1"]})
    assert parameters_digest({"a": ["1", "2"]}) != parameters_digest({"a": ["2", "1"]})
    assert parameters_digest({"a": ["\udcff"]})  # lone surrogates do not break it


def test_a_settled_step_keeps_its_one_tombstone_in_place_with_its_page_counted():
    clock = FakeClock()
    store = ContinuationStore(100, clock=clock, tombstone_ttl=10, max_replay_bytes=1000)
    store.add("a", None, 60)
    store.add("b", None, 60)
    store.take("a")
    running = store.tombstone("a")
    clock.now += 1
    store.remember("x", Tombstone("expired"))
    store.take("b")
    store.settle("a", "used", None, b"d" * 16, ("200 OK", [], b"p" * 400))
    store.settle("b", "failed")
    assert store.tombstone("a") is running  # the same object, not a second one
    assert (running.state, running.digest, running.response[2]) == ("used", b"d" * 16, b"p" * 400)
    assert list(store._tombstones) == ["a", "x", "b"]  # still ordered by forget_at
    assert running.forget_at == 1000.0 + 10 and store.tombstone("b").state == "failed"
    assert store._replay_bytes == 400
    store.take("c")  # (never live: nothing)
    store.add("c", None, 60)
    store.take("c")
    store.settle("c", "used", None, b"", ("200 OK", [], b"q" * 700))  # past the budget
    assert store.tombstone("a") is None and store._replay_bytes == 700
    store.settle("gone", "used", None, b"", ("200 OK", [], b"r" * 5000))  # forgotten: a new one
    assert store.tombstone("gone").state == "used" and store.tombstone("gone").response is None
