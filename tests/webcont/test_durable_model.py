"""Random interleavings of moves, duplicates, stale answers and restarts against a model.

A hypothesis state machine plays several durable "adder" games (each move
adds n plus the bonus shown on the previous page) through webcont.gateway on
one SQLite store, restarting the server at random.  The model knows every
game's moves and total: zero lost or doubled moves, the same page for a
duplicate, 409 for a different answer to an old step.  Another browser (no
owner cookie) sending any old id, with any fields, gets no answer carrying
an id of that game and moves nothing.
"""

import tempfile

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

from . import durable_apps
from .test_durable import ID, InProcess, state


class DurableGames(RuleBasedStateMachine):
    @initialize()
    def open(self):
        self.directory = tempfile.TemporaryDirectory()
        self.server = InProcess(durable_apps.adder_app,
                                "sqlite:///%s/games.db" % self.directory.name)
        self.games = []  # model: dicts with moves, total, page, history

    def teardown(self):
        self.server.close()
        self.directory.cleanup()

    @rule()
    def new_game(self):
        status, page = self.server.get()
        assert status == 200
        self.games.append({"moves": 0, "total": 0, "page": page, "history": []})

    @precondition(lambda self: self.games)
    @rule(index=st.integers(0, 50), n=st.integers(0, 99))
    def move(self, index, n):
        game = self.games[index % len(self.games)]
        cid = ID.search(game["page"]).group(1)
        bonus = int(state(game["page"])["bonus"])
        status, page = self.server.step(cid, n=n)
        assert status == 200, page
        game["history"].append((cid, n, page))
        game["moves"] += 1
        game["total"] += n + bonus
        game["page"] = page

    @precondition(lambda self: any(game["history"] for game in self.games))
    @rule(index=st.integers(0, 50))
    def duplicate(self, index):
        played = [game for game in self.games if game["history"]]
        game = played[index % len(played)]
        cid, n, page = game["history"][-1]
        assert self.server.step(cid, n=n) == (200, page)

    @precondition(lambda self: any(game["history"] for game in self.games))
    @rule(index=st.integers(0, 50), which=st.integers(0, 50), other=st.integers(100, 200))
    def stale_answer(self, index, which, other):
        played = [game for game in self.games if game["history"]]
        game = played[index % len(played)]
        cid, n, _ = game["history"][which % len(game["history"])]
        status, page = self.server.step(cid, n=other)
        assert status == 409 and "already answered" in page

    @precondition(lambda self: any(game["history"] for game in self.games))
    @rule(index=st.integers(0, 50), which=st.integers(0, 50), same=st.booleans(),
          show=st.booleans())
    def stranger_uses_an_old_id(self, index, which, same, show):
        played = [game for game in self.games if game["history"]]
        game = played[index % len(played)]
        cid, n, _ = game["history"][which % len(game["history"])]
        fields = {"__show": 1} if show else {"n": n if same else n + 1000}
        status, page = self.server.step(cid, cookies={}, **fields)
        assert status in (403, 409), (status, page)
        chain = cid.split(".")[0]
        assert chain not in page  # no id of this game, live or not
        assert ID.search(page) is None

    @rule()
    def restart(self):
        self.server.restart()

    @invariant()
    def every_game_shows_exactly_its_moves(self):
        for game in getattr(self, "games", []):
            current = ID.search(game["page"]).group(1)
            status, page = self.server.get("__wc=%s&__show=1" % current)
            assert status == 200
            shown = state(page)
            assert int(shown["moves"]) == game["moves"]
            assert int(shown["total"]) == game["total"]


DurableGames.TestCase.settings = settings(max_examples=20, stateful_step_count=25,
                                          deadline=None, derandomize=True, database=None)
test_durable_games_never_lose_or_double_a_move = DurableGames.TestCase
