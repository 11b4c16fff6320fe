"""The log store: SQLite when another process holds the write lock; failing writes."""

import concurrent.futures
import sqlite3
import threading
import time

import pytest

from webcont._dialects import _retry_busy, open_store
from webcont._operations import RecordStep
from webcont._storeerrors import StoreUnavailable


@pytest.fixture
def store_and_rival(tmp_path):
    """The store, and a second connection to its file, as another node would have."""
    url = "sqlite:///%s" % (tmp_path / "games.db")
    store = open_store(url)
    rival = sqlite3.connect(str(tmp_path / "games.db"), isolation_level=None)
    try:
        yield store, rival
    finally:
        rival.close()
        store.close()


def start(store, chain):
    return store.submit(lambda s, cursor: s.op_start(cursor, chain, "/", "v", [{}], 60))


def count(store):
    return store.read(lambda s, cursor: s.op_size(cursor)[0]).result(10)


def test_a_write_waits_for_the_other_process_and_then_commits(store_and_rival):
    store, rival = store_and_rival
    rival.execute("BEGIN IMMEDIATE")  # the other node is committing
    future = start(store, "waiting")
    time.sleep(0.3)
    assert not future.done()  # neither failed nor written past the lock
    rival.execute("COMMIT")
    assert future.result(10) is True
    assert count(store) == 1


def test_reads_go_on_while_the_other_process_holds_the_write_lock(store_and_rival):
    store, rival = store_and_rival
    assert start(store, "one").result(10) is True
    rival.execute("BEGIN IMMEDIATE")
    try:
        assert count(store) == 1  # WAL: readers never wait for the writer
    finally:
        rival.execute("ROLLBACK")


def test_retry_busy_gives_up_after_its_timeout_and_passes_other_errors_at_once():
    calls = []

    def locked():
        calls.append(1)
        raise sqlite3.OperationalError("database is locked")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _retry_busy(locked, timeout=0.05)
    assert len(calls) > 2  # tried again, and again, then gave up

    calls.clear()

    def broken():
        calls.append(1)
        raise sqlite3.OperationalError("no such table: nowhere")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        _retry_busy(broken)
    assert len(calls) == 1

    attempts = iter([sqlite3.OperationalError("database is locked")] * 3 + [None])

    def busy_then_free():
        error = next(attempts)
        if error is not None:
            raise error
        return "done"
    assert _retry_busy(busy_then_free) == "done"


@pytest.mark.parametrize("group", [1, 3])
def test_a_failing_write_is_undone_alone_and_the_store_goes_on(store_url, group):
    store = open_store(store_url)
    try:
        assert start(store, "taken").result(10) is True

        def half_then_fail(s, cursor):  # writes, then fails: none of it may stay
            s.op_start(cursor, "half", "/", "v", [{}], 60)
            raise ValueError("the operation failed")
        # hold the writer in an operation while the group queues: one transaction
        running, release = threading.Event(), threading.Event()
        holding = store.submit(lambda s, cursor: running.set() or release.wait(10))
        assert running.wait(10)
        futures = [store.submit(half_then_fail)]
        futures += [start(store, "ok%d" % n) for n in range(group - 1)]
        release.set()
        assert holding.result(10) is True
        with pytest.raises(ValueError):
            futures[0].result(10)
        assert all(future.result(10) is True for future in futures[1:])
        assert count(store) == group  # "taken" and the others; "half" rolled back
        assert start(store, "after").result(10) is True
        assert count(store) == group + 1
    finally:
        store.close()


def started_on(store, chain, where):
    """An op_start for ``chain`` that notes the thread running it in ``where``."""
    def operation(s, cursor):
        where.append(threading.get_ident())
        return s.op_start(cursor, chain, "/", "v", [{}], 60)
    return operation


