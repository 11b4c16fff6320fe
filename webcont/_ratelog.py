"""Log lines a client can trigger: one per refused request, and throttled ones.

Every refused request gets one INFO line (``log_refused``), written so that
a client cannot forge log lines or read secrets out of it: the path is cut
and ``repr``-quoted (CR/LF stay escaped), and no query string, body or whole
continuation id is ever written.

Some lines would come once per request during a flood: each new game past
``max_continuations`` evicts one, and with one worker thread waitress warns
about its queue depth on every request that arrives while the hub is busy.
Logged one line each, a client could fill the disk and bury everything
else.  ``ThrottledLog`` writes the first occurrence at once, then at most one
line per ``interval`` saying how many were folded into it.  It takes no
lock: waitress calls its queue logger from more than one thread, and a race
there only blurs a count in a log line.
"""

import time

__all__ = ["ThrottledLog", "log_refused"]


def log_refused(logger, environ, status, reason):
    """Log one refused request at INFO: method, path, client address, status, why."""
    logger.info("refused %s %r from %s: %s %s", environ.get("REQUEST_METHOD"),
                (environ.get("PATH_INFO") or "")[:200], environ.get("REMOTE_ADDR"),
                status, reason)


class ThrottledLog:
    """``ThrottledLog(logger, level, message, interval=10.0)``; call it with the
    message's ``%`` arguments.  Returns True when a line was written."""

    def __init__(self, logger, level, message, interval=10.0, clock=time.monotonic):
        self.logger = logger
        self.level = level
        self.message = message
        self.interval = interval
        self.clock = clock
        self._written = None   # when the last line was written
        self._folded = 0       # occurrences not written since the last line

    def __call__(self, *args):
        now = self.clock()
        written = self._written
        if written is not None and now < written + self.interval:
            self._folded += 1
            return False
        if self._folded:
            # all of them since the last line, which may be long before one interval ago
            self.logger.log(self.level, self.message + " (and %d more like it in the last %.0f s)",
                            *(args + (self._folded, now - written)))
        else:
            self.logger.log(self.level, self.message, *args)
        self._folded = 0
        self._written = now
        return True
