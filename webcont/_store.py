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
pass, because a local commit costs less than the two thread hand-overs
(bench/durable.py); when another process holds the lock the group goes
to the writer thread, so the hub never waits for a lock.

A store that cannot be reached never holds anyone: the thread connects
(and reconnects after a connection error) once per group, and a group it
cannot connect for fails at once with ``StoreUnavailable``.  ``failure``
says since when the last connect or write failed; the hub answers 503
without queueing anything while that is recent (``_durable``).

Recording a step is a compare-and-set on the chain's step counter
(``UPDATE ... WHERE step = ?``): when two processes race to answer the same
step, exactly one wins and the other learns it lost.  Deadlines are computed
with the store's clock, so several machines agree on them.

What each SQLite mode survives (WAL journal): ``synchronous=NORMAL`` (the
default) survives a crash of the process, but the last commits before a
power loss or OS crash may be lost; ``synchronous=FULL`` survives those too,
at the cost of an fsync per commit group.
"""

import concurrent.futures
import json
import logging
import os
import threading
import time
import urllib.parse
from collections import deque

from . import _clock

log = logging.getLogger(__name__)

__all__ = ["open_store", "LogStore", "StoreUnavailable", "ChainRecord"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS webcont_chains (
        chain TEXT PRIMARY KEY,
        route TEXT NOT NULL,
        version TEXT NOT NULL,
        step INTEGER NOT NULL,
        state TEXT NOT NULL,
        deadline DOUBLE PRECISION,
        final TEXT,
        updated DOUBLE PRECISION NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS webcont_chains_due ON webcont_chains (state, deadline)",
    """CREATE TABLE IF NOT EXISTS webcont_meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS webcont_steps (
        chain TEXT NOT NULL,
        step INTEGER NOT NULL,
        events TEXT NOT NULL,
        PRIMARY KEY (chain, step)){clustered}""",
    # req.to_thread results of a step not recorded yet: committed before the
    # controller goes on, so that a crash before the step's own commit does
    # not run the call again for the same answer (deleted with the step)
    """CREATE TABLE IF NOT EXISTS webcont_calls (
        chain TEXT NOT NULL,
        step INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        input TEXT NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (chain, step, seq)){clustered}""",
]


class StoreUnavailable(Exception):
    """The store could not be reached or the transaction failed."""


class _Busy(Exception):
    """Another connection holds the write lock (``begin_now``)."""


#: seconds a connection attempt may take (PostgreSQL's connect_timeout)
CONNECT_TIMEOUT = 5


class ChainRecord:
    """A chain as loaded from the store: its row and its recorded steps."""

    __slots__ = ("chain", "route", "version", "step", "state", "final", "remaining", "steps",
                 "size", "calls")

    def __init__(self, chain, route, version, step, state, final, remaining, steps, size=0,
                 calls=()):
        self.chain = chain
        self.route = route
        self.version = version
        self.step = step            # steps recorded so far
        self.state = state          # "live", "done", "expired", "failed" or "broken"
        self.final = final          # a finished chain's last answer and page (JSON)
        self.remaining = remaining  # seconds to its deadline (store clock), if live
        self.steps = steps          # [events, ...] decoded from JSON, in order
        self.size = size            # UTF-8 bytes of the steps' JSON (max_game_bytes)
        self.calls = calls          # [(input, outcome), ...] of the step in progress (op_call)


class LogStore:
    """The dialect-independent operations; subclasses connect and adapt SQL."""

    now_sql = None  # SQL for the store clock, seconds since the epoch
    # a local database (SQLite) is cheaper to commit from the calling thread than
    # through two thread hand-overs; a server over the network is not
    commits_here = False
    clustered = ""  # after CREATE TABLE: rows stored in their primary key's order
    # commit_soon's connection checkpoints nothing itself: every this many
    # operations it asks the writer thread to (see SqliteLogStore.connect_here)
    checkpoint_every = 256

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
        # written by whoever commits, read anywhere (benchmarks, tests): how
        # many write transactions committed, holding how many operations
        self.commits = 0
        self.committed_operations = 0
        self._here = None        # (thread id, connection) of commit_soon's caller
        self._here_batch = []    # that thread's writes not yet committed
        self._here_operations = 0  # committed there since the last checkpoint
        self._thread = threading.Thread(target=self._run, name="webcont-store", daemon=True)
        self._thread.start()

    @property
    def where(self):
        """The store's URL with any password hidden (for logs and messages)."""
        return hide_password(self.url)

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

    def commit_soon(self, operation, post):
        """Queue a write that the calling thread commits itself; a Future of its result.

        Every write queued this way before ``post`` runs the flush shares one
        transaction, committed on the calling thread with no thread
        hand-over (``commits_here`` stores: SQLite).  If another connection
        holds the write lock then, the batch goes to the writer thread,
        which waits for the lock; the caller never does.  Other stores
        queue to the writer thread at once.  Only one thread may use it.
        """
        if not self.commits_here:
            return self.submit(operation)
        future = concurrent.futures.Future()
        self._here_batch.append((operation, future))
        if len(self._here_batch) == 1:
            post(self._flush_here)
        return future

    def _flush_here(self):
        batch, self._here_batch = self._here_batch, []
        if not batch:
            return
        if not self._ready.done() or self.failure is not None:
            self._enqueue_writes(batch)  # not connected yet, or failing: the writer's turn
            return
        try:
            connection = self._here_connection()
            results = self._transaction(connection, batch, self.begin_now)
            self._here_operations += len(batch)
            if self._here_operations >= self.checkpoint_every:
                self._here_operations = 0
                self.read(lambda store, cursor: store.checkpoint(cursor))
        except _Busy:
            self._enqueue_writes(batch)
            return
        except Exception as exc:
            if not _is_connection_error(exc):  # (the writer logs the store going down)
                log.exception("store transaction failed (%d operation(s))", len(batch))
            self._drop_here()
            self._enqueue_writes(batch)  # the writer thread retries, reconnecting if need be
            return
        self._settle(results)

    def _here_connection(self):
        me = threading.get_ident()
        if self._here is None or self._here[0] != me:
            self._drop_here()
            self._here = (me, self.connect_here())
        return self._here[1]

    def _drop_here(self):
        here, self._here = self._here, None
        if here is not None:
            try:
                here[1].rollback()
                here[1].close()
            except Exception:
                pass

    def _enqueue_writes(self, batch):
        with self._wakeup:
            if self._closing:
                for _, future in batch:
                    future.set_exception(StoreUnavailable("the store is closed"))
                return
            self._queue.extend((operation, future, False) for operation, future in batch)
            self._wakeup.notify()

    def close(self):
        """Finish queued operations, then stop the thread and close the connection."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        self._thread.join(30)

    def _run(self):
        if self._connect(first=True):
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
        self._drop_here()  # (its thread is idle or gone by now: close() is called last)

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
            self._failed("cannot open %s: %s" % (self.where, _one_line(exc)), quiet=first)
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
                if _is_connection_error(exc):
                    future.set_exception(StoreUnavailable(_one_line(exc)))
                    self._failed("%s: %s" % (self.where, _one_line(exc)))
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
            results = self._transaction(self._connection, batch, self.begin)
        except Exception as exc:
            if _is_connection_error(exc):
                self._failed("%s: %s" % (self.where, _one_line(exc)))
            else:
                log.exception("store transaction failed (%d operation(s))", len(batch))
            try:
                self._connection.rollback()
            except Exception:
                pass
            self._disconnect()  # the next group connects afresh
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreUnavailable(_one_line(exc)))
            return
        except Exception as exc:
            if _is_connection_error(exc):
                self._failed("%s: %s" % (self.where, _one_line(exc)))
            else:
                log.exception("store transaction failed (%d operation(s))", len(batch))
            try:
                self._connection.rollback()
            except Exception:
                pass
            self._disconnect()  # the next group connects afresh
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreUnavailable(_one_line(exc)))
            return
        self._settle(results)

    def _transaction(self, connection, batch, begin):
        """Run ``batch`` in one transaction on ``connection``; [(future, result, error)].

        Operations do not raise in the normal course (a lost compare-and-set
        returns False), so the batch first runs as it is; only if one raises
        is it rolled back and run again with each operation in a savepoint,
        so that the failing one leaves the others (two statements an
        operation less in the common case).
        """
        cursor = connection.cursor()
        begin(cursor)
        try:
            results = [(future, operation(self, cursor), None) for operation, future in batch]
        except Exception as exc:
            if _is_connection_error(exc):
                raise  # the connection, not an operation: the whole group fails
            connection.rollback()
            if len(batch) == 1:
                return [(batch[0][1], None, exc)]  # nothing left to commit
            begin(cursor)
            results = self._one_by_one(cursor, batch)
        connection.commit()
        self.commits += 1
        self.committed_operations += len(batch)
        if self.failure is not None:
            log.info("durable store %s reachable again", self.where)
            self.failure = None
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
    def _settle(results):
        for future, result, error in results:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    def _execute_schema(self):
        cursor = self._connection.cursor()
        for statement in _SCHEMA:
            cursor.execute(statement.replace("{clustered}", self.clustered))
        self._connection.commit()

    # -- dialect hooks ----------------------------------------------------------

    def connect(self):
        raise NotImplementedError

    def connect_here(self):
        """The connection ``commit_soon``'s thread commits on."""
        return self.connect()

    def checkpoint(self, cursor):
        """Move committed pages from the journal into the database (the writer thread)."""

    def begin(self, cursor):
        pass

    def begin_now(self, cursor):
        """Begin a write transaction, or raise ``_Busy`` at once if another holds the lock."""
        self.begin(cursor)

    def sql(self, text):
        return text

    # -- the operations (run on the store thread, inside the group transaction) --

    def op_start(self, cursor, chain, route, version, events, timeout):
        """Create ``chain`` with its first step (step 0) recorded."""
        cursor.execute(self.sql(
            "INSERT INTO webcont_chains (chain, route, version, step, state, deadline, updated)"
            " VALUES (?, ?, ?, 1, 'live', %s + ?, %s)" % (self.now_sql, self.now_sql)),
            (chain, route, version, timeout))
        cursor.execute(self.sql("INSERT INTO webcont_steps (chain, step, events) VALUES (?, 0, ?)"),
                       (chain, _dumps(events)))
        return True

    def op_record(self, cursor, chain, step, events, timeout, final=None):
        """Record step ``step`` if the chain still waits for it (compare-and-set).

        With ``final`` the controller finished: the chain becomes a small
        tombstone keeping its last page, and its log is deleted.  Returns
        False if another request or process recorded that step first.
        """
        if final is None:
            cursor.execute(self.sql(
                "UPDATE webcont_chains SET step = step + 1, deadline = %s + ?, updated = %s"
                " WHERE chain = ? AND step = ? AND state = 'live'" % (self.now_sql, self.now_sql)),
                (timeout, chain, step))
            if cursor.rowcount != 1:
                return False
            cursor.execute(self.sql(
                "INSERT INTO webcont_steps (chain, step, events) VALUES (?, ?, ?)"),
                (chain, step, _dumps(events)))
            if _made_calls(events):  # now in the step's events
                cursor.execute(self.sql("DELETE FROM webcont_calls WHERE chain = ?"), (chain,))
            return True
        cursor.execute(self.sql(
            "UPDATE webcont_chains SET step = step + 1, state = 'done', deadline = NULL,"
            " final = ?, updated = %s WHERE chain = ? AND step = ? AND state = 'live'"
            % self.now_sql), (final, chain, step))
        if cursor.rowcount != 1:
            return False
        cursor.execute(self.sql("DELETE FROM webcont_steps WHERE chain = ?"), (chain,))
        if _made_calls(events):
            cursor.execute(self.sql("DELETE FROM webcont_calls WHERE chain = ?"), (chain,))
        return True

    def op_load(self, cursor, chain):
        """The chain and all its steps in one query, or None."""
        cursor.execute(self.sql(
            "SELECT c.route, c.version, c.step, c.state, c.final, c.deadline - %s, s.events"
            " FROM webcont_chains c LEFT JOIN webcont_steps s ON s.chain = c.chain"
            " WHERE c.chain = ? ORDER BY s.step" % self.now_sql), (chain,))
        rows = cursor.fetchall()
        if not rows:
            return None
        route, version, step, state, final, remaining, _ = rows[0]
        # one parse of all the steps: five times faster than a parse per row
        # (here, on the store thread: a long log costs the hub nothing to parse)
        text = ",".join(row[6] for row in rows if row[6] is not None)
        steps = json.loads("[%s]" % text)
        size = len(text.encode("utf-8")) - max(len(steps) - 1, 0)  # without the commas
        calls = ()
        if state == "live":
            cursor.execute(self.sql("SELECT input, outcome FROM webcont_calls"
                                    " WHERE chain = ? AND step = ? ORDER BY seq"), (chain, step))
            calls = [(json.loads(input), json.loads(outcome)) for input, outcome in cursor]
        return ChainRecord(chain, route, version, step, state, final,
                           0.0 if remaining is None else float(remaining), steps, size, calls)

    def op_call(self, cursor, chain, step, seq, input, outcome):
        """Record the outcome of call ``seq`` of step ``step`` (still unrecorded).

        Returns False if the chain is no longer live at that step.
        """
        cursor.execute(self.sql("SELECT step FROM webcont_chains WHERE chain = ? AND"
                                " state = 'live'"), (chain,))
        row = cursor.fetchone()
        if row is None or row[0] != step:
            return False
        cursor.execute(self.sql("DELETE FROM webcont_calls WHERE chain = ? AND step = ?"
                                " AND seq >= ?"), (chain, step, seq))
        cursor.execute(self.sql("INSERT INTO webcont_calls (chain, step, seq, input, outcome)"
                                " VALUES (?, ?, ?, ?, ?)"),
                       (chain, step, seq, _dumps(input), _dumps(outcome)))
        return True

    def op_due(self, cursor, limit):
        """Up to ``limit`` live chains past their deadline, oldest first (index scan)."""
        cursor.execute(self.sql(
            "SELECT chain FROM webcont_chains WHERE state = 'live' AND deadline < %s"
            " ORDER BY deadline LIMIT ?" % self.now_sql), (limit,))
        return [row[0] for row in cursor.fetchall()]

    def op_end(self, cursor, chain, state, step=None):
        """Mark a live chain ``expired``, ``failed`` or ``broken``; delete its log.

        With ``step``, only if the chain is still at that step.
        """
        condition = "" if step is None else " AND step = %d" % int(step)
        cursor.execute(self.sql(
            "UPDATE webcont_chains SET state = ?, deadline = NULL, updated = %s"
            " WHERE chain = ? AND state = 'live'%s" % (self.now_sql, condition)),
            (state, chain))
        ended = cursor.rowcount == 1
        if ended:
            cursor.execute(self.sql("DELETE FROM webcont_steps WHERE chain = ?"), (chain,))
            cursor.execute(self.sql("DELETE FROM webcont_calls WHERE chain = ?"), (chain,))
        return ended

    def op_purge(self, cursor, older_than):
        """Forget tombstones not touched for ``older_than`` seconds.

        Two ranges of the ``(state, deadline)`` index instead of ``<> 'live'``,
        which SQLite answers by scanning every chain: ~150 ms a sweep with
        a million live games, holding the write lock and the store thread
        that resumes wait for (bench/million.py).
        """
        cursor.execute(self.sql(
            "DELETE FROM webcont_chains WHERE (state < 'live' OR state > 'live')"
            " AND updated < %s - ?" % self.now_sql), (older_than,))
        return cursor.rowcount

    def op_steps(self, cursor, chains):
        """``{chain: step}`` of the live chains among ``chains``."""
        result = {}
        for start in range(0, len(chains), 500):
            part = chains[start:start + 500]
            cursor.execute(self.sql(
                "SELECT chain, step FROM webcont_chains WHERE state = 'live' AND chain IN (%s)"
                % ", ".join("?" * len(part))), part)
            result.update(cursor.fetchall())
        return result

    def op_secret(self, cursor, candidate):
        """The id secret kept in the store, created as ``candidate`` if there is none."""
        cursor.execute(self.sql("INSERT INTO webcont_meta (name, value) VALUES ('secret', ?)"
                                " ON CONFLICT (name) DO NOTHING"), (candidate,))
        cursor.execute("SELECT value FROM webcont_meta WHERE name = 'secret'")
        return cursor.fetchone()[0]

    def op_fingerprint(self, cursor, fingerprint):
        """How many live chains were started with a secret whose fingerprint
        is not ``fingerprint`` (0 if it is the one recorded).  With no live
        chain left, ``fingerprint`` becomes the recorded one."""
        cursor.execute(self.sql("INSERT INTO webcont_meta (name, value) VALUES"
                                " ('secret fingerprint', ?) ON CONFLICT (name) DO NOTHING"),
                       (fingerprint,))
        cursor.execute("SELECT value FROM webcont_meta WHERE name = 'secret fingerprint'")
        if cursor.fetchone()[0] == fingerprint:
            return 0
        cursor.execute("SELECT COUNT(*) FROM webcont_chains WHERE state = 'live'")
        others = cursor.fetchone()[0]
        if not others:  # nothing to lose: this secret's games are the store's from now on
            cursor.execute(self.sql("UPDATE webcont_meta SET value = ?"
                                    " WHERE name = 'secret fingerprint'"), (fingerprint,))
        return others

    def op_ping(self, cursor):
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0] == 1

    def op_touch(self, cursor):
        """A real write (the health check's): a store that only reads is not healthy."""
        cursor.execute(self.sql("INSERT INTO webcont_meta (name, value) VALUES ('alive', ?)"
                                " ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
                       (repr(time.time()),))
        return True

    def op_size(self, cursor):
        """(chains, steps, bytes of step events): for benchmarks and tests."""
        cursor.execute("SELECT COUNT(*) FROM webcont_chains")
        chains = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(events)), 0) FROM webcont_steps")
        steps, size = cursor.fetchone()
        return chains, steps, size


