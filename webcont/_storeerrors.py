"""How the log store fails: the errors it raises, how it tells them apart and how
it names itself in them."""

import urllib.parse

__all__ = ["StoreUnavailable", "Busy", "one_line", "is_connection_error", "hide_password"]


class StoreUnavailable(Exception):
    """The store could not be reached or the transaction failed."""


class Busy(Exception):
    """Another connection holds the write lock (``begin_now``)."""


def one_line(exc):
    """``exc`` as one short log line (drivers' messages run over several)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def is_connection_error(exc):
    """Whether ``exc`` means the connection is unusable (reconnect), not a bad query."""
    name = type(exc).__name__
    return name in ("OperationalError", "InterfaceError") or isinstance(exc, OSError)


def hide_password(url):
    """``url`` with the password of its user part replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":%s@" % parts.password, ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
