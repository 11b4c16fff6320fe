"""The store's journal checkpoints, on a thread and a connection of their own.

The hub's connection never checkpoints SQLite's WAL (``_dialects``): every
``checkpoint_every`` operations it commits, it asks for one.  Run on the
store's writer thread, a checkpoint (copying the WAL into the file and, with
NORMAL, an fsync: 10-60 ms with a million games) held every read queued
behind it, among them the replay of each unloaded game asked for meanwhile
(bench/million.py: unloaded resume p99 11 ms, with 1.3 ms of CPU).  Here it
holds nobody: a PASSIVE checkpoint neither waits for nor blocks readers and
writers, and SQLite works with the GIL released.  Only once the WAL has grown
to ``wal_restart_frames`` does a second pass hold the hub's commits back, so
that it copies all of it and the WAL starts over (``_hubcommits``).
"""

import logging
import threading

log = logging.getLogger(__name__)

__all__ = ["Checkpointer"]


class Checkpointer:
    """Runs ``store.checkpoint(cursor)`` on the thread ``webcont-checkpoint``.

    ``kick()`` may be called from any thread; kicks that arrive while a
    checkpoint runs make one more.  The thread owns its connection
    (``store.connect()``), opened at the first kick.
    """

    def __init__(self, store, hold=None):
        self.store = store
        # hold(action): action run while nothing else writes (HubCommits.hold_commits),
        # for a second pass once the journal is ``store.wal_restart_frames`` long
        self.hold = hold
        self.passes = 0  # checkpoints made (tests, benchmarks); written by the thread
        self._kicked = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="webcont-checkpoint",
                                        daemon=True)
        self._thread.start()

    def kick(self):
        """Checkpoint soon (any thread; takes no lock when one is already asked for)."""
        if not self._kicked.is_set():
            self._kicked.set()

    def close(self):
        """Stop the thread after the checkpoint under way, if any."""
        self._closing = True
        self._kicked.set()
        self._thread.join(30)

    def _run(self):
        connection, failing = None, False
        while True:
            self._kicked.wait()
            self._kicked.clear()
            if self._closing:
                break
            try:
                if connection is None:
                    connection = self.store.connect()
                cursor = connection.cursor()
                frames = self.store.checkpoint(cursor)
                if self.hold is not None and frames is not None \
                        and frames >= self.store.wal_restart_frames:
                    # what was committed during the first pass, while the hub
                    # commits nothing: then the WAL starts over at the next commit
                    self.hold(lambda: self.store.checkpoint(cursor))
                self.passes += 1
                failing = False
            except Exception as exc:
                # the store is down (the store says so) or another process is
                # checkpointing: one line, and the next kick tries again
                if not failing:
                    log.warning("checkpointing %s failed: %s", self.store.where, exc)
                failing = True
                connection = _closed(connection)
        _closed(connection)


def _closed(connection):
    if connection is not None:
        try:
            connection.close()
        except Exception:
            pass
    return None