def _one_line(exc):
    """``exc`` as one short log line (drivers' messages run over several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def hide_password(url):
    """``url`` with the password of its user part replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":%s@" % parts.password, ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _is_connection_error(exc):
    """Whether ``exc`` means the connection is unusable (reconnect), not a bad query."""
    name = type(exc).__name__
    return name in ("OperationalError", "InterfaceError") or isinstance(exc, OSError)


def _made_calls(events):
    """True if a step's events (``[input, draws]``) hold a ``req.to_thread`` call."""
    return any(draw[0] == "call" for draw in events[1])


def _dumps(events):
    return json.dumps(events, separators=(",", ":"), ensure_ascii=False)


class SqliteLogStore(LogStore):
    """SQLite in WAL mode; ``?synchronous=full`` for power-loss durability."""

    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
    commits_here = True
    clustered = " WITHOUT ROWID"  # one B-tree per log table instead of two (new stores)

    def __init__(self, url, path, synchronous="NORMAL"):
        self.path = path
        self.synchronous = synchronous
        super().__init__(url)

    @property
    def commits_here(self):
        # FULL's fsync would hold the hub: the writer thread waits for it while the
        # hub goes on (bench/durable.py, c=8: 0.72x in-memory there, 0.63x on the hub)
        return self.synchronous.upper() != "FULL"

    def connect(self):
        import sqlite3
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        # timeout=0: no SQLite busy handler, _retry_busy polls instead
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        _retry_busy(lambda: connection.execute("PRAGMA journal_mode=WAL"))
        connection.execute("PRAGMA synchronous=%s" % self.synchronous)
        return _AutoBegin(connection)

    def connect_here(self):
        connection = self.connect()
        # a checkpoint run by a COMMIT on the hub copied the WAL into the file
        # (and, with NORMAL, fsynced it) while every request waited: 15-20 us a
        # step on average, in spikes; the writer thread checkpoints instead
        connection.connection.execute("PRAGMA wal_autocheckpoint=0")
        return connection

    def checkpoint(self, cursor):
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _execute_schema(self):
        _retry_busy(super()._execute_schema)  # idempotent: CREATE ... IF NOT EXISTS

    def begin(self, cursor):
        _retry_busy(lambda: cursor.execute("BEGIN IMMEDIATE"))

    def begin_now(self, cursor):
        import sqlite3
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise _Busy() from None
            raise

    def run_read(self, operation, cursor):
        return _retry_busy(lambda: operation(self, cursor))


