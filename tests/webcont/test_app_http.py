"""webcont's own SessionlessApp and demos over real HTTP (waitress on loopback)."""

import concurrent.futures
import re
import threading
import time

import pytest

from .support import Client, ServerProcess, continuation_id, message, play_to_the_end, won


@pytest.fixture(scope="module", params=[1, 4], ids=["inline-hub", "thread-hub"])
def demo_server(request):
    with ServerProcess("tests.webcont.fixture_apps:demo", threads=request.param) as server:
        yield server


def test_a_game_is_won_with_complete_html_and_charset(demo_server):
    client = Client(demo_server.port)
    status, headers, page = client.get("/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    pages, final = play_to_the_end(client)
    guesses = len(pages) - 1
    assert "you made it in %d guess%s." % (guesses, "" if guesses == 1 else "es") in final
    assert "too low" in "".join(pages) or "too high" in "".join(pages) or len(pages) == 2


@pytest.mark.parametrize("guess", ["abc", "", "   ", "1e3", "-", "0x10", "-5", "1_0",
                                   "\uff15\uff10", "\u0665"])  # full-width 50, Arabic-Indic 5
def test_a_guess_that_is_not_a_number_in_ascii_digits_is_answered_and_the_game_goes_on(
        demo_server, guess):
    client = Client(demo_server.port)
    _, _, page = client.get("/")
    status, _, page = client.get("/", __wc=continuation_id(page), guess=guess)
    assert status == 200
    assert message(page) == "You must guess a number between 1 and 100."
    assert "You have guessed 0 times." in page
    status, _, page = client.get("/", __wc=continuation_id(page), guess=50)
    assert status == 200
    assert "You have guessed 1 time." in page or "you made it in 1 guess." in page  # 1 in 100


@pytest.mark.parametrize("guess, answer", [
    ("101", "101 is not between 1 and 100."),
    ("0", "0 is not between 1 and 100."),
    ("0000000000050000", "That number is not between 1 and 100."),
    ("9" * 5000, "That number is not between 1 and 100."),
])
def test_a_number_out_of_range_is_refused_without_counting(demo_server, guess, answer):
    client = Client(demo_server.port)
    _, _, page = client.get("/")
    _, _, page = client.get("/", __wc=continuation_id(page), guess=guess)
    assert message(page) == answer
    assert "You have guessed 0 times." in page
    _, _, page = client.get("/", __wc=continuation_id(page), guess="007")
    assert "You guessed 7 - which is too" in message(page) or won(page)


def test_pages_are_titled_by_their_heading_and_counts_read_as_english(demo_server):
    client = Client(demo_server.port)
    _, _, page = client.get("/")
    assert "<title>Guess the number</title>" in page
    for _ in range(5):  # 50 wins one game in a hundred: then play another
        _, _, page = client.get("/")
        _, _, page = client.get("/", __wc=continuation_id(page), guess=50)
        if not won(page):
            break
    assert "You have guessed 1 time." in page
    _, _, page = client.get("/", __wc=continuation_id(page), guess=25 if "high" in page else 75)
    assert "You have guessed 2 times." in page or "in 2 guesses." in page
    _, _, page = client.get("/wizard")
    assert "<title>Sign up, step 1 of 3</title>" in page


def test_an_unknown_id_gets_a_404_page_linking_to_a_new_game(demo_server):
    status, headers, page = Client(demo_server.port).get("/", __wc="A" * 22, guess=5)
    assert status == 404
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<a href="/">Start again</a>' in page
    assert "does not know" in page


def test_submitting_the_same_form_twice_advances_the_game_once(demo_server):
    client = Client(demo_server.port)
    for _ in range(5):  # 50 wins one game in a hundred: then play another
        _, _, page = client.get("/")
        cid = continuation_id(page)
        status, _, first = client.get("/", __wc=cid, guess=50)
        if not won(first):
            break
    status2, _, second = client.get("/", __wc=cid, guess=50)
    assert status == status2 == 200
    assert first == second  # the identical page, not a second move
    assert "You have guessed 1 time." in second
    status3, _, third = client.get("/", __wc=cid, guess=20)
    assert status3 == 409
    assert "already answered" in third
    _, _, page = client.get("/", __wc=continuation_id(first), guess=60)
    # the second move counts as the second (60 is the secret one game in a hundred)
    assert "You have guessed 2 times." in page or "you made it in 2 guesses" in page


def test_unknown_paths_get_404_and_other_methods_405(demo_server):
    client = Client(demo_server.port)
    assert client.get("/nothing-here")[0] == 404
    status, headers, _ = client.request("/", method="DELETE")
    assert status == 405 and headers["Allow"] == "GET, POST"
    status, _, page = client.request("/wizard", method="DELETE")
    assert status == 405 and 'href="/wizard"' in page  # "Start again" where it was


def test_bad_input_gets_clear_4xx_pages(demo_server):
    client = Client(demo_server.port)
    status, _, page = client.request("/?guess=%FF%FE")
    assert status == 400 and "UTF-8" in page
    status, _, page = client.request("/?" + "a=1&" * 200)
    assert status == 400 and "fields" in page
    status, _, page = client.request("/?x=" + "9" * 9000)
    assert status == 414
    status, _, page = client.request("/wizard", method="POST", body=b"x" * 70000,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and 'href="/wizard"' in page  # the gateway's page: the game's route
    status, _, page = client.request("/wizard?guess=%FF")
    assert status == 400 and 'href="/wizard"' in page
    status, _, page = client.request("/%5Cevil.example", method="POST", body=b"x" * 70000)
    assert status == 413 and 'href="/"' in page  # a path that is no route is never linked
    assert Client(demo_server.port).get("/")[0] == 200  # and the server still serves


def _submit(client, page, **fields):
    """Post the page's form with ``fields`` as a browser would."""
    action = re.search(r'action="([^"]+)"', page).group(1).replace("&amp;", "&")
    return client.request(action, method="POST", body=dict(fields, __wc=continuation_id(page)))


def test_the_wizard_runs_on_post_forms_and_escapes_what_it_echoes(demo_server):
    client = Client(demo_server.port)
    status, _, page = client.get("/wizard")
    assert status == 200 and "step 1 of 3" in page
    assert 'class="error"' not in page  # no empty error paragraph
    name = '<script>alert("x")</script>'
    status, _, page = _submit(client, page, answer=name)
    assert status == 200 and "step 2 of 3" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'class="error"' not in page
    _, _, page = _submit(client, page, answer="not an address")
    assert '<p class="error">That does not look like an e-mail address.</p>' in page
    _, _, page = _submit(client, page, answer="a@b.example")
    assert "step 3 of 3" in page and 'type="text"' not in page  # buttons, nothing to type
    assert re.search(r'<button type="submit" name="answer" value="yes"[^>]*>Sign up</button>', page)
    _, _, page = _submit(client, page, answer="yes")
    assert "Welcome, &lt;script&gt;" in page and "a@b.example" in page
    assert "<title>Welcome, &lt;script&gt;" in page


def test_the_wizards_cancel_button_signs_nobody_up(demo_server):
    client = Client(demo_server.port)
    _, _, page = client.get("/wizard")
    _, _, page = _submit(client, page, answer="Ann")
    _, _, page = _submit(client, page, answer="ann@example.org")
    _, _, page = _submit(client, page, answer="maybe")  # no button sends this
    assert "step 3 of 3" in page and "Please press one of the buttons." in page
    _, _, page = _submit(client, page, answer="no")
    assert "<h1>Not signed up</h1>" in page


def test_the_wizards_slow_member_lookup_holds_neither_the_game_nor_a_taken_address(demo_server):
    """The wizard checks and adds members through req.to_thread (0.3 s each):
    game steps are answered meanwhile, and an address signs up once."""
    def wizard_to_email_step(name):
        client = Client(demo_server.port, timeout=10)
        _, _, page = client.get("/wizard")
        return client, _submit(client, page, answer=name)[2]
    client, page = wizard_to_email_step("Ann")
    lookup = concurrent.futures.ThreadPoolExecutor(1).submit(
        _submit, client, page, answer="ann@members.example")
    time.sleep(0.05)
    gamer = Client(demo_server.port)
    _, _, game = gamer.get("/")
    latencies = []
    while not lookup.done():
        started = time.monotonic()
        status, _, game = gamer.get("/", __wc=continuation_id(game), guess=50)
        latencies.append(time.monotonic() - started)
        if won(game):
            _, _, game = gamer.get("/")
    # steps went on during the 0.3 s lookup (a held hub would answer one, late)
    assert len(latencies) >= 3 and max(latencies) < 0.25, latencies
    _, _, page = lookup.result()
    assert "step 3 of 3" in page
    _, _, page = _submit(client, page, answer="yes")
    assert re.search(r"Member number \d+", page)
    client, page = wizard_to_email_step("Bob")
    _, _, page = _submit(client, page, answer="ANN@members.example")
    assert "step 2 of 3" in page and "has signed up already" in page


def test_fifty_concurrent_games_are_never_mixed_up(demo_server):
    def one_game(number):
        client = Client(demo_server.port)
        try:
            pages, final = play_to_the_end(client)
        finally:
            client.close()
        ids = [continuation_id(page) for page in pages[:-1]]
        return number, len(pages) - 1, final, ids
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one_game, range(50)))
    all_ids = [cid for *_, ids in results for cid in ids]
    assert len(all_ids) == len(set(all_ids))  # no id served to two games
    for _, guesses, final, _ in results:
        assert "you made it in %d guess%s." % (guesses, "" if guesses == 1 else "es") in final


