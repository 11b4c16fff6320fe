"""Make ``old_store.db``: a durable store written by an older webcont (test_store_format).

Run from a checkout of the version whose format is to be kept readable
(``old_store.db`` was made at commit a31c45a, before a step stopped moving
the deadline column):

    PYTHONPATH=. python tests/webcont/data/make_old_store.py OUT_DIR

Writes ``OUT_DIR/old_store.db`` (checkpointed: no -wal file needed) and
``OUT_DIR/old_store.json``: the ids to resume and what their pages showed.
"""

import json
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.getcwd())

from tests.webcont import durable_apps  # noqa: E402
from tests.webcont.test_durable import InProcess  # noqa: E402

STATE = re.compile(r"total=(\d+) moves=(\d+) bonus=(\d+)")
ID = re.compile(r'name="__wc" value="([^"]+)"')


def main(out):
    path = os.path.join(out, "old_store.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    server = InProcess(durable_apps.adder_app, "sqlite:///" + path, version="1",
                       continuation_timeout=3600)
    games = {}
    for name, moves in (("long", 5), ("fresh", 0), ("other", 2)):
        status, page = server.get("", cookies={})
        for move in range(moves):
            status, page = server.get("__wc=%s&n=%d" % (ID.search(page).group(1), move + 1),
                                      cookies={})
        assert status == 200, page
        total, done, bonus = map(int, STATE.search(page).groups())
        games[name] = {"id": ID.search(page).group(1), "total": total, "moves": done,
                       "bonus": bonus}
    server.gateway.close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    with open(os.path.join(out, "old_store.json"), "w") as facts:
        json.dump(games, facts, indent=1, sort_keys=True)
        facts.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
