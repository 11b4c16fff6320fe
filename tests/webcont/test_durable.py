"""Durable continuations: games survive restarts by replaying their event log.

Every test runs against SQLite and against a real PostgreSQL server started
from Debian's packages (skipped, saying why, where it cannot be started).
"""

import io
import re
import signal
import time

import pytest

import webcont
from webcont._hub import current_hub
from webcont.testing import replay_check

from . import durable_apps
from .support import (Client, ServerProcess, continuation_id, step_record_methods,
                      wrap_methods)

ID = re.compile(r'name="__wc" value="([^"]+)"')


class InProcess:
    """A durable app behind webcont.gateway(), restartable on the same store.

    Like a browser, it keeps the cookies it is given and sends them back
    (``cookies``); ``get(..., cookies={})`` is another browser."""

    def __init__(self, factory, *args, **kwargs):
        self.factory, self.args, self.kwargs = factory, args, kwargs
        self.app = self.gateway = None
        self.cookies = {}
        self.start()

    def start(self):
        self.app = self.factory(*self.args, **self.kwargs)
        self.gateway = webcont.gateway(self.app)

    def restart(self):
        self.gateway.close()
        self.start()

    def get(self, query="", cookies=None):
        jar = self.cookies if cookies is None else cookies
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": query,
                   "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO(b"")}
        if jar:
            environ["HTTP_COOKIE"] = "; ".join("%s=%s" % item for item in jar.items())
        answer = []
        body = b"".join(self.gateway(environ, lambda s, h, e=None: answer.append((s, h))))
        status, headers = answer[0]
        for name, value in headers:
            if name == "Set-Cookie":
                cookie_name, _, rest = value.partition("=")
                jar[cookie_name] = rest.split(";")[0]
        return int(status[:3]), body.decode()

    def step(self, cid, cookies=None, **params):
        query = "__wc=%s" % cid + "".join("&%s=%s" % item for item in params.items())
        return self.get(query, cookies)

    def close(self):
        self.gateway.close()


@pytest.fixture
def served():
    made = []

    def serve(factory, *args, **kwargs):
        made.append(InProcess(factory, *args, **kwargs))
        return made[-1]
    yield serve
    for server in made:
        server.close()


class SeedPlayer:
    """Binary-searches the seed game through ``step(page, guess) -> (status, page)``."""

    def __init__(self, page):
        self.page, self.low, self.high, self.tries, self.guess = page, 1, 100, 0, None

    def play(self, step, moves=None):
        """Make ``moves`` guesses (all until won, if None); True once won."""
        while moves is None or moves > 0:
            self.guess = (self.low + self.high) // 2
            status, self.page = step(self.page, self.guess)
            assert status == 200, self.page
            self.tries += 1
            if "to low" in self.page:
                self.low = self.guess + 1
            elif "to high" in self.page:
                self.high = self.guess - 1
            else:
                return True
            moves = None if moves is None else moves - 1
        return False

    def won(self):
        return ("Yay - %d is the right number, you made it in %d guesses"
                % (self.guess, self.tries)) in self.page


def state(page):
    return dict(re.findall(r"(\w+)=(\d+)", re.search(r'id="state">([^<]*)', page).group(1)))


def test_the_unedited_seed_game_continues_after_a_restart_with_the_same_number(served, store_url):
    game = served(durable_apps.seed_game, store_url)

    def step(page, guess):
        return game.step(ID.search(page).group(1), guess=guess)
    while True:  # half a game (a game won in 3 guesses by luck: take another)
        player = SeedPlayer(game.get()[1])
        if not player.play(step, moves=3):
            break
    game.restart()
    assert player.play(step) and player.won()
    assert game.app._chains.replays == 1


