"""The hub's writes, a group per pass: committed by the hub itself, or by the writer.

On SQLite (``commits_here``) a local commit costs less than the two thread
hand-overs of the store's writer thread (bench/durable.py), so the hub
queues its steps' writes here and commits them itself once the pass that
queued them ends (``post``): every write queued before then shares one
transaction.  If another process holds the write lock then, or the store
is failing, the group goes to the writer thread, which may wait for the
lock; the hub never does.  With FULL the hub commits as NORMAL and the
outcomes wait for the WAL's fsync on its own thread (``_walsync``).  Other
stores (PostgreSQL) hand the pass's group to the writer thread at once: one
hand-over there and one outcome posted back a group, not one of each a step.

The hub's connection checkpoints nothing itself (a checkpoint run by a
commit held every request): every ``checkpoint_every`` operations it asks
the checkpoint thread to (``_checkpoint``).  SQLite starts its WAL over only
once a checkpoint copied all of it, so once the WAL is long the thread makes
a second pass while the hub holds its commits back (``hold_commits``): under
steady load the hub always committed during the first, and the WAL grew by
every page written.
"""

import concurrent.futures
import logging
import threading

from ._checkpoint import Checkpointer
from ._storeerrors import Busy, is_connection_error
from ._walsync import JournalSyncer

log = logging.getLogger(__name__)

__all__ = ["HubCommits", "HubFuture"]


class HubFuture:
    """The outcome of a write the hub commits: a future completed on the hub only.

    So it takes no lock: a ``concurrent.futures.Future`` costs ~4 us a step
    (a condition, its locks and a notify), all on the hub.  It offers what
    ``Hub.wait`` uses (``done``, ``result``, ``exception``,
    ``add_done_callback``); nothing ever blocks on it, so ``result`` of one
    not done yet raises ``InvalidStateError``.  The first outcome set wins.
    """

    __slots__ = ("_done", "_result", "_error", "_callbacks")
    settles_on_hub = True  # its callbacks run on the hub (``Hub.wait``)

    def __init__(self):
        self._done = False
        self._result = self._error = None
        self._callbacks = []

    def done(self):
        return self._done

    def result(self, timeout=None):
        """The operation's result, or its exception raised (``timeout``: ignored)."""
        if not self._done:
            raise concurrent.futures.InvalidStateError("not committed yet: wait with Hub.wait")
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self, timeout=None):
        if not self._done:
            raise concurrent.futures.InvalidStateError("not committed yet: wait with Hub.wait")
        return self._error

    def add_done_callback(self, callback):
        if self._done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def set_result(self, result):
        self._settle(result, None)

    def set_exception(self, error):
        self._settle(None, error)

    def _settle(self, result, error):
        if self._done:
            return
        self._done, self._result, self._error = True, result, error
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("a HubFuture callback raised")


