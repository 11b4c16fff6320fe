"""``req.to_thread`` in durable games: each call's outcome is recorded once.

A durable game is replayed after a restart or on another node; a blocking
call replayed with it (a payment, a mail) would run twice.  So the outcome
of each call, its result or the exception it raised, is an event of the
step, like a random draw (``Recorder``): live, the call runs in the app's
pool and its outcome is committed to the store (``op_call``) before the
controller goes on (if that commit fails, the transition ends with a 503
and the game stays at its last recorded step: ``NotRecorded``); in a
replay the recorded outcome is returned and the call does not run.  A step
whose page was never recorded (the process died first) is answered again
from its calls already recorded, when the same answer comes back; another
answer runs the step's calls afresh.

Exactly-once holds for the outcome the game sees; the call itself is
at-least-once per attempt: a crash after ``fn`` ran but before its outcome
was committed runs it again.  ``req.step_id`` is stable across replays
and retries: pass it to the other system as an idempotency key.
"""

import importlib
import json
import logging

import stackless_compat as stackless

from ._operations import log_json

log = logging.getLogger(__name__)

__all__ = ["call", "label_of", "NotRecorded"]


class NotRecorded(stackless.TaskletExit):
    """Ends a controller whose call outcome could not be committed.

    A ``BaseException`` (a ``TaskletExit``), so that the controller's own
    ``except Exception:`` cannot take it for the call's failure and go on:
    a step recorded without the call's outcome would not replay.  The
    transition is answered 503 instead, and the game goes on from its last
    recorded step (``Chain.run``).
    """

    def __init__(self, error):
        super().__init__(error)
        self.error = error

_RECORDABLE = "JSON values: None, booleans, numbers, strings, and lists and str-keyed dicts of them"


def label_of(fn):
    """The name a call (a function, or a coroutine object) is recorded under."""
    code = getattr(fn, "cr_code", None)
    module = getattr(fn, "__module__", None) or (
        code is not None and getattr(fn, "cr_frame", None) is not None
        and fn.cr_frame.f_globals.get("__name__")) or "?"
    return "%s.%s" % (module, getattr(fn, "__qualname__", None) or type(fn).__name__)


def call(chain, label, run_live, skipped=None):
    """``run_live()`` for ``chain``'s controller, recorded as ``label``; or the
    recorded outcome (then ``skipped()`` is called, if given, instead)."""
    recorder = chain.recorder
    live = {}
    ran = []

    def run():
        seq = recorder.calls  # this step's calls so far (the draws are its events)
        recorder.calls += 1
        earlier = chain.pending_calls
        if seq < len(earlier) and earlier[seq][0] == chain.pending_input \
                and earlier[seq][1][0] == label:
            return earlier[seq][1][1]  # recorded by an attempt that died before its page
        ran.append(True)
        outcome, text = _run(label, run_live, live)
        if chain.step > 0:  # (a new game's first step: recorded with the game itself)
            recorded = "[%s,%s]" % (log_json(label), text)
            try:
                chain.owner._commit(lambda store, cursor: store.op_call(
                    cursor, chain.id, chain.step, seq, log_json(chain.pending_input), recorded))
            except Exception as exc:
                raise NotRecorded(exc) from None
        return outcome
    outcome = recorder.draw("call", label, run)
    if not ran and skipped is not None:
        skipped()  # (an unawaited coroutine would warn)
    if "error" in live:
        raise live.pop("error")  # the very exception, live
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "refused":
        raise TypeError(outcome[1])
    raise _rebuilt(outcome[1])


def _run(label, run_live, live):
    """The outcome of ``run_live()``, and its JSON text (the result is dumped once)."""
    try:
        result = run_live()
    except Exception as exc:
        live["error"] = exc
        outcome = ["error", _described(exc)]
        return outcome, log_json(outcome)
    try:
        text = log_json(result)
        same = json.loads(text) == result
    except (TypeError, ValueError):
        same = False
    if not same:  # refused, and recorded as refused: a replay refuses it again
        outcome = ["refused", "%s returned %s, which cannot be recorded and replayed as it"
                   " is: a durable game records %s (a tuple would come back as a list:"
                   " return a list)" % (label, type(result).__name__, _RECORDABLE)]
        return outcome, log_json(outcome)
    return ["ok", result], '["ok",%s]' % text


def _described(exc):
    cls = type(exc)
    args = list(exc.args)
    try:
        json.dumps(args)
    except (TypeError, ValueError):
        args = [str(exc)]
    return [cls.__module__, cls.__qualname__, args, str(exc)]


def _rebuilt(description):
    """The recorded exception, made again; a RuntimeError naming it if it cannot be."""
    module, qualname, args, text = description
    try:
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(*args)
    except Exception:
        pass
    return RuntimeError("%s.%s: %s (recorded; the exception could not be made again)"
                        % (module, qualname, text))
