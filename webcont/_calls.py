"""``req.to_thread`` in durable games: each call's outcome is recorded once.

A durable game is replayed after a restart or on another node; a blocking
call replayed with it (a payment, a mail) would run twice.  So the outcome
of each call, its result or the exception it raised, is an event of the
step, like a random draw (``Recorder``): live, the call runs in the app's
pool and its outcome is committed to the store (``op_call``) before the
controller goes on; in a replay the recorded outcome is returned and the
call does not run.  A step whose page was never recorded (the process died
first) is answered again from its calls already recorded, when the same
answer comes back; another answer runs the step's calls afresh.

Exactly-once holds for the outcome the game sees; the call itself is
at-least-once per attempt: a crash after ``fn`` ran but before its outcome
was committed runs it again.  ``req.step_id`` is stable across replays
and retries: pass it to the other system as an idempotency key.
"""

import importlib
import json
import logging

log = logging.getLogger(__name__)

__all__ = ["call", "label_of"]

_RECORDABLE = "JSON values: None, booleans, numbers, strings, and lists and str-keyed dicts of them"


def label_of(fn):
    """The name a call is recorded under (checked on replay)."""
    return "%s.%s" % (getattr(fn, "__module__", None) or "?",
                      getattr(fn, "__qualname__", None) or type(fn).__name__)


def call(chain, fn, args, kwargs):
    """``fn(*args, **kwargs)`` for ``chain``'s controller: live, recorded or replayed."""
    recorder = chain.recorder
    label = label_of(fn)
    live = {}

    def run():
        seq = sum(1 for draw in recorder.pending if draw[0] == "call")
        earlier = chain.pending_calls
        if seq < len(earlier) and earlier[seq][0] == chain.pending_input \
                and earlier[seq][1][0] == label:
            return earlier[seq][1][1]  # recorded by an attempt that died before its page
        outcome = _run(chain, fn, args, kwargs, live)
        if chain.step > 0:  # (a new game's first step: recorded with the game itself)
            chain.owner._commit(lambda store, cursor: store.op_call(
                cursor, chain.id, chain.step, seq, chain.pending_input, [label, outcome]))
        return outcome
    outcome = recorder.draw("call", label, run)
    if "error" in live:
        raise live.pop("error")  # the very exception, live
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "refused":
        raise TypeError(outcome[1])
    raise _rebuilt(outcome[1])


def _run(chain, fn, args, kwargs, live):
    try:
        result = chain.owner.app._pool.call(fn, args, kwargs)
    except Exception as exc:
        live["error"] = exc
        return ["error", _described(exc)]
    try:
        same = json.loads(json.dumps(result)) == result
    except (TypeError, ValueError):
        same = False
    if not same:  # refused, and recorded as refused: a replay refuses it again
        return ["refused", "req.to_thread(%s) returned %s, which cannot be recorded and"
                " replayed as it is: a durable game records %s (a tuple would come back as"
                " a list: return a list)" % (label_of(fn), type(result).__name__, _RECORDABLE)]
    return ["ok", result]


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
