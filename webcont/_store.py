"""The durable event log: SQLite (default) or PostgreSQL, behind one writer thread.

A durable chain (one run of a durable controller) is a row in
``webcont_chains`` plus one row per recorded step in ``webcont_steps``: the
step's request input and the nondeterministic values the controller drew,
as JSON (never pickle).  Statements run on the store's own thread, which
commits in groups: it takes every operation queued while the previous
commit ran and executes them in ONE transaction (run again with each
operation in a savepoint if one fails, so it never spoils the others).
Callers get a ``concurrent.futures.Future``.  The one exception is
``commit_soon``: on SQLite the hub commits its steps itself, a group per
pass (``_hubcommits``).

A store that cannot be reached never holds anyone: the thread connects
(and reconnects after a connection error) once per group, and a group it
cannot connect for fails at once with ``StoreUnavailable``.  ``failure``
says since when the last connect or write failed; the hub answers 503
without queueing anything while that is recent (``_durable``).

What is stored and the operations on it are in ``_operations``; SQLite
and PostgreSQL, and opening a store from its URL, in ``_dialects``.
"""

import concurrent.futures
import logging
import threading
from collections import deque

from . import _clock
from ._hubcommits import HubCommits
from ._operations import SCHEMA, LogOperations, is_plain_record
from ._storeerrors import StoreUnavailable, hide_password, is_connection_error, one_line

log = logging.getLogger(__name__)

__all__ = ["LogStore", "StoreUnavailable"]


