"""A durable chain in memory: its controller's tasklet, the request it sees, replay.

``Chain`` drives one controller: live, each transition's input and draws
become the step's events; replaying, it feeds the controller the recorded
inputs and draws (``_recorder``), in slices of ``REPLAY_SLICE`` seconds so
that a long log never holds the hub.  ``DurableRequest`` is what the
controller sees.  The chains' cache, store and expiry are ``_durable``'s.
"""

import logging
import uuid
from collections import deque

import stackless_compat as stackless

from . import _calls, _clock, _recorder
from ._continuations import CONTINUATION_PARAMETER, TimeoutException
from ._hub import current_hub
from ._recorder import Divergence, Recorder, activate, deactivate, driving, new_uuid4

log = logging.getLogger(__name__)

__all__ = ["Chain", "DurableRequest", "REPLAY_SLICE"]


class _Unload(stackless.TaskletExit):
    """Ends a controller tasklet that is evicted from memory (its log stays)."""


class DurableRequest:
    """The request object a durable controller sees (the seed's API, and more).

    Besides ``continue_``, ``parameters``, ``continuation_id`` and
    ``environ``, it offers the recorded sources of nondeterminism:
    ``randint``, ``random``, ``choice``, ``now``, ``uuid4`` and ``patched``.
    """

    def __init__(self, chain, parameters, environ):
        self._chain = chain
        self.parameters = parameters
        self.environ = environ

    @property
    def continuation_id(self):
        """The id of the next step: put it in forms and links as ``__wc``."""
        chain = self._chain
        chain.issued = chain.owner.signer.make(chain.id, chain.step + 1)
        return chain.issued

    def continue_(self, data):
        """Answer the current request with ``data``; return with the next request's input."""
        # handed over in a box, so that no frame of the suspended game keeps
        # the page (a client can make it big; the kept copy has a budget)
        box = [data]
        del data
        # nor the answered request: a suspended game holds nothing of it
        self.parameters, self.environ = {}, None
        self.parameters, self.environ = self._chain.suspend(box)

    def randint(self, a, b):
        """``random.randint(a, b)``, recorded."""
        return self._chain.recorder.draw("randint", "%d,%d" % (a, b),
                                         lambda: _recorder.generator.randint(a, b))

    def random(self):
        """``random.random()``, recorded."""
        return self._chain.recorder.draw("random", "", _recorder.generator.random)

    def choice(self, seq):
        """``random.choice(seq)``, recorded (as the index)."""
        index = self._chain.recorder.draw("choice", str(len(seq)),
                                          lambda: _recorder.generator.randrange(len(seq)))
        return seq[index]

    def now(self):
        """``time.time()``, recorded."""
        return self._chain.recorder.draw("now", "", _recorder.clock)

    def uuid4(self):
        """``uuid.uuid4()``, recorded."""
        return uuid.UUID(self._chain.recorder.draw("uuid4", "", new_uuid4))

    def patched(self, name):
        """True for chains begun by code that has the patch ``name`` (see ``_recorder``)."""
        return self._chain.recorder.patched(name)

    def to_thread(self, fn, *args, **kwargs):
        """Run ``fn(*args, **kwargs)`` in the app's thread pool, recorded (``_calls``).

        Only this controller waits meanwhile.  Its result (JSON values only:
        anything else is a ``TypeError`` here) or its exception is committed
        to the game's log before the controller goes on, and a replay returns
        it again without calling ``fn``.  A crash between the call and that
        commit runs it again: use ``step_id`` as an idempotency key.
        """
        chain = self._chain
        return _calls.call(chain, _calls.label_of(fn),
                           lambda: chain.owner.app._pool.call(fn, args, kwargs))

    def await_(self, coro):
        """Run the coroutine ``coro`` on the app's event loop, recorded as ``to_thread`` is."""
        chain = self._chain
        return _calls.call(chain, _calls.label_of(coro),
                           lambda: chain.owner.app._loop.call(coro), coro.close)

    @property
    def step_id(self):
        """This step's id, the same in every replay and retry: an idempotency key."""
        chain = self._chain
        return "%s.%d" % (chain.id, chain.step)


