"""What one client can make a durable server hold: bounded logs, kept pages, replay slices.

Over real HTTP on SQLite and PostgreSQL (docs/security.md, "Limits").
"""

import re
import threading
import time

import webcont
from webcont._ids import IdSigner
from webcont._dialects import open_store

from . import durable_apps
from .support import Client, ServerProcess, continuation_id

FACTORY = "tests.webcont.durable_apps:limits_app"


def moves(page):
    return int(re.search(r"moves=(\d+)", page).group(1))


def store_size(url):
    store = open_store(url)
    try:
        return store.read(lambda s, cursor: s.op_size(cursor)).result(30)
    finally:
        store.close()


def test_a_step_over_max_step_bytes_is_refused_and_the_game_stays_put(store_url):
    with ServerProcess(FACTORY, store=store_url, max_step_bytes=2000,
                       max_game_bytes=5000) as server:
        player = Client(server.port)
        _, _, page = player.get("/")
        cid = continuation_id(page)
        status, _, refused = player.request("/", "POST", body={"__wc": cid, "n": "1" * 3000})
        assert status == 413 and "2000 bytes" in refused
        assert "1" * 100 not in refused  # nothing echoed
        status, _, page = player.get("/", __wc=cid, n=2)  # the same id still moves it
        assert status == 200 and moves(page) == 1
        # a new game whose very first request is too big is never recorded
        assert player.request("/", "POST", body={"n": "1" * 3000})[0] == 413
    assert store_size(store_url)[1] == 2  # two steps of one game: nothing else recorded


def test_a_game_stops_recording_at_max_game_bytes(store_url):
    with ServerProcess(FACTORY, store=store_url, max_step_bytes=1000,
                       max_game_bytes=3000) as server:
        player = Client(server.port)
        _, _, page = player.get("/")
        refused = None
        for _ in range(10):
            status, _, answer = player.request("/", "POST", body={"__wc": continuation_id(page),
                                                          "n": "7" * 900})
            if status == 413:
                refused = answer
                break
            page = answer
        assert refused is not None and "3000 bytes" in refused
        status, _, shown = player.get("/", __wc=continuation_id(page), __show=1)
        assert status == 200 and moves(shown) == moves(page)
    chains, steps, size = store_size(store_url)
    assert size <= 3000 and steps >= 3


def test_kept_pages_stay_within_their_budget_and_the_owner_still_gets_them(store_url):
    budget = 200_000
    with ServerProcess(FACTORY, store=store_url, max_kept_page_bytes=budget) as server:
        player = Client(server.port)
        pages = []
        for _ in range(12):  # 12 games showing ~48 KB each: past the budget
            _, _, page = player.get("/echo")
            status, _, page = player.request("/echo", "POST", body={"__wc": continuation_id(page),
                                                            "text": "<" * 12000})
            assert status == 200 and len(page) > 48000
            pages.append(page)
        # the oldest page was dropped from memory: rendered again, identical
        status, _, shown = player.get("/echo", __wc=continuation_id(pages[0]), __show=1)
        assert status == 200 and shown == pages[0]


def test_the_kept_pages_of_an_app_never_pass_the_budget(tmp_path):
    app = durable_apps.limits_app("sqlite:///%s" % (tmp_path / "g.db"),
                                  max_kept_page_bytes=100_000)
    gateway = webcont.gateway(app)
    try:
        import io
        for _ in range(10):
            body = b"text=" + b"%3C" * 12000
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/echo", "QUERY_STRING": "",
                       "wsgi.input": io.BytesIO(b"")}
            page = b"".join(gateway(environ, lambda s, h, e=None: None)).decode()
            environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/echo",
                       "QUERY_STRING": "__wc=" + continuation_id(page),
                       "CONTENT_TYPE": "application/x-www-form-urlencoded",
                       "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
            b"".join(gateway(environ, lambda s, h, e=None: None))
            assert app._pages.bytes <= 100_000
        assert len(app._pages) >= 1
    finally:
        gateway.close()


def _long_game(url, secret, steps):
    """A counter game of ``steps`` recorded moves, written straight into the store."""
    store = open_store(url)
    chain = "L" * 38
    try:
        store.submit(lambda s, c: s.op_start(c, chain, "/", "v", [{}, []], 300)).result(30)
        # queued at once: the writer commits them in a few groups
        recorded = [store.submit(lambda s, c, step=step: s.op_record(
            c, chain, step, [{"n": ["1"]}, []])) for step in range(1, steps + 1)]
        assert all(future.result(60) for future in recorded)
    finally:
        store.close()
    return IdSigner(secret).make(chain, steps + 1)


def test_a_long_replay_never_holds_the_hub_for_long(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "long.db")
    store = open_store(url)  # the schema, then the long game in one transaction
    store.close()
    steps = 40000
    cid = _long_game(url, "l" * 32, steps)
    with ServerProcess(FACTORY, store=url, version="v", max_game_bytes=1 << 20,
                       serve_options={"stall_warning": 0.5}) as server:
        assert Client(server.port).get("/ping")[0] == 200
        latencies, done = [], threading.Event()

        def ping():
            client = Client(server.port)
            while not done.is_set():
                started = time.monotonic()
                assert client.get("/ping")[0] == 200
                latencies.append((started, time.monotonic() - started))
        pinger = threading.Thread(target=ping)
        pinger.start()
        time.sleep(0.1)
        started = time.monotonic()
        status, _, page = Client(server.port).get("/", __wc=cid, n=1)
        replay = time.monotonic() - started
        done.set()
        pinger.join()
        log = server.log()
    assert status == 200 and moves(page) == steps + 1, page
    # pings were answered between the slices: unsliced, the one ping sent during
    # the replay waited for all of it (150-300 ms here), so no second one began.
    # The stall watch's bound is loose (0.5 s): on a machine busy with other
    # work a 2 ms slice of CPU can take far longer than 0.1 s of wall time.
    during = [took for begun, took in latencies if started < begun < started + replay]
    print("replay of %d steps: %.0f ms; %d pings answered meanwhile, the slowest in %.1f ms"
          % (steps, replay * 1000, len(during), max(during, default=0) * 1000))
    assert replay > 0.2 and len(during) >= 10, (replay, during)
    assert "has been running" not in log, log