class HubCommits:
    """The group of writes the hub commits at the end of its pass (``LogStore.commit_soon``).

    Used by one thread at a time, the hub; its connection is made again if
    another thread takes over (tests drive several hubs).  ``close`` may be
    called from any thread once that one is idle.
    """

    def __init__(self, store):
        self.store = store
        self.here = store.commits_here  # (fixed for a store; read once)
        self.syncs = store.syncs_after_commit  # (the same)
        self.checkpointer = None  # its thread, started at the first checkpoint
        self.syncer = None        # its thread, started at the first commit to sync
        self._connection = None   # (thread id, connection) of the committing thread
        self._batch = []          # [(operation, HubFuture)] not committed yet
        self._operations = 0      # committed here since the last checkpoint
        self._post = None         # the hub's post (its thread runs the flush)
        self._holding = False     # the checkpoint's last pass runs: commit nothing

    def add(self, operation, post, now=False):
        """Queue ``operation``; the first of a group asks ``post`` for the flush.

        Returns a ``HubFuture``, completed on the thread that runs ``post``'s
        callbacks (the hub).  ``now`` (no other write will join it): a store
        that commits here commits it at once, and the future is done on return
        (a lone step's commit then costs its waiter no switch, no post, no
        timer: ~40 Python calls at c=1).
        """
        future = HubFuture()
        self._batch.append((operation, future))
        if len(self._batch) == 1:
            self._post = post
            if self._holding:
                pass  # committed with the others held back, at the release
            elif now and self.here:
                self.flush()
            else:
                post(self.flush)
        return future

    def flush(self):
        """Commit the group queued so far, here, or hand it to the writer thread."""
        if self._holding:
            return  # the release flushes
        batch, self._batch = self._batch, []
        if not batch:
            return
        store = self.store
        if not self.here or store.failure is not None or not store.opened or store.closed:
            # not connected yet, failing or closed (it refuses): the writer's turn
            self._to_writer(batch)
            return
        try:
            results = store.transaction(self._connect(), batch, now=True)
        except Busy:
            self._to_writer(batch)
            return
        except Exception as exc:
            if not is_connection_error(exc):  # (the writer logs the store going down)
                log.exception("store transaction failed (%d operation(s))", len(batch))
            self.drop()
            self._to_writer(batch)  # the writer thread retries, reconnecting if need be
            return
        self._operations += len(batch)
        if self._operations >= store.checkpoint_every:
            self._operations = 0
            self._checkpoint_soon()
        if self.syncs:
            if self.syncer is None:
                self.syncer = JournalSyncer(store)
            self.syncer.add(results, self._post)
        else:
            store.settle(results)

    def _to_writer(self, batch):
        """Hand ``batch`` to the writer thread; its outcomes come back through ``post``,
        all at once."""
        group = _WriterGroup(self._post, [future for _, future in batch])
        self.store.enqueue_writes([(operation, _Slot(group, number))
                                   for number, (operation, _) in enumerate(batch)])

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
            self.checkpointer = Checkpointer(self.store, self.hold_commits)
        self.checkpointer.kick()

    def hold_commits(self, action, timeout=1.0):
        """Run ``action()`` here (the checkpoint thread) while the hub commits
        nothing: what it queues meanwhile is committed at the end, in one group.

        The hub is asked through its post, so it is between two passes, not in
        a commit.  If it does not answer within ``timeout`` s, ``action`` is not
        run (it is the next checkpoint's turn)."""
        post = self._post
        if post is None:
            return
        held, lock, state = threading.Event(), threading.Lock(), {"late": False}

        def hold():  # (hub)
            with lock:
                if state["late"]:
                    return
                self._holding = True
            held.set()
        try:
            post(hold)
        except RuntimeError:  # the hub is stopped
            return
        held.wait(timeout)
        with lock:
            state["late"] = not held.is_set()
        if state["late"]:
            return
        try:
            action()
        finally:
            try:
                post(self._release)
            except RuntimeError:  # the hub stopped meanwhile: nothing waits
                self._holding = False

    def _release(self):
        """(hub) The held commits, at once."""
        self._holding = False
        self.flush()

    def close(self):
        """Settle what waits for an fsync, close the connection, stop the threads."""
        if self.checkpointer is not None:
            self.checkpointer.close()  # (first: it may hold the hub's commits back)
        self._holding = False
        if self.syncer is not None:
            self.syncer.close()
        self.drop()


class _WriterGroup:
    """A group the writer thread commits for the hub: its outcomes, gathered on the
    writer thread, complete the group's HubFutures through one ``post``."""

    __slots__ = ("post", "futures", "outcomes", "left", "lock")

    def __init__(self, post, futures):
        self.post = post
        self.futures = futures
        self.outcomes = [None] * len(futures)
        self.left = len(futures)
        self.lock = threading.Lock()  # (a group may be failed from another thread)

    def settle(self, number, result, error):
        with self.lock:
            if self.outcomes[number] is not None:
                return
            self.outcomes[number] = (result, error)
            self.left -= 1
            if self.left:
                return
        try:
            self.post(self._complete)
        except RuntimeError:  # the hub is stopped: nobody waits any more
            pass
        except Exception:
            log.exception("posting %d commit outcome(s) to the hub", len(self.futures))

    def _complete(self):
        """(hub)"""
        for future, (result, error) in zip(self.futures, self.outcomes):
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)


class _Slot:
    """What the writer thread completes for one operation of a ``_WriterGroup``
    (the part of ``concurrent.futures.Future`` it uses)."""

    __slots__ = ("group", "number")

    def __init__(self, group, number):
        self.group, self.number = group, number

    def done(self):
        return self.group.outcomes[self.number] is not None

    def set_result(self, result):
        self.group.settle(self.number, result, None)

    def set_exception(self, error):
        self.group.settle(self.number, None, error)
