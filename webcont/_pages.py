"""Complete HTML documents: every page webcont itself answers with.

All escaping of echoed input lives here: ``escape`` for text, and ``page``
wraps a controller's fragment into a full document (a fragment is trusted
markup written by the controller, which escapes what it echoes).
"""

import html
import re

__all__ = ["escape", "page", "error_page", "CONTENT_TYPE", "SECURITY_HEADERS"]

CONTENT_TYPE = "text/html; charset=utf-8"

#: Sent with every page webcont writes (docs/security.md explains each).
SECURITY_HEADERS = (
    # pages carry continuation ids, which are capabilities: no cache may keep them
    ("Cache-Control", "no-store"),
    # GET forms put the id in the URL: never hand it to another site in Referer
    ("Referrer-Policy", "same-origin"),
    # a page is HTML because we say so, whatever a client echoes into it
    ("X-Content-Type-Options", "nosniff"),
    # no framing by other sites (a click on a framed form is a move in the game)
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
)

_DOCUMENT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em; line-height: 1.5; }
input[type=text], input[type=number] { font-size: 1em; padding: .2em .4em; }
.error { color: #a00; }
</style>
</head>
<body>
%(body)s
</body>
</html>
"""


def escape(text):
    """Escape ``text`` for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


_HEADING = re.compile(r"<h1\b[^>]*>(.*?)</h1>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def page(body, title=None):
    """Return ``body`` as a complete HTML document (str).

    The title is ``title`` if given, else the text of the fragment's first
    ``<h1>`` (so each page of a game has its own), else "webcont".  ``body``
    that already is a document (starts with ``<!DOCTYPE`` or ``<html``) is
    returned unchanged.
    """
    stripped = body.lstrip()[:15].lower()
    if stripped.startswith("<!doctype") or stripped.startswith("<html"):
        return body
    if title is not None:
        heading = escape(title)
    else:
        # the fragment is markup (its text already escaped): keep its entities, drop its tags
        match = _HEADING.search(body)
        heading = " ".join(_TAG.sub("", match.group(1)).split()) if match else ""
        heading = heading.replace("<", "&lt;") or "webcont"
    return _DOCUMENT % {"title": heading, "body": body}


def error_page(status, message, link="/", link_text="Start again"):
    """A complete error document: the status as a heading, the (escaped)
    message, and a link (by default, to start again)."""
    return page('<h1 class="error">%s</h1>\n<p>%s</p>\n<p><a href="%s">%s</a></p>'
                % (escape(status), escape(message), escape(link), escape(link_text)),
                title=status)
