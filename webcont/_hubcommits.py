"""The writes the hub commits itself, a group per pass, with no thread hand-over.

On SQLite (``commits_here``) a local commit costs less than the two thread
hand-overs of the store's writer thread (bench/durable.py), so the hub
queues its steps' writes here and commits them itself once the pass that
queued them ends (``post``): every write queued before then shares one
transaction.  If another process holds the write lock then, or the store
is failing, the group goes to the writer thread, which may wait for the
lock; the hub never does.

The hub's connection checkpoints nothing itself (a checkpoint run by a
commit held every request): every ``checkpoint_every`` operations it asks
the checkpoint thread to (``_checkpoint``).
"""

import concurrent.futures
import logging
import threading

from ._checkpoint import Checkpointer
from ._storeerrors import Busy, is_connection_error

log = logging.getLogger(__name__)

__all__ = ["HubCommits"]


class HubCommits:
    """The group of writes the hub commits at the end of its pass (``LogStore.commit_soon``).

    Used by one thread at a time, the hub; its connection is made again if
    another thread takes over (tests drive several hubs).  ``close`` may be
    called from any thread once that one is idle.
    """

    def __init__(self, store):
        self.store = store
        self.checkpointer = None  # its thread, started at the first checkpoint
        self._connection = None   # (thread id, connection) of the committing thread
        self._batch = []          # [(operation, future)] not committed yet
        self._operations = 0      # committed here since the last checkpoint

    def add(self, operation, post):
        """Queue ``operation``; the first of a group asks ``post`` for the flush."""
        future = concurrent.futures.Future()
        self._batch.append((operation, future))
        if len(self._batch) == 1:
            post(self.flush)
        return future

    def flush(self):
        """Commit the group queued so far, here, or hand it to the writer thread."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        store = self.store
        if store.failure is not None or not store.opened:
            store.enqueue_writes(batch)  # not connected yet, or failing: the writer's turn
            return
        try:
            results = store.transaction(self._connect(), batch, store.begin_now)
        except Busy:
            store.enqueue_writes(batch)
            return
        except Exception as exc:
            if not is_connection_error(exc):  # (the writer logs the store going down)
                log.exception("store transaction failed (%d operation(s))", len(batch))
            self.drop()
            store.enqueue_writes(batch)  # the writer thread retries, reconnecting if need be
            return
        self._operations += len(batch)
        if self._operations >= store.checkpoint_every:
            self._operations = 0
            self._checkpoint_soon()
        store.settle(results)

    def _connect(self):
        me = threading.get_ident()
        if self._connection is None or self._connection[0] != me:
            self.drop()
            self._connection = (me, self.store.connect_here())
        return self._connection[1]

    def drop(self):
        """Roll back and close the connection, if any (its thread is idle)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection[1].rollback()
                connection[1].close()
            except Exception:
                pass

    def _checkpoint_soon(self):
        # not on the writer thread: there the checkpoint held up every read
        # queued behind it, the replays of unloaded games (_checkpoint)
        if self.checkpointer is None:
            self.checkpointer = Checkpointer(self.store)
        self.checkpointer.kick()

    def close(self):
        """Close the connection and stop the checkpoint thread."""
        self.drop()
        if self.checkpointer is not None:
            self.checkpointer.close()
