"""The store's purge of old tombstones: what it forgets, and that it never scans the live games."""

import sqlite3

from webcont._dialects import open_store


def chain_states(store):
    def read(s, cursor):
        cursor.execute("SELECT chain, state FROM webcont_chains ORDER BY chain")
        return dict(cursor.fetchall())
    return store.read(read).result(10)


def test_purge_forgets_old_tombstones_and_keeps_live_chains_and_recent_ones(store_url):
    store = open_store(store_url)
    try:
        for chain in ("live", "done", "expired", "failed", "broken", "recent"):
            assert store.submit(lambda s, cursor, chain=chain: s.op_start(
                cursor, chain, "/", "v", [{}], 60)).result(10)
        for chain in ("done", "expired", "failed", "broken", "recent"):
            state = "expired" if chain == "recent" else chain
            assert store.submit(lambda s, cursor, chain=chain, state=state: s.op_end(
                cursor, chain, state)).result(10)

        def age(s, cursor):  # all but "recent" were last touched an hour ago
            cursor.execute(s.sql("UPDATE webcont_chains SET updated = updated - 3600"
                                 " WHERE chain <> 'recent'"))
        store.submit(age).result(10)
        purged = store.submit(lambda s, cursor: s.op_purge(cursor, 600)).result(10)
        assert purged == 4
        assert chain_states(store) == {"live": "live", "recent": "expired"}
    finally:
        store.close()


class RecordingCursor:
    """A cursor that keeps the statements it runs."""

    def __init__(self, cursor):
        self.cursor, self.statements = cursor, []

    def execute(self, sql, parameters=()):
        self.statements.append((sql, parameters))
        return self.cursor.execute(sql, parameters)

    def __getattr__(self, name):
        return getattr(self.cursor, name)


def test_purge_on_sqlite_searches_the_state_index_instead_of_scanning_the_games(tmp_path):
    store = open_store("sqlite:///%s" % (tmp_path / "games.db"))
    try:
        recorded = []

        def purge(s, cursor):
            recording = RecordingCursor(cursor)
            s.op_purge(recording, 600)
            recorded.extend(recording.statements)
        store.submit(purge).result(10)
    finally:
        store.close()
    (sql, parameters), = recorded
    connection = sqlite3.connect(str(tmp_path / "games.db"))
    try:
        plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + sql, parameters)]
    finally:
        connection.close()
    assert not any(step.startswith("SCAN webcont_chains") for step in plan), plan
    assert any("USING INDEX webcont_chains_due" in step for step in plan), plan
