"""Hostile input: ids, sizes, encodings, injection, floods (docs/security.md).

In-process through ``webcont.gateway(app)`` where the answer is webcont's
(including a hypothesis fuzzer), and over real HTTP with raw sockets where
waitress is the first to see the bytes.
"""

import base64
import collections
import io
import os
import random
import re
import secrets
import time
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import webcont
from webcont._continuations import mint_id
from webcont._pages import SECURITY_HEADERS
from webcont._server import Server

from . import fixture_apps
from .support import RawClient, ServerProcess, continuation_id, won

FORM = "application/x-www-form-urlencoded"


def escape(text):
    """HTML escaping as a browser needs it, written out (not webcont's own)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


# -- in-process helpers ------------------------------------------------------------------


def call(gateway, path="/", query="", method="GET", body=b"", content_type=None,
         content_length=None, extra=None):
    """One request through a gateway; returns (status code, headers dict, body text)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)) if content_length is None else content_length,
               "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "192.0.2.1"}
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type
    environ.update(extra or {})
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
    chunks = gateway(environ, start_response)
    return (int(captured["status"][:3]), dict(captured["headers"]),
            b"".join(chunks).decode("utf-8"))


@pytest.fixture(scope="module")
def site():
    """The demo game, the wizard, the echo app and /_stats behind one in-process gateway."""
    app = fixture_apps.echo(max_continuations=500, tombstone_timeout=600)
    gateway = webcont.gateway(app, request_timeout=2.0)
    yield app, gateway
    gateway.close()


def assert_complete_page(status, headers, page):
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>"), page
    assert int(headers["Content-Length"]) == len(page.encode("utf-8"))
    for name, value in SECURITY_HEADERS:
        assert headers.get(name) == value, (status, name, headers)


# -- continuation ids ---------------------------------------------------------------------


