"""WSGI apps the HTTP tests serve (factories called by serve_app.py)."""

import logging

import stackless_compat as stackless
from webcont import SessionlessApp, TimeoutException
from webcont._pages import escape
from webcont.demos import demo_app

log = logging.getLogger("fixture_apps")

__all__ = ["demo", "faulty", "echo", "cleanup_reporter"]


def demo(**options):
    return demo_app(**options)


def _raise_at_once(req):
    raise ValueError("this controller always fails")


def _raise_after_one_step(req):
    req.continue_('<form><input type="hidden" name="__wc" value="%s"></form>'
                  % escape(req.continuation_id))
    raise KeyError("failed on the second request")


def _never_answers(req):
    stackless.channel().receive()  # blocks forever: nothing will ever send


def faulty(**options):
    return SessionlessApp({"/now": _raise_at_once, "/later": _raise_after_one_step,
                           "/stuck": _never_answers}, **options)


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
    return SessionlessApp({"/echo": _echo}, **options)


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
    return SessionlessApp({"/wait": _waits_with_cleanup}, **options)
