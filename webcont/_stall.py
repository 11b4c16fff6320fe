"""``StallWatch``: notice a hub that does not come back, and say where it is stuck.

Controllers are cooperative: one that loops forever in Python code, or
blocks its thread (``time.sleep``, a socket read, a lock), holds the hub,
and no other request is answered meanwhile.  Nothing here can interrupt it:
an exception injected into another thread could land inside the scheduler
and corrupt it, and tracing every line costs every request.  What we can do
is make the stall visible: a small thread samples ``hub.busy_since`` and,
once the hub has spent ``threshold`` seconds on one request (or one pass of
timers), logs an error with the stack the hub thread is in, then one line
a minute while it lasts, and one when the hub is free again.  ``serve()``
uses the same information to stop within a bounded time (``_server``).
"""

import logging
import sys
import threading
import traceback

from . import _clock

log = logging.getLogger(__name__)

__all__ = ["StallWatch"]

REPEAT = 60.0  # seconds between "still stalled" lines


def describe(busy_with):
    """A short, log-safe name for what the hub works on (a Job or a label)."""
    environ = getattr(busy_with, "environ", None)
    if environ is None:
        return str(busy_with)
    return "%s %r" % (environ.get("REQUEST_METHOD"), (environ.get("PATH_INFO") or "")[:200])


class StallWatch:
    """Watches ``hub`` from a daemon thread of its own; ``close()`` stops it."""

    def __init__(self, hub, threshold, name="webcont-stall-watch"):
        self.hub = hub
        self.threshold = threshold
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stalled_for(self):
        """Seconds the hub has been on its current job, if past the threshold, else 0."""
        since = self.hub.busy_since  # racy read of one attribute: fine for a report
        if since is None:
            return 0.0
        busy = _clock.monotonic() - since
        return busy if busy >= self.threshold else 0.0

    def close(self):
        self._closing.set()
        self._thread.join(5)

    def _loop(self):
        reported = None      # busy_since of the stall last reported
        next_report = 0.0
        period = min(1.0, self.threshold / 2)
        while not self._closing.wait(period):
            hub = self.hub
            since = hub.busy_since
            now = _clock.monotonic()
            if since is None or now - since < self.threshold:
                if reported is not None:
                    log.warning("the hub is answering again (stalled %.1f s)", now - reported)
                    reported = None
                continue
            if since != reported:
                reported, next_report = since, now + REPEAT
                log.error("the hub has been running %s for %.1f s without coming back:"
                          " no other request is answered meanwhile. It is at:\n%s",
                          describe(hub.busy_with), now - since, self._stack(hub))
            elif now >= next_report:
                next_report = now + REPEAT
                log.error("the hub is still stalled in %s (%.0f s)",
                          describe(hub.busy_with), now - since)

    @staticmethod
    def _stack(hub):
        frame = sys._current_frames().get(hub.thread_id)
        if frame is None:
            return "  (no stack: the hub thread is gone)"
        return "".join(traceback.format_stack(frame, limit=12)).rstrip()
