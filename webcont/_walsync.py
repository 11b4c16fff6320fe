"""FULL durability for the hub's SQLite commits, with the fsync off the hub.

``synchronous=FULL`` is ``NORMAL`` plus an fsync of the WAL at every commit.
Made by SQLite inside COMMIT, that fsync held whoever committed: the hub
itself, or (as before) the writer thread, reached through two thread
hand-overs whose GIL waits cost more than the commit (bench/durable.py,
c=8: FULL 0.71-0.78x the in-memory step, NORMAL 0.90x).  So the hub's
connection commits as NORMAL and hands each group's outcomes to this
thread, which fsyncs the WAL and only then posts them back: nobody sees a
page before its step is on disk.  One fsync covers every group committed
before it began (the WAL is one file, written in order), so the groups
that arrive while one runs share the next.

Another process on the same file may read a group committed here before
its fsync; the steps it then records are fsynced with the same file, so
the pages it shows never get ahead of the disk either.
"""

import logging
import os
import threading

from ._storeerrors import StoreUnavailable, one_line

log = logging.getLogger(__name__)

__all__ = ["JournalSyncer"]


class JournalSyncer:
    """Runs ``store.sync_journal()`` on the thread ``webcont-walsync``, then settles
    the commits it covers through their hub's ``post``.

    ``add`` may be called from any thread; ``close`` syncs what is queued,
    then stops the thread.
    """

    def __init__(self, store):
        self.store = store
        self.syncs = 0        # fsyncs made (tests, benchmarks); written by the thread
        self._pending = []    # [(post, results)] committed, not synced yet
        self._wakeup = threading.Condition(threading.Lock())
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="webcont-walsync",
                                        daemon=True)
        self._thread.start()

    def add(self, results, post):
        """Settle ``results`` (``LogStore.transaction``'s) through ``post`` once the
        journal holding them is on disk."""
        with self._wakeup:
            self._pending.append((post, results))
            self._wakeup.notify()

    def close(self):
        """Sync and settle what is queued, then stop the thread (any thread)."""
        with self._wakeup:
            self._closing = True
            self._wakeup.notify()
        self._thread.join(30)

    def _run(self):
        while True:
            with self._wakeup:
                while not self._pending and not self._closing:
                    self._wakeup.wait()
                if not self._pending:
                    break
                pending, self._pending = self._pending, []
            error = None
            try:
                self.store.sync_journal()
                self.syncs += 1
            except OSError as exc:  # committed, but not known to be on disk: not shown
                reason = "cannot sync %s: %s" % (self.store.where, one_line(exc))
                self.store.note_failure(reason)
                error = StoreUnavailable(reason)
            for post, results in _by_post(pending):
                if error is not None:
                    results = [(future, None, error) for future, _, _ in results]
                try:
                    post(lambda results=results: self.store.settle(results))
                except RuntimeError:  # the hub is stopped: nobody waits any more
                    pass
                except Exception:
                    log.exception("posting %d synced outcome(s) to the hub", len(results))


def _by_post(pending):
    """[(post, all its results)], one post a hub (there is one in the common case)."""
    groups = {}
    for post, results in pending:
        groups.setdefault(post, []).extend(results)
    return groups.items()


def fdatasync(fd):
    """Flush ``fd``'s data to disk (``fsync`` where there is no ``fdatasync``)."""
    getattr(os, "fdatasync", os.fsync)(fd)
