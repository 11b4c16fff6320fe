"""``Job``: one WSGI request handed to the hub, and the response it produces.

A server thread builds the ``Job`` (with the request body already read),
the hub runs the app for it in a request tasklet (``serve_job``), and the
server thread writes out what the job collected.  ``check_response`` is the
one place a WSGI response is checked before it reaches any server.
``OwnPages`` writes the pages webcont answers for the app (an abandoned or
failed request, and the gateway's refusals) as the app writes its own.
"""

import logging
import re
import threading

import stackless_compat as stackless

from ._pages import CONTENT_TYPE, SECURITY_HEADERS, error_page

log = logging.getLogger(__name__)

__all__ = ["Job", "OwnPages", "serve_job", "check_response"]


class OwnPages:
    """``OwnPages(app)(environ, status, message)`` -> ``(headers, body)``: an
    error page webcont writes itself for ``app``'s request (any thread: it
    only reads).

    A ``SessionlessApp`` lends its "Start again" link (``_start_link``: the
    request's route, else the start route) and its headers (``_headers``:
    its ``response_headers``, so a page the gateway answers carries the same
    security policy as the app's pages); any other WSGI app gets "/" and
    ``SECURITY_HEADERS``.
    """

    __slots__ = ("link_of", "headers_of")

    def __init__(self, app=None):
        self.link_of = getattr(app, "_start_link", None)
        self.headers_of = getattr(app, "_headers", None)

    def __call__(self, environ, status, message):
        link = "/" if self.link_of is None else self.link_of(environ)
        body = error_page(status, message, link).encode("utf-8")
        if self.headers_of is None:
            return [("Content-Type", CONTENT_TYPE),
                    ("Content-Length", str(len(body)))] + list(SECURITY_HEADERS), body
        return self.headers_of(body), body


_PLAIN_PAGES = OwnPages()


class Job:
    """One WSGI request handed to the hub, and the response it produces.

    The hub fills ``status``, ``headers`` and ``body``, then calls
    ``finish()``.  A server thread other than the hub waits on ``done``, an
    event it asks for with ``wait_here=True``; under the inline hub a task
    tasklet waits on ``waiter`` instead.
    """

    __slots__ = ("environ", "status", "headers", "body", "done", "waiter", "tasklet",
                 "finished", "cancel_reason", "pages")

    def __init__(self, environ, wait_here=False, pages=_PLAIN_PAGES):
        self.environ = environ
        self.pages = pages  # an OwnPages: how our own error pages for this request look
        self.status = None
        self.headers = None
        self.body = []
        self.done = threading.Event() if wait_here else None
        self.waiter = None  # a channel a task tasklet waits on (InlineHub.wait_job)
        self.tasklet = None
        self.finished = False
        self.cancel_reason = ("503 Service Unavailable", "The server is shutting down or the"
                              " request was cancelled; please try again.")

    def start_response(self, status, headers, exc_info=None):
        """The WSGI ``start_response`` given to the app (nothing is sent before it returns).

        Raises ``ValueError`` for a malformed status or header, so the app
        fails with a logged 500 instead of a split or broken response.
        """
        if self.status is not None and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        headers = list(headers)
        check_response(status, headers)
        self.status = status
        self.headers = headers
        return self.body.append

    def respond(self, status, message):
        """Replace whatever the app produced by a complete error page (``pages``)."""
        self.headers, body = self.pages(self.environ, status, message)
        self.status = status
        self.body = [body]

    def finish(self):
        self.finished = True
        if self.done is not None:
            self.done.set()
        waiter = self.waiter
        if waiter is not None and waiter.balance < 0:
            waiter.send(None)


_STATUS = re.compile(r"[1-5][0-9][0-9] [^\x00-\x1f\x7f]*\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# latin-1 text without control characters (CR, LF, NUL...); tab is allowed
_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f\u0100-\U0010ffff]*\Z")
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailers", "transfer-encoding", "upgrade"))

# Headers that passed: most responses repeat the same few (content type,
# security headers), and three regex matches each were a tenth of a step.
# Equal tuples of str are equally valid, whoever built them.
_CHECKED = set()
_CHECKED_MAX = 4096


def check_response(status, headers):
    """Refuse what would corrupt the HTTP response: raise ``ValueError``.

    An app that copies a parameter into a header (a redirect, a file name)
    could otherwise inject CR/LF and so headers or a whole second response,
    under servers that do not check (waitress does, but only after the hub
    answered, with a bare text 500).  WSGI also forbids hop-by-hop headers.
    """
    if not isinstance(status, str) or not _STATUS.match(status):
        raise ValueError("bad WSGI status line: %r" % (status,))
    for header in headers:
        # only a pair of exact strs is looked up or kept (no subclass could then
        # fake equality or hashing); tested inline: a function call per header
        # was ~1% of a game step
        plain = (type(header) is tuple and len(header) == 2
                 and type(header[0]) is str and type(header[1]) is str)
        if plain and header in _CHECKED:
            continue
        try:
            name, value = header
        except (TypeError, ValueError):
            raise ValueError("a WSGI header must be a (name, value) pair: %r" % (header,)) from None
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ValueError("bad header name: %r" % (name,))
        if not isinstance(value, str) or not _VALUE.match(value):
            raise ValueError("bad value for header %s (CR, LF or another control"
                             " character?): %r" % (name, value[:80] if isinstance(value, str)
                                                   else value))
        if name.lower() in _HOP_BY_HOP:
            raise ValueError("%s is a hop-by-hop header: WSGI apps may not set it" % name)
        if plain:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED.add(header)


def serve_job(app, job):
    """The body of a request tasklet: call the WSGI app and collect its response."""
    try:
        result = app(job.environ, job.start_response)
        try:
            for chunk in result:
                if not isinstance(chunk, bytes):
                    raise TypeError("WSGI response chunks must be bytes, not %s"
                                    % type(chunk).__name__)
                job.body.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if job.status is None:
            raise RuntimeError("the application returned without calling start_response")
    except stackless.TaskletExit:
        job.respond(*job.cancel_reason)
        raise
    except BaseException:  # SystemExit from an app too: it ends this request, not the hub
        log.exception("the application raised while answering %s %r",
                      job.environ.get("REQUEST_METHOD"), job.environ.get("PATH_INFO"))
        job.respond("500 Internal Server Error", "The application failed while answering"
                    " this request. The error has been logged.")
    finally:
        job.tasklet = None
        job.finish()