def test_ids_are_128_random_bits_unbiased_unrepeated_and_unrelated_to_earlier_ones():
    ids = [mint_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    values = [int.from_bytes(base64.urlsafe_b64decode(id + "=="), "big") for id in ids]
    assert all(len(base64.urlsafe_b64decode(id + "==")) == 16 for id in ids[:1000])
    n = len(values)
    # every bit is 1 half the time: 50000 +- 1000 is 6 standard deviations
    for bit in range(128):
        ones = sum((value >> bit) & 1 for value in values[:n])
        assert abs(ones - n / 2) < 1000, (bit, ones)
    # bytes are uniform (chi-square, 255 degrees of freedom: mean 255, sd 23)
    counts = collections.Counter(b for value in values for b in value.to_bytes(16, "big"))
    expected = n * 16 / 256
    assert sum((counts[b] - expected) ** 2 / expected for b in range(256)) < 400
    # consecutive ids share no structure: they differ in 64 of 128 bits on average
    # (a counter, a clock or a weak generator would differ in far fewer or show bias)
    flips = [bin(a ^ b).count("1") for a, b in zip(values, values[1:])]
    assert abs(sum(flips) / len(flips) - 64) < 0.2
    assert abs(sum(b - a for a, b in zip(values, values[1:])) / (n - 1)) < 2 ** 124
    # no two ids are near neighbours: sorted, they share short prefixes only
    ordered = sorted(ids)
    longest = max(len(os.path.commonprefix(pair)) for pair in zip(ordered, ordered[1:]))
    assert longest < 9, longest


def test_ids_are_16_bytes_from_secrets_not_from_the_random_module(monkeypatch):
    random.seed(1234)
    first = mint_id()
    random.seed(1234)
    assert mint_id() != first  # seeding (or recovering) `random` predicts nothing
    asked = []
    monkeypatch.setattr(secrets, "token_bytes", lambda n: asked.append(n) or bytes(range(n)))
    assert mint_id() == base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()
    assert asked == [16]  # the OS' CSPRNG (secrets), 128 bits, nothing added or derived


def test_forged_and_guessed_ids_get_404_and_leave_real_games_alone(site):
    app, gateway = site
    _, _, page = call(gateway, "/")
    real = continuation_id(page)
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    forged = [flipped, real.upper() if real.upper() != real else real.lower(), "A" * 22,
              real + "x", real[:-1], "../../etc/passwd", "<script>", "\u00e9" * 22, "-",
              "x" * 5000] + [mint_id() for _ in range(2000)]
    for id in forged:
        query = urllib.parse.urlencode({"__wc": id, "guess": "50"})
        status, headers, body = call(gateway, "/", query)
        assert status == 404, (id, status)
        assert_complete_page(status, headers, body)
        assert len(id) < 2 or id not in body  # never echoed
    status, _, page = call(gateway, "/", "__wc=%s&guess=50" % real)  # the real game is intact
    assert status == 200 and ("guessed 1 time." in page or won(page))


def test_the_log_names_refused_ids_by_a_short_prefix_only(site, caplog):
    _, gateway = site
    secret = mint_id()
    with caplog.at_level("INFO", logger="webcont"):
        assert call(gateway, "/", "__wc=" + secret)[0] == 404
    assert secret[:6] in caplog.text and secret not in caplog.text


def test_a_replayed_id_replays_the_page_once_answered_and_refuses_other_answers(site):
    _, gateway = site
    _, headers, page = call(gateway, "/wizard")
    cookie = {"HTTP_COOKIE": headers["Set-Cookie"].split(";")[0]}
    cid = continuation_id(page)
    first = call(gateway, "/wizard", method="POST", body=b"__wc=%s&answer=Ann" % cid.encode(),
                 content_type=FORM, extra=cookie)
    again = call(gateway, "/wizard", method="POST", body=b"__wc=%s&answer=Ann" % cid.encode(),
                 content_type=FORM, extra=cookie)
    assert first[0] == 200 and first == again  # identical page, no second move
    other = call(gateway, "/wizard", method="POST", body=b"__wc=%s&answer=Bob" % cid.encode(),
                 content_type=FORM, extra=cookie)
    assert other[0] == 409 and "already answered" in other[2]
    assert "Bob" not in other[2]
    # another browser (no cookie) gets neither the page, which holds the live
    # id, nor a way on
    stranger = call(gateway, "/wizard", method="POST",
                    body=b"__wc=%s&answer=Ann" % cid.encode(), content_type=FORM)
    assert stranger[0] == 409 and continuation_id(first[2]) not in stranger[2]


def test_replayed_ids_are_forgotten_after_tombstone_timeout_and_then_get_404():
    gateway = webcont.gateway(fixture_apps.demo(tombstone_timeout=0.2))
    try:
        _, _, page = call(gateway, "/")
        cid = continuation_id(page)
        assert call(gateway, "/", "__wc=%s&guess=50" % cid)[0] == 200
        assert call(gateway, "/", "__wc=%s&guess=40" % cid)[0] == 409
        time.sleep(1.5)  # the TTL, and the one-second batching of the sweep
        assert call(gateway, "/", "__wc=%s&guess=40" % cid)[0] == 404
        stats = call(gateway, "/_stats")[2]
        assert "tombstones=0" in stats
    finally:
        gateway.close()


def test_an_id_moves_only_its_own_game_whatever_path_or_fields_come_with_it(site):
    _, gateway = site
    _, _, game_a = call(gateway, "/")
    _, _, game_b = call(gateway, "/")
    a, b = continuation_id(game_a), continuation_id(game_b)
    # A's id on the wizard's path, with wizard fields: still A's move (the id is the
    # capability, docs/security.md), answered by A's controller
    status, _, page = call(gateway, "/wizard", "__wc=%s&answer=x&guess=50" % a)
    assert status == 200 and ("guessed 1 time." in page or won(page))
    # B is untouched: its id works and its count is where it was
    status, _, page = call(gateway, "/", "__wc=%s&guess=50" % b)
    assert status == 200 and ("guessed 1 time." in page or won(page))
    # an id of another server (another app instance) is unknown here
    other = webcont.gateway(fixture_apps.demo())
    try:
        _, _, foreign = call(other, "/")
    finally:
        other.close()
    assert call(gateway, "/", "__wc=%s&guess=50" % continuation_id(foreign))[0] == 404


# -- sizes, encodings, injection, in-process ----------------------------------------------


@pytest.mark.parametrize("query, status", [
    ("x=" + "9" * 9000, 414),
    ("&".join("f%d=1" % n for n in range(101)), 400),
    ("guess=%FF%FE", 400),
    ("__wc=%FF", 400),
    ("guess=\xff", 400),            # a raw byte, as WSGI passes it (latin-1)
    ("guess=%C3", 400),             # a truncated UTF-8 sequence
    ("guess=\u0100", 400),          # not even latin-1: not a valid WSGI string
])
def test_bad_queries_get_clear_4xx_pages(site, query, status):
    _, gateway = site
    answer = call(gateway, "/", query)
    assert answer[0] == status
    assert_complete_page(*answer)


@pytest.mark.parametrize("body, content_type, length, status", [
    (b"x" * 65537, FORM, None, 413),
    (b"a=1", FORM, "99", 400),          # ended early
    (b"a=1", FORM, "-5", 400),
    (b"a=1", FORM, "ten", 400),
    (b"a=%FF", FORM, None, 400),
    (b"\xff\xfe=1", FORM, None, 400),
    (b"{}", "application/json", None, 415),
    (b"--b\r\n", "multipart/form-data; boundary=b", None, 415),
])
def test_bad_bodies_get_clear_4xx_pages(site, body, content_type, length, status):
    _, gateway = site
    answer = call(gateway, "/echo", method="POST", body=body, content_type=content_type,
                  content_length=length)
    assert answer[0] == status, answer
    assert_complete_page(*answer)


PAYLOADS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
            "'><svg onload=alert(1)>", "</textarea><script>x</script>",
            '<a href="javascript:alert(1)">x</a>', "&lt;already&gt;", "\u2028<b>"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markup_in_any_echoed_field_comes_back_escaped(site, payload):
    _, gateway = site
    quoted = urllib.parse.quote(payload)
    escaped = escape(payload)
    # the echo app shows every field name and value
    _, _, page = call(gateway, "/echo", "%s=%s" % (quoted, quoted))
    assert payload not in page and page.count(escaped) == 2
    # the wizard echoes the name into its labels and its final page
    _, _, page = call(gateway, "/wizard")
    _, _, page = call(gateway, "/wizard", method="POST", content_type=FORM,
                      body=("__wc=%s&answer=%s" % (continuation_id(page), quoted)).encode())
    assert escape(payload.strip()) in page  # the wizard strips answers
    assert payload not in page
    # the game, error pages and unknown paths echo nothing a client sent
    for path, query in [("/", "guess=" + quoted), ("/" + quoted, ""),
                        ("/", "__wc=" + quoted), ("/", "x=" + quoted * 400)]:
        status, headers, page = call(gateway, path, query)
        assert payload not in page and escaped not in page
        assert_complete_page(status, headers, page)


def test_cr_lf_in_fields_never_reach_a_header(site):
    _, gateway = site
    evil = urllib.parse.quote("x\r\nSet-Cookie: session=evil\r\n\r\n<h1>")
    for path, query in [("/", "guess=" + evil), ("/echo", evil + "=" + evil),
                        ("/", "__wc=" + evil), ("/" + evil, "")]:
        status, headers, page = call(gateway, path, query)
        # a new game may set webcont's own owner cookie, and nothing else
        assert re.fullmatch(r"wc_owner=[\w-]{22}; Path=/; HttpOnly; SameSite=Strict",
                            headers.get("Set-Cookie", "wc_owner=%s; Path=/; HttpOnly;"
                                        " SameSite=Strict" % ("x" * 22)))
        assert all("\r" not in value and "\n" not in value for value in headers.values())


def test_an_app_copying_input_into_a_header_gets_a_500_not_a_split_response(caplog):
    gateway = webcont.gateway(fixture_apps.header_copier())
    try:
        status, headers, _ = call(gateway, "/", "to=/next")
        assert status == 302 and headers["Location"] == "/next"
        with caplog.at_level("ERROR"):
            for target in ["/x\r\nSet-Cookie: a=b", "/x\nX: y", "/x\x00", "/\u0100"]:
                answer = call(gateway, "/", urllib.parse.urlencode({"to": target}))
                assert answer[0] == 500 and "Set-Cookie" not in answer[1]
                assert_complete_page(*answer)
        assert "bad value for header Location" in caplog.text
    finally:
        gateway.close()


def test_headers_checked_once_are_remembered_without_letting_bad_ones_through():
    from webcont._job import check_response
    good = [("Location", "/next"), ("X-Tag", "a")]
    check_response("302 Found", good)
    check_response("302 Found", good)  # remembered: still fine
    with pytest.raises(ValueError, match="bad value for header Location"):
        check_response("302 Found", [("Location", "/next\r\nSet-Cookie: a=b")])
    with pytest.raises(ValueError, match="bad value"):
        check_response("200 OK", [["X-Tag", "a\n"]])  # lists are checked, never remembered

    class Liar(str):  # poses as "a": must not borrow that header's pass
        def __hash__(self):
            return hash("a")

        def __eq__(self, other):
            return True
    with pytest.raises(ValueError, match="bad value for header X-Tag"):
        check_response("200 OK", [("X-Tag", Liar("a\r\nX: y"))])


def test_every_page_webcont_writes_carries_the_security_headers(site):
    app, gateway = site
    _, _, page = call(gateway, "/")
    cid = continuation_id(page)
    answers = [call(gateway, "/"), call(gateway, "/", "__wc=%s&guess=50" % cid),
               call(gateway, "/", "__wc=%s&guess=50" % cid),        # the replayed page
               call(gateway, "/", "__wc=%s&guess=10" % cid),        # 409
               call(gateway, "/nowhere"), call(gateway, "/", method="DELETE"),
               call(gateway, "/", "__wc=" + mint_id()),
               call(gateway, "/echo", method="POST", body=b"x" * 70000, content_type=FORM)]
    assert sorted({status for status, _, _ in answers}) == [200, 404, 405, 409, 413]
    for answer in answers:
        assert_complete_page(*answer)


# -- the fuzzer -------------------------------------------------------------------------


def _wsgi_text(data):
    return data.decode("latin-1")


_fields = st.lists(st.tuples(st.sampled_from(["guess", "answer", "__wc", "a", "", "n"]) |
                             st.text(max_size=8),
                             st.text(max_size=30) | st.sampled_from(PAYLOADS)), max_size=6)
_query = (st.binary(max_size=300).map(_wsgi_text)
          | _fields.map(lambda pairs: urllib.parse.urlencode(pairs)))
_body = st.binary(max_size=600) | _fields.map(lambda pairs: urllib.parse.urlencode(pairs).encode())


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "OPTIONS", "", "G\x00T"]),
       path=(st.sampled_from(["/", "/wizard", "/echo", "/nowhere", ""])
             | st.binary(max_size=40).map(_wsgi_text)),
       query=_query, body=_body,
       content_type=st.sampled_from([None, FORM, FORM + "; charset=utf-8", "text/plain", "",
                                     "application/json", "multipart/form-data"]),
       length=st.sampled_from([None, None, None, "0", "-1", "abc", "99999999", "5", ""]),
       live=st.sampled_from([None, "/", "/wizard"]))
