"""How the log store fails: the errors it raises and how it tells them apart."""

__all__ = ["StoreUnavailable", "Busy", "one_line", "is_connection_error"]


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
