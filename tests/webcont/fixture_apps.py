"""WSGI apps the HTTP tests serve (factories called by serve_app.py)."""

import asyncio
import gc
import logging
import threading
import time

import stackless_compat as stackless
from webcont import SessionlessApp, TimeoutException
from webcont._hub import current_hub
from webcont._pages import SECURITY_HEADERS, escape
from webcont.demos import guess_the_number, sign_up

log = logging.getLogger("fixture_apps")

__all__ = ["demo", "faulty", "headed", "echo", "cleanup_reporter", "runaway", "header_copier",
           "big_response"]


def hub_tasklets():
    """The live tasklets of the calling (hub) thread, its main tasklet and the
    tasklets running waitress' own code for each request (one worker) excepted."""
    main, me = stackless.getmain(), threading.get_ident()
    serving = current_hub().task_tasklets
    return [obj for obj in gc.get_objects() if isinstance(obj, stackless.tasklet)
            and obj.alive and obj is not main and obj.thread_id == me and obj not in serving]


def _stats_route(app):
    def stats(req):
        """live continuations, tombstones, and the hub's other tasklets (this
        controller and its request tasklet are not counted)."""
        gc.collect()
        return '<p id="stats">live=%d tombstones=%d tasklets=%d</p>' % (
            len(app._memory.store), len(app._memory.store._tombstones), len(hub_tasklets()) - 2)
    app.route("/_stats", stats)
    return app


def demo(**options):
    """The demo site, plus /_stats."""
    return _stats_route(SessionlessApp({"/": guess_the_number, "/wizard": sign_up}, **options))


def _raise_at_once(req):
    raise ValueError("this controller always fails")


def _raise_after_one_step(req):
    req.continue_('<form><input type="hidden" name="__wc" value="%s"></form>'
                  % escape(req.continuation_id))
    raise KeyError("failed on the second request")


_GATE = stackless.channel()  # referenced here, so a tasklet blocked on it is never collected


def _never_answers(req):
    log.warning("ENTERED stuck")  # tests wait for this, not for a guessed time
    try:
        _GATE.receive()  # blocks forever: nothing will ever send
    finally:
        log.warning("CLEANUP stuck")


def _sleeps(req):
    """Blocks the hub thread itself (as a controller calling a slow service would)."""
    time.sleep(float(req.parameters.get("seconds", ["1"])[0]))
    return '<p id="slept">slept</p>'


def _exits(req):
    raise SystemExit("a controller called sys.exit()")


def _bad_timer(req):
    """Schedules a hub timer callback that raises."""
    def boom():
        raise RuntimeError("TIMER BOOM")
    current_hub().call_soon(boom)
    return "<p>timer scheduled</p>"


def _sleeps_in_a_thread(req):
    seconds = float(req.parameters.get("seconds", ["0.5"])[0])
    req.to_thread(time.sleep, seconds)
    return "<p>slept %s</p>" % seconds


def _lookup_fails(req):
    def lookup():
        return {}["missing"]
    try:
        req.to_thread(lookup)
    except KeyError as exc:
        return "<p>caught %s: %s</p>" % (type(exc).__name__, escape(str(exc)))
    return "<p>no exception</p>"


async def _nap(seconds, fail=False):
    await asyncio.sleep(seconds)
    if fail:
        raise LookupError("nothing at %s" % seconds)
    return "napped %s" % seconds


def _awaits(req):
    seconds = float(req.parameters.get("seconds", ["0.5"])[0])
    try:
        return "<p>%s</p>" % req.await_(_nap(seconds, fail="fail" in req.parameters))
    except LookupError as exc:
        return "<p>caught %s</p>" % type(exc).__name__


def _runs_asyncio(req):
    return "<p>%s</p>" % req.to_thread(asyncio.run, _nap(0.01))


def blocking(**options):
    """The game at /, and controllers calling blocking or async code through
    req.to_thread and req.await_."""
    return _stats_route(SessionlessApp({"/": guess_the_number, "/sleep": _sleeps_in_a_thread,
                                        "/fail": _lookup_fails, "/await": _awaits,
                                        "/asyncio-run": _runs_asyncio}, **options))


def faulty(**options):
    return _stats_route(SessionlessApp({
        "/now": _raise_at_once, "/later": _raise_after_one_step, "/stuck": _never_answers,
        "/sleep": _sleeps, "/exit": _exits, "/bad-timer": _bad_timer,
        "/": guess_the_number}, **options))


class _Headed(SessionlessApp):
    """An app with response headers of its own (a policy of its own, one more
    header), and a bug of its own at /app-bug: there the app itself raises."""

    response_headers = [header for header in SECURITY_HEADERS
                        if header[0] != "Content-Security-Policy"] + [
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
        ("X-Served-By", "fixture-headed")]

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/app-bug":
            raise RuntimeError("a bug in the app, outside any controller")
        return super().__call__(environ, start_response)


def headed(**options):
    """``faulty``'s controllers in an app with response headers of its own."""
    return _Headed({"/now": _raise_at_once, "/stuck": _never_answers, "/": guess_the_number},
                   **options)


def _loops_forever(req):
    while True:  # a bug: pure Python, never yields
        pass


def runaway(**options):
    """The demo game at / and a controller that never returns at /loop."""
    return _stats_route(SessionlessApp({"/": guess_the_number, "/loop": _loops_forever,
                                        "/wait": _waits_with_cleanup}, **options))


def header_copier(**options):
    """A plain WSGI app (no SessionlessApp) that copies ?to= into a Location header,
    as a careless redirect would."""
    from urllib.parse import parse_qs

    def app(environ, start_response):
        target = parse_qs(environ.get("QUERY_STRING", "")).get("to", ["/"])[0]
        start_response("302 Found", [("Location", target), ("Content-Type", "text/plain")])
        return [b"moved"]
    return app


def _echo(req):
    """Echo every field back, twice, through a continuation."""
    for _ in range(2):
        fields = "".join("<li>%s = %s</li>" % (escape(name), escape(value))
                         for name, values in sorted(req.parameters.items()) for value in values)
        req.continue_('<ul id="fields">%s</ul><form method="post" action="/echo">'
                      '<input type="hidden" name="__wc" value="%s"></form>'
                      % (fields, escape(req.continuation_id)))
    return "done"


def echo(**options):
    return _stats_route(SessionlessApp({"/echo": _echo, "/": guess_the_number,
                                        "/wizard": sign_up}, **options))


def _waits_with_cleanup(req):
    try:
        req.continue_('<form><input type="hidden" name="__wc" value="%s"></form>'
                      % escape(req.continuation_id))
        return "answered"
    except TimeoutException:
        log.warning("CLEANUP timeout")
        raise
    finally:
        log.warning("CLEANUP finally")


def cleanup_reporter(**options):
    """A controller that logs 'CLEANUP finally' when it ends, however it ends."""
    return _stats_route(SessionlessApp({"/wait": _waits_with_cleanup, "/": guess_the_number},
                                       **options))


def big_response(**options):
    """A plain WSGI app answering ?size= bytes, in 1 MB chunks."""
    def app(environ, start_response):
        size = int(environ.get("QUERY_STRING", "size=0").partition("=")[2] or 0)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        chunk = b"x" * (1 << 20)
        return [chunk[:min(len(chunk), size - start)] for start in range(0, size, len(chunk))]
    return app