def test_fuzzed_requests_always_get_a_complete_page_with_a_2xx_or_4xx_status(
        site, method, path, query, body, content_type, length, live):
    app, gateway = site
    if live:  # aim at a real suspended controller, not only at the 404 path
        query = "__wc=%s&%s" % (continuation_id(call(gateway, live)[2]), query)
    started = time.monotonic()
    status, headers, page = call(gateway, path, query, method=method, body=body,
                                 content_type=content_type, content_length=length)
    assert time.monotonic() - started < 2
    assert 200 <= status < 500 and status != 302, status
    assert_complete_page(status, headers, page)


def test_after_the_fuzzing_no_tasklet_is_left_beyond_the_suspended_games(site):
    _, gateway = site
    stats = call(gateway, "/_stats")[2]
    counts = dict(re.findall(r"(\w+)=(\d+)", stats.split('id="stats">')[1]))
    assert counts["tasklets"] == counts["live"], counts


# -- over real HTTP: what waitress sees first -----------------------------------------------


def test_serve_tightens_waitress_limits_unless_told_otherwise():
    server = Server(fixture_apps.demo(), port=0, max_body_bytes=1000)
    tuned = Server(fixture_apps.demo(), port=0, max_request_body_size=5000,
                   max_request_header_size=100_000)
    try:
        adj = server.waitress.adj
        assert adj.max_request_body_size == 2000 and adj.max_request_header_size == 65536
        assert adj.expose_tracebacks is False
        assert tuned.waitress.adj.max_request_body_size == 5000
        assert tuned.waitress.adj.max_request_header_size == 100_000
        with pytest.raises(ValueError, match="shutdown_grace"):
            Server(fixture_apps.demo(), port=0, shutdown_grace=-1)
    finally:
        for running in (server, tuned):
            running.gateway.close(2.0)
            running.waitress.task_dispatcher.shutdown(timeout=2)
            running.waitress.close()


