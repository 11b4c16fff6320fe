"""Refusals: one small object per answer that is not a page, and one table
that renders them.

In-memory and durable games refuse for the same reasons (an unknown id, a
used one, an expired one...), so both hand back a ``Refusal`` and the app
renders it here, the same way.  Every link on a refusal page is built from
the route the refused id belongs to (or the app's start route), never from
the request's path: a path is whatever the client sent (``/\\evil.example``
is another host to a browser).  A "continue where you left off" link carries
a live id, so it is only ever made for the browser that owns the game
(``_owner``); the refusal's ``live_id`` is None otherwise.
"""

import collections
from urllib.parse import quote

from ._continuations import CONTINUATION_PARAMETER
from ._pages import error_page

__all__ = ["Refusal", "Rendered", "render"]

#: kind -> (status, message); ``%(timeout)g``, ``%(cap)d``... are the app's options
MESSAGES = {
    "no route": ("404 Not Found", "There is nothing at this address."),
    "unknown": ("404 Not Found", "This page refers to a game the server does not know"
                " (it may have been restarted, or the address is wrong)."),
    "forged": ("404 Not Found", "This page refers to a game the server does not know"
               " (the address may be wrong or tampered with)."),
    "expired": ("410 Gone", "This game expired after %(timeout)g seconds without an answer."),
    "evicted": ("410 Gone", "This game was ended early to make room for newer ones (the"
                " server keeps at most %(cap)d games waiting at once)."),
    "version": ("410 Gone", "This game was started on an older version of this site, which"
                " cannot continue it. Please start again."),
    "finished": ("410 Gone", "This game is finished. Start a new one."),
    "too late": ("409 Conflict", "This game is finished: that answer came too late."),
    "failed": ("410 Gone", "This game stopped because of an error on the server (it has"
               " been logged). Please start again."),
    "used": ("409 Conflict", "This step was already answered; going back and submitting"
             " it again does not change what happened."),
    "running": ("409 Conflict", "This form is being submitted already."),
    "not owner": ("403 Forbidden", "This link continues a game only in the browser that"
                  " started it."),
    "page gone": ("409 Conflict", "The last page of this game is no longer kept. Go back to"
                  " it in your browser, or start again."),
    "too big": ("413 Content Too Large", "This answer is larger than %(step)d bytes, the"
                " most one step of a game may record. Go back and send a shorter one."),
    "game too big": ("413 Content Too Large", "This game has recorded nearly %(game)d bytes"
                     " of answers, the most one game may keep; it cannot take this one."
                     " Please start again."),
    "error": ("500 Internal Server Error", "The application failed while answering this"
              " request. The error has been logged."),
    "unavailable": ("503 Service Unavailable", "The game store is unavailable right now;"
                    " your game is safe. Please try again in a moment."),
}


class Rendered(collections.namedtuple("Rendered", "status headers body")):
    """A page already made into a response: WSGI status, headers, body bytes."""

    __slots__ = ()


class Refusal:
    """Why a request gets no page: ``kind`` (a key of ``MESSAGES``), the route
    of the game concerned (None if unknown) and, for the owner only, the id
    the game waits on now."""

    __slots__ = ("kind", "route", "live_id", "reason")

    def __init__(self, kind, route=None, live_id=None, reason=None):
        self.kind = kind
        self.route = route
        self.live_id = live_id
        self.reason = reason  # for the log line (default: the kind)

    @property
    def status(self):
        return MESSAGES[self.kind][0]

    def __repr__(self):
        return "Refusal(%r, %r, %s)" % (self.kind, self.route,
                                        "live id" if self.live_id else "no id")


def link(environ, route, query=""):
    """``route`` as a link under this app (``SCRIPT_NAME``), percent-quoted.

    Routes are checked when registered (one leading ``/``, no backslash,
    space or control character), and quoting keeps anything else inert.
    """
    prefix = (environ.get("SCRIPT_NAME") or "").rstrip("/")
    target = quote(prefix + route, safe="/-._~!$'()*+,;=:@")
    if target.startswith("//"):  # a browser would read it as another host
        target = "/" + target.lstrip("/")
    return target + ("?" + query if query else "")


def render(refusal, environ, start_route, options):
    """``(status, document)`` of ``refusal``; ``start_route`` when its route is unknown;
    ``options`` fills the message (``timeout``, ``cap``, ``step``, ``game``)."""
    status, message = MESSAGES[refusal.kind]
    if "%(" in message:
        message = message % options
    route = refusal.route or start_route
    if refusal.live_id is not None:
        target = link(environ, route, "%s=%s&__show=1" % (CONTINUATION_PARAMETER,
                                                            quote(refusal.live_id, safe="")))
        return status, error_page(status, message, target, "Continue where you left off")
    return status, error_page(status, message, link(environ, route), "Start again")