class LogStore(LogOperations):
    """The dialect-independent operations; subclasses connect and adapt SQL."""

    now_sql = None  # SQL for the store clock, seconds since the epoch
    # a local database (SQLite) is cheaper to commit from the calling thread than
    # through two thread hand-overs; a server over the network is not
    commits_here = False
    # the calling thread's commits are durable once ``sync_journal()`` returns,
    # not before (``_walsync``)
    syncs_after_commit = False
    clustered = ""  # after CREATE TABLE: rows stored in their primary key's order
    # commit_soon's connection checkpoints nothing itself: every this many
    # operations it asks the checkpoint thread to (_hubcommits)
    checkpoint_every = 256
    wal_restart_frames = None  # a journal that long is started over (SQLite's WAL)
    # a group's consecutive plain step records go to op_record_many together
    batches_steps = False

    def __init__(self, url):
        self.url = url
        self._queue = deque()
        self._wakeup = threading.Condition(threading.Lock())
        self._closing = False
        self._connection = None
        # (reason, monotonic time) of the last failed connect or write, None
        # once a write commits; written by the store thread, read anywhere
        self.failure = None
        self._ready = concurrent.futures.Future()  # the first connection attempt
        self.opened = False  # True once it is over (``failure`` says if it failed)
        # written by whoever commits, read anywhere (benchmarks, tests): how
        # many write transactions committed, holding how many operations
        self.commits = 0
        self.committed_operations = 0
        self._hub_commits = HubCommits(self)  # commit_soon's
        self._thread = threading.Thread(target=self._run, name="webcont-store", daemon=True)
        self._thread.start()

    @property
    def closed(self):
        """True once ``close`` began: every operation is refused (StoreUnavailable)."""
        return self._closing

    @property
    def where(self):
        """The store's URL with any password hidden (for logs and messages)."""
        return hide_password(self.url)

    @property
    def journal_syncs(self):
        """fsyncs made after the hub's commits so far (``syncs_after_commit``; benchmarks)."""
        syncer = self._hub_commits.syncer
        return syncer.syncs if syncer is not None else 0

    def wait_ready(self, timeout):
        """Wait for the first connection (never on the hub); raise ``StoreUnavailable``
        saying why if it failed or took longer than ``timeout`` seconds."""
        try:
            self._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            raise StoreUnavailable("cannot open %s: no answer within %g s"
                                   % (self.where, timeout)) from None

    # -- the store thread ---------------------------------------------------

    def submit(self, operation, read_only=False):
        """Queue ``operation(store, cursor)``; return a Future of its result (any thread).

        ``read_only`` operations run outside the group's write transaction, so
        they never hold the write lock other processes may be waiting for.
        """
        future = concurrent.futures.Future()
        with self._wakeup:
            if self._closing:
                raise StoreUnavailable("the store is closed")
            self._queue.append((operation, future, read_only))
            self._wakeup.notify()
        return future

    def read(self, operation):
        """``submit(operation, read_only=True)``."""
        return self.submit(operation, read_only=True)

    # -- commits made by the calling thread (the hub) ------------------------------

    def commit_soon(self, operation, post, now=False):
        """Queue a write that the calling thread commits itself; a Future of its result.

        ``now``: nothing else will join the group (the caller knows its pass
        ends with this write): commit it at once, with no ``post``, on stores
        that commit here.

        Every write queued this way before ``post`` runs the flush shares one
        transaction, committed on the calling thread with no thread
        hand-over (``commits_here`` stores: SQLite; ``_hubcommits``).  If
        another connection holds the write lock then, the batch goes to the
        writer thread, which waits for the lock; the caller never does.
        Other stores hand the batch to the writer thread then.  Only one
        thread may use it.
        """
        return self._hub_commits.add(operation, post, now)

    def enqueue_writes(self, batch):
        """Queue ``[(operation, future)]`` for the writer thread (any thread)."""
        with self._wakeup:
            if self._closing:
                for _, future in batch:
                    future.set_exception(StoreUnavailable("the store is closed"))
                return
            self._queue.extend((operation, future, False) for operation, future in batch)
            self._wakeup.notify()

    def close(self):
        """Finish queued operations, then stop the threads and close the connections."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        self._thread.join(30)
        self._hub_commits.close()

    def _run(self):
        connected = self._connect(first=True)
        self.opened = True  # (a plain attribute: the hub reads it at every flush)
        if connected:
            self._ready.set_result(None)
        else:
            self._ready.set_exception(StoreUnavailable(self.failure[0]))
        queue, wakeup = self._queue, self._wakeup
        while True:
            with wakeup:
                while not queue and not self._closing:
                    wakeup.wait()
                if not queue:
                    break
                batch = list(queue)  # group commit: everything queued meanwhile
                queue.clear()
            if self._connection is None and not self._connect():
                for _, future, _ in batch:  # fail fast: nobody waits on a dead store
                    future.set_exception(StoreUnavailable(self.failure[0]))
                continue
            self._commit_group(batch)
        self._disconnect()

    def _connect(self, first=False):
        """Connect and make the tables if needed; False (``failure`` set) if that fails.

        The first attempt's failure is not logged: it is raised to whoever
        opens the store (``wait_ready``), or answered as 503."""
        try:
            self._connection = self.connect()
            self._execute_schema()
            return True
        except Exception as exc:
            self._disconnect()
            self._failed("cannot open %s: %s" % (self.where, one_line(exc)), quiet=first)
            return False

    def _disconnect(self):
        """Close the writer's connection (the store thread)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def note_failure(self, reason):
        """Count the store as failed now (any thread: the hub, when it hangs)."""
        self._failed(reason)

    def _failed(self, reason, quiet=False):
        if self.failure is None and not quiet:  # one line when it goes down, not one per try
            log.error("durable store unavailable: %s", reason)
        self.failure = (reason, _clock.monotonic())

    def _commit_group(self, batch):
        reads = [item for item in batch if item[2]]
        writes = [item[:2] for item in batch if not item[2]]
        if reads:
            self._read_group(reads)
        if writes:
            self._write_group(writes)

    def _read_group(self, reads):
        cursor = None
        for operation, future, _ in reads:
            try:
                if cursor is None:
                    cursor = self._connection.cursor()
                result = self.run_read(operation, cursor)
                self.end_read()
                future.set_result(result)
            except Exception as exc:
                try:
                    self._connection.rollback()
                except Exception:
                    pass
                if is_connection_error(exc):
                    future.set_exception(StoreUnavailable(one_line(exc)))
                    self._failed("%s: %s" % (self.where, one_line(exc)))
                    self._disconnect()
                    if not self._connect():
                        for _, later, _ in reads:
                            if not later.done():
                                later.set_exception(StoreUnavailable(self.failure[0]))
                        return
                    cursor = None
                else:
                    future.set_exception(exc)

    def run_read(self, operation, cursor):
        """Run a read-only operation (a dialect may retry it)."""
        return operation(self, cursor)

    def end_read(self):
        """End the implicit transaction a read opened (PostgreSQL opens one)."""

    def _write_group(self, batch):
        if self._connection is None and not self._connect():  # lost during the reads
            for _, future in batch:
                future.set_exception(StoreUnavailable(self.failure[0]))
            return
        try:
            results = self.transaction(self._connection, batch)
        except Exception as exc:
            if is_connection_error(exc):
                self._failed("%s: %s" % (self.where, one_line(exc)))
            else:
                log.exception("store transaction failed (%d operation(s))", len(batch))
            try:
                self._connection.rollback()
            except Exception:
                pass
            self._disconnect()  # the next group connects afresh
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreUnavailable(one_line(exc)))
            return
        self.settle(results)

    def transaction(self, connection, batch, now=False):
        """Run ``batch`` in one transaction on ``connection``; [(future, result, error)].
        ``now`` (the hub): ``Busy`` at once if another holds the lock, no wait.

        Operations do not raise in the normal course (a lost compare-and-set
        returns False), so the batch first runs as it is; only if one raises
        is it rolled back and run again with each operation in a savepoint,
        so that the failing one leaves the others (two statements an
        operation less in the common case).
        """
        cursor = connection.cursor()
        results = self.record_alone(cursor, batch, now) if self.batches_steps else None
        if results is not None:
            return self._committed(results)
        begin = self.begin_now if now else self.begin
        begin(cursor)
        try:
            if self.batches_steps and len(batch) > 1:
                results = self._run_batched(cursor, batch)
            else:
                results = [(future, operation(self, cursor), None) for operation, future in batch]
        except Exception as exc:
            if is_connection_error(exc):
                raise  # the connection, not an operation: the whole group fails
            connection.rollback()
            if len(batch) == 1:
                return [(batch[0][1], None, exc)]  # nothing left to commit
            begin(cursor)
            results = self._one_by_one(cursor, batch)
        connection.commit()
        return self._committed(results)

    def _committed(self, results):
        self.commits += 1
        self.committed_operations += len(results)
        if self.failure is not None:
            log.info("durable store %s reachable again", self.where)
            self.failure = None
        return results

    def record_alone(self, cursor, batch, now):
        """``transaction``'s results, if this store committed ``batch`` without one
        (``now``: the transaction's, for how to meet a busy store); else None."""
        return None

    def _run_batched(self, cursor, batch):
        """``batch`` in order, each run of plain ``RecordStep``s by one
        ``op_record_many`` (one statement on SQLite): a pass's steps at c=8 cost
        one Python call into SQLite, not two each.  A lost compare-and-set
        raises ``_LostRace``: the group is rolled back and run again an
        operation at a time."""
        results, run = [], []
        for operation, future in batch + [(None, None)]:
            if is_plain_record(operation):
                run.append((operation, future))
                continue
            if len(run) > 1:
                if not self.op_record_many(cursor, [record for record, _ in run]):
                    raise _LostRace()
                results.extend((later, True, None) for _, later in run)
            elif run:
                results.append((run[0][1], run[0][0](self, cursor), None))
            run = []
            if operation is not None:
                results.append((future, operation(self, cursor), None))
        return results

    def _one_by_one(self, cursor, batch):
        results = []
        for number, (operation, future) in enumerate(batch):
            cursor.execute("SAVEPOINT op%d" % number)
            try:
                results.append((future, operation(self, cursor), None))
                cursor.execute("RELEASE SAVEPOINT op%d" % number)
            except Exception as exc:
                cursor.execute("ROLLBACK TO SAVEPOINT op%d" % number)
                cursor.execute("RELEASE SAVEPOINT op%d" % number)
                results.append((future, None, exc))
        return results

    @staticmethod
    def settle(results):
        """Complete the futures of ``transaction``'s results."""
        for future, result, error in results:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def _execute_schema(self):
        cursor = self._connection.cursor()
        for statement in SCHEMA:
            cursor.execute(statement.replace("{clustered}", self.clustered))
        self._connection.commit()

    # -- dialect hooks ----------------------------------------------------------

    def connect(self):
        raise NotImplementedError

    def connect_here(self):
        """The connection ``commit_soon``'s thread commits on."""
        return self.connect()

    def sync_journal(self):
        """Make every commit so far durable (``syncs_after_commit`` stores)."""
        raise NotImplementedError

    def checkpoint(self, cursor):
        """Move committed pages from the journal into the database (the checkpoint
        thread); the journal's length since it last started over, or None."""

    def begin(self, cursor):
        pass

    def begin_now(self, cursor):
        """Begin a write transaction, or raise ``Busy`` at once if another holds the lock."""
        self.begin(cursor)

    def sql(self, text):
        return text


class _LostRace(Exception):
    """A batched step record lost its compare-and-set (``_run_batched``)."""