class Chain:
    """A durable chain held in memory: its controller tasklet and replay state.

    Used only on the hub.  ``step`` counts the recorded steps; the controller
    talks to the request driving it through ``inputs`` and ``replies``.
    """

    def __init__(self, owner, id, route, controller, version, step=0):
        self.owner = owner
        self.id = id
        self.route = route
        self.controller = controller
        self.version = version
        self.step = step
        self.recorder = Recorder()
        self.inputs = stackless.channel()   # driver -> controller: (parameters, environ)
        self.inputs.preference = 1          # the driver reaches replies.receive() first
        self.replies = stackless.channel()  # controller -> driver: ("page"|"final"|..., ...)
        self.replay_steps = None            # recorded steps not yet replayed
        self.tasklet = None
        self.busy = False                   # a transition is in progress
        self.last_digest = None             # digest of the last step's input, for duplicates
        self.log_bytes = 0                  # UTF-8 bytes of its recorded steps (max_game_bytes)
        self.slice_end = None               # replaying: when to let the hub serve others
        self.deadline = float("inf")        # monotonic estimate of the store's deadline
        self.pending_input = None           # the input of the step being computed
        self.pending_calls = []             # [(input, outcome)] recorded for it (_calls)
        self.issued = None                  # the last id made for it (no MAC to check it)

    # -- controller side --------------------------------------------------------

    def run(self, request):
        """The body of the controller tasklet."""
        activate(self.recorder)
        try:
            result = self.controller(request)
            if self.replay_steps is not None:
                raise Divergence("the controller finished while its log says it waits")
            self._reply(("final", result, [self.pending_input, self.recorder.take_pending()]))
        except _calls.NotRecorded as failed:  # the store failed: answered 503, unloaded
            self._reply(("unavailable", failed.error, None))
        except _Unload:
            pass
        except TimeoutException:
            log.debug("durable controller of chain %s timed out", self.id[:6])
        except Divergence as divergence:
            self._reply(("diverged", divergence, None))
        except Exception:
            deactivate()  # log with the real clock
            log.exception("durable controller %s raised", getattr(self.controller, "__name__", "?"))
            self._reply(("error", None, None))
        finally:
            deactivate()
            if self.replies.balance < 0:  # left by SystemExit & co.: never hang the request
                log.error("durable controller %s stopped without an answer",
                          getattr(self.controller, "__name__", "?"))
                self._reply(("error", None, None))

    def _reply(self, message):
        if self.replies.balance < 0:  # only a waiting driver gets it
            self.replies.send(message)

    def suspend(self, box):
        """``continue_``: end this transition with the page in ``box`` (emptied);
        return the next input."""
        page = box.pop()
        recorder = self.recorder
        if self.replay_steps is not None:
            if recorder.diverged:
                raise Divergence(recorder.diverged)
            if recorder.replaying:
                recorder.diverge("the controller skipped %d recorded draw(s)"
                                 % len(recorder.replaying))
            self.step += 1
            if self.replay_steps:
                if _clock.monotonic() > self.slice_end:
                    # a long log: let the hub answer what queued meanwhile, so no
                    # game holds it more than REPLAY_SLICE at a time
                    _pause()
                    self.slice_end = _clock.monotonic() + REPLAY_SLICE
                parameters, draws = self.replay_steps.popleft()
                recorder.replaying = list(draws)
                return parameters, {}  # the environ is not logged: empty in a replay
            # replayed up to where the live chain waits: from here on, live
            self.replay_steps = recorder.replaying = None
            self._reply(("ready", page, None))
        else:
            request_events = [self.pending_input, recorder.take_pending()]
            self.pending_input = None
            self._reply(("page", page, request_events))
        del page
        return self.inputs.receive()

    # -- driver side (the request tasklet) -----------------------------------------

    def start(self, parameters, environ, replay_steps=None, request_input=None):
        """Start the controller, live or replaying ``replay_steps``; return its first reply.

        ``request_input``: ``_input_of(parameters)``, if the caller made it."""
        request = DurableRequest(self, parameters, environ)
        if replay_steps:
            first_input, first_draws = replay_steps[0]
            request.parameters = first_input
            self.replay_steps = deque(replay_steps)
            self.replay_steps.popleft()
            self.recorder.replaying = list(first_draws)
            self.step = 0
            self.slice_end = _clock.monotonic() + REPLAY_SLICE
        else:
            self.pending_input = _input_of(parameters) if request_input is None else request_input
        self.tasklet = current_hub().spawn(self.run, request)
        return driving(self.replies.receive)

    def resume(self, parameters, environ, request_input=None):
        """Deliver the next request's input; return the controller's reply.

        ``request_input``: ``_input_of(parameters)``, if the caller made it."""
        if self.tasklet is None or not self.tasklet.alive:
            return "error", None, None  # its controller is gone: nothing to answer
        self.pending_input = _input_of(parameters) if request_input is None else request_input

        def answer():
            self.inputs.send((parameters, environ))
            return self.replies.receive()
        return driving(answer)

    def unload(self):
        """Drop the controller tasklet from memory (its ``finally:`` blocks run)."""
        task, self.tasklet = self.tasklet, None
        if task is not None and task.alive:
            task.throw(_Unload)


#: seconds a replay runs before it lets the hub serve others (then it goes on)
REPLAY_SLICE = 0.002


def _pause():
    """Leave the hub to whatever queued up, and come back after it (hub tasklet).

    The wake-up is posted behind what the server queued meanwhile.
    """
    hub = current_hub()
    resume = stackless.channel()

    def wake():
        if resume.balance < 0:  # (a waiter whose request was abandoned is gone)
            resume.send(None)
    hub.post(wake)
    hub.awaiting += 1
    try:
        resume.receive()
    finally:
        hub.awaiting -= 1


def _input_of(parameters):
    """The part of a request recorded in the log: its parameters minus the id."""
    # copies: a controller that pops from req.parameters must not change the log
    return {name: list(values) for name, values in parameters.items()
            if name != CONTINUATION_PARAMETER}
