"""bench/million.py's work on the store itself: cloning games by SQL, sampling
unloaded ones, and what the store holds (bytes by table, events, a sweep's cost).

Everything here reads or writes the store directly (through the app's
``LogStore`` threads, or SQLite in a child process), never through the app.
"""

import os
import sqlite3
import subprocess
import sys
import time

#: the script the cloning child runs (``--clone-into``), which calls ``clone_rows``
MILLION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "million.py")


def clone(server, path, total, batch):
    """Clone the store's live games up to ``total`` chains, ``batch`` per
    transaction, in a child process (its SQLite cache is not this process'
    memory); then checkpoint the WAL.  Returns how many clones were written."""
    missing = total - server.app._chains.store.read(
        lambda store, cursor: live_count(cursor)).result(60)
    if missing > 0:
        subprocess.run([sys.executable, MILLION, "--clone-into", path,
                        "--games", str(missing), "--batch", str(batch)], check=True)
    return max(missing, 0)


def clone_rows(path, count, batch):
    """(child process) ``count`` clones of the live games in the store at ``path``."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=60)
    connection.execute("PRAGMA cache_size = -1000000")  # KiB: the indexes stay in memory
    cursor = connection.cursor()
    cursor.execute("CREATE TEMP TABLE templates (k INTEGER PRIMARY KEY, chain TEXT)")
    cursor.execute("INSERT INTO templates (k, chain) SELECT row_number() OVER"
                   " (ORDER BY rowid) - 1, chain FROM webcont_chains WHERE state = 'live'")
    real = cursor.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
    for first in range(0, count, batch):
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute(
            "CREATE TEMP TABLE batch AS WITH RECURSIVE n(i) AS (SELECT ? UNION ALL"
            " SELECT i + 1 FROM n WHERE i < ?) SELECT i, hex(randomblob(19)) AS chain,"
            " (SELECT chain FROM templates WHERE k = i %% %d) AS template FROM n"
            % real, (first, min(first + batch, count) - 1))
        cursor.execute(
            "INSERT INTO webcont_chains (chain, route, version, step, state, deadline,"
            " final, updated) SELECT b.chain, c.route, c.version, c.step, c.state,"
            " c.deadline, c.final, c.updated FROM batch b JOIN webcont_chains c"
            " ON c.chain = b.template ORDER BY b.i")
        cursor.execute(
            "INSERT INTO webcont_steps (chain, step, events) SELECT b.chain, s.step,"
            " s.events FROM batch b JOIN webcont_steps s ON s.chain = b.template"
            " ORDER BY b.i, s.step")
        cursor.execute("DROP TABLE temp.batch")
        cursor.execute("COMMIT")
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def sample_unloaded(server, count, rng):
    """``count`` random live chains not in memory: [(chain, step)]."""
    live = server.app._chains.live

    def pick(store, cursor):
        cursor.execute("SELECT MAX(rowid) FROM webcont_chains")
        top = cursor.fetchone()[0]
        found = {}
        while len(found) < count:
            rowids = [rng.randint(1, top) for _ in range(2 * (count - len(found)))]
            cursor.execute("SELECT chain, step FROM webcont_chains WHERE state = 'live'"
                           " AND rowid IN (%s)" % ",".join(map(str, rowids)))
            for chain, step in cursor.fetchall():
                if chain not in live and len(found) < count:
                    found[chain] = step
        return list(found.items())
    return server.app._chains.store.read(pick).result(60)


def time_sweep(server):
    """Seconds of the store work of one expiry sweep pass (due games, purge), which
    holds the store thread that every unloaded resume's read waits for."""
    store, ttl = server.app._chains.store, server.app.tombstone_timeout
    timeout = server.app.continuation_timeout
    t0 = time.perf_counter()
    store.submit(lambda store, cursor: store.op_due(cursor, 100, timeout)).result(60)
    store.submit(lambda store, cursor: store.op_purge(cursor, ttl)).result(60)
    return time.perf_counter() - t0


def store_breakdown(path):
    """[(table or index, bytes)] of the SQLite file, largest first (``dbstat``),
    or [] where SQLite was built without it."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
                                  " ORDER BY 2 DESC").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def live_count(cursor):
    cursor.execute("SELECT COUNT(*) FROM webcont_chains WHERE state = 'live'")
    return cursor.fetchone()[0]


def events_bytes(server):
    _, steps, size = server.app._chains.store.read(
        lambda store, cursor: store.op_size(cursor)).result(600)
    return steps, size
