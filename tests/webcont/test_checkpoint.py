"""The hub's journal checkpoints run on their own thread and hold up no read."""

import threading
import time

from webcont._dialects import open_store


def hub_commits(store, count, first=0):
    """``count`` chains started through ``commit_soon`` on this thread, as the hub does."""
    posted = []
    for number in range(first, first + count):
        future = store.commit_soon(lambda s, cursor, number=number: s.op_start(
            cursor, "c%d" % number, "/", "v", [{"pad": "x" * 500}], 60), posted.append)
        while posted:
            posted.pop()()
        assert future.result(10) is True


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
        original(cursor)
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
        original(cursor)
    store.checkpoint = slow
    try:
        hub_commits(store, store.checkpoint_every)
        assert started.wait(10)
        size = store.read(lambda s, cursor: s.op_size(cursor)).result(2)  # a replay's read
        assert size[0] == store.checkpoint_every
    finally:
        release.set()
        store.close()