def test_a_duplicate_gets_the_same_page_and_another_answer_a_409_with_a_way_on(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    _, page = game.get()
    first = ID.search(page).group(1)
    status, one = game.step(first, n=5)
    assert status == 200
    assert game.step(first, n=5) == (200, one)      # same input: same page, no second move
    status, other = game.step(first, n=7)
    assert status == 409 and "already answered" in other
    link = re.search(r'href="([^"]+)"', other).group(1).replace("&amp;", "&")
    assert game.get(link.split("?", 1)[1]) == (200, one)  # "continue where you left off"
    assert state(one)["moves"] == "1"
    game.restart()  # and the same holds after a restart
    assert game.step(first, n=5) == (200, one)
    assert game.step(first, n=7)[0] == 409


def test_forged_and_tampered_ids_get_404(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    _, page = game.get()
    cid = ID.search(page).group(1)
    chain, step, mac = cid.split(".")
    for forged in ("%s.%s.%s" % (chain, int(step) + 1, mac),
                   "%s.%s.%s" % (chain[:-1] + ("A" if chain[-1] != "A" else "B"), step, mac),
                   "%s.%s.%s" % (chain, step, mac[:-2] + "xx"),
                   "nonsense.1.abc", "a.b.c.d"):
        assert game.step(forged, n=1)[0] == 404, forged
    assert game.step(cid, n=1)[0] == 200


def test_a_code_change_keeping_the_events_continues_old_games(served, store_url):
    game = served(durable_apps.adder_app, store_url, version="1")
    _, page = game.get()
    _, page = game.step(ID.search(page).group(1), n=3)
    game.close()
    game = served(durable_apps.adder_app, store_url, version="2")
    game.app.route("/", durable_apps.adder_same_events, durable=True, version="2")
    status, page = game.step(ID.search(page).group(1), n=4)
    assert status == 200 and "(v2)" in page and state(page)["moves"] == "2"


def test_a_code_change_altering_the_events_gives_410_after_one_replay(served, store_url):
    game = served(durable_apps.adder_app, store_url, version="1")
    _, page = game.get()
    _, page = game.step(ID.search(page).group(1), n=3)
    game.close()
    game = served(durable_apps.adder_app, store_url, version="3")
    game.app.route("/", durable_apps.adder_other_events, durable=True, version="3")
    cid = ID.search(page).group(1)
    status, gone = game.step(cid, n=4)
    assert status == 410 and "older version" in gone
    assert game.step(cid, n=4)[0] == 410  # marked broken: no second replay
    assert game.app._chains.replays == 1
    assert game.get()[0] == 200  # new games run on the new version


def test_patched_lets_new_code_branch_without_breaking_old_games(served, store_url):
    game = served(durable_apps.adder_app, store_url, version="1")
    _, old_page = game.get()
    game.close()
    game = served(durable_apps.adder_app, store_url, version="4")
    game.app.route("/", durable_apps.adder_patched, durable=True, version="4")
    status, page = game.step(ID.search(old_page).group(1), n=1)
    assert status == 200 and "(v4)" in page  # the old chain replays: patched() was False
    _, fresh = game.get()
    assert int(state(fresh)["bonus"]) % 2 == 0  # a new chain takes the patched branch


def test_expired_games_run_their_cleanup_once_and_answer_410(served, store_url):
    durable_apps._cleanups.clear()
    game = served(durable_apps.adder_app, store_url, continuation_timeout=0.3,
                  sweep_interval=0.2)
    _, page = game.get()
    cid = ID.search(page).group(1)
    deadline = time.monotonic() + 10
    while not durable_apps._cleanups and time.monotonic() < deadline:
        time.sleep(0.05)
    assert durable_apps._cleanups == ["timeout"]
    status, gone = game.step(cid, n=1)
    assert status == 410 and "expired" in gone
    chains, steps, _ = game.app._chains.store.submit(
        lambda store, cursor: store.op_size(cursor)).result(10)
    assert steps == 0  # the log went with the expiry


def test_replay_check_accepts_deterministic_controllers_and_catches_others(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    with replay_check(game.app):
        _, page = game.get()
        for number in range(3):
            _, page = game.step(ID.search(page).group(1), n=number)
    sneaky = served(durable_apps.adder_app, store_url)
    sneaky.app.route("/", durable_apps.sneaky, durable=True)
    with pytest.raises(AssertionError, match="different page"):
        with replay_check(sneaky.app):
            _, page = sneaky.get()
            sneaky.step(ID.search(page).group(1))


def test_the_in_memory_cap_unloads_games_which_come_back_by_replay(served, store_url):
    game = served(durable_apps.adder_app, store_url, max_continuations=3)
    pages = [game.get()[1] for _ in range(6)]
    assert len(game.app._chains.live) == 3
    for page in pages:
        status, after = game.step(ID.search(page).group(1), n=2)
        assert status == 200 and state(after)["moves"] == "1"
    assert game.app._chains.replays >= 3


def test_a_killed_server_resumes_its_games_in_a_new_process(store_url):
    factory = "tests.webcont.durable_apps:seed_server_app"

    def stepper(client):
        def step(page, guess):
            status, _, page = client.get("/", __wc=continuation_id(page), guess=guess)
            return status, page
        return step
    with ServerProcess(factory, store=store_url) as server:
        client = Client(server.port)
        while True:  # half a game (a game won in 2 guesses by luck: take another)
            player = SeedPlayer(client.get("/")[2])
            if not player.play(stepper(client), moves=2):
                break
        server.process.send_signal(signal.SIGKILL)  # kill -9: no graceful anything
        server.process.wait(10)
    with ServerProcess(factory, store=store_url) as server:
        assert player.play(stepper(Client(server.port))) and player.won()


def test_ten_thousand_suspended_games_survive_a_restart_and_cost_nothing_at_start(store_url):
    from webcont._dialects import open_store
    store = open_store(store_url)
    events = [{}, [["random.randint", "1,100", 42]]]
    # the log as 10,000 started seed games would leave it, written in one group
    futures = [store.submit(lambda s, cursor, n=n: s.op_start(
        cursor, "chain%05d" % n, "/", "v", events, 3600)) for n in range(10_000)]
    assert all(future.result(60) for future in futures)
    chains, steps, _ = store.submit(lambda s, cursor: s.op_size(cursor)).result(10)
    assert (chains, steps) == (10_000, 10_000)
    store.close()
    factory = "tests.webcont.durable_apps:seed_server_app"
    with ServerProcess(factory, store=store_url) as server:
        started = time.monotonic()
        status, _, page = Client(server.port).get("/")
        assert status == 200 and "guessed 0 times" in page
        assert time.monotonic() - started < 0.5  # nothing was replayed up front


def test_a_commit_slower_than_the_request_timeout_does_not_wedge_the_server(tmp_path, monkeypatch):
    app = durable_apps.adder_app("sqlite:///%s" % (tmp_path / "slow.db"))
    gateway = webcont.gateway(app, request_timeout=0.5)
    server = InProcess.__new__(InProcess)
    server.cookies = {}
    server.app, server.gateway = app, gateway
    try:
        _, page = server.get()
        def slow(original):
            def slow_record(self, *args, **kwargs):
                time.sleep(1.5)
                return original(self, *args, **kwargs)
            return slow_record
        undo = wrap_methods(monkeypatch, step_record_methods(), slow)
        assert server.step(ID.search(page).group(1), n=1)[0] == 504
        undo()
        time.sleep(1.5)  # the late commit completes: the hub must shrug it off
        status, fresh = server.get()
        assert status == 200
        assert server.step(ID.search(fresh).group(1), n=2)[0] == 200
    finally:
        gateway.close()


def _with_gateway(app, **gateway_options):
    server = InProcess.__new__(InProcess)
    server.cookies = {}
    server.app, server.gateway = app, webcont.gateway(app, **gateway_options)
    return server


def writer_thread_only(monkeypatch):
    """Commit on the store's writer thread, as PostgreSQL does (and SQLite while
    another process holds the lock): only there can a commit outlast its
    request; a commit the hub makes itself holds the hub instead."""
    from webcont._dialects import SqliteLogStore
    monkeypatch.setattr(SqliteLogStore, "commits_here", False)


def test_a_commit_that_fails_after_its_request_gave_up_is_not_applied_twice(tmp_path, monkeypatch):
    """The retry of the same form is one move, live and after a restart."""
    import sqlite3
    writer_thread_only(monkeypatch)
    url = "sqlite:///%s" % (tmp_path / "g.db")
    server = _with_gateway(durable_apps.adder_app(url), request_timeout=0.5)
    try:
        _, page = server.get()
        cid, first_bonus = ID.search(page).group(1), int(state(page)["bonus"])
        def locked(original):  # SQLite busy past request_timeout, then failing
            def locked_record(self, *args, **kwargs):
                time.sleep(1.0)
                raise sqlite3.OperationalError("database is locked")
            return locked_record
        undo = wrap_methods(monkeypatch, step_record_methods(), locked)
        assert server.step(cid, n=5)[0] == 504
        undo()
        # the late commit fails meanwhile, and the store's pause after a failure
        # (RETRY_AFTER, 503 at once) ends
        time.sleep(2.2)
        status, page = server.step(cid, n=5)  # the user retries
        assert status == 200 and state(page)["moves"] == "1"
        assert int(state(page)["total"]) == 5 + first_bonus  # not 10 + two bonuses
        bonus = int(state(page)["bonus"])
    finally:
        server.gateway.close()
    again = _with_gateway(durable_apps.adder_app(url))
    again.cookies = server.cookies  # the same browser
    try:
        status, shown = again.get("__wc=%s&__show=1" % ID.search(page).group(1))
        assert status == 200 and state(shown) == state(page) and int(state(shown)["bonus"]) == bonus
    finally:
        again.gateway.close()


def test_a_new_game_whose_first_commit_outlasts_the_request_leaves_no_tasklet(tmp_path, monkeypatch):
    from webcont import _recorder
    from webcont._store import LogStore
    writer_thread_only(monkeypatch)
    server = _with_gateway(durable_apps.adder_app("sqlite:///%s" % (tmp_path / "g.db")),
                           request_timeout=0.3)
    try:
        server.get()  # the store is open
        before = len(_recorder.active_recorders)
        original = LogStore.op_start

        def slow_start(self, *args, **kwargs):
            time.sleep(0.6)
            return original(self, *args, **kwargs)
        monkeypatch.setattr(LogStore, "op_start", slow_start)
        assert [server.get()[0] for _ in range(3)] == [504] * 3
        monkeypatch.setattr(LogStore, "op_start", original)
        time.sleep(0.8)
        assert server.get()[0] == 200  # (and runs on the hub after the late commits)
        assert len(_recorder.active_recorders) == before + 1  # just the new game's
    finally:
        server.gateway.close()


def test_a_controller_leaving_with_systemexit_answers_500_and_its_game_ends(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    game.app.route("/", durable_apps.quitter, durable=True)
    _, page = game.get()
    cid = ID.search(page).group(1)
    started = time.monotonic()
    assert game.step(cid, quit=1)[0] == 500
    status, gone = game.step(cid, n=1)
    assert status == 410 and "error on the server" in gone
    assert time.monotonic() - started < 5  # answered at once, not at request_timeout
    assert game.get()[0] == 200


def test_a_divergence_is_not_swallowed_by_the_controllers_except_exception(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "g.db")

    def serve(controller):
        app = webcont.SessionlessApp(store=url, secret="s" * 32)
        app.route("/", controller, durable=True, version=controller.__name__)
        return _with_gateway(app, request_timeout=5)
    server = serve(durable_apps.forgiving_v1)
    _, page = server.get()
    _, page = server.step(ID.search(page).group(1), n=10)
    cid = ID.search(page).group(1)
    server.gateway.close()
    for changed in (durable_apps.forgiving_v2, durable_apps.forgiving_v3):
        server = serve(changed)
        try:
            started = time.monotonic()
            assert server.step(cid, n=1)[0] == 410  # "version": not a silent other state
            assert server.get()[0] == 200  # and the hub is free
            assert time.monotonic() - started < 4
        finally:
            server.gateway.close()


def test_a_controller_consuming_its_parameters_does_not_change_the_log(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    game.app.route("/", durable_apps.consuming, durable=True)
    _, page = game.get()
    status, page = game.step(ID.search(page).group(1), n=5)
    assert status == 200 and state(page)["total"] == "5"
    game.restart()
    game.app.route("/", durable_apps.consuming, durable=True)
    status, page = game.step(ID.search(page).group(1), n=2)
    assert status == 200 and state(page)["total"] == "7"


def test_two_requests_loading_one_game_replay_it_once(tmp_path, monkeypatch):
    import threading
    from webcont import _recorder
    from webcont._store import LogStore
    url = "sqlite:///%s" % (tmp_path / "g.db")
    server = _with_gateway(durable_apps.adder_app(url))
    _, page = server.get()
    cid = ID.search(page).group(1)
    server.gateway.close()
    server = _with_gateway(durable_apps.adder_app(url))
    try:
        server.get()  # the store is open; one game in memory
        before = len(_recorder.active_recorders)
        original = LogStore.op_load

        def slow_load(self, *args, **kwargs):
            time.sleep(0.3)  # both requests arrive while the log is read
            return original(self, *args, **kwargs)
        monkeypatch.setattr(LogStore, "op_load", slow_load)
        answers = []
        requests = [threading.Thread(target=lambda: answers.append(server.step(cid, n=5)))
                    for _ in range(2)]
        for request in requests:
            request.start()
        for request in requests:
            request.join()
        # the double submit is one move: the same page again, or "being submitted"
        assert sorted(status for status, _ in answers) in ([200, 200], [200, 409])
        assert all(state(page)["moves"] == "1" for status, page in answers if status == 200)
        assert server.app._chains.replays == 1
        assert len(_recorder.active_recorders) == before + 1
    finally:
        server.gateway.close()


def test_a_game_being_expired_is_not_evicted_before_its_cleanup_runs(tmp_path, monkeypatch):
    import threading
    from webcont import _durable
    app = durable_apps.adder_app("sqlite:///%s" % (tmp_path / "g.db"), continuation_timeout=0.5,
                                 sweep_interval=0.2, max_continuations=1)
    server = _with_gateway(app)
    original_end = _durable.DurableChains._end
    in_expiry = threading.Event()

    def slow_end(self, chain_id, state_, step=None):  # a slow store round trip
        if state_ == "expired" and not in_expiry.is_set():
            in_expiry.set()
            current_hub().wait(self.store.read(lambda store, cursor: time.sleep(0.5)))
        return original_end(self, chain_id, state_, step)
    original_expire = _durable.DurableChains.expire
    cleanups_after_expiry = {}

    def watched_expire(self, chain_id):
        original_expire(self, chain_id)
        cleanups_after_expiry.setdefault(chain_id, list(durable_apps._cleanups))
    monkeypatch.setattr(_durable.DurableChains, "_end", slow_end)
    monkeypatch.setattr(_durable.DurableChains, "expire", watched_expire)
    durable_apps._cleanups.clear()
    try:
        _, page = server.get()  # game A
        game_a = ID.search(page).group(1).split(".")[0]
        assert in_expiry.wait(5)  # the sweeper is expiring A ...
        assert server.get()[0] == 200  # ... when game B would evict it (cap 1)
        deadline = time.monotonic() + 5
        while not cleanups_after_expiry and time.monotonic() < deadline:
            time.sleep(0.02)
        (expired, cleanups), = cleanups_after_expiry.items()
        assert expired == game_a
        assert cleanups == ["timeout"]  # A's own cleanup ran as A expired
    finally:
        server.gateway.close()


def test_logging_inside_a_controller_does_not_break_its_replay(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    game.app.route("/", durable_apps.chatty, durable=True)
    _, page = game.get()
    _, page = game.step(ID.search(page).group(1), n=1)
    game.restart()
    game.app.route("/", durable_apps.chatty, durable=True)
    status, page = game.step(ID.search(page).group(1), n=1)
    assert status == 200 and state(page)["moves"] == "2"


def test_a_controller_that_raises_ends_its_game_with_a_clear_410(served, store_url):
    game = served(durable_apps.adder_app, store_url)
    game.app.route("/", durable_apps.chatty, durable=True)
    _, page = game.get()
    cid = ID.search(page).group(1)
    assert game.step(cid, boom=1)[0] == 500
    started = time.monotonic()
    status, gone = game.step(cid, n=1)
    assert status == 410 and "error on the server" in gone
    assert time.monotonic() - started < 5


def test_a_game_past_its_deadline_is_expired_on_resume_even_before_a_sweep(served, store_url):
    game = served(durable_apps.adder_app, store_url, continuation_timeout=0.5,
                  sweep_interval=60)
    _, page = game.get()
    game.restart()  # the new process has not swept anything yet
    time.sleep(0.8)
    status, gone = game.step(ID.search(page).group(1), n=1)
    assert status == 410 and "expired" in gone
    _, page = game.get()
    time.sleep(0.8)  # in memory this time
    assert game.step(ID.search(page).group(1), n=1)[0] == 410


def test_a_finished_game_answers_its_last_move_again_and_refuses_others(served, store_url,
                                                                         caplog):
    game = served(durable_apps.adder_app, store_url)
    game.app.route("/", durable_apps.short_game, durable=True)
    _, page = game.get()
    cid = ID.search(page).group(1)
    status, final = game.step(cid, n=7)
    assert status == 200 and "final=7" in final
    game.restart()
    game.app.route("/", durable_apps.short_game, durable=True)
    assert game.step(cid, n=7) == (200, final)
    with caplog.at_level("INFO", logger="webcont"):
        assert game.step(cid, n=8)[0] == 409
    assert "409 too late" in caplog.text  # refused, and logged as such


@pytest.mark.parametrize("url, complaint", [
    ("mysql://db", "unsupported store URL"), ("sqlite://games.db", "needs a path"),
    ("sqlite:///", "needs a path"), ("sqlite:///g.db?synchronous=off", "normal or full"),
    (5, "a URL string"),
])
def test_a_bad_store_url_is_refused_when_the_app_is_made(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        webcont.SessionlessApp(store=url)


def test_webconts_own_clock_is_never_recorded_as_a_controllers_draw():
    """The hub's bookkeeping can run while a durable controller is the current
    tasklet: its clock reads must not land in that controller's log."""
    import time as time_module

    from webcont import _clock, _recorder
    _recorder.install_patches()
    recorder = _recorder.Recorder()
    _recorder.activate(recorder)

    def controller_runs():  # (what its driver waits for: its reply)
        _clock.monotonic()
        assert recorder.pending == []
        time_module.monotonic()  # what the controller itself calls: recorded
        assert [kind for kind, _, _ in recorder.pending] == ["time.monotonic"]
    try:
        _recorder.driving(controller_runs)
        time_module.monotonic()  # no controller runs: nothing to look up
        assert len(recorder.pending) == 1
    finally:
        _recorder.deactivate()
    time_module.monotonic()
    assert len(recorder.pending) == 1  # not recorded once deactivated


def test_ids_are_parsed_strictly_and_any_other_spelling_is_a_404_never_a_500(store_url):
    with ServerProcess("tests.webcont.durable_apps:counter_app", store=store_url) as server:
        client = Client(server.port)
        _, _, page = client.get("/")
        cid = continuation_id(page)
        chain, step, mac = cid.split(".")
        assert step == "1"
        spellings = ["0" + step, "+" + step, " " + step, step + " ", step + "\n", "\u00b9",
                     "\u00b2", "\uff11", "\u0661", "\u06f1", "1_", "1e0", "0x1", "1.0"]
        for spelling in spellings:
            status, _, answer = client.get("/", __wc="%s.%s.%s" % (chain, spelling, mac), n=1)
            assert status == 404, (spelling, status, answer)
        for forged in (cid + "\n", " " + cid, cid.upper(), chain + "\uff0e1." + mac,
                       "%s.%s.%s=" % (chain, step, mac), "%s..%s.%s" % (chain, step, mac)):
            assert client.get("/", __wc=forged, n=1)[0] == 404, forged
        status, _, page = client.get("/", __wc=cid, n=1)  # the genuine spelling works
        assert status == 200 and "moves=1" in page
    assert "Traceback" not in server.stderr_text and " 500 " not in server.stderr_text


# -- req.to_thread: each call's outcome recorded once --------------------------------

def tokens(page):
    return re.search(r'id="tokens">([^<]*)', page).group(1).split()


def calls(path):
    return path.read_text().splitlines() if path.exists() else []


def test_a_game_calling_to_thread_each_step_survives_kill_9_and_calls_once_per_step(
        store_url, tmp_path):
    factory = "tests.webcont.durable_apps:charger_app"
    ledger = tmp_path / "calls.txt"
    with ServerProcess(factory, store=store_url, calls_file=str(ledger)) as server:
        client = Client(server.port)
        page = client.get("/")[2]
        for _ in range(3):
            status, _, page = client.get("/", __wc=continuation_id(page))
            assert status == 200
        before = tokens(page)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
    # two calls a step (req.to_thread, req.await_), four steps answered
    assert len(before) == 8 and len(calls(ledger)) == 8
    with ServerProcess(factory, store=store_url, calls_file=str(ledger)) as server:
        client = Client(server.port)
        for _ in range(2):
            status, _, page = client.get("/", __wc=continuation_id(page))
            assert status == 200
    after = tokens(page)
    assert after[:8] == before  # the replay saw the same results, and did not call again
    assert len(after) == 12 and len(calls(ledger)) == 12
    assert [line.split()[1] for line in calls(ledger)] == after
    keys = [line.split()[0] for line in calls(ledger)]
    assert len(set(keys)) == 12  # req.step_id: one per step (the await_ call adds "a")


def test_an_exception_in_to_thread_reaches_the_controller_and_replays_with_its_type(
        served, tmp_path):
    ledger = tmp_path / "calls.txt"
    game = served(durable_apps.charger_app, "sqlite:///%s" % (tmp_path / "g.db"),
                  calls_file=str(ledger))
    _, page = game.get()
    status, page = game.step(ID.search(page).group(1), fail=1)
    assert status == 200 and tokens(page)[2].startswith("KeyError:card")
    assert 'id="refused">True' in page  # a tuple result is refused at the call
    game.restart()
    status, shown = game.get("__wc=%s&__show=1" % ID.search(page).group(1))
    assert status == 200 and tokens(shown) == tokens(page)  # replayed, rebuilt as KeyError
    assert len(calls(ledger)) == 4


def test_a_call_whose_outcome_cannot_be_recorded_ends_the_step_with_503_not_in_the_controller(
        served, tmp_path, monkeypatch):
    from webcont._store import LogStore, StoreUnavailable
    ledger = tmp_path / "calls.txt"
    game = served(durable_apps.careless_charger_app, "sqlite:///%s" % (tmp_path / "g.db"),
                  calls_file=str(ledger))
    _, page = game.get()
    cid = ID.search(page).group(1)
    original = LogStore.op_call

    def failing(self, *args, **kwargs):  # the store fails as the call's outcome is committed
        raise StoreUnavailable("the disk is gone")
    monkeypatch.setattr(LogStore, "op_call", failing)
    status, page = game.step(cid)
    assert status == 503  # not a page saying "declined": that step would never replay
    monkeypatch.setattr(LogStore, "op_call", original)
    assert len(calls(ledger)) == 2  # step 0's call, and the call of the attempt that failed
    status, page = game.step(cid)  # the same answer again: the step runs afresh
    assert status == 200 and len(calls(ledger)) == 3
    charged = [line.split()[1] for line in calls(ledger)]
    assert tokens(page) == [charged[0], charged[2]]  # no "declined:StoreUnavailable"
    game.restart()
    status, shown = game.get("__wc=%s&__show=1" % ID.search(page).group(1))
    assert status == 200 and tokens(shown) == tokens(page)  # it replays


def test_a_call_recorded_before_its_step_failed_to_commit_is_not_run_again(
        served, tmp_path, monkeypatch):
    ledger = tmp_path / "calls.txt"
    game = served(durable_apps.charger_app, "sqlite:///%s" % (tmp_path / "g.db"),
                  calls_file=str(ledger))
    _, page = game.get()
    cid = ID.search(page).group(1)
    def lost(original):  # the step's own commit fails (as a crash would)
        def lost_record(self, *args, **kwargs):
            raise RuntimeError("disk on fire")
        return lost_record
    undo = wrap_methods(monkeypatch, step_record_methods(), lost)
    assert game.step(cid)[0] == 503
    undo()
    assert len(calls(ledger)) == 4  # the charges ran, and their outcomes were recorded
    status, page = game.step(cid)  # the same answer again
    assert status == 200 and len(calls(ledger)) == 4
    assert tokens(page)[2:4] == [line.split()[1] for line in calls(ledger)[2:4]]
    status, page = game.step(ID.search(page).group(1), fail=1)  # the next step: new calls
    assert status == 200 and len(calls(ledger)) == 6