def _retry_busy(action, timeout=30.0):
    """``action()``, tried again while another connection holds SQLite's lock.

    Two processes on one file take turns at the write lock, each for the
    tens of microseconds of a commit.  SQLite's own busy handler sleeps 1,
    2, 5, 10 ms... between tries, so a node lost milliseconds whenever the
    other one was committing (measured with two nodes: 3-9% of transactions
    waited over 0.8 ms).  Polling from 20 us up to 2 ms costs far less.
    """
    import sqlite3
    delay, deadline = 20e-6, None
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            now = _clock.monotonic()
            if deadline is None:
                deadline = now + timeout  # from the first refusal: no clock read when free
            elif now > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


class _AutoBegin:
    """An SQLite connection in autocommit mode whose commit/rollback are explicit."""

    def __init__(self, connection):
        self.connection = connection

    def cursor(self):
        return self.connection.cursor()

    def commit(self):
        if self.connection.in_transaction:
            self.connection.execute("COMMIT")

    def rollback(self):
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def close(self):
        self.connection.close()


class PostgresLogStore(LogStore):
    """PostgreSQL through psycopg 3 (the ``[postgres]`` extra)."""

    now_sql = "extract(epoch from clock_timestamp())::double precision"

    def connect(self):
        try:
            import psycopg
        except ImportError:
            raise StoreUnavailable("postgresql:// stores need psycopg 3:"
                                   " install the [postgres] extra (pip install -e '.[postgres]'"
                                   " in a checkout of this project)") from None
        options = {} if "connect_timeout" in self.url else {"connect_timeout": CONNECT_TIMEOUT}
        return psycopg.connect(self.url, **options)

    def sql(self, text):
        return text.replace("?", "%s")

    def end_read(self):
        self._connection.rollback()  # end the read's transaction: no idle-in-transaction


