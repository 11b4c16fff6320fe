"""An old id never leads another browser to the live game (docs/security.md).

Over real HTTP, for in-memory games and durable ones on SQLite and
PostgreSQL: a victim plays, an attacker who holds the victim's old ids (from
history, a proxy log, a shared link) tries every way back in, and the victim
who pressed Back still finds the way on.  Each ``Client`` is one browser with
its own cookies.
"""

import io
import re
import time
import urllib.parse

import pytest

import webcont

from . import durable_apps
from .support import Client, ServerProcess, continuation_id

FACTORY = "tests.webcont.durable_apps:counter_app"


def moves(page):
    return int(re.search(r"moves=(\d+)", page).group(1))


def link(page):
    """The target of the first link of a page, unescaped."""
    return re.search(r'<a href="([^"]*)"', page).group(1).replace("&amp;", "&")


def ids_in(page):
    """Every continuation id a page carries, in forms or links."""
    return set(re.findall(r'(?:name="__wc" value="|__wc=)([^"&]+)', page.replace("&amp;", "&")))


def play(client, path, count):
    """Start a game at ``path`` and make ``count`` moves; return (ids used, last page)."""
    status, _, page = client.get(path)
    assert status == 200, page
    used = []
    for n in range(count):
        cid = continuation_id(page)
        status, _, page = client.get(path, __wc=cid, n=n + 1)
        assert status == 200, page
        used.append((cid, n + 1))
    return used, page


@pytest.fixture
def served(any_store):
    with ServerProcess(FACTORY, store=any_store) as server:
        yield server


def test_an_old_id_gives_another_browser_no_id_that_can_move_the_game(served):
    victim, attacker = Client(served.port), Client(served.port)
    attacker.get("/")  # the attacker has an owner cookie of its own
    used, page = play(victim, "/", 3)
    live = continuation_id(page)
    first, (last, last_n) = used[0][0], used[-1]
    answers = [
        attacker.get("/", __wc=first, n=50),              # an old id, another answer
        attacker.get("/", __wc=last, n=last_n),           # the last move, sent again
        attacker.get("/", __wc=first, __show=1),          # "continue" by hand
        attacker.get("/", __wc=first, n=1),               # the first move, sent again
    ]
    for status, _, answer in answers:
        assert status in (403, 409), answer
        assert live not in answer and not ids_in(answer), answer
    attacker.cookies.clear()  # and without any cookie
    status, _, answer = attacker.get("/", __wc=last, n=last_n)
    assert status == 409 and not ids_in(answer)
    # the victim's own next move is not refused: nobody else moved the game
    status, _, page = victim.get("/", __wc=live, n=10)
    assert status == 200 and moves(page) == 4


def test_the_browser_that_pressed_back_can_continue_from_the_route_of_its_game(served):
    player = Client(served.port)
    used, page = play(player, "/other", 2)
    first, last = used[0][0], used[-1]
    # a double submission of the last move: the same page, no second move
    status, _, again = player.get("/other", __wc=last[0], n=last[1])
    assert (status, again) == (200, page)
    # Back to the first page and another answer: 409, with the way on, under
    # the game's own route (whatever path the old form was sent to)
    status, _, refused = player.get("/", __wc=first, n=99)
    assert status == 409 and "already answered" in refused
    target = link(refused)
    assert target.startswith("/other?") and "__show=1" in target
    status, _, shown = player.get(target)
    assert status == 200 and shown == page
    status, _, page = player.get("/other", __wc=continuation_id(shown), n=5)
    assert status == 200 and moves(page) == 3


