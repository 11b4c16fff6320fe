"""Where a thread finds its scheduler: the thread-local and ``current_scheduler()``.

Kept apart from ``_scheduler`` (as trio keeps ``_run_context`` apart from
``_run``) so that tasklets, channels, threads, tracing and the watchdog can
find the running scheduler without importing the module that defines it:
``_scheduler`` imports them, never the other way round.  It registers the
factory that builds a thread's scheduler on first use.
"""

import threading

__all__ = ["current_scheduler", "current_or_none"]

_local = threading.local()
_factory = None  # set once by _scheduler: builds and registers this thread's scheduler


def current_scheduler():
    """Return this thread's scheduler, creating it (and its main tasklet) on first use."""
    try:
        return _local.scheduler
    except AttributeError:
        return _factory()


def current_or_none():
    """The running tasklet of this thread, or None if the thread never used
    stackless.  It creates no scheduler: for code that only looks, such as
    webcont's recorder, which runs in every thread that reads the clock."""
    scheduler = getattr(_local, "scheduler", None)
    return None if scheduler is None else scheduler.current


def set_factory(factory):
    """Called once by ``_scheduler``: ``factory()`` makes this thread's scheduler."""
    global _factory
    _factory = factory