def test_an_expired_continuation_gets_410_and_its_controller_cleans_up():
    with ServerProcess("tests.webcont.fixture_apps:cleanup_reporter",
                       continuation_timeout=0.5) as server:
        client = Client(server.port)
        status, _, page = client.get("/wait")
        assert status == 200
        time.sleep(1.5)  # no traffic: the hub's timer must expire it alone
        status, _, page = client.get("/wait", __wc=continuation_id(page))
        assert status == 410
        # "start again" leads to the route the game was started on
        assert "expired" in page and '<a href="/wait">Start again</a>' in page
        code, _, err = server.stop()
    assert code == 0
    assert "CLEANUP timeout" in err and "CLEANUP finally" in err


@pytest.mark.parametrize("threads", [1, 4])
def test_a_controller_that_raises_gets_a_500_page_without_traceback(threads):
    with ServerProcess("tests.webcont.fixture_apps:faulty", threads=threads) as server:
        client = Client(server.port)
        status, _, page = client.get("/now")
        assert status == 500
        assert "Traceback" not in page and "ValueError" not in page
        assert "has been logged" in page
        status, _, page = client.get("/later")
        assert status == 200
        status, _, page = client.get("/later", __wc=continuation_id(page))
        assert status == 500 and "KeyError" not in page
        assert client.get("/later")[0] == 200  # still serving
        code, _, err = server.stop()
    assert code == 0
    assert "ValueError: this controller always fails" in err  # logged on the server
    assert "KeyError" in err


