"""The two dialects of the event log, SQLite and PostgreSQL, and ``open_store``.

What each SQLite mode survives (WAL journal): ``synchronous=NORMAL`` (the
default) survives a crash of the process, but the last commits before a
power loss or OS crash may be lost; ``synchronous=FULL`` survives those too,
at the cost of an fsync per commit group.
"""

import os
import time
import urllib.parse

from . import _clock
from ._operations import is_plain_record
from ._store import LogStore
from ._storeerrors import Busy, StoreUnavailable, is_connection_error
from ._walsync import fdatasync

__all__ = ["SqliteLogStore", "PostgresLogStore", "parse_store_url", "open_store"]

#: seconds a connection attempt may take (PostgreSQL's connect_timeout)
CONNECT_TIMEOUT = 5
#: bytes of SQLite WAL file kept after it starts over (``checkpoint``)
WAL_SIZE_LIMIT = 16 << 20

class SqliteLogStore(LogStore):
    """SQLite in WAL mode; ``?synchronous=full`` for power-loss durability."""

    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
    clustered = " WITHOUT ROWID"  # one B-tree per log table instead of two (new stores)
    batches_steps = True  # a run of plain step records in one statement (op_record_many)
    commits_here = True
    # a WAL this long (frames: 8 MiB of 4 KiB pages) is started over by the
    # checkpoint thread's held pass (_checkpoint); each holds the hub's
    # commits for about a millisecond: one every 256 operations cost the p99
    # at c=8 0.8 ms (bench/durable.py), one every ~1000 steps costs none
    wal_restart_frames = 2048

    def __init__(self, url, path, synchronous="NORMAL"):
        self.path = path
        self.synchronous = synchronous
        # FULL's fsync inside COMMIT held whoever committed; the hub commits as
        # NORMAL and _walsync fsyncs the WAL before anyone sees the outcome
        self.syncs_after_commit = synchronous.upper() == "FULL"
        super().__init__(url)

    def sync_journal(self):
        """fsync the WAL file: every commit written to it so far is on disk (_walsync)."""
        # opened afresh each time: while the hub's connection is open SQLite
        # keeps this file, and a descriptor kept across a close could name a
        # deleted one
        fd = os.open(self.path + "-wal", os.O_RDWR)
        try:
            fdatasync(fd)
        finally:
            os.close(fd)

    def connect(self):
        import sqlite3
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        # timeout=0: no SQLite busy handler, _retry_busy polls instead
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        _retry_busy(lambda: connection.execute("PRAGMA journal_mode=WAL"))
        connection.execute("PRAGMA synchronous=%s" % self.synchronous)
        # the WAL file shrinks back to this when a commit starts it over
        connection.execute("PRAGMA journal_size_limit=%d" % WAL_SIZE_LIMIT)
        for statement in _RECORD_VIEW:  # (TEMP: this connection's, not the file's)
            connection.execute(statement.replace("{now}", self.now_sql))
        return _AutoBegin(connection)

    def op_record_many(self, cursor, records):
        """Record the plain ``RecordStep``s ``records``: False (roll back) if any
        lost its compare-and-set.  One statement a run (the TEMP trigger of
        ``_RECORD_VIEW`` records each row as ``op_record`` does), not two a
        record by ``executemany``: SQLite releases the GIL once a statement,
        and each time the other thread (the hub for the writer thread,
        waitress' loop for the hub) may keep it."""
        import sqlite3
        for start in range(0, len(records), _RECORDS_PER_STATEMENT):
            part = records[start:start + _RECORDS_PER_STATEMENT]
            try:
                cursor.execute(_RECORD_ROWS + ", ".join(["(?, ?, ?)"] * len(part)),
                               [value for record in part
                                for value in (record.chain, record.step, record.text)])
            except sqlite3.IntegrityError as exc:
                if str(exc) == _LOST:  # (the statement is undone, the others are not)
                    return False
                raise
        return True

    def record_alone(self, cursor, batch, now):
        """A group of plain step records only, the common one (every step a hub
        pass answered), is one autocommit statement (``op_record_many``) instead
        of BEGIN, it and COMMIT: SQLite releases the GIL at each statement, and
        at c=8 getting it back from waitress' thread cost more than the SQL.
        None (a transaction, then) for any other group, or one that lost a
        compare-and-set or failed: it is undone, and the transaction sorts
        them out."""
        if len(batch) > _RECORDS_PER_STATEMENT:
            return None
        records = [operation for operation, _ in batch]
        if not all(map(is_plain_record, records)):
            return None
        try:
            # as BEGIN would meet a busy store: Busy on the hub, a wait elsewhere
            recorded = (_now_or_busy if now else _retry_busy)(
                lambda: self.op_record_many(cursor, records))
        except Busy:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise  # as in a transaction: the whole group fails
            return None
        if not recorded:
            return None
        return [(future, True, None) for _, future in batch]

    def connect_here(self):
        connection = self.connect()
        # a checkpoint run by a COMMIT on the hub copied the WAL into the file
        # (and, with NORMAL, fsynced it) while every request waited: 15-20 us a
        # step on average, in spikes; the checkpoint thread does it instead
        connection.connection.execute("PRAGMA wal_autocheckpoint=0")
        if self.syncs_after_commit:
            connection.connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def checkpoint(self, cursor):
        """A PASSIVE checkpoint; returns the frames in the WAL since it last started over."""
        return cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]

    def _execute_schema(self):
        _retry_busy(super()._execute_schema)  # idempotent: CREATE ... IF NOT EXISTS

    def begin(self, cursor):
        _retry_busy(lambda: cursor.execute("BEGIN IMMEDIATE"))

    def begin_now(self, cursor):
        _now_or_busy(lambda: cursor.execute("BEGIN IMMEDIATE"))

    def run_read(self, operation, cursor):
        return _retry_busy(lambda: operation(self, cursor))


