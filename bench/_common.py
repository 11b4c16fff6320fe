"""Shared helpers for the benchmarks: medians of repeats and a ratio table.

The machine is shared and noisy, so every benchmark runs each contender
several times, interleaved, and reports medians and ratios to a baseline
measured in the same run.
"""

import io
import os
import re
import statistics
import sys
import time


def measure(contenders, repeats=7):
    """Run each ``name -> fn()`` (fn returns seconds per operation) ``repeats``
    times, interleaved; return ``name -> median``."""
    samples = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            samples[name].append(fn())
    return {name: statistics.median(values) for name, values in samples.items()}


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def print_table(title, results, baseline, unit="ns", scale=1e9):
    """Print one line per contender: median and ratio to ``baseline``."""
    base = results[baseline]
    print(title)
    print("  %-34s %12s %8s" % ("contender", "median " + unit, "ratio"))
    for name, value in results.items():
        print("  %-34s %12.1f %7.2fx" % (name, value * scale, value / base))



PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes():
    """Resident set size of this process now, from /proc/self/statm (Linux)."""
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * PAGE_SIZE


def waitress_environ(query=""):
    """A GET / environ shaped like waitress' (same keys, browser-like headers)."""
    return {
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_HOST": "127.0.0.1", "REMOTE_PORT": "50412",
        "REQUEST_METHOD": "GET", "SERVER_PORT": "8080", "SERVER_NAME": "localhost",
        "SERVER_SOFTWARE": "waitress", "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
        "PATH_INFO": "/", "REQUEST_URI": "/?" + query if query else "/",
        "QUERY_STRING": query, "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "wsgi.input": io.BytesIO(b""), "wsgi.input_terminated": True,
        "HTTP_HOST": "localhost:8080", "CONTENT_LENGTH": "0",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.5", "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "HTTP_CONNECTION": "keep-alive", "HTTP_REFERER": "http://localhost:8080/",
    }


def inline_get(gateway, posted, query=""):
    """GET /?query through an ``InlineGateway`` this thread drives: first the
    callbacks its hub posted (``posted``, a list), then the request; the page
    of a 200, else AssertionError."""
    while posted:
        posted.pop(0)()
    status, page = wsgi_get(gateway, query)
    if status != "200 OK":
        raise AssertionError("%s: %s" % (status, page[:500]))
    return page


def wsgi_get(app, query=""):
    """GET /?query through a WSGI callable, as a server thread would: (status, body text)."""
    reply = []
    body = b"".join(app(waitress_environ(query),
                        lambda status, headers, exc_info=None: reply.append(status)))
    return reply[0], body.decode("utf-8")


_CONTINUATION_ID = re.compile(r'name="__wc" value="([^"]+)"')


def continuation_id(page):
    """The ``__wc`` value of the form in ``page``, or None (a won game has none)."""
    found = _CONTINUATION_ID.search(page)
    return found.group(1) if found else None


def losing_range(page):
    """After a first guess of 50: the guesses that can never win that game
    (1-50 when 50 was too low, 51-100 when too high), or None if 50 won it.

    Guessing only there keeps a game going as long as a benchmark needs."""
    if "too low" in page:
        return 1, 50
    if "too high" in page:
        return 51, 100
    return None


def run_parts(wanted, parts, *arguments):
    """Run each ``(name, function)`` of ``parts`` named in ``wanted`` with
    ``arguments``; a function returns ``(summary text, target met)`` or None
    (skipped).  Returns the summary texts and the verdicts."""
    summary, verdicts = [], []
    for name, run in parts:
        if name in wanted:
            outcome = run(*arguments)
            if outcome is None:
                summary.append("%s skipped" % name)
                continue
            summary.append(outcome[0])
            verdicts.append(outcome[1])
    return summary, verdicts
