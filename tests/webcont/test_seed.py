"""The seed program, ported with only the allowed edits, runs on webcont.serve."""

import concurrent.futures
import re
import time

import pytest

from .support import Client, ServerProcess, continuation_id, play_to_the_end, won

SEED = "tests.seed_app:SessionlessApp"


@pytest.fixture(scope="module")
def seed_server():
    with ServerProcess(SEED) as server:
        yield server


def test_a_whole_game_is_won_over_http(seed_server):
    client = Client(seed_server.port)
    pages, final = play_to_the_end(client)
    guesses = len(pages) - 1
    assert "you made it in %d guesses" % guesses in final
    assert '<a href="/">Play again</a>' in final


def test_the_seed_spelling_and_counter_are_unchanged(seed_server):
    client = Client(seed_server.port)
    _, _, page = client.get("/")
    assert "You have guessed 0 times." in page
    status, _, page = client.get("/", __wc=continuation_id(page), guess=0)
    assert status == 200
    assert "You guessed 0 - which is to low" in page  # the seed's own typo
    assert "You have guessed 1 times." in page


def test_several_games_interleaved_step_by_step_do_not_mix(seed_server):
    clients = [Client(seed_server.port) for _ in range(6)]
    states = []
    for client in clients:
        _, _, page = client.get("/")
        states.append({"client": client, "page": page, "low": 1, "high": 100, "done": False,
                       "guesses": 0})
    for _ in range(12):
        for state in states:  # one step of every game in turn
            if state["done"]:
                continue
            guess = (state["low"] + state["high"]) // 2
            status, _, page = state["client"].get(
                "/", __wc=continuation_id(state["page"]), guess=guess)
            assert status == 200, page
            state["guesses"] += 1
            assert "You have guessed" in page or won(page)
            if "to low" in page:
                state["low"] = guess + 1
            elif "to high" in page:
                state["high"] = guess - 1
            else:
                assert "Yay - %d is the right number, you made it in %d guesses" % (
                    guess, state["guesses"]) in page
                state["done"] = True
            state["page"] = page
    assert all(state["done"] for state in states)


def test_concurrent_games_from_threads_all_finish(seed_server):
    def one_game(_):
        client = Client(seed_server.port)
        try:
            pages, final = play_to_the_end(client)
            return len(pages) - 1, final
        finally:
            client.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one_game, range(16)))
    for guesses, final in results:
        assert re.search(r"you made it in %d guesses" % guesses, final)


def test_an_unknown_id_gets_the_seed_500_answer(seed_server):
    status, _, page = Client(seed_server.port).get("/", __wc="0" * 32)
    assert status == 500
    assert "Continuation id invalid" in page


def test_the_seed_non_numeric_guess_bug_answers_504_instead_of_hanging():
    # The seed only catches TypeError: int("abc") raises ValueError and its
    # controller dies.  The hub must still answer the waiting request, within
    # the request timeout, and serve other games meanwhile.
    with ServerProcess(SEED, serve_options={"request_timeout": 1.5}) as seed_server:
        client = Client(seed_server.port, timeout=10)
        _, _, page = client.get("/")
        started = time.monotonic()
        status, _, page = client.get("/", __wc=continuation_id(page), guess="abc")
        assert status == 504
        assert time.monotonic() - started < 5
        # and the server goes on serving new games
        pages, final = play_to_the_end(Client(seed_server.port))
        assert won(final)
