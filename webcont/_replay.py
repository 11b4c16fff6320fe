"""Loading durable chains by replay: the log read from the store, run again.

A mixin of ``DurableChains`` (``_durable``), used only on the hub.  A chain
that is not in memory (after a restart, a failover, or when the in-memory
cap unloaded it) is replayed lazily from its log, in one store query, by
running the controller again and feeding it the recorded inputs and draws
(``_chain``).  The same replay, into a scratch copy that is thrown away,
renders a waiting game's page again (``_last_page``) and checks that a
replay renders the page served (``webcont.testing.replay_check``).
"""

import json
import logging

import stackless_compat as stackless

from . import _clock
from ._chain import Chain, _input_of
from ._continuations import parameters_digest
from ._outage import unavailable
from ._refusals import Refusal

log = logging.getLogger(__name__)

__all__ = ["ChainsFromLog"]


class ChainsFromLog:
    """The replay half of ``DurableChains``."""

    def _read_log(self, chain_id):
        """The store's record of ``chain_id`` (its state and log), or None. (hub tasklet)"""
        timeout = self.app.continuation_timeout
        return self._wait(self.store.read(
            lambda store, cursor: store.op_load(cursor, chain_id, timeout)))

    def _replayed(self, chain_id, record, controller, version):
        """``(chain, kind, page)``: a new Chain run again through ``record``'s log
        (``kind`` is "ready" when it waits where the log ends)."""
        chain = Chain(self, chain_id, record.route, controller, version)
        kind, page, _ = chain.start(record.steps[0][0], {}, replay_steps=record.steps)
        return chain, kind, page

    def _scratch_page(self, chain_id, record, controller, version):
        """``(kind, page)`` of a replay of ``record`` into a copy thrown away after."""
        scratch, kind, page = self._replayed(chain_id, record, controller, version)
        scratch.unload()
        return kind, page

    def _last_page(self, chain):
        """The page ``chain`` waits on: kept (``max_kept_page_bytes``), else rendered
        again by a replay into a scratch copy (the live one is left alone)."""
        page = self.app._pages.get(chain.id)
        if page is not None:
            return page
        try:
            record = self._read_log(chain.id)
        except Exception as exc:
            return unavailable(exc)
        if record is None or record.state != "live" or record.step != chain.step:
            return Refusal("page gone", chain.route)
        kind, page = self._scratch_page(chain.id, record, chain.controller, chain.version)
        if kind != "ready":
            return Refusal("page gone", chain.route)
        self._keep_page(chain, page)
        return page

    def _keep_page(self, chain, page):
        self.app._pages.put(chain.id, _text(page).encode("utf-8"))

    def _load(self, chain_id, step=None, parameters=None):
        """Replay ``chain_id`` from its log; a Chain, a ``Refusal``, or the last page
        of a finished game (answered to its winning move sent again).

        One replay at a time per chain: a double submit just after a restart,
        or a request racing the sweeper, waits for the replay under way
        instead of making a second copy of the controller.
        """
        while chain_id in self._loading:
            done = stackless.channel()
            self._loading[chain_id].append(done)
            done.receive()
            chain = self.live.get(chain_id)
            if chain is not None:
                return chain
        waiting = self._loading[chain_id] = []
        try:
            return self._replay(chain_id, step, parameters)
        finally:
            del self._loading[chain_id]
            for done in waiting:
                if done.balance < 0:  # (a waiter whose request was abandoned is gone)
                    done.send(None)

    def _replay(self, chain_id, step, parameters):
        try:
            record = self._read_log(chain_id)
        except Exception as exc:
            return unavailable(exc)
        if record is None:
            return Refusal("unknown")
        route = record.route if record.route in self.app.durable_routes else None
        if record.state == "done":
            last_input, last_page = json.loads(record.final) if record.final else (None, None)
            if step is not None and step == record.step - 1:
                if parameters is not None and _input_of(parameters) == last_input:
                    return last_page  # the winning move again: the same page (no live id)
                return Refusal("too late", route)
            return Refusal("finished", route)
        if record.state in ("expired", "failed"):
            return Refusal(record.state, route)
        if record.state == "broken" or route is None:
            return Refusal("version", route)
        controller, version = self.app.durable_routes[record.route]
        chain, kind, page = self._replayed(chain_id, record, controller, version)
        self.replays += 1
        if kind != "ready" or chain.step != record.step:
            chain.unload()
            if kind == "error":  # the controller raised while replaying (logged)
                self._end(chain_id, "failed")
                return Refusal("failed", route)
            log.warning("chain %s (version %s, now %s) diverged on replay: %s",
                        chain_id[:6], record.version, version, page)
            self._end(chain_id, "broken")
            return Refusal("version", route)
        chain.last_digest = parameters_digest(record.steps[-1][0])
        chain.log_bytes = record.size
        self._keep_page(chain, page)
        chain.pending_calls = record.calls  # of a step whose page was never recorded
        chain.deadline = _clock.monotonic() + max(record.remaining, 0.0)
        self._keep(chain)
        if record.remaining <= 0:  # past its deadline, not swept yet
            self.expire(chain_id)
            return Refusal("expired", route)
        return chain

    def _check_replay(self, chain_id, step, page):
        """Under ``webcont.testing.replay_check``: replay the chain from the store
        into a scratch copy and compare the page it renders with ``page``."""
        failures = getattr(self.app, "replay_failures", None)
        if failures is None:
            return
        try:
            record = self._read_log(chain_id)
            controller, version = self.app.durable_routes[record.route]
            kind, replayed = self._scratch_page(chain_id, record, controller, version)
        except Exception as exc:
            failures.append((chain_id, step, "replay failed: %r" % (exc,)))
            return
        if kind != "ready":
            failures.append((chain_id, step, "replay ended with %s: %s" % (kind, replayed)))
        elif replayed != page:
            failures.append((chain_id, step, "the replayed page differs from the served one"))


def _text(page):
    return page.decode("utf-8", "replace") if isinstance(page, bytes) else str(page)