#: step records in one statement of op_record_many (3 parameters each, 999 at most)
_RECORDS_PER_STATEMENT = 300
#: what the trigger of _RECORD_VIEW aborts with when a chain is not at the step
_LOST = "webcont: the chain is not at that step"
_RECORD_ROWS = "INSERT INTO temp.webcont_record (chain, step, events) VALUES "
_RECORD_VIEW = [
    "CREATE TEMP VIEW IF NOT EXISTS webcont_record AS"
    " SELECT NULL AS chain, NULL AS step, NULL AS events WHERE 0",
    "CREATE TEMP TRIGGER IF NOT EXISTS webcont_record_step"
    " INSTEAD OF INSERT ON webcont_record BEGIN"
    " SELECT RAISE(ABORT, '%s') WHERE NOT EXISTS (SELECT 1 FROM webcont_chains"
    "  WHERE chain = NEW.chain AND step = NEW.step AND state = 'live');"
    " UPDATE webcont_chains SET step = step + 1, updated = {now} WHERE chain = NEW.chain;"
    " INSERT INTO webcont_steps (chain, step, events) VALUES (NEW.chain, NEW.step, NEW.events);"
    " END" % _LOST,
]


def _now_or_busy(action):
    """``action()``, or ``Busy`` raised if another connection holds SQLite's lock."""
    import sqlite3
    try:
        return action()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise Busy() from None
        raise


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
    """An SQLite connection in autocommit mode whose commit/rollback are explicit.

    Its users run one statement at a time, so one cursor serves them all: a
    new cursor per transaction and per COMMIT cost ~1.5 us a step on the hub.
    """

    def __init__(self, connection):
        self.connection = connection
        self._cursor = connection.cursor()

    def cursor(self):
        return self._cursor

    def commit(self):
        if self.connection.in_transaction:
            self._cursor.execute("COMMIT")

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