def test_the_owner_cookie_is_httponly_samesite_strict_and_secure_over_https(served):
    status, headers, _ = Client(served.port).get("/")
    cookie = headers["Set-Cookie"]
    assert re.fullmatch(r"wc_owner=[\w-]{22}; Path=/; HttpOnly; SameSite=Strict", cookie)
    app = durable_apps.counter_app()
    gateway = webcont.gateway(app)
    try:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
                   "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "https"}
        seen = []
        page = b"".join(gateway(environ, lambda s, h, e=None: seen.extend(h))).decode()
        cookie = dict(seen)["Set-Cookie"]
        # over https: the __Host- name, which no other host can set in the browser
        assert re.fullmatch(r"__Host-wc_owner=[\w-]{22}; Path=/; HttpOnly; SameSite=Strict;"
                            r" Secure", cookie)
        # and only that name is taken as the owner's over https
        first = continuation_id(page)
        token = cookie.split(";")[0].split("=", 1)[1]
        b"".join(gateway(dict(environ, QUERY_STRING="__wc=%s&n=1" % first,
                              HTTP_COOKIE="__Host-wc_owner=" + token,
                              **{"wsgi.input": io.BytesIO(b"")}),
                         lambda s, h, e=None: None))
        for name, owner in (("wc_owner", False), ("__Host-wc_owner", True)):
            answer = b"".join(gateway(dict(environ, QUERY_STRING="__wc=%s&n=9" % first,
                                           HTTP_COOKIE="%s=%s" % (name, token),
                                           **{"wsgi.input": io.BytesIO(b"")}),
                                      lambda s, h, e=None: None)).decode()
            assert ("__show=1" in answer) == owner, (name, answer)
    finally:
        gateway.close()


def test_a_browser_keeps_one_owner_cookie_for_all_its_games(served):
    browser = Client(served.port)
    _, headers, _ = browser.get("/")
    token = browser.cookies["wc_owner"]
    _, headers, _ = browser.get("/other")
    assert "Set-Cookie" not in headers and browser.cookies["wc_owner"] == token


def test_on_a_cluster_the_way_on_works_from_any_node_for_the_owner_only(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "shared.db")
    nodes = [webcont.gateway(durable_apps.counter_app(url, node=name)) for name in ("n0", "n1")]

    def get(node, query, cookie=None):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": query,
                   "wsgi.input": io.BytesIO(b"")}
        if cookie:
            environ["HTTP_COOKIE"] = cookie
        seen = []
        body = b"".join(nodes[node](environ, lambda s, h, e=None: seen.append((s, h))))
        return int(seen[0][0][:3]), dict(seen[0][1]), body.decode()
    try:
        _, headers, page = get(0, "")
        cookie = headers["Set-Cookie"].split(";")[0]
        first = continuation_id(page)
        status, _, page = get(0, "__wc=%s&n=1" % first, cookie)
        live = continuation_id(page)
        status, _, refused = get(1, "__wc=%s&n=7" % first)           # a stranger, on n1
        assert status == 409 and live not in refused and not ids_in(refused)
        status, _, refused = get(1, "__wc=%s&n=7" % first, cookie)   # the owner, on n1
        assert status == 409
        query = urllib.parse.urlsplit(link(refused)).query
        status, _, shown = get(1, query, cookie)
        assert status == 200 and continuation_id(shown) == live
    finally:
        for node in nodes:
            node.close()


@pytest.mark.parametrize("path", ["/\\evil.example", "//evil.example", "/\\\\evil.example/",
                                  "/%0d%0aLocation:%20http://evil.example", "/%5cevil.example",
                                  "/other%0d%0a"])
def test_links_come_from_the_games_route_never_from_the_request_path(served, path):
    player = Client(served.port)
    used, page = play(player, "/other", 2)
    first = used[0][0]
    status, _, refused = player.request("%s?__wc=%s&n=99" % (path, first))
    assert status == 409
    assert link(refused).startswith("/other?__wc=") and "evil" not in refused
    status, _, unknown = player.request("%s?__wc=%s" % (path, "x" * 22))
    assert status == 404 and link(unknown) == "/" and "evil" not in unknown
    status, _, nothing = player.request(path)
    assert status == 404 and link(nothing) == "/" and "evil" not in nothing
    for answer in (refused, unknown, nothing):
        for target in re.findall(r'href="([^"]*)"', answer):
            assert not re.search(r"[\\\r\n\x00-\x20]", target) and not target.startswith("//")


