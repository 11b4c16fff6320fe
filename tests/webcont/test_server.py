"""serve() against clients that hold connections: the read timeout and the
connection limit, over real sockets (docs/security.md, "Slow clients")."""

import socket
import time

import pytest

from webcont._server import Server

from . import fixture_apps
from .support import Client, ServerProcess

PARTIAL = b"GET / HTTP/1.1\r\nHost: x\r\n"  # a request head that never ends


def trickle(port, count, payload=PARTIAL):
    """``count`` connections that each send ``payload`` and then nothing."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if payload:
            sock.sendall(payload)
        sockets.append(sock)
    return sockets


def closed_within(sock, seconds):
    """True if the server closes ``sock`` within ``seconds``."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def timed_get(port, path="/"):
    started = time.monotonic()
    status = Client(port, timeout=20).get(path)[0]
    return status, time.monotonic() - started


def test_120_half_requests_do_not_keep_anyone_else_waiting():
    with ServerProcess("tests.webcont.fixture_apps:demo") as server:
        held = trickle(server.port, 120)
        try:
            status, took = timed_get(server.port)
            assert status == 200 and took < 2.0, took
        finally:
            for sock in held:
                sock.close()


@pytest.mark.parametrize("payload", [PARTIAL, b"", b"POST / HTTP/1.1\r\nHost: x\r\n"
                                     b"Content-Length: 100\r\n\r\nguess="])
def test_a_connection_that_sends_no_complete_request_is_closed_after_read_timeout(payload):
    with ServerProcess("tests.webcont.fixture_apps:demo",
                       serve_options={"read_timeout": 1.0}) as server:
        sock, = trickle(server.port, 1, payload)
        started = time.monotonic()
        try:
            assert closed_within(sock, 5.0)
            assert 0.9 < time.monotonic() - started < 4.0
        finally:
            sock.close()
        assert server.wait_for_log("within read_timeout")


def test_a_trickle_that_fills_the_connection_limit_is_freed_by_the_read_timeout():
    with ServerProcess("tests.webcont.fixture_apps:demo",
                       serve_options={"read_timeout": 1.0, "connection_limit": 20}) as server:
        held = trickle(server.port, 30)  # 20 taken, 10 waiting in the backlog
        try:
            status, took = timed_get(server.port)
            assert status == 200 and took < 6.0, took
            assert sum(closed_within(sock, 5.0) for sock in held) >= 20
        finally:
            for sock in held:
                sock.close()


def test_an_idle_keep_alive_connection_is_left_to_channel_timeout():
    with ServerProcess("tests.webcont.fixture_apps:demo",
                       serve_options={"read_timeout": 0.5}) as server:
        client = Client(server.port)
        assert client.get("/")[0] == 200
        time.sleep(1.5)  # idle between requests: not a slow request
        assert client.get("/")[0] == 200  # the same connection still works
        assert not server.wait_for_log("within read_timeout", timeout=0.1)


def test_read_timeout_and_connection_limit_are_validated_and_defaulted():
    server = Server(fixture_apps.demo(), port=0)
    try:
        assert server.read_timeout == 10.0 and server.waitress.adj.connection_limit == 500
    finally:
        server.waitress.close()
        server.gateway.close()
    with pytest.raises(ValueError, match="read_timeout"):
        Server(fixture_apps.demo(), port=0, read_timeout=0)


class _DummyServer:
    def __init__(self, app):
        from waitress.adjustments import Adjustments
        self.application = app
        self.adj = Adjustments()
        self.server_name = "localhost"
        self.effective_port = 8080


class _DummyChannel:
    """What a waitress task needs of its connection; records what it is given to send."""

    def __init__(self, app):
        self.server = _DummyServer(app)
        self.adj = self.server.adj
        self.addr = ("127.0.0.1", 50000)
        self.writes = []

    def write_soon(self, data):
        self.writes.append(bytes(data))
        return len(data)

    def check_client_disconnected(self):
        return False


def _serve_once(chunks, status="200 OK", headers=(("Content-Type", "text/plain"),)):
    """Run one request through webcont's waitress task; what it handed to the connection."""
    from waitress.parser import HTTPRequestParser
    from webcont._server import _Task

    def app(environ, start_response):
        start_response(status, list(headers))
        return chunks
    channel = _DummyChannel(app)
    request = HTTPRequestParser(channel.adj)
    request.received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _Task(channel, request).service()
    return channel.writes


def test_a_page_of_known_length_goes_to_the_connection_in_one_write_with_its_head():
    writes = _serve_once([b"<p>page</p>"])  # one chunk: waitress knows its length
    assert len(writes) == 1
    head, _, body = writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 11" in head
    assert body == b"<p>page</p>"
    writes = _serve_once([b"12345"], headers=[("Content-Length", "5")])
    assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\n12345")


def test_other_responses_take_waitress_own_path_unchanged():
    # several chunks, no length: chunked, the head first
    writes = _serve_once([b"ab", b"cd"])
    assert b"Transfer-Encoding: chunked" in writes[0] and writes[0].endswith(b"\r\n\r\n")
    assert b"".join(writes[1:]) == b"2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"
    # a status without a body: the head alone
    writes = _serve_once([b""], status="304 Not Modified")
    assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 304")
    # more than the Content-Length said: cut to it, as waitress does
    writes = _serve_once([b"1234567"], headers=[("Content-Length", "5")])
    assert writes[1:] == [b"12345"] and b"Content-Length: 5" in writes[0]
