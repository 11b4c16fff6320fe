"""A store that goes down while serving: fast 503s, in-memory games untouched, nothing lost.

Real outages: a PostgreSQL server stopped and started again, and a SQLite
file made unwritable (``chattr +i``, which holds even for root and for the
descriptors the server already has open) and writable again.
"""

import io
import os
import re
import shutil
import subprocess
import time

import pytest

import webcont

from . import durable_apps
from .conftest import running_postgres
from .support import (Client, ServerProcess, continuation_id, step_record_methods, won,
                      wrap_methods)

STATE = re.compile(r"total=(\d+) moves=(\d+) bonus=(\d+)")


def state(page):
    total, moves, bonus = STATE.search(page).groups()
    return int(total), int(moves), int(bonus)


def timed(client, path="/", **params):
    started = time.monotonic()
    status, headers, page = client.get(path, **params)
    return status, headers, page, time.monotonic() - started


def ride_out_an_outage(server, go_down, come_back):
    """Play across an outage of the store; check every answer while it lasts."""
    client = Client(server.port)
    _, _, page = client.get("/")
    status, _, page = client.get("/", __wc=continuation_id(page), n=3)
    assert status == 200
    total, moves, bonus = state(page)
    assert moves == 1
    step_id = continuation_id(page)
    _, _, memory = client.get("/memory")

    go_down()
    for attempt in range(6):  # the first finds the failure, the others are refused at once
        status, headers, page, elapsed = timed(client, "/", __wc=step_id, n=4)
        assert status == 503, page
        assert elapsed < 1.0, "attempt %d took %.2f s" % (attempt, elapsed)
        assert int(headers["Retry-After"]) >= 1
        assert "your game is safe" in page
        status, _, page, elapsed = timed(client, "/")
        assert status == 503 and elapsed < 1.0
        status, _, body, elapsed = timed(client, "/healthz")
        assert status == 503 and elapsed < 1.0 and body.startswith("unhealthy"), body
        # a game kept in memory goes on as if nothing happened
        status, _, memory, elapsed = timed(client, "/memory", __wc=continuation_id(memory),
                                           guess=50)
        assert status == 200 and elapsed < 1.0 and ("You guessed" in memory or won(memory))
        if won(memory):  # (50 is the secret number once in a hundred games)
            _, _, memory = client.get("/memory")
        time.sleep(0.25)

    come_back()
    deadline = time.monotonic() + 15
    while client.get("/healthz")[0] != 200:
        assert time.monotonic() < deadline, "the store did not come back"
        time.sleep(0.2)
    status, _, page = client.get("/", __wc=step_id, n=4)
    assert status == 200, page
    # the step answered during the outage was never recorded, and is recorded once now
    assert state(page)[:2] == (total + 4 + bonus, moves + 1)
    status, _, again = client.get("/", __wc=step_id, n=4)  # the same form again
    assert status == 200 and state(again) == state(page)
    client.close()
    log = server.log()
    assert "Traceback" not in log, log
    assert " 500 " not in log


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of this test's own: it is stopped in the middle."""
    yield from running_postgres()


def test_a_stopped_postgresql_gets_fast_503s_and_the_games_go_on_when_it_is_back(own_postgres):
    with ServerProcess("tests.webcont.durable_apps:mixed_app", store=own_postgres.url) as server:
        ride_out_an_outage(server, own_postgres.pause, own_postgres.resume)


def _chattr(flag, paths):
    for path in paths:
        if os.path.exists(path):
            subprocess.run(["chattr", flag, path], check=True, capture_output=True)


