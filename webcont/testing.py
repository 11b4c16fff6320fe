"""Test helpers for webcont applications.

``replay_check(app)`` catches durable controllers that are not
deterministic: inside the block, every durable step is replayed from the
store right after it is recorded, and the page the replay renders must be
the page that was served.  A controller that draws randomness or the time
behind webcont's back (``from random import random``, ``os.urandom``, a
global counter...) renders a different page and fails the check.
"""

import contextlib

__all__ = ["replay_check"]


@contextlib.contextmanager
def replay_check(app):
    """Check every durable step of ``app`` served inside the block by replaying it.

    Yields the list of failures as they are found; raises ``AssertionError``
    at the end of the block if there is any.  Serve ``app`` in-process
    (``webcont.gateway(app)``) while the block runs.
    """
    failures = []
    app.replay_failures = failures
    try:
        yield failures
    finally:
        app.replay_failures = None
    if failures:
        lines = ["%d durable step(s) rendered a different page on replay:" % len(failures)]
        for chain, step, problem in failures[:10]:
            lines.append("  chain %s step %d: %s" % (chain[:6], step, problem))
        raise AssertionError("\n".join(lines))
