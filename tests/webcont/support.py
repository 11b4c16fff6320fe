"""Test support: a real webcont server in a subprocess, and a tiny HTTP client."""

import http.client
import os
import re
import signal
import subprocess
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ServerProcess:
    """``with ServerProcess("module:factory", threads=1, **app_options) as server:``

    Starts ``tests.webcont.serve_app`` on a free loopback port, exposes
    ``server.url``/``server.port``, and on exit sends SIGTERM and checks the
    process stopped cleanly (exit code 0).
    """

    def __init__(self, factory, threads=1, serve_options=None, **app_options):
        self.args = [sys.executable, "-m", "tests.webcont.serve_app", factory,
                     "--threads", str(threads)]
        self.args += ["--set=%s=%s" % item for item in app_options.items()]
        self.args += ["--serve=%s=%s" % item for item in (serve_options or {}).items()]
        self.process = None
        self.stderr_text = ""

    def __enter__(self):
        self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.process.kill()
            raise RuntimeError("server did not start: %r %s" % (line, self.process.stderr.read()))
        self.url = line
        self.port = urllib.parse.urlsplit(line).port
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stop the server; return (exit code, stdout rest, stderr)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            raise AssertionError("server did not stop within %s s:\n%s" % (timeout, err))
        self.stderr_text = err
        return self.process.returncode, out, err

    def __exit__(self, *exc):
        if self.process.poll() is None:
            code, out, err = self.stop()
            if exc[0] is None:
                assert code == 0, "server exited with %s:\n%s" % (code, err)
                assert "exited cleanly" in out, err
        return False


class Client:
    """A keep-alive HTTP client for one server (one connection, not thread-safe)."""

    def __init__(self, port, timeout=30):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, path, method="GET", body=None, headers=None):
        """Return (status, headers dict, body text)."""
        headers = dict(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = urllib.parse.urlencode(body).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read().decode("utf-8", "replace")
        return response.status, dict(response.getheaders()), data

    def get(self, path="/", **params):
        if params:
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(params)
        return self.request(path)

    def close(self):
        self.connection.close()


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