@pytest.fixture(scope="module")
def server():
    with ServerProcess("tests.webcont.fixture_apps:echo") as running:
        yield running


def exchange(port, raw, timeout=5.0):
    """Send ``raw``; return (status, headers, body, connection closed by the server)."""
    client = RawClient(port, timeout=timeout)
    try:
        client.send(raw)
    except OSError:  # the server may refuse before reading it all
        pass
    try:
        status, headers, body = client.response()
        if headers.get("connection") == "close":
            client.sock.settimeout(2.0)
            try:
                closed = client.sock.recv(1) == b""
            except OSError:
                closed = True
        else:
            closed = False
    finally:
        client.close()
    return status, headers, body, closed


HEAD = b"Host: 127.0.0.1\r\n"
FIXED_CASES = [
    # name, raw request, expected status, answered by webcont (HTML) or waitress (text)
    ("long query", b"GET /echo?x=" + b"9" * 9000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n", 414, "html"),
    ("request line over 64 KiB",
     b"GET /echo?x=" + b"9" * 70000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n", 431, "text"),
    ("header over 64 KiB",
     b"GET /echo HTTP/1.1\r\n" + HEAD + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", 431, "text"),
    ("body over max_body_bytes", b"POST /echo HTTP/1.1\r\n" + HEAD +
     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 70000\r\n\r\n"
     + b"a" * 70000, 413, "html"),
    ("body over twice max_body_bytes, refused on the headers alone",
     b"POST /echo HTTP/1.1\r\n" + HEAD + b"Content-Length: 10000000000\r\n\r\n", 413, "text"),
    ("chunked body over the limit", b"POST /echo HTTP/1.1\r\n" + HEAD +
     b"Transfer-Encoding: chunked\r\n\r\n" + (b"8000\r\n" + b"a" * 0x8000 + b"\r\n") * 7
     + b"0\r\n\r\n", 413, "text"),
    ("negative Content-Length", b"POST /echo HTTP/1.1\r\n" + HEAD + b"Content-Length: -1\r\n\r\n",
     400, "text"),
    ("two Content-Lengths", b"POST /echo HTTP/1.1\r\n" + HEAD +
     b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400, "text"),
    ("CR/LF smuggled into the request line",
     b"GET /echo?a=1\rSet-Cookie: x HTTP/1.1\r\n" + HEAD + b"\r\n", 400, "text"),
    ("raw non-UTF-8 byte in the path", b"GET /ech\xff HTTP/1.1\r\n" + HEAD + b"\r\n", 400, "text"),
    ("non-UTF-8 percent-escape in the query", b"GET /echo?a=%FF HTTP/1.1\r\n" + HEAD + b"\r\n",
     400, "html"),
    ("non-UTF-8 form body", b"POST /echo HTTP/1.1\r\n" + HEAD +
     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 5\r\n\r\na=\xff\xfe\xfd",
     400, "html"),
    ("TLS handshake on the plain port", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
     + b"\x00" * 40 + b"\r\n\r\n", 400, "text"),
    ("header line without a colon",
     b"GET /echo HTTP/1.1\r\n" + HEAD + b"Oops\r\n\r\n", 400, "text"),
    ("forged id", b"GET /?__wc=AAAAAAAAAAAAAAAAAAAAAA&guess=1 HTTP/1.1\r\n" + HEAD + b"\r\n",
     404, "html"),
    ("markup in a field name and value", b"GET /echo?%3Cscript%3E=%3Cscript%3E HTTP/1.1\r\n"
     + HEAD + b"\r\n", 200, "html"),
    ("method not allowed", b"PUT /echo HTTP/1.1\r\n" + HEAD + b"Content-Length: 0\r\n\r\n",
     405, "html"),
]


@pytest.mark.parametrize("name, raw, expected, by", FIXED_CASES, ids=[c[0] for c in FIXED_CASES])
def test_fixed_hostile_requests_over_http_get_a_clear_answer(server, name, raw, expected, by):
    status, headers, body, closed = exchange(server.port, raw)
    assert status == expected, (name, status, body[:200])
    if by == "html":
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert body.startswith("<!DOCTYPE html>") and "<script>" not in body
        assert headers["x-content-type-options"] == "nosniff"
    else:  # waitress' own plain-text answer: it closes the connection too
        assert headers["content-type"].startswith("text/plain") and closed
    assert "Traceback" not in body
    assert RawClient(server.port).get("/")[0] == 200  # and the server goes on


def test_the_refusals_are_logged_one_line_each_without_the_payload(server):
    log = server.log()
    assert "refused GET '/echo' from 127.0.0.1: 414" in log
    assert "refused POST '/echo' from 127.0.0.1: 413" in log
    assert "AAAAAAAAAAAAAAAAAAAAAA" not in log and "'AAAAAA'..." in log


def test_thousands_of_new_games_from_one_client_keep_the_cap_and_bounded_memory():
    big = b"x" * 60_000
    with ServerProcess("tests.webcont.fixture_apps:demo", max_continuations=200) as server:
        client = RawClient(server.port)
        first = continuation_id(client.get("/")[2])

        def new_games(count):
            # each with a 60 KB body and an 8 KB header that no suspended game may pin
            request = (b"POST /?pad=%s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n"
                       b"Content-Type: application/x-www-form-urlencoded\r\n"
                       b"Content-Length: %d\r\n\r\npad=%s" % (b"q" * 4000, b"h" * 8000,
                                                              len(big) + 4, big))
            for _ in range(count):
                client.send(request)
                status, _, page = client.response()
                assert status == 200
                ids.append(continuation_id(page))
        ids = []
        new_games(20)  # warm up
        rss_start = server.rss_kb()
        new_games(400)  # the cap is full from here on
        rss_full = server.rss_kb()
        new_games(2600)
        rss_after = server.rss_kb()
        counts = dict(re.findall(r"(\w+)=(\d+)", client.get("/_stats")[2].split('id="stats">')[1]))
        assert int(counts["live"]) == 200 and counts["tasklets"] == counts["live"]
        # evicted oldest first: the newest are live, the recently evicted answer 410,
        # and the first, evicted 2800 games ago, is forgotten (tombstones are bounded too)
        assert client.get("/", __wc=ids[-1], guess=5)[0] == 200
        assert client.get("/", __wc=ids[-250], guess=5)[0] == 410
        assert client.get("/", __wc=first, guess=5)[0] == 404
        # flat once the cap is reached, and 200 suspended games cost a few MB: pinning
        # their requests (body, fields, headers: ~130 KB each) would be ~26 MB more
        assert rss_after - rss_full < 3 * 1024, (rss_start, rss_full, rss_after)
        assert rss_after - rss_start < 8 * 1024, (rss_start, rss_full, rss_after)
        log = server.log()
        assert 1 <= log.count("evicted") < 10  # throttled: not a line per request