def parse_store_url(url):
    """Check a store URL without opening it: ``("sqlite", path, synchronous)`` or
    ``("postgresql", url, None)``; ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(url, str):
        raise ValueError("the store is a URL string, not %r" % (url,))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "sqlite":
        path = url[len("sqlite:///"):].split("?")[0] if url.startswith("sqlite:///") else ""
        if not path:
            raise ValueError("sqlite store URL needs a path: sqlite:///file.db")
        options = urllib.parse.parse_qs(parts.query)
        synchronous = options.get("synchronous", ["normal"])[0].upper()
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be normal or full, not %r" % synchronous)
        return "sqlite", path, synchronous
    if parts.scheme in ("postgresql", "postgres"):
        return "postgresql", url, None
    raise ValueError("unsupported store URL %r: use sqlite:///path or postgresql://..." % url)


def open_store(url, wait=30.0):
    """Open the log store named by ``url``.

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (add
    ``?synchronous=full`` for FULL), or ``postgresql://user@host/db``.
    Waits up to ``wait`` seconds for it to connect (``StoreUnavailable`` if
    it cannot); with ``wait=None`` it returns at once and connects on its
    own thread (operations queued meanwhile run once it has).
    """
    kind, where, synchronous = parse_store_url(url)
    if kind == "sqlite":
        store = SqliteLogStore(url, where, synchronous)
    else:
        store = PostgresLogStore(where)
    if wait is not None:
        try:
            store.wait_ready(wait)
        except StoreUnavailable:
            store.close()
            raise
    return store
