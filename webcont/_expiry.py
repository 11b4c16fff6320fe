"""What of the durable chains stays in memory, and how chains end (expiry, sweeps).

A mixin of ``DurableChains`` (``_durable``), used only on the hub: at most
``max_live`` chains stay in memory, least recently used first (the others
are unloaded, not lost: their log stays and they are replayed when next
needed); the sweeper expires chains past their deadline in batches, and
unloads copies another process has moved on.
"""

import logging

from . import _clock
from ._chain import Chain
from ._continuations import TimeoutException
from ._hub import current_hub
from ._store import StoreUnavailable

log = logging.getLogger(__name__)

__all__ = ["ChainsInMemory"]


class ChainsInMemory:
    """The memory and expiry half of ``DurableChains``."""

    def _keep(self, chain):
        live = self.live
        previous = live.get(chain.id)
        if previous is not None and previous is not chain and not previous.busy:
            previous.unload()  # never two controllers for one chain
        live[chain.id] = chain
        live.move_to_end(chain.id)
        while len(live) > self.max_live:
            oldest = next((idle for idle in live.values() if not idle.busy), None)
            if oldest is None:
                break
            self._drop(oldest)

    def _drop(self, chain):
        """Unload ``chain`` from memory (its log is untouched)."""
        if self.live.get(chain.id) is chain:
            del self.live[chain.id]
            self.app._pages.pop(chain.id)
        chain.unload()

    def _end(self, chain_id, state, step=None):
        try:
            return self._wait(self.store.submit(
                lambda store, cursor: store.op_end(cursor, chain_id, state, step)))
        except Exception:
            log.exception("marking chain %s %s", chain_id[:6], state)
            return False

    def _schedule_sweep(self):
        """The next sweep, on the current hub (a hub stopped meanwhile takes its timer along)."""
        hub = self._sweep_hub = current_hub()
        hub.call_at(_clock.monotonic() + self.sweep_interval, lambda: hub.spawn(self._sweep))

    def _sweep(self):
        """Expire due chains in batches (an index scan, never a full scan)."""
        if self._sweep_hub is not current_hub():
            return  # the app is served by another hub now, which sweeps on its own
        try:
            timeout = self.app.continuation_timeout
            for _ in range(20):  # at most 2,000 a pass; the rest at the next
                due, more = self._wait(self.store.submit(
                    lambda store, cursor: store.op_due(cursor, 100, timeout)))
                for chain_id in due:
                    self.expire(chain_id)
                if not more:
                    break
            self._unload_stale()
            self._wait(self.store.submit(
                lambda store, cursor: store.op_purge(cursor, self.tombstone_ttl)))
        except StoreUnavailable as exc:  # logged once by the store when it went down
            log.debug("no sweep: %s", exc)
        except Exception:
            log.exception("sweeping expired durable chains")
        if self._sweep_hub is current_hub():  # (not taken over by a new hub meanwhile)
            self._schedule_sweep()

    def _unload_stale(self):
        """Unload chains another process has moved on (after a failover and back).

        Only nodes of a cluster (``node=`` set) share chains with others.
        """
        if self.app.node is None:
            return
        idle = [chain for chain in self.live.values() if not chain.busy]
        if not idle:
            return
        steps = self._wait(self.store.read(lambda store, cursor: store.op_steps(
            cursor, [chain.id for chain in idle])))
        for chain in idle:
            if steps.get(chain.id, -1) != chain.step and self.live.get(chain.id) is chain:
                log.info("chain %s moved on elsewhere: unloading the stale copy", chain.id[:6])
                self._drop(chain)

    def expire(self, chain_id):
        """Expire one chain: load it if needed, mark it expired in the store (its log
        deleted in the same transaction; only the process that wins does the rest),
        then raise ``TimeoutException`` at its suspension point so cleanup runs once."""
        chain = self.live.get(chain_id)
        if chain is None:
            chain = self._load(chain_id)
            if not isinstance(chain, Chain):  # gone, finished or broken: just end it
                self._end(chain_id, "expired")
                return
        if chain.busy:
            return  # being answered right now: it is no longer idle
        chain.busy = True  # not evicted meanwhile: its cleanup must run if we win
        try:
            won = self._end(chain_id, "expired", chain.step)
        finally:
            chain.busy = False
        self.live.pop(chain_id, None)
        self.app._pages.pop(chain_id)
        if won and chain.tasklet is not None and chain.tasklet.alive and chain.inputs.balance < 0:
            try:
                chain.inputs.preference = -1  # run its cleanup now, before the unload
                chain.inputs.send_exception(TimeoutException, "continuation expired")
            except Exception:
                log.exception("expiring chain %s", chain_id[:6])
        chain.unload()
