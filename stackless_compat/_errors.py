"""Stackless' exception types: ``TaskletExit`` and ``bomb``.

Defined by Stackless' ``Doc/library/stackless/stackless.rst`` (Exceptions) and the
``bomb`` type of Stackless C (``Stackless/module/scheduling.c``).
"""

__all__ = ["TaskletExit", "bomb"]


class TaskletExit(SystemExit):
    """Raised inside a tasklet by ``tasklet.kill()``; silently ends it.

    It derives from ``SystemExit`` (not ``Exception``) so that
    ``except Exception:`` does not swallow a kill.
    """


class _GarbageCollected(TaskletExit):
    """A suspended tasklet whose greenlet was garbage collected.

    greenlet throws ``GreenletExit`` into an unreachable suspended greenlet;
    we turn it into this ``TaskletExit`` so ``finally:`` blocks run, and the
    tasklet then ends without touching the scheduler (it is not current).
    """


class bomb:
    """An exception in transit: ``bomb(type, value, traceback)``.

    Whenever a tasklet resumes and the value handed to it is a bomb, the bomb
    explodes: its exception is raised in that tasklet.  Like Stackless' bombs
    it is sloppy about arguments: ``bomb(sys.exc_info())`` works too.
    """

    __slots__ = ("type", "value", "traceback")

    def __init__(self, type=None, value=None, traceback=None):
        if isinstance(type, tuple) and value is None and traceback is None:
            type, value, traceback = (tuple(type) + (None, None, None))[:3]
        self.type = type
        self.value = value
        self.traceback = traceback

    def raise_(self):
        """Raise the carried exception, with ``raise`` statement semantics."""
        raise _exception_of(self.type, self.value, self.traceback)

    def __reduce__(self):
        return (bomb, (self.type, self.value, self.traceback))

    def __repr__(self):
        return "<stackless.bomb %r %r>" % (self.type, self.value)


def _exception_of(type, value, traceback):
    """Build the exception instance that ``raise type, value, tb`` would raise."""
    if isinstance(type, BaseException):
        exc = type
    elif isinstance(value, BaseException) and isinstance(value, type):
        exc = value
    elif value is None:
        exc = type()
    elif isinstance(value, tuple):
        exc = type(*value)
    else:
        exc = type(value)
    if traceback is not None:
        exc = exc.with_traceback(traceback)
    return exc


def make_bomb(exc, args, what):
    """``send_exception``/``raise_exception`` argument checking: a class and args."""
    if not (isinstance(exc, type) and issubclass(exc, BaseException)):
        raise TypeError(
            "%s needs an exception class as first argument, not %r" % (what, exc))
    return bomb(exc, tuple(args))


def exc_to_bomb(exc, val=None, tb=None):
    """``throw``/``send_throw`` argument checking: ``raise`` statement semantics."""
    if tb is not None and not hasattr(tb, "tb_frame"):
        raise TypeError("third argument must be a traceback object")
    if isinstance(exc, BaseException):
        if val is not None:
            raise TypeError("instance exception may not have a separate value")
        return bomb(type(exc), exc, tb)
    if isinstance(exc, type) and issubclass(exc, BaseException):
        return bomb(exc, val, tb)
    raise TypeError(
        "exceptions must be classes or instances deriving from BaseException,"
        " not %s" % type(exc).__name__)
