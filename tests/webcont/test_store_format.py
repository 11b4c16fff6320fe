"""What the store keeps of a chain's deadline, and stores written by older versions.

A step does not move the chain's ``deadline`` column (an index entry: a
third page written per step); the column is a lower bound, and a chain
expires ``continuation_timeout`` after its last step (``updated``).
``data/old_store.db`` was written by the version before that change
(``data/make_old_store.py``): it opens and its games replay, with no
migration.
"""

import json
import os
import re
import shutil
import time

import pytest

from webcont._dialects import open_store

from . import durable_apps
from .test_durable import ID, InProcess, state

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
YEARS = 10 * 365 * 86400.0


def old_store(tmp_path):
    """A copy of the store an older version wrote, and what its games showed."""
    path = tmp_path / "old.db"
    shutil.copy(os.path.join(DATA, "old_store.db"), path)
    with open(os.path.join(DATA, "old_store.json")) as facts:
        return "sqlite:///%s" % path, json.load(facts)


def test_a_store_written_by_the_previous_version_opens_and_its_games_go_on(tmp_path):
    url, games = old_store(tmp_path)
    # its games were last played when the file was made: a timeout of years keeps them live
    server = InProcess(durable_apps.adder_app, url, version="1", continuation_timeout=YEARS)
    try:
        for name, was in sorted(games.items()):
            status, page = server.get("__wc=%s&n=1" % was["id"], cookies={})
            assert status == 200, (name, page)
            # the total before the move came back from the log by replay
            assert state(page)["total"] == str(was["total"] + 1 + was["bonus"]), name
            assert state(page)["moves"] == str(was["moves"] + 1), name
            status, page = server.get("__wc=%s&n=2" % ID.search(page).group(1), cookies={})
            assert status == 200 and state(page)["moves"] == str(was["moves"] + 2)
        assert server.app._chains.replays == len(games)
        server.restart()  # the steps written now replay together with the old ones
        for name, was in sorted(games.items()):
            status, page = server.get("__wc=%s&n=1" % was["id"], cookies={})
            assert status == 409, name  # answered above: the log holds that move
    finally:
        server.close()


def test_an_old_stores_games_expire_a_timeout_after_their_last_step(tmp_path):
    url, games = old_store(tmp_path)
    server = InProcess(durable_apps.adder_app, url, version="1", continuation_timeout=60,
                       sweep_interval=600)
    try:  # the file is older than a minute: every game in it has expired
        status, page = server.get("__wc=%s&n=1" % games["long"]["id"], cookies={})
        assert status == 410 and "expired" in page
    finally:
        server.close()


def chain_row(store, chain):
    def read(s, cursor):
        cursor.execute(s.sql("SELECT step, deadline, updated FROM webcont_chains"
                             " WHERE chain = ?"), (chain,))
        return cursor.fetchone()
    return store.read(read).result(10)


def age(store, seconds, *chains):
    """Move ``chains`` ``seconds`` into the past (their bound and their last step)."""
    def write(s, cursor):
        for chain in chains:
            cursor.execute(s.sql("UPDATE webcont_chains SET deadline = deadline - ?,"
                                 " updated = updated - ? WHERE chain = ?"),
                           (seconds, seconds, chain))
    store.submit(write).result(10)


def test_a_step_leaves_the_deadline_bound_and_the_sweep_moves_it_on(store_url):
    store = open_store(store_url)
    try:
        for chain in ("idle", "played"):
            assert store.submit(lambda s, cursor, chain=chain: s.op_start(
                cursor, chain, "/", "v", [{}, []], 60)).result(10)
        age(store, 100, "idle", "played")  # both started 100 s ago, with a timeout of 60
        bound = chain_row(store, "played")[1]
        assert store.submit(lambda s, cursor: s.op_record(
            cursor, "played", 1, [{"n": ["1"]}, []])).result(10)
        step, after, updated = chain_row(store, "played")
        assert step == 2 and after == bound  # no index entry moved by the step
        due, more = store.submit(lambda s, cursor: s.op_due(cursor, 100, 60)).result(10)
        assert due == ["idle"] and not more  # the played one is not due...
        step, moved, updated = chain_row(store, "played")
        assert moved == pytest.approx(updated + 60)  # ...and its bound caught up
        assert store.submit(lambda s, cursor: s.op_due(cursor, 100, 60)).result(10) == (
            ["idle"], False)
        assert store.submit(lambda s, cursor: s.op_due(cursor, 1, 60)).result(10) == (
            ["idle"], True)  # a full batch: there may be more
        record = store.read(lambda s, cursor: s.op_load(cursor, "played", 60)).result(10)
        assert 55 < record.remaining <= 60  # from its last step, not from the bound
    finally:
        store.close()


def test_a_game_played_past_its_first_deadline_is_not_swept_until_idle(tmp_path):
    durable_apps._cleanups.clear()
    url = "sqlite:///%s" % (tmp_path / "games.db")
    server = InProcess(durable_apps.adder_app, url, continuation_timeout=3.0,
                       sweep_interval=0.1)
    try:
        _, page = server.get()
        for _ in range(8):  # 4 s of moves, past the deadline the game started with
            time.sleep(0.5)  # a wide margin under the timeout: a loaded machine is slow
            status, page = server.get("__wc=%s&n=1" % ID.search(page).group(1))
            assert status == 200, page
        assert durable_apps._cleanups == []
        waited = time.monotonic() + 10
        while not durable_apps._cleanups and time.monotonic() < waited:
            time.sleep(0.05)
        assert durable_apps._cleanups == ["timeout"]  # idle for its timeout: swept
        status, page = server.get("__wc=%s&n=1" % ID.search(page).group(1))
        assert status == 410 and re.search("expired", page)
    finally:
        server.close()