@pytest.mark.parametrize("threads", [1, 4])
def test_a_request_the_app_never_answers_gets_an_error_not_a_hang(threads):
    with ServerProcess("tests.webcont.fixture_apps:faulty", threads=threads,
                       serve_options={"request_timeout": 1.0}) as server:
        started = time.monotonic()
        status, _, page = Client(server.port, timeout=10).get("/stuck")
        assert status == 504 and 0.9 < time.monotonic() - started < 5
        assert 'href="/stuck"' in page  # "Start again" leads back to the game


def _policy(headers):
    """The headers a page carries whatever its size or day (and no cookie)."""
    return {name: value for name, value in headers.items()
            if name not in ("Content-Length", "Date", "Set-Cookie")}


@pytest.mark.parametrize("threads", [1, 4])
def test_the_gateways_own_pages_carry_the_apps_response_headers(threads):
    """413, 504 and the 500 of an app that raised are written by the gateway,
    not the app: they carry the app's ``response_headers`` all the same."""
    with ServerProcess("tests.webcont.fixture_apps:headed", threads=threads,
                       serve_options={"request_timeout": 1.0}) as server:
        client = Client(server.port, timeout=10)
        status, headers, _ = client.get("/")
        assert status == 200 and headers["X-Served-By"] == "fixture-headed"
        policy = _policy(headers)
        assert "default-src 'self'" in policy["Content-Security-Policy"]
        answers = {
            "413": client.request("/", method="POST", body=b"x" * 70000),
            "504": client.get("/stuck"),
            "500": client.get("/app-bug"),
            "500 (controller)": client.get("/now"),  # the app's own page, for comparison
        }
        for what, (status, headers, page) in answers.items():
            assert str(status) == what[:3] and "<h1" in page, (what, page)
            assert _policy(headers) == policy, what
            assert int(headers["Content-Length"]) == len(page.encode())


