"""The durable backend of an app: the store and chains opened once, sweeps per hub."""

import threading
import time

import webcont
from webcont import _durable_backend

from . import durable_apps
from .test_durable import ID, InProcess, tokens


def test_requests_arriving_while_the_store_opens_wait_for_that_one_opening(tmp_path, monkeypatch):
    app = durable_apps.adder_app("sqlite:///%s" % (tmp_path / "g.db"))
    opened = []
    original = _durable_backend.open_chains

    def counted(*args, **kwargs):
        opened.append(threading.current_thread().name)
        return original(*args, **kwargs)
    monkeypatch.setattr(_durable_backend, "open_chains", counted)
    store = app._durable.store_handle()
    store.wait_ready(10)
    release = threading.Event()
    store.submit(lambda s, cursor: release.wait(10))  # the store is slow to answer
    gateway = webcont.gateway(app)
    game = InProcess.__new__(InProcess)
    game.app, game.gateway, game.cookies = app, gateway, {}
    answers = []
    browsers = [threading.Thread(target=lambda: answers.append(game.get(cookies={})))
                for _ in range(3)]
    try:
        for browser in browsers:
            browser.start()
        time.sleep(0.3)  # all three are in, the first opening waits for the store
        release.set()
        for browser in browsers:
            browser.join(10)
        assert [status for status, _ in answers] == [200, 200, 200]
        assert len(opened) == 1
        assert len({ID.search(page).group(1) for _, page in answers}) == 3
    finally:
        release.set()
        gateway.close()


def test_an_app_served_again_by_a_new_hub_sweeps_there(tmp_path):
    """The sweeps follow the hub: the first hub's stop took its timer along."""
    app = durable_apps.adder_app("sqlite:///%s" % (tmp_path / "g.db"),
                                 continuation_timeout=0.3, sweep_interval=0.2)
    first = InProcess.__new__(InProcess)
    first.app, first.gateway, first.cookies = app, webcont.gateway(app), {}
    second = None
    try:
        assert first.get()[0] == 200  # the sweeps start on the first hub ...
        first.gateway.hub.stop()      # ... which stops (its timers go with it)
        second = InProcess.__new__(InProcess)
        second.app, second.gateway, second.cookies = app, webcont.gateway(app), {}
        durable_apps._cleanups.clear()
        assert second.get()[0] == 200
        deadline = time.monotonic() + 5
        while not durable_apps._cleanups and time.monotonic() < deadline:
            time.sleep(0.05)
        assert durable_apps._cleanups == ["timeout"]  # expired by the new hub's sweep
    finally:
        if second is not None:
            second.gateway.close()
        first.gateway.close()


def test_an_app_closed_and_served_again_gets_a_new_store_pool_and_loop(tmp_path):
    ledger = tmp_path / "calls.txt"
    app = durable_apps.charger_app("sqlite:///%s" % (tmp_path / "g.db"), str(ledger))
    game = InProcess.__new__(InProcess)
    game.app, game.gateway, game.cookies = app, webcont.gateway(app), {}
    _, page = game.get()
    closed = app._durable.store
    game.gateway.close()  # closes the app too: its store, to_thread pool and await_ loop
    assert closed.closed
    game.gateway = webcont.gateway(app)
    try:
        started = time.monotonic()
        status, page = game.step(ID.search(page).group(1))
        # replayed from the log, and this step's to_thread and await_ calls ran
        assert status == 200 and len(tokens(page)) == 4, page
        assert time.monotonic() - started < 10
        assert app._durable.store is not closed and not app._durable.store.closed
        assert game.get(cookies={})[0] == 200  # and a new game starts there
    finally:
        game.gateway.close()


def test_a_closed_store_refuses_what_the_hub_would_commit_itself(tmp_path):
    from webcont._dialects import open_store
    from webcont._store import StoreUnavailable
    store = open_store("sqlite:///%s" % (tmp_path / "g.db"))
    store.close()
    posted = []
    future = store.commit_soon(lambda s, cursor: s.op_start(cursor, "c", "/", "v", [{}], 60),
                               posted.append, now=True)
    while posted:
        posted.pop(0)()
    assert future.done()
    try:
        future.result()
    except StoreUnavailable as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("a closed store committed a write")