def test_an_unwritable_sqlite_file_gets_fast_503s_and_the_games_go_on_after(tmp_path):
    probe = tmp_path / "probe"
    probe.write_text("")
    try:
        if shutil.which("chattr") is None:
            raise OSError("no chattr")
        _chattr("+i", [str(probe)])
        _chattr("-i", [str(probe)])
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot make a file unwritable here (chattr +i needs root and ext4-like"
                    " file systems; chmod does not stop an open descriptor)")
    path = tmp_path / "games.db"
    # the database and its write-ahead log (not the -shm: it is mapped in memory,
    # and made immutable the process would die of SIGBUS, which no code can answer)
    files = [str(path), str(path) + "-wal"]
    try:
        with ServerProcess("tests.webcont.durable_apps:mixed_app",
                           store="sqlite:///%s" % path) as server:
            ride_out_an_outage(server, lambda: _chattr("+i", files),
                               lambda: _chattr("-i", files))
    finally:
        _chattr("-i", files)


_jar = {}  # the cookie a browser would keep (the owner token: _owner)


def _call(gateway, path, query=""):
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b"")}
    if _jar:
        environ["HTTP_COOKIE"] = "; ".join("%s=%s" % item for item in _jar.items())
    answer = []
    body = b"".join(gateway(environ, lambda status, headers, exc=None: answer.append(
        (status, headers))))
    status, headers = answer[0]
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            _jar[key] = rest.split(";")[0]
    return int(status[:3]), dict(headers), body.decode()


def test_under_gateway_a_store_missing_from_the_start_gets_503_never_500(tmp_path):
    """No open() at start here: the hub opens the store lazily, and must never wait for it."""
    (tmp_path / "file").write_text("")
    app = durable_apps.mixed_app("sqlite:///%s" % (tmp_path / "file" / "games.db"))
    gateway = webcont.gateway(app)
    try:
        for _ in range(3):
            started = time.monotonic()
            status, headers, page = _call(gateway, "/")
            assert status == 503 and headers["Retry-After"] == "1", page
            assert _call(gateway, "/healthz")[0] == 503
            assert _call(gateway, "/memory")[0] == 200  # in memory: as if nothing happened
            assert time.monotonic() - started < 1.0
    finally:
        gateway.close()


@pytest.mark.parametrize("hangs", ["op_record", "sync_journal"])
def test_a_store_that_hangs_gets_503_after_store_timeout_and_the_late_step_counts_once(
        tmp_path, monkeypatch, hangs):
    from webcont._dialects import SqliteLogStore
    if hangs == "op_record":
        # steps committed by the writer thread, as on PostgreSQL (a SQLite lock
        # held by another process also sends them there; the hub never waits)
        monkeypatch.setattr(SqliteLogStore, "commits_here", False)
        url = "sqlite:///%s" % (tmp_path / "games.db")
    else:  # committed by the hub, the disk's fsync hangs (FULL, _walsync)
        url = "sqlite:///%s?synchronous=full" % (tmp_path / "games.db")
    app = durable_apps.mixed_app(url, store_timeout=0.3)
    gateway = webcont.gateway(app)
    try:
        _, _, page = _call(gateway, "/")
        step_id = continuation_id(page)

        def hang(original):
            def hanging(self, *args, **kwargs):
                time.sleep(1.0)
                return original(self, *args, **kwargs)
            return hanging
        undo = wrap_methods(monkeypatch, step_record_methods() if hangs == "op_record"
                            else [(SqliteLogStore, hangs)], hang)
        started = time.monotonic()
        status, _, page = _call(gateway, "/", "__wc=%s&n=1" % step_id)
        assert status == 503 and 0.3 <= time.monotonic() - started < 0.9, page
        started = time.monotonic()
        assert _call(gateway, "/", "__wc=%s&n=1" % step_id)[0] == 503
        assert time.monotonic() - started < 0.2  # known to be down: refused at once
        undo()
        time.sleep(1.5)  # the late commit lands; the pause after the failure ends
        status, _, page = _call(gateway, "/", "__wc=%s&n=1" % step_id)  # the user retries
        assert status == 200 and state(page)[1] == 1, page  # one move, not two
    finally:
        gateway.close()
