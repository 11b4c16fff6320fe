"""The process-wide schedule and channel callbacks.

Both live in one holder, ``hooks``, whose attributes the hot paths read once
per operation (``hooks.channel is None`` is the whole cost when unset).
Defined by Stackless' ``Doc/library/stackless/stackless.rst`` (Callback functions).
"""

import sys
import traceback

from ._core import Hooks

__all__ = ["set_channel_callback", "get_channel_callback",
           "set_schedule_callback", "get_schedule_callback", "set_error_handler"]


hooks = Hooks()  # a core type: the C hand-over reads it too


def _checked(callable, what):
    if callable is not None and not builtins_callable(callable):
        raise TypeError("%s callback must be callable or None, not %r" % (what, callable))
    return callable


builtins_callable = callable


def set_channel_callback(callable):
    """Install ``callable(channel, tasklet, sending, willblock)``, called
    before every send and receive.  ``None`` removes it.  Returns the
    previous callback.  An exception it raises aborts the channel action
    before anything has changed.  While it runs, switching is trapped
    (``RuntimeError``), as Stackless' schedlock does."""
    old = hooks.channel
    hooks.channel = _checked(callable, "channel")
    return old


def get_channel_callback():
    """Return the installed channel callback, or ``None``."""
    return hooks.channel


def set_schedule_callback(callable):
    """Install ``callable(prev, next)``, called on every tasklet switch.

    ``prev`` is ``None`` when a thread's main tasklet comes into being; a
    tasklet that just ended is passed as ``prev`` with ``alive`` false.
    It runs before the switch, so ``getcurrent()`` is still ``prev``.
    While it runs, switching is trapped (``RuntimeError``), as Stackless
    forbids changing the scheduler state from the callback.  An exception it
    raises is reported through ``sys.unraisablehook`` as "Error in scheduling
    callback" and the switch goes on, as in Stackless C.  Returns the
    previous callback.
    """
    old = hooks.schedule
    hooks.schedule = _checked(callable, "schedule")
    return old


def get_schedule_callback():
    """Return the installed schedule callback, or ``None``."""
    return hooks.schedule


def set_error_handler(handler):
    """Install ``handler(type, value, traceback)`` for exceptions that end a tasklet.

    With a handler, an exception escaping a tasklet's function (or thrown
    into it before it started) calls it while that tasklet is still
    current, and ``run()`` goes on; an exception the handler raises reaches
    the innermost ``run()`` caller or main instead.  ``None`` removes it:
    the exception itself goes there.  Returns the previous handler.
    """
    old = hooks.error
    hooks.error = _checked(handler, "error handler")
    return old


def handle_error(error):
    """Give ``error``, which ended the current tasklet, to the error handler.

    Returns what must still reach the ``run()`` caller: None, or the
    handler's own exception.
    """
    try:
        hooks.error(type(error), error, error.__traceback__)
    except BaseException as exc:
        return exc
    return None


def notify_schedule(scheduler, prev, next):
    """Call the schedule callback with switching trapped; never raises."""
    callback = hooks.schedule
    if callback is None:
        return
    scheduler.switch_trap += 1
    scheduler.in_callback = True
    try:
        callback(prev, next)
    except BaseException as exc:  # a switch cannot be half undone: report it, as C does
        report_unraisable(exc, "Error in scheduling callback")
    finally:
        scheduler.switch_trap -= 1
        scheduler.in_callback = False


class UnraisableReport:
    """What ``sys.unraisablehook`` is given: the attributes of CPython's
    ``UnraisableHookArgs``, a type CPython does not export."""

    __slots__ = ("exc_type", "exc_value", "exc_traceback", "err_msg", "object")

    def __init__(self, exc, where):
        self.exc_type, self.exc_value, self.exc_traceback = type(exc), exc, exc.__traceback__
        self.err_msg, self.object = None, where


def report_unraisable(exc, where):
    """Report ``exc``, which nobody can catch, as CPython reports one in ``where``."""
    hook = sys.unraisablehook
    if hook is not sys.__unraisablehook__:
        hook(UnraisableReport(exc, where))
    elif sys.stderr is not None:
        # CPython's own hook takes only its own type: write what it writes
        sys.stderr.write("Exception ignored in: %r\n" % (where,))
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