@pytest.mark.parametrize("threads", [1, 4])
def test_requests_waiting_when_the_server_stops_get_the_503_of_a_shutdown(threads):
    """Their request tasklets are killed before their controllers, whatever the
    order they were made in: a 503 "shutting down" with the app's headers,
    not the 500 "the application failed" of a controller that never failed."""
    with ServerProcess("tests.webcont.fixture_apps:headed", threads=threads,
                       serve_options={"request_timeout": 30.0, "shutdown_grace": 1.0}) as server:
        policy = _policy(Client(server.port).get("/")[1])
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            waiting = [pool.submit(Client(server.port, timeout=10).get, "/stuck")
                       for _ in range(4)]
            deadline = time.monotonic() + 10
            while server.log().count("ENTERED stuck") < 4 and time.monotonic() < deadline:
                time.sleep(0.02)  # until the four controllers are blocked
            code, _, err = server.stop()
            answers = [future.result() for future in waiting]
    assert code == 0
    for status, headers, page in answers:
        assert status == 503 and "shutting down" in page, page
        assert _policy(headers) == policy
    assert err.count("CLEANUP stuck") == 4  # the controllers were ended, their finally: run


def test_with_one_worker_a_waiting_request_leaves_the_worker_to_the_others():
    """serve()'s single worker is the hub; a request waiting for something does
    not hold it: other games are played meanwhile, then the waiter gets its 504."""
    with ServerProcess("tests.webcont.fixture_apps:faulty", threads=1,
                       serve_options={"request_timeout": 3.0}) as server:
        stuck = {}

        def wait_stuck():
            stuck["status"] = Client(server.port, timeout=10).get("/stuck")[0]
        waiter = threading.Thread(target=wait_stuck)
        waiter.start()
        time.sleep(0.3)  # the stuck request is in
        client = Client(server.port, timeout=2)
        for _ in range(5):
            started = time.monotonic()
            status, _, page = client.get("/")
            assert status == 200 and time.monotonic() - started < 1.0
        assert "status" not in stuck  # still waiting, not answered early
        waiter.join(10)
        assert stuck["status"] == 504


def test_sigterm_stops_gracefully_and_runs_finally_blocks_of_suspended_controllers():
    with ServerProcess("tests.webcont.fixture_apps:cleanup_reporter") as server:
        for _ in range(5):
            assert Client(server.port).get("/wait")[0] == 200
        code, out, err = server.stop()
    assert code == 0 and "exited cleanly" in out
    assert err.count("CLEANUP finally") == 5
    assert "5 suspended tasklet(s) killed" in err
