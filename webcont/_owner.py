"""The browser that started a game: the only one shown its live id again.

A continuation id is a bearer capability for one move, and old ids leak:
GET forms put them in URLs, so they sit in browser history, proxy logs and
shared links.  An old id must therefore never lead to the live one.  But an
honest player who pressed Back and answered an old page should still be able
to go on.  The two are told apart by a cookie:

* When a request starts a game and brings no owner cookie, the answer sets
  one: ``wc_owner=<128 random bits>``, ``HttpOnly`` (page scripts cannot read
  it), ``SameSite=Strict`` (another site cannot make the browser send it),
  ``Path=/``, for the browser session.  Over https it is
  ``__Host-wc_owner``, ``Secure``: a browser accepts that name only from
  this very host, so a sibling subdomain cannot plant its own token in the
  browser (and be shown the games started after).  One browser keeps one
  token for all its games.
* The game is bound to the token by a keyed MAC, the *tag*.  A durable game
  carries it at the end of its chain id (``<random><tag>``, MAC over the
  chain's random part too, so two games of one browser do not share a tag);
  the MAC key comes from the id secret, so every node of a cluster checks it.
  An in-memory game keeps its tag in memory, keyed per process.
* Only a request whose cookie matches the tag is shown an id that can move
  the game from a used or stale id: the 409 page's "continue where you left
  off" link, the page behind that link (``__show``), and the page replayed
  for a double submission.  Without the cookie those answers are a 409 with
  no live id (or a 403 for ``__show``).

The cookie proves "the same browser", nothing more: it is no login.  A
client that keeps no cookies (a script) can play every move with the ids it
is given, but gets no way back from an old page.
"""

import base64
import hashlib
import hmac
import re
import secrets

__all__ = ["COOKIE", "SECURE_COOKIE", "TAG_CHARS", "Owners", "cookie_token", "new_token", "set_cookie_header"]

COOKIE = "wc_owner"
SECURE_COOKIE = "__Host-" + COOKIE  # over https: host-only, Secure, Path=/
TAG_CHARS = 16  # 96 bits of MAC, URL-safe base64
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}\Z")


def new_token():
    """A fresh owner token: 128 bits from ``secrets``."""
    return secrets.token_urlsafe(16)


def cookie_token(environ):
    """The owner token of the request's ``Cookie`` header, or None.

    Only the exact shape we mint is accepted; anything else is as good as
    no cookie (a client cannot make us parse more than one header).
    """
    header = environ.get("HTTP_COOKIE")
    if not header:
        return None
    wanted = _cookie_name(environ)
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == wanted and _TOKEN.match(value):
            return value
    return None


def _cookie_name(environ):
    return SECURE_COOKIE if environ.get("wsgi.url_scheme") == "https" else COOKIE


def set_cookie_header(token, environ):
    """The ``Set-Cookie`` header that gives this browser ``token``."""
    secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
    return ("Set-Cookie", "%s=%s; Path=/; HttpOnly; SameSite=Strict%s"
            % (_cookie_name(environ), token, secure))


class Owners:
    """Tags binding games to owner tokens, under one key (any thread: no state)."""

    def __init__(self, secret=None):
        if secret is None:
            key = secrets.token_bytes(32)  # in-memory games die with the process
        else:
            if isinstance(secret, str):
                secret = secret.encode("utf-8")
            # a key of its own: a tag is never a valid id MAC, nor the reverse
            key = hashlib.sha256(b"webcont owner tag\0" + secret).digest()
        self._keyed = hashlib.blake2b(key=key, digest_size=12)

    def tag(self, token, base=""):
        """The tag of ``token`` for the game whose id starts with ``base``."""
        mac = self._keyed.copy()
        mac.update(("%s\0%s" % (token, base)).encode())
        return base64.urlsafe_b64encode(mac.digest()).decode()

    def owns(self, tag, base, environ):
        """True if the request's owner cookie is the one ``tag`` was made for."""
        token = cookie_token(environ)
        if token is None or tag is None:
            return False
        return hmac.compare_digest(self.tag(token, base), tag)

    def tagged_id(self, token, base):
        """``base`` with the tag of ``token`` appended (a durable chain id)."""
        return base + self.tag(token, base)

    def owns_id(self, chain_id, environ):
        """True if ``chain_id`` ends with the tag of the request's owner cookie."""
        if len(chain_id) <= TAG_CHARS:
            return False
        return self.owns(chain_id[-TAG_CHARS:], chain_id[:-TAG_CHARS], environ)
