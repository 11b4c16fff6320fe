"""Test support: a real webcont server in a subprocess, and a tiny HTTP client."""

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServerProcess:
    """``with ServerProcess("module:factory", threads=1, **app_options) as server:``

    Starts ``tests.webcont.serve_app`` on a free loopback port, exposes
    ``server.url``/``server.port``, and on exit sends SIGTERM and checks the
    process stopped cleanly (exit code 0).  Its stderr (the server log) is
    read all along by a thread: a server that logs more than a pipe holds
    would otherwise block in the middle of a test.  ``log()`` is what it
    logged so far.
    """

    def __init__(self, factory, threads=1, serve_options=None, port=0, **app_options):
        self.args = [sys.executable, "-m", "tests.webcont.serve_app", factory,
                     "--threads", str(threads), "--port", str(port)]
        self.args += ["--set=%s=%s" % item for item in app_options.items()]
        self.args += ["--serve=%s=%s" % item for item in (serve_options or {}).items()]
        self.goodbye = "exited cleanly"  # what serve_app prints after a clean stop
        self.process = None
        self.stderr_text = ""
        self._stderr_lines = []
        self._stderr_reader = None

    def __enter__(self):
        self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()
        line = self.process.stdout.readline().strip()
        url = re.search(r"http://\S+", line)
        if url is None:
            self.process.kill()
            self._stderr_reader.join(5)
            raise RuntimeError("server did not start: %r %s" % (line, self.log()))
        self.url = url.group(0)
        self.port = urllib.parse.urlsplit(self.url).port
        self.pid = self.process.pid
        return self

    def _read_stderr(self):
        for line in self.process.stderr:
            self._stderr_lines.append(line)

    def log(self):
        """What the server wrote to stderr so far."""
        return "".join(self._stderr_lines)

    def wait_for_log(self, text, timeout=5.0):
        """Wait until ``text`` appears in the log; return whether it did."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def rss_kb(self):
        """The server process' resident set size (VmRSS, KiB)."""
        with open("/proc/%d/status" % self.pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for %d" % self.pid)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop the server; return (exit code, stdout rest, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        # not communicate(): it would read stderr too, racing our reader thread
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._stderr_reader.join(5)
            raise AssertionError("server did not stop within %s s:\n%s" % (timeout, self.log()))
        out = self.process.stdout.read()  # a line or two: the pipe never filled
        self.process.stdout.close()
        self._stderr_reader.join(5)
        self.process.stderr.close()
        self.stderr_text = err = self.log()
        return self.process.returncode, out, err

    def __exit__(self, *exc):
        if self.process.poll() is None:
            code, out, err = self.stop()
            if exc[0] is None:
                assert code == 0, "server exited with %s:\n%s" % (code, err)
                assert self.goodbye is None or self.goodbye in out, err
        return False


# a refused request's line (webcont._ratelog.log_refused) in demo.py's LOG_FORMAT:
# "<date> <time,ms> INFO <logger>: refused <method> <repr(path)> from <address>: <status> <why>"
_REFUSED_LINE = re.compile(r"^\S+ \S+ [A-Z]+ [\w.]+: refused \S+ (?:'.*'|\".*\") from \S+: (\d{3}) ")


def close_inline_gateway(gateway, posted):
    """Close an ``InlineGateway`` this thread drives, running what it posts
    (``posted``, the list its ``server_post`` appends to) meanwhile: close()
    waits for this thread to run the kill it posts."""
    closer = threading.Thread(target=gateway.close)
    closer.start()
    while closer.is_alive():
        while posted:
            posted.pop(0)()
        closer.join(0.01)


def wrap_methods(monkeypatch, methods, wrap):
    """Replace each ``(class, name)`` of ``methods`` by ``wrap(original)``;
    returns the undo (the originals back, before the test ends)."""
    originals = [(owner, name, getattr(owner, name)) for owner, name in methods]
    for owner, name, original in originals:
        monkeypatch.setattr(owner, name, wrap(original))

    def undo():
        for owner, name, original in originals:
            monkeypatch.setattr(owner, name, original)
    return undo


def step_record_methods():
    """What records a step: ``op_record`` (in a transaction) and, on SQLite,
    ``op_record_many`` (a group of plain records, alone)."""
    from webcont._dialects import SqliteLogStore
    from webcont._store import LogStore
    return [(LogStore, "op_record"), (SqliteLogStore, "op_record_many")]


def refused_statuses(log):
    """The status of every refused request in a demo's log, in order (e.g. ``["404"]``).

    Read by the line's format, not by a substring: a timestamp's milliseconds
    (",404") or an id may contain any digits."""
    return [found.group(1) for found in map(_REFUSED_LINE.match, log.splitlines()) if found]


def demo_process(*arguments):
    """A ``ServerProcess`` running the real ``demo.py`` on a free port (``--port 0``)."""
    server = ServerProcess("unused")
    server.args = [sys.executable, os.path.join(ROOT, "demo.py"), "--port", "0"] + list(arguments)
    server.goodbye = None  # demo.py prints nothing when it stops: its exit code says it
    return server


class Client:
    """A keep-alive HTTP client for one server (one connection, not thread-safe).

    Like a browser, it keeps the cookies the server sets (``cookies``) and
    sends them back; two clients are two browsers."""

    def __init__(self, port, timeout=30):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies = {}

    def request(self, path, method="GET", body=None, headers=None):
        """Return (status, headers dict, body text)."""
        headers = dict(headers or {})
        if self.cookies:
            headers.setdefault("Cookie", "; ".join("%s=%s" % item for item in self.cookies.items()))
        if body is not None and not isinstance(body, bytes):
            body = urllib.parse.urlencode(body).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or ():
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return response.status, dict(response.getheaders()), data

    def get(self, path="/", **params):
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        return self.request(path)

    def close(self):
        self.connection.close()


class RawClient:
    """HTTP/1.1 over one keep-alive socket, with nothing between the test and the bytes.

    Cheaper than ``http.client`` (the load tests make thousands of requests)
    and able to send what no well-behaved client would.  ``send(raw)``
    writes bytes; ``response()`` reads one response: (status, headers, body
    text), or raises ``ConnectionError`` if the server closed the connection.
    """

    def __init__(self, port, timeout=30, cookie=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""
        self.cookie = cookie  # "name=value" sent with get(), as a browser would

    def get(self, path="/", **params):
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        cookie = b"Cookie: %s\r\n" % self.cookie.encode() if self.cookie else b""
        self.send(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (path.encode("latin-1"), cookie))
        return self.response()

    def send(self, raw):
        self.sock.sendall(raw)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def response(self):
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body.decode("utf-8", "replace")

    def close(self):
        self.sock.close()


def continuation_id(page):
    """The ``__wc`` value of the (first) form in ``page``."""
    match = re.search(r'name="__wc" value="([^"]+)"', page)
    assert match, "no continuation id in page:\n%s" % page
    return match.group(1)


def message(page):
    """The game's message line (webcont's demo and the seed alike)."""
    match = re.search(r'id="message">([^<]*)<', page)
    if match:
        return match.group(1).strip()
    return page.strip().split("<br")[0].strip()  # the seed's fragment starts with it


def won(page):
    """True when ``page`` announces a won game.

    Not ``"Yay" in page``: the random ids in a page's forms can spell "Yay".
    """
    return re.search(r"Yay(?: -)? \d+", page) is not None


def play_to_the_end(client, path="/", secret_hint=None):
    """Binary-search a guess-the-number game; return (pages seen, final page)."""
    status, _, page = client.get(path)
    assert status == 200, page
    low, high, pages = 1, 100, [page]
    for _ in range(12):
        guess = (low + high) // 2
        status, _, page = client.get(path, __wc=continuation_id(page), guess=guess)
        assert status == 200, page
        pages.append(page)
        text = message(page)
        if "low" in text:
            low = guess + 1
        elif "high" in text:
            high = guess - 1
        else:
            assert "Yay - %d is the right number" % guess in page, page
            return pages, page
    raise AssertionError("the game did not end:\n%s" % page)