@pytest.mark.parametrize("route", ["//evil.example", "/a\\b", "/a\r\nb", "/a b", "evil"])
def test_a_route_that_could_read_as_another_host_or_break_a_link_is_refused(route):
    app = webcont.SessionlessApp()
    with pytest.raises(ValueError, match="route paths"):
        app.route(route, lambda req: "x")


# -- /healthz and the 410 pages (what the server tells whom) ----------------------------


def _health(app, address):
    gateway = webcont.gateway(app)
    try:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "QUERY_STRING": "",
                   "wsgi.input": io.BytesIO(b""), "REMOTE_ADDR": address}
        return b"".join(gateway(environ, lambda s, h, e=None: None)).decode()
    finally:
        gateway.close()


def test_healthz_hides_the_count_from_others_unless_told(tmp_path):
    url = "sqlite:///%s" % (tmp_path / "h.db")

    def health(address, details=None):
        app = durable_apps.counter_app(url)
        if details is not None:
            app.health_details = webcont._settings.networks(details)
        return _health(app, address)
    assert "game(s) in memory" in health("127.0.0.1")
    stranger = health("192.0.2.7")
    assert stranger.startswith("ok store ok node=") and "game" not in stranger
    assert "game(s) in memory" in health("192.0.2.7", "192.0.2.0/24")
    assert "game(s) in memory" in health("198.51.100.1", "always")
    assert "game" not in health("127.0.0.1", "never")
    with pytest.raises(ValueError, match="health_details"):
        webcont.SessionlessApp(health_details="not a network")


def test_healthz_carries_the_apps_response_headers_as_every_page_does():
    app = webcont.SessionlessApp({"/": lambda req: "x"}, node="n7")
    app.response_headers = list(app.response_headers) + [("X-Extra", "1")]
    gateway = webcont.gateway(app)
    try:
        answers = {}
        for path in ("/healthz", "/"):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
                       "wsgi.input": io.BytesIO(b""), "REMOTE_ADDR": "127.0.0.1"}
            body = b"".join(gateway(environ, lambda s, h, e=None: answers.setdefault(path, h)))
            headers = dict(answers[path])
            assert headers["Content-Length"] == str(len(body))
    finally:
        gateway.close()
    health, page = dict(answers["/healthz"]), dict(answers["/"])
    assert health.pop("Content-Type") == "text/plain; charset=utf-8"
    assert page.pop("Content-Type").startswith("text/html")
    health.pop("Content-Length"), page.pop("Content-Length")
    page.pop("Set-Cookie", None)  # the owner cookie of a new game
    assert health == page and health["X-Extra"] == "1" and health["X-Webcont-Node"] == "n7"


def test_an_evicted_game_says_it_was_evicted_and_an_expired_one_that_it_expired():
    with ServerProcess(FACTORY, max_continuations=2, continuation_timeout=0.5) as server:
        player = Client(server.port)
        first = continuation_id(player.get("/")[2])
        player.get("/")
        player.get("/")  # the third game evicts the first
        status, _, page = player.get("/", __wc=first, n=1)
        assert status == 410 and "make room" in page and "expired" not in page
        later = continuation_id(player.get("/")[2])
        time.sleep(1.2)
        status, _, page = player.get("/", __wc=later, n=1)
        assert status == 410 and "expired after 0.5 seconds" in page and "room" not in page


def test_start_again_leads_to_a_route_the_app_has_when_it_has_no_root():
    def add(req):
        req.continue_('<form><input type="hidden" name="__wc" value="%s"></form>'
                      % req.continuation_id)
        return "done"
    gateway = webcont.gateway(webcont.SessionlessApp({"/add": add}))
    try:
        for path, query in [("/", ""), ("/add", "__wc=" + "x" * 22), ("/nothing", "__wc=1.2.3")]:
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query,
                       "wsgi.input": io.BytesIO(b"")}
            page = b"".join(gateway(environ, lambda s, h, e=None: None)).decode()
            assert link(page) == "/add", (path, page)
    finally:
        gateway.close()
