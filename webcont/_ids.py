"""Durable ids: ``<chain>.<step>.<mac>``, signed with the server secret; code versions.

A chain id (128 random bits and the tag binding the game to the browser
that started it, ``_owner``), the step the next request answers, and a MAC
of both keyed with the server secret (128-bit keyed BLAKE2b): ids are
unguessable, unforgeable, and the same on every replay.
"""

import base64
import hashlib
import hmac
import inspect
import re
import sys

__all__ = ["IdSigner", "code_version"]


#: the one spelling of an id we make: ASCII only, the step in canonical decimal
#: (no sign, no leading zero, no other script's digits), the MAC's 22 characters
_ID = re.compile(r"([A-Za-z0-9_-]{22,60})\.(0|[1-9][0-9]{0,8})\.([A-Za-z0-9_-]{22})")


class IdSigner:
    """Makes and checks ``<chain>.<step>.<mac>`` continuation ids."""

    def __init__(self, secret):
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not secret or len(secret) < 16:
            raise ValueError("the durable id secret must have at least 16 bytes")
        # keyed BLAKE2b is a MAC in its own right, and 4x faster than HMAC-SHA256
        # (a replay re-makes the id of every step it renders)
        self._keyed = hashlib.blake2b(key=hashlib.sha256(secret).digest(), digest_size=16)

    def _mac(self, chain, step):
        mac = self._keyed.copy()  # the key schedule is done once, in __init__
        mac.update(("%s.%d" % (chain, step)).encode())
        return base64.urlsafe_b64encode(mac.digest())[:22].decode()

    def make(self, chain, step):
        return "%s.%d.%s" % (chain, step, self._mac(chain, step))

    def fingerprint(self):
        """A keyed fingerprint of the secret, kept in the store to tell whether
        a process uses the secret its games were started with.  It is the MAC
        of a text no id can have (a space), so it never verifies an id."""
        return self._mac("secret fingerprint", 0)

    def parse(self, text, issued=None):
        """``(chain, step)`` of a genuine id, else None (forged, tampered, malformed).

        Only the exact text ``make`` returns is genuine: ``01``, ``+1``, ``²``
        or a full-width ``１`` is another id, so it is refused before the MAC,
        never turned into the step it looks like.  ``issued(chain)``: an id
        ``make`` returned for that chain, or None; ``text`` equal to it needs
        no MAC (~2 us a step: the id a page carries is the one its chain made).
        """
        match = _ID.fullmatch(text)
        if match is None:
            return None
        chain, step = match.group(1), int(match.group(2))
        known = issued(chain) if issued is not None else None
        if known is not None and hmac.compare_digest(known, text):
            return chain, step
        if not hmac.compare_digest(self._mac(chain, step), match.group(3)):
            return None
        return chain, step


def code_version(controller, version=None):
    """The explicit ``version``, else a hash of the controller's module source."""
    if version is not None:
        return str(version)
    module = sys.modules.get(getattr(controller, "__module__", None))
    try:
        source = inspect.getsource(module) if module is not None else inspect.getsource(controller)
    except (OSError, TypeError):
        source = repr(getattr(getattr(controller, "__code__", None), "co_code", controller))
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
