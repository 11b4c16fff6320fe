"""``SessionlessRequest``: one in-memory controller run, as the seed's API has it.

The controller calls ``req.continue_(page)``: the page answers the request
waiting for it, and the controller waits on a channel registered under its
next id (``_memory``) until a request names that id.
"""

import logging

import stackless_compat as stackless

from ._continuations import TimeoutException, mint_id

log = logging.getLogger(__name__)

__all__ = ["SessionlessRequest", "Failure", "await_page"]


class SessionlessRequest:
    """One controller run, spanning as many HTTP requests as it continues.

    The seed's API: ``continue_(data)``, ``parameters``, ``continuation_id``;
    calling the request runs the controller.  ``environ`` is the WSGI
    environ of the request being answered.
    """

    # slots keep a suspended game small; "__dict__" still lets controllers
    # and subclasses add attributes (the dict is only made when they do)
    __slots__ = ("_app", "_controller", "_channel", "parameters", "environ",
                 "_continuation_id", "route", "_owner", "__dict__", "__weakref__")

    def __init__(self, app, channel, controller, parameters, environ=None, route=None,
                 owner=None):
        self._app = app
        self._controller = controller
        self._channel = channel  # where the current request waits for its page; None between requests
        self.parameters = parameters
        self.environ = environ
        self._continuation_id = mint_id()
        self.route = route    # the route that started this game (links of refusal pages)
        self._owner = owner   # the tag of the browser that started it (_owner)

    @property
    def continuation_id(self):
        """The id of the next continuation: put it in forms and links as ``__wc``."""
        return self._continuation_id

    def continue_(self, data):
        """Answer the current request with ``data`` and wait for the next one.

        Returns when a request naming ``continuation_id`` arrives, with
        ``parameters`` and ``environ`` of that request.  Raises
        ``TimeoutException`` if none comes within the app's
        ``continuation_timeout``.  While suspended the request holds nothing of
        the request just answered (``parameters`` is empty, ``environ`` None).
        """
        if self._channel is None:
            raise RuntimeError("continue_() called with no request waiting for a page")
        # register before answering: the next request can never miss it
        waiting = self._app.register_continuation(self._continuation_id, self)
        self._answer(data)
        # Drop the answered request and its page: with up to max_continuations
        # suspended controllers, each keeping its last request's body, parsed
        # fields, headers and page, a flood of big requests would pin hundreds
        # of megabytes (the page alone is ~0.5 KiB of a suspended game).
        self.parameters, self.environ = {}, None
        del data
        self.parameters, self._channel, self.environ = waiting.receive()
        self._continuation_id = mint_id()

    def to_thread(self, fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` in the app's thread pool; return its result.

        Only this controller waits meanwhile: the hub goes on answering
        every other request.  What ``fn`` raises is raised here.  Calls
        queue when all ``to_thread_workers`` threads are busy.  ``fn`` runs
        in another thread: it must not use tasklets or channels (docs/blocking.md).
        """
        return self._app._pool.call(fn, args, kwargs)

    def await_(self, coro):
        """Run the coroutine ``coro`` on the app's asyncio event loop; return its result.

        As ``to_thread``, but for async code: one loop, in a thread of its
        own, is shared by every controller (cheaper than
        ``to_thread(asyncio.run, coro)``, which makes a loop per call).
        """
        return self._app._loop.call(coro)

    def _answer(self, data):
        channel, self._channel = self._channel, None
        if channel.closing:
            # Nobody waits for this page any more: the request was abandoned
            # (see await_page).  Sending would block this controller forever.
            log.warning("controller %s answered a request that was abandoned; page dropped",
                        _name(self._controller))
            return
        channel.send(data)

    def __call__(self):
        """Run the controller; its return value is the final page."""
        try:
            result = self._controller(self)
            if self._channel is not None:
                self._answer(result)
        except TimeoutException:
            log.debug("controller %r timed out", self._controller)
        except Exception:
            log.exception("controller %s raised", _name(self._controller))
            if self._channel is not None:
                self._answer(Failure())
        finally:
            if self._channel is not None:  # killed while a request waited
                self._answer(Failure())


def _name(controller):
    return getattr(controller, "__name__", None) or repr(controller)


class Failure:
    """Sent instead of a page when the controller failed."""


def await_page(reply, controller):
    """Wait on ``reply`` for the page of ``controller`` (a tasklet, or None).

    If this request tasklet is killed meanwhile (its request was abandoned:
    no answer within ``request_timeout``, or the server is stopping), the
    controller is killed too, so its ``finally:`` runs now instead of it
    hanging on to a game that nobody can ever reach again.
    """
    try:
        return reply.receive()
    except stackless.TaskletExit:
        reply.close()  # tells the controller's _answer() that nobody will read its page
        if controller is not None and controller.alive and controller is not stackless.getcurrent():
            try:
                controller.kill()
            except Exception:
                log.exception("killing the controller of an abandoned request")
        raise