def test_writes_queued_with_commit_soon_share_one_commit_made_by_the_calling_thread(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    try:
        posted, ran_on = [], []
        commits = store.commits

        def half_then_fail(s, cursor):
            s.op_start(cursor, "half", "/", "v", [{}], 60)
            raise ValueError("the operation failed")
        futures = [store.commit_soon(started_on(store, "a", ran_on), posted.append),
                   store.commit_soon(half_then_fail, posted.append),
                   store.commit_soon(started_on(store, "b", ran_on), posted.append)]
        assert len(posted) == 1 and not any(f.done() for f in futures)  # one flush for all
        posted[0]()  # the hub's pass ends: it commits them itself
        assert futures[0].result(0) is True and futures[2].result(0) is True
        with pytest.raises(ValueError):
            futures[1].result(0)
        assert store.commits == commits + 1
        assert set(ran_on) == {threading.get_ident()}
        assert count(store) == 2  # "half" rolled back alone
    finally:
        store.close()


def test_a_write_the_pass_ends_with_is_committed_at_once_with_nothing_posted(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    try:
        posted, ran_on = [], []
        future = store.commit_soon(started_on(store, "a", ran_on), posted.append, now=True)
        assert future.done() and future.result() is True and posted == []
        assert ran_on == [threading.get_ident()] and count(store) == 1
    finally:
        store.close()


def test_commit_soon_never_waits_for_another_process_lock_the_writer_thread_does(
        store_and_rival):
    store, rival = store_and_rival
    posted, ran_on = [], []
    rival.execute("BEGIN IMMEDIATE")  # the other node is committing
    future = store.commit_soon(started_on(store, "waiting", ran_on), posted.append)
    started = time.monotonic()
    posted[0]()
    assert time.monotonic() - started < 1.0  # the hub went on (waiting, it would poll 30 s)
    time.sleep(0.2)
    assert not future.done()
    rival.execute("COMMIT")
    deadline = time.monotonic() + 10
    while not future.done() and time.monotonic() < deadline:  # its outcome is posted back
        while posted:
            posted.pop(0)()
        time.sleep(0.001)
    assert future.result() is True
    assert ran_on and ran_on[-1] != threading.get_ident()  # committed by the writer thread
    assert count(store) == 1


def run_posted_until(posted, condition, timeout=10.0):
    """Run what was posted to the hub (this thread) until ``condition()``."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        while posted:
            posted.pop(0)()
        time.sleep(0.001)
    return condition()


def test_with_synchronous_full_the_hub_commits_and_the_outcomes_wait_for_the_wal_fsync(
        tmp_path, monkeypatch):
    from webcont._dialects import SqliteLogStore
    store = open_store("sqlite:///%s?synchronous=full" % (tmp_path / "games.db"))
    release, syncing, synced = threading.Event(), threading.Event(), []
    original = SqliteLogStore.sync_journal

    def held(self):
        syncing.set()
        release.wait(10)
        original(self)
        synced.append(threading.get_ident())
    monkeypatch.setattr(SqliteLogStore, "sync_journal", held)
    try:
        posted, ran_on = [], []
        commits = store.commits
        futures = [store.commit_soon(started_on(store, chain, ran_on), posted.append)
                   for chain in ("a", "b", "c")]
        assert len(posted) == 1 and ran_on == []  # one flush, when the pass ends
        posted.pop()()
        # committed by the hub, in one transaction, but not shown before the fsync
        assert set(ran_on) == {threading.get_ident()} and store.commits == commits + 1
        assert count(store) == 3 and syncing.wait(10)
        later = store.commit_soon(started_on(store, "d", ran_on), posted.append)
        posted.pop()()  # the next pass commits while the fsync runs...
        time.sleep(0.1)
        assert posted == [] and not any(f.done() for f in futures + [later])
        release.set()
        # ...and its outcome waits for the next fsync: the WAL moved on since
        assert run_posted_until(posted, later.done)
        assert [future.result() for future in futures + [later]] == [True] * 4
        assert len(synced) == 2 and synced[0] != threading.get_ident()
        assert store.journal_syncs == 2
    finally:
        release.set()
        store.close()


def test_a_failed_wal_fsync_answers_store_unavailable_and_counts_the_store_as_down(
        tmp_path, monkeypatch):
    from webcont._dialects import SqliteLogStore

    def fails(self):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(SqliteLogStore, "sync_journal", fails)
    store = open_store("sqlite:///%s?synchronous=full" % (tmp_path / "games.db"))
    try:
        posted = []
        future = store.commit_soon(started_on(store, "a", []), posted.append)
        posted.pop()()
        assert run_posted_until(posted, future.done)
        with pytest.raises(StoreUnavailable, match="cannot sync .*Input/output error"):
            future.result()
        assert store.failure is not None and "cannot sync" in store.failure[0]
    finally:
        store.close()


def test_closing_a_full_store_settles_the_commits_waiting_for_their_fsync(tmp_path):
    store = open_store("sqlite:///%s?synchronous=full" % (tmp_path / "games.db"))
    posted = []
    future = store.commit_soon(started_on(store, "a", []), posted.append)
    posted.pop()()
    store.close()  # the sync thread finishes what it holds before it stops
    assert run_posted_until(posted, future.done) and future.result() is True
    reopened = open_store("sqlite:///%s?synchronous=full" % (tmp_path / "games.db"))
    try:
        assert count(reopened) == 1
    finally:
        reopened.close()


def test_a_group_the_writer_commits_comes_back_to_the_hub_in_one_post(tmp_path, monkeypatch):
    from webcont._dialects import SqliteLogStore
    monkeypatch.setattr(SqliteLogStore, "commits_here", False)  # as PostgreSQL does
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    try:
        posted, outcomes = [], []

        def fails(s, cursor):
            raise ValueError("this one fails alone")
        futures = [store.commit_soon(started_on(store, "a", []), posted.append),
                   store.commit_soon(fails, posted.append),
                   store.commit_soon(started_on(store, "b", []), posted.append)]
        posted.pop()()
        deadline = time.monotonic() + 10
        while not posted and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)
        assert len(posted) == 1 and not any(future.done() for future in futures)
        posted.pop()()  # on the hub: every outcome of the group at once
        for future in futures:
            outcomes.append(future.exception() or future.result())
        assert outcomes[0] is True and isinstance(outcomes[1], ValueError)
        assert outcomes[2] is True and count(store) == 2
    finally:
        store.close()


def test_the_secret_fingerprint_names_the_live_games_another_secret_would_lose(store_url):
    store = open_store(store_url)
    try:
        def check(fingerprint):
            return store.submit(lambda s, cursor: s.op_fingerprint(cursor, fingerprint)).result(10)
        assert check("A") == 0  # the first one is recorded
        assert start(store, "game").result(10) is True
        assert check("A") == 0
        assert check("B") == 1  # one game waits that B's ids cannot reach
        assert check("B") == 1  # and A stays the recorded one
        assert store.submit(lambda s, cursor: s.op_end(cursor, "game", "expired")).result(10)
        assert check("B") == 0  # nothing left to lose: B is recorded now
        assert check("A") == 0
    finally:
        store.close()


@pytest.mark.parametrize("url, shown", [
    ("postgresql://ann:s3cret@db.example/games", "postgresql://ann:***@db.example/games"),
    ("postgresql://ann@db.example/games", "postgresql://ann@db.example/games"),
    ("sqlite:///games.db", "sqlite:///games.db"),
])
def test_a_stores_address_in_logs_never_shows_its_password(url, shown):
    from webcont._storeerrors import hide_password
    assert hide_password(url) == shown


def test_a_hub_future_keeps_its_first_outcome_and_calls_back_late_callbacks_at_once():
    from webcont._hubcommits import HubFuture
    future, seen = HubFuture(), []
    future.add_done_callback(lambda done: seen.append(("early", done.result())))
    with pytest.raises(concurrent.futures.InvalidStateError):
        future.result()  # nothing blocks on the hub: not done yet is an error
    future.set_result(1)
    future.set_exception(ValueError("too late"))  # the first outcome wins
    future.add_done_callback(lambda done: seen.append(("late", done.result())))
    assert seen == [("early", 1), ("late", 1)] and future.exception() is None


def test_a_write_committed_at_once_goes_to_the_writer_thread_when_another_holds_the_lock(
        store_and_rival):
    store, rival = store_and_rival
    posted, ran_on = [], []
    rival.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    future = store.commit_soon(started_on(store, "waiting", ran_on), posted.append, now=True)
    assert time.monotonic() - started < 1.0 and not future.done()  # the hub went on
    rival.execute("COMMIT")
    assert run_posted_until(posted, future.done)
    assert future.result() is True and ran_on[-1] != threading.get_ident()


@pytest.mark.parametrize("here", [True, False])  # the hub commits, or the writer thread
@pytest.mark.parametrize("lost", [False, True])
def test_a_passs_step_records_are_written_together_and_a_lost_race_loses_alone(
        tmp_path, monkeypatch, lost, here):
    from webcont._dialects import SqliteLogStore
    monkeypatch.setattr(SqliteLogStore, "commits_here", here)
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    try:
        for chain in "abcd":
            assert start(store, chain).result(10) is True
        runs = []
        many = store.op_record_many
        monkeypatch.setattr(store, "op_record_many", lambda cursor, records: runs.append(
            [record.chain for record in records]) or many(cursor, records))
        posted = []
        events = [{"guess": ["7"]}, []]
        operations = [RecordStep("a", 1, events), RecordStep("b", 1, events),
                      lambda s, cursor: s.op_start(cursor, "e", "/", "v", [{}], 60),
                      RecordStep("c", 5 if lost else 1, events), RecordStep("d", 1, events)]
        futures = [store.commit_soon(operation, posted.append) for operation in operations]
        posted.pop(0)()
        assert run_posted_until(posted, lambda: all(future.done() for future in futures))
        assert [future.result(0) for future in futures] == [True, True, True, not lost, True]
        assert runs == [["a", "b"], ["c", "d"]]  # consecutive records, in order
        steps = {chain: store.read(lambda s, cursor, chain=chain: s.op_load(
            cursor, chain, 60)).result(10) for chain in "abcde"}
        assert {chain: record.step for chain, record in steps.items()} == \
            {"a": 2, "b": 2, "c": 1 if lost else 2, "d": 2, "e": 1}
        assert steps["d"].steps == [[{}], events]
    finally:
        store.close()



@pytest.mark.parametrize("here", [True, False])  # the hub commits, or the writer thread
@pytest.mark.parametrize("lost", [False, True])
def test_a_group_of_step_records_only_is_one_statement_outside_a_transaction(
        tmp_path, monkeypatch, lost, here):
    # each statement releases the GIL, and getting it back cost more than the SQL
    from webcont._dialects import SqliteLogStore
    monkeypatch.setattr(SqliteLogStore, "commits_here", here)
    statements, connect = [], SqliteLogStore.connect

    def traced(self):
        connection = connect(self)
        connection.connection.set_trace_callback(statements.append)
        return connection
    monkeypatch.setattr(SqliteLogStore, "connect", traced)
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    try:
        for chain in "abc":
            assert start(store, chain).result(10) is True
        del statements[:]
        posted, events = [], [{"guess": ["7"]}, []]
        futures = [store.commit_soon(RecordStep(chain, 7 if lost and chain == "b" else 1,
                                                events), posted.append) for chain in "abc"]
        posted.pop(0)()
        assert run_posted_until(posted, lambda: all(future.done() for future in futures))
        assert [future.result(0) for future in futures] == [True, not lost, True]
        # (the trigger's statements are traced with the text of the INSERT)
        ours = [text.split(" (")[0] for text in statements if not text.startswith("PRAGMA")]
        assert ours[0] == "INSERT INTO temp.webcont_record"
        if lost:  # undone whole, then sorted out in a transaction
            assert "BEGIN IMMEDIATE" in ours and ours[-1] == "COMMIT"
        else:
            assert set(ours) == {"INSERT INTO temp.webcont_record"}
        steps = {chain: store.read(lambda s, cursor, chain=chain: s.op_load(
            cursor, chain, 60)).result(10).step for chain in "abc"}
        assert steps == {"a": 2, "b": 1 if lost else 2, "c": 2}
    finally:
        store.close()


def test_the_file_a_full_store_fsyncs_is_the_wal_its_hub_commits_grow(tmp_path):
    # _walsync's durability rests on SQLite's WAL being ``<database>-wal``, written
    # by every commit of the hub's NORMAL connection: fails loudly if that changes
    path = tmp_path / "games.db"
    store = open_store("sqlite:///%s?synchronous=full" % path)
    try:
        hub = store._hub_commits._connect()
        writer = store.read(lambda s, cursor: cursor.execute("PRAGMA synchronous").fetchone())
        hub_mode = hub.cursor().execute("PRAGMA synchronous").fetchone()
        assert (hub_mode[0], writer.result(10)[0]) == (1, 2)  # NORMAL on the hub, FULL there
        wal = tmp_path / "games.db-wal"
        before = wal.stat().st_size
        posted = []
        future = store.commit_soon(started_on(store, "a", []), posted.append, now=True)
        assert wal.stat().st_size > before and not future.done()
        assert run_posted_until(posted, future.done) and future.result() is True
    finally:
        store.close()
