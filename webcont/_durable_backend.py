"""The durable backend of an app: its store and chains, opened once.

``SessionlessApp`` hands the requests of durable routes here.  The store
is opened before the server listens (``open``, from the starting thread) or
else by the first durable request, on the hub; requests arriving while
that first opening waits for the store wait for its outcome instead of
opening the chains a second time.  While the store is known to be down
(``_outage``) a request gets its 503 at once.
"""

import concurrent.futures
import logging
import os
import secrets

from ._dialects import open_store
from ._durable import DurableChains
from ._hub import current_hub
from ._ids import IdSigner
from ._outage import recent_failure, unavailable
from ._owner import Owners
from ._store import StoreUnavailable

log = logging.getLogger(__name__)

__all__ = ["DurableBackend", "open_chains", "open_log_store", "DEFAULT_STORE"]

DEFAULT_STORE = "sqlite:///webcont-durable.db"


class DurableBackend:
    """The durable routes of ``app``: ``start``/``resume`` answer a page or a ``Refusal``.

    ``chains`` (None until opened) is written on the hub, or by ``open``
    before the hub runs.
    """

    def __init__(self, app):
        self.app = app
        self.store = None    # the LogStore, made once
        self.chains = None   # DurableChains, by open() or at the first durable request
        self._opening = None  # a Future of the chains while a hub tasklet opens them

    def store_handle(self):
        """The app's log store, made at the first call (it connects on its own thread)."""
        if self.store is None:
            self.store = open_log_store(self.app)
        return self.store

    def open(self, timeout, secret_source=None):
        """Open the chains now, blocking the calling thread (not the hub); ``SessionlessApp.open``."""
        if self.chains is not None:
            return None
        store = self.store_handle()
        store.wait_ready(timeout)

        def wait(future):
            try:
                return future.result(timeout)
            except concurrent.futures.TimeoutError:  # (the builtin one only from 3.11)
                raise StoreUnavailable("%s: no answer within %g s"
                                       % (store.where, timeout)) from None
        self.chains, description = open_chains(self.app, store, wait, secret_source)
        return description

    def chains_here(self):
        """The chains, opened at the first use if ``open`` was not called. (hub tasklet)

        Never blocks the hub: it waits in the request's tasklet, and raises
        ``StoreUnavailable`` at once while the store is known to be down.
        """
        chains = self.chains
        if chains is None:
            chains = self._open_here()
        chains.on_hub()
        return chains

    def _open_here(self):
        if self._opening is not None:  # another request is opening them: its outcome
            return current_hub().wait(self._opening)
        store = self.store_handle()
        down = recent_failure(store)
        if down is not None:
            raise StoreUnavailable(down)
        opening = self._opening = concurrent.futures.Future()
        try:
            chains, description = open_chains(self.app, store)
        except BaseException as exc:
            if not isinstance(exc, Exception):  # this request was abandoned meanwhile
                exc = StoreUnavailable("the request opening the store was abandoned")
            opening.set_exception(exc)
            raise
        finally:
            self._opening = None
        self.chains = chains
        log.info("%s", description)
        opening.set_result(chains)
        return chains

    def start(self, route, parameters, environ, owner_token):
        """A new game of ``route`` (``DurableChains.start``), or a 503 refusal."""
        try:
            chains = self.chains_here()
        except StoreUnavailable as exc:
            return unavailable(exc)
        return chains.start(route, parameters, environ, owner_token)

    def resume(self, text, parameters, environ):
        """A request carrying the durable id ``text`` (``DurableChains.resume_id``)."""
        try:
            chains = self.chains_here()
        except StoreUnavailable as exc:
            return unavailable(exc)
        return chains.resume_id(text, parameters, environ)

    def health(self, detailed):
        """``(reachable, detail)`` of the store (``DurableChains.health``)."""
        try:
            return self.chains_here().health(detailed)
        except StoreUnavailable as exc:
            return False, ("store unreachable: %s" % (exc,) if detailed
                           else "store unreachable")

    def close(self):
        """Close the store after its queued writes are committed.  The app served
        again opens a new one (its games come back from the log by replay):
        a closed store refuses everything, and its chains died with the hub."""
        store, self.store, self.chains = self.store, None, None
        if store is not None:
            store.close()


def open_log_store(app):
    """The app's log store (``store=``, else ``WEBCONT_STORE``, else a file here).

    Returns at once: the store connects on its own thread.
    """
    url = app.store_url or os.environ.get("WEBCONT_STORE")
    if not url:
        url = DEFAULT_STORE
        log.warning("durable routes and no store= given: keeping games in %s",
                    os.path.abspath(url[len("sqlite:///"):]))
    return open_store(url, wait=None)


def open_chains(app, store, wait=None, secret_source=None):
    """The durable side of ``app`` on ``store``: ``(DurableChains, description)``.

    ``wait(future)`` returns a store future's result; by default the chains'
    own ``_wait``, which only works on the hub (``SessionlessApp.open`` waits
    with a blocking one at start).  Raises ``StoreUnavailable`` when the
    store cannot answer.
    """
    chains = DurableChains(app, store, None, app.max_continuations,
                           sweep_interval=app.sweep_interval,
                           tombstone_ttl=app.tombstone_timeout,
                           store_timeout=app.store_timeout)
    secret, source = app.secret, secret_source or "given as secret="
    if not secret and os.environ.get("WEBCONT_SECRET"):
        secret, source = os.environ["WEBCONT_SECRET"], "from WEBCONT_SECRET"
    if not secret:
        secret = (wait or chains._wait)(store.submit(
            lambda s, cursor: s.op_secret(cursor, secrets.token_hex(32))))
        source = "kept in the store"
    chains.signer, chains.owners = IdSigner(secret), Owners(secret)
    if source != "kept in the store":  # a secret kept there always fits its games
        fingerprint = chains.signer.fingerprint()
        others = (wait or chains._wait)(store.submit(
            lambda s, cursor: s.op_fingerprint(cursor, fingerprint)))
        if others:
            log.warning("THE ID SECRET DOES NOT FIT THIS STORE: %d game(s) waiting in %s were"
                        " started with another secret, and every link to them will answer"
                        " 404 with this one (id secret %s). Start with the secret they were"
                        " made with (the same --secret-file, secret= or WEBCONT_SECRET)"
                        " unless losing them is what you want", others, store.where, source)
    return chains, "durable games on: kept in %s; id secret %s" % (store.where, source)
