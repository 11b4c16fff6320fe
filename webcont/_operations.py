"""What the durable event log stores, and the operations on it (any dialect).

The tables (``SCHEMA``): a chain's row in ``webcont_chains``, one row per
recorded step in ``webcont_steps`` (the step's input and the values its
controller drew, as JSON, never pickle), and ``webcont_calls`` for the
``req.to_thread`` outcomes of a step not recorded yet (``_calls``).  The
operations run inside a transaction of ``LogStore`` (``_store``), on
whichever connection commits them; a dialect (``_dialects``) supplies
``sql()``, ``now_sql`` and ``clustered``.

Recording a step is a compare-and-set on the chain's step counter
(``UPDATE ... WHERE step = ?``): when two processes race to answer the same
step, exactly one wins and the other learns it lost.  Deadlines are computed
with the store's clock, so several machines agree on them.

A live chain expires ``timeout`` seconds (the app's ``continuation_timeout``)
after its last step, ``updated + timeout``.  The indexed ``deadline`` column
is only a lower bound of that: set when the chain starts and moved on by the
sweep (``op_due``) when it finds the chain active since, never by a step.
So a step writes two pages of the database (its row, the chain's row), not
three: moving the chain's entry in the ``(state, deadline)`` index at every
step cost about a quarter of a step's commit on SQLite (bench/durable.py).
Stores written before kept the exact deadline there, which is also a lower
bound: they need no migration.
"""

import json
import time

__all__ = ["SCHEMA", "ChainRecord", "LogOperations", "RecordStep", "is_plain_record",
           "log_json"]

SCHEMA = [
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


class LogOperations:
    """The operations, mixed into ``LogStore``: each runs on a cursor inside a transaction."""

    _statements = None  # template -> SQL text (``statement``); a dict per store

    def statement(self, template):
        """``template`` in this store's dialect, ``{now}`` its clock (made once per store:
        the hot operations run thousands of times a second)."""
        try:
            return self._statements[template]
        except TypeError:  # the first statement of this store
            self._statements = {}
            return self.statement(template)
        except KeyError:
            text = self.sql(template.replace("{now}", self.now_sql))
            self._statements[template] = text
            return text

    def op_start(self, cursor, chain, route, version, events, timeout, text=None):
        """Create ``chain`` with its first step (step 0) recorded (``text``: the
        events as JSON, if the caller has it)."""
        q = self.statement
        cursor.execute(q(
            "INSERT INTO webcont_chains (chain, route, version, step, state, deadline, updated)"
            " VALUES (?, ?, ?, 1, 'live', {now} + ?, {now})"),
            (chain, route, version, timeout))
        cursor.execute(q("INSERT INTO webcont_steps (chain, step, events) VALUES (?, 0, ?)"),
                       (chain, log_json(events) if text is None else text))
        return True

    def op_record(self, cursor, chain, step, events, *, final=None, text=None, calls=None):
        """Record step ``step`` if the chain still waits for it (compare-and-set).

        With ``final`` the controller finished: the chain becomes a small
        tombstone keeping its last page, and its log is deleted.  Returns
        False if another request or process recorded that step first.
        ``text``: the events as JSON, ``calls``: whether they hold calls
        (``_made_calls``), if the caller knows.  The chain's
        deadline follows its ``updated`` time (see the module's docstring).
        """
        q = self.statement
        if final is None:
            cursor.execute(q(
                "UPDATE webcont_chains SET step = step + 1, updated = {now}"
                " WHERE chain = ? AND step = ? AND state = 'live'"), (chain, step))
            if cursor.rowcount != 1:
                return False
            cursor.execute(q("INSERT INTO webcont_steps (chain, step, events) VALUES (?, ?, ?)"),
                           (chain, step, log_json(events) if text is None else text))
            if _made_calls(events) if calls is None else calls:  # now in the step's events
                cursor.execute(q("DELETE FROM webcont_calls WHERE chain = ?"), (chain,))
            return True
        cursor.execute(q(
            "UPDATE webcont_chains SET step = step + 1, state = 'done', deadline = NULL,"
            " final = ?, updated = {now} WHERE chain = ? AND step = ? AND state = 'live'"),
            (final, chain, step))
        if cursor.rowcount != 1:
            return False
        cursor.execute(q("DELETE FROM webcont_steps WHERE chain = ?"), (chain,))
        if _made_calls(events) if calls is None else calls:
            cursor.execute(q("DELETE FROM webcont_calls WHERE chain = ?"), (chain,))
        return True

    def op_load(self, cursor, chain, timeout):
        """The chain and all its steps in one query, or None; ``remaining`` is
        counted from its last step with ``timeout`` (``continuation_timeout``)."""
        cursor.execute(self.sql(
            "SELECT c.route, c.version, c.step, c.state, c.final, c.updated + ? - %s, s.events"
            " FROM webcont_chains c LEFT JOIN webcont_steps s ON s.chain = c.chain"
            " WHERE c.chain = ? ORDER BY s.step" % self.now_sql), (timeout, chain))
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
        """Record the outcome of call ``seq`` of step ``step`` (still unrecorded);
        ``input`` and ``outcome`` are JSON texts.

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
                       (chain, step, seq, input, outcome))
        return True

    def op_due(self, cursor, limit, timeout):
        """``(due, more)``: the live chains idle for over ``timeout`` seconds among
        the ``limit`` with the oldest ``deadline`` bound (an index scan), and
        whether a next batch may hold more (this one was full).

        The others examined took a step since their bound was set: it moves
        to their real deadline, so each chain is examined at most once per
        ``timeout`` while it is played.
        """
        cursor.execute(self.sql(
            "SELECT chain, updated + ? < %s FROM webcont_chains"
            " WHERE state = 'live' AND deadline < %s ORDER BY deadline LIMIT ?"
            % (self.now_sql, self.now_sql)), (timeout, limit))
        rows = cursor.fetchall()
        moved = [(timeout, chain) for chain, due in rows if not due]
        if moved:
            cursor.executemany(self.sql(
                "UPDATE webcont_chains SET deadline = updated + ?"
                " WHERE chain = ? AND state = 'live'"), moved)
        return [chain for chain, due in rows if due], len(rows) == limit

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


class RecordStep:
    """``op_record`` as data, an operation like the others (``store, cursor``): a
    store that ``batches_steps`` writes a group's consecutive plain ones (no
    final page, no calls to delete) with its ``op_record_many(cursor, records)``:
    True, or False (roll back) if any lost its compare-and-set."""

    __slots__ = ("chain", "step", "events", "final", "text", "calls", "plain")

    def __init__(self, chain, step, events, final=None, text=None):
        self.chain, self.step, self.events, self.final = chain, step, events, final
        self.text = log_json(events) if text is None and final is None else text
        self.calls = _made_calls(events)
        self.plain = final is None and not self.calls

    def __call__(self, store, cursor):
        return store.op_record(cursor, self.chain, self.step, self.events, final=self.final,
                               text=self.text, calls=self.calls)


def is_plain_record(operation):
    """True for a ``RecordStep`` that ``op_record_many`` may write with others."""
    return type(operation) is RecordStep and operation.plain


def _made_calls(events):
    """True if a step's events (``[input, draws]``) hold a ``req.to_thread`` call."""
    return any(draw[0] == "call" for draw in events[1])


#: values as the log records them (compact JSON, UTF-8 kept); one encoder made
#: once: ``json.dumps`` with options builds a new one per call (3.3 us -> 1.6 us)
log_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
