"""The hub's journal checkpoints run on their own thread, hold up no read, and let
the WAL start over."""

import sqlite3
import threading
import time

import pytest

from webcont import _dialects
from webcont._dialects import open_store


def hub_commits(store, count, first=0, posted=None):
    """``count`` chains started through ``commit_soon`` on this thread, as the hub
    does; ``posted``: the list its post appends to (the hub's queue)."""
    posted = [] if posted is None else posted
    for number in range(first, first + count):
        future = store.commit_soon(lambda s, cursor, number=number: s.op_start(
            cursor, "c%d" % number, "/", "v", [{"pad": "x" * 500}], 60), posted.append)
        deadline = time.monotonic() + 10
        while True:  # (the writer thread commits it while a checkpoint holds the lock)
            while posted:
                posted.pop(0)()
            if future.done() or time.monotonic() > deadline:
                break
            time.sleep(0.0005)
        assert future.result() is True


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_checkpoints_run_on_their_own_thread_every_so_many_hub_operations(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    threads = []
    original = store.checkpoint

    def recording(cursor):
        threads.append(threading.current_thread().name)
        return original(cursor)
    store.checkpoint = recording
    try:
        hub_commits(store, store.checkpoint_every - 1)
        time.sleep(0.2)
        assert threads == []
        hub_commits(store, 1, first=store.checkpoint_every)
        assert wait_for(lambda: threads == ["webcont-checkpoint"])
        checkpointer = store._hub_commits.checkpointer
    finally:
        store.close()
    assert not checkpointer._thread.is_alive()


def test_reads_go_on_while_a_checkpoint_is_under_way(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    started, release = threading.Event(), threading.Event()
    original = store.checkpoint

    def slow(cursor):  # a checkpoint copying and syncing a big WAL
        started.set()
        release.wait(10)
        return original(cursor)
    store.checkpoint = slow
    try:
        hub_commits(store, store.checkpoint_every)
        assert started.wait(10)
        size = store.read(lambda s, cursor: s.op_size(cursor)).result(2)  # a replay's read
        assert size[0] == store.checkpoint_every
    finally:
        release.set()
        store.close()



def wal_frames(path):
    """Frames in the WAL of the SQLite file ``path``, as a new connection sees it."""
    connection = sqlite3.connect(str(path))
    try:
        return connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    finally:
        connection.close()


@pytest.mark.parametrize("mode", ["", "?synchronous=full"])
def test_the_wal_starts_over_though_the_hub_committed_during_the_checkpoint(tmp_path,
                                                                           monkeypatch, mode):
    # under load the hub always commits while a checkpoint copies the WAL, and
    # SQLite starts the WAL over only once all of it was copied: with one pass,
    # it grew by every page ever written (~9 KB a step)
    monkeypatch.setattr(_dialects, "WAL_SIZE_LIMIT", 32 << 10)
    path = tmp_path / "games.db"
    store = open_store("sqlite:///%s%s" % (path, mode))
    store.wal_restart_frames = 1  # (one checkpoint's worth of WAL is long enough here)
    copied, committed = threading.Event(), threading.Event()
    original = store.checkpoint
    passes = []

    def first_pass_meets_a_commit(cursor):
        frames = original(cursor)
        passes.append(store._hub_commits._holding)
        if len(passes) == 1:
            copied.set()
            committed.wait(10)
        return frames
    store.checkpoint = first_pass_meets_a_commit
    posted = []
    try:
        hub_commits(store, store.checkpoint_every, posted=posted)
        assert copied.wait(10)
        hub_commits(store, 10, first=1000, posted=posted)  # while the first pass runs
        committed.set()
        assert wait_for(lambda: posted, 5)  # the checkpoint asks the hub to hold
        # the second pass runs with the hub's commits held back, then the held
        # one commits, and starts the WAL over
        hub_commits(store, 1, first=2000, posted=posted)
        assert passes == [False, True]
        assert wal_frames(path) <= 4
        assert (tmp_path / "games.db-wal").stat().st_size <= 32 << 10  # (it had grown)
        assert store.read(lambda s, cursor: s.op_size(cursor)).result(5)[0] == \
            store.checkpoint_every + 11
    finally:
        committed.set()
        store.close()


def test_a_hub_that_answers_too_late_is_not_held_and_the_pass_is_skipped(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    posted, ran = [], []
    try:
        hub_commits(store, 1, posted=posted)  # (the hub's post is known from here on)
        commits = store._hub_commits
        commits.hold_commits(lambda: ran.append(1), timeout=0.05)  # nobody runs posted
        while posted:  # the hub comes back, late
            posted.pop(0)()
        assert ran == [] and not commits._holding
        hub_commits(store, 1, first=1, posted=posted)  # commits at once, as before
    finally:
        store.close()


def test_commits_held_back_are_committed_at_the_release_in_one_group(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    posted, during = [], threading.Event()
    try:
        hub_commits(store, 1, posted=posted)
        commits = store._hub_commits
        holder = threading.Thread(target=commits.hold_commits,
                                  args=(lambda: during.wait(10),))
        holder.start()
        assert wait_for(lambda: posted)
        posted.pop(0)()  # the hub holds
        assert commits._holding
        commits_before = store.commits
        futures = [store.commit_soon(lambda s, cursor: s.op_ping(cursor), posted.append, True),
                   store.commit_soon(lambda s, cursor: s.op_touch(cursor), posted.append)]
        assert not any(future.done() for future in futures)
        during.set()
        holder.join(10)
        while posted:  # the release commits what was held
            posted.pop(0)()
        assert [future.result() for future in futures] == [True, True]
        assert store.commits == commits_before + 1 and not commits._holding
    finally:
        store.close()


def test_a_short_wal_gets_one_pass_and_holds_nothing(tmp_path):
    # the held pass costs the requests that wait meanwhile about a millisecond:
    # it runs only once the WAL is long enough to be worth starting over
    path = tmp_path / "games.db"
    store = open_store("sqlite:///%s" % path)
    holds, lengths = [], []
    original = store.checkpoint

    def counting(cursor):
        lengths.append(original(cursor))
        return lengths[-1]
    store.checkpoint = counting
    posted = []
    try:
        hub_commits(store, 1, posted=posted)
        commits = store._hub_commits
        hold = commits.hold_commits
        commits.hold_commits = lambda action, timeout=1.0: (holds.append(1), hold(action, timeout))
        store.wal_restart_frames = 10 ** 6
        hub_commits(store, store.checkpoint_every, first=1, posted=posted)
        assert wait_for(lambda: len(lengths) == 1)
        time.sleep(0.1)
        assert holds == [] and len(lengths) == 1 and lengths[0] > 0
        store.wal_restart_frames = lengths[0]  # the WAL is that long now: held, started over
        hub_commits(store, store.checkpoint_every, first=10000, posted=posted)
        assert wait_for(lambda: holds == [1] and posted)
        hub_commits(store, 1, first=20000, posted=posted)  # runs the hold and the release
        assert wait_for(lambda: len(lengths) == 3)
        hub_commits(store, 1, first=30000, posted=posted)
        assert wal_frames(path) <= 8  # started over: the held commit and this one
    finally:
        store.close()
