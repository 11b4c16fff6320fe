"""Nondeterminism of durable controllers: recorded live, replayed from the log.

A durable controller must compute the same pages from the same inputs, so
everything it draws that could differ between runs (random numbers, the
time, uuids) goes through a ``Recorder``: live, the value is drawn and
recorded (the value itself, never a seed); during replay the recorded value
is returned again.  Each event is ``[kind, label, value]``; a replay checks
that the controller asks for the same kind and label in the same order, and
any difference is a ``Divergence`` (the chain is then marked broken).

The seed's ``guess_the_number`` calls ``random.randint`` itself, so while a
durable controller runs, the module-level functions of ``random`` and
``time`` listed in ``_PATCHED`` are routed to its recorder; every other
tasklet and thread still gets the originals (the patch looks up the running
tasklet first, and only while a controller's driver waits for it on that
thread, ``driving``: a controller's draws after its game ended, in a cleanup
run by expiry or unloading, are not recorded).  Code that bound a function before (``from random import
random``) bypasses this: ``webcont.testing.replay_check`` catches it.
"""

import random
import sys
import threading
import time
import uuid

from stackless_compat._state import current_or_none

__all__ = ["Recorder", "Divergence", "install_patches", "activate", "deactivate", "driving",
           "active_recorders"]


class Divergence(BaseException):
    """A replay asked for something other than what the log recorded.

    A ``BaseException`` (like ``TaskletExit``) so that a controller's own
    ``except Exception:`` cannot swallow it and carry on with other state.
    """


class Recorder:
    """The draws of one chain.  Used only on the hub, by its controller tasklet."""

    __slots__ = ("pending", "replaying", "diverged", "calls")

    def __init__(self):
        self.pending = []      # draws of the live transition in progress
        self.replaying = None  # the recorded draws of the step being replayed
        self.diverged = None   # once set, every later draw raises it again
        self.calls = 0         # req.to_thread calls among pending (_calls)

    def diverge(self, message):
        """Raise ``Divergence(message)``, and again at every later draw."""
        self.diverged = message
        raise Divergence(message)

    def draw(self, kind, label, produce, decode=None):
        """Return ``produce()`` recorded live, or the recorded value in replay."""
        replaying = self.replaying
        if replaying is None:
            value = produce()
            self.pending.append([kind, label, value])
            return decode(value) if decode else value
        if self.diverged:
            raise Divergence(self.diverged)
        if not replaying:
            self.diverge("the controller drew %s(%s), but the log has no more draws"
                         " for this step" % (kind, label))
        recorded_kind, recorded_label, value = replaying.pop(0)
        if recorded_kind != kind or recorded_label != label:
            self.diverge("the controller drew %s(%s) where the log has %s(%s)"
                         % (kind, label, recorded_kind, recorded_label))
        return decode(value) if decode else value

    def patched(self, name):
        """True if this chain runs code that contains the patch ``name``.

        Live, records a marker and answers True; in replay, True only if the
        log has the marker here (the chain began after the patch was made).
        """
        replaying = self.replaying
        if replaying is None:
            self.pending.append(["patch", name, True])
            return True
        if replaying and replaying[0][0] == "patch" and replaying[0][1] == name:
            replaying.pop(0)
            return True
        return False

    def take_pending(self):
        """The draws recorded since the last call (the step's events)."""
        pending, self.pending = self.pending, []
        self.calls = 0
        return pending


# -- the module-level patches --------------------------------------------------

active_recorders = {}  # id(tasklet) -> Recorder, for durable controllers (hub only)
# thread id -> how many durable controllers run there now, their drivers waiting
# (``driving``): where none does, a patched call goes straight to the original
# (waitress reads the clock 8 times a request, 5 of them on the hub, between
# controllers; the full look-up cost ~1 us a call).  Per thread: a thread only
# changes its own count, so hubs on several threads never lose an update.
_running = {}
_patch_lock = threading.Lock()
_installed = False
_get_ident = threading.get_ident


def activate(recorder):
    """Route the running tasklet's draws (a durable controller's, on its hub) to
    ``recorder`` until ``deactivate``."""
    active_recorders[id(current_or_none())] = recorder


def deactivate():
    """The running tasklet draws from the real sources again."""
    active_recorders.pop(id(current_or_none()), None)


def driving(receive):
    """``receive()``, the reply of a controller that runs meanwhile (its driver's
    wait): patched calls look for a recorder only while some controller runs."""
    me = _get_ident()
    _running[me] = _running.get(me, 0) + 1
    try:
        return receive()
    finally:
        _running[me] -= 1


def _current_recorder():
    if not _running.get(_get_ident()):
        return None
    return active_recorders.get(id(current_or_none()))  # (creates no scheduler)


def _from_logging():
    """True when the caller is the ``logging`` package: a log record's timestamp
    is not the controller's business, and recording it would make a replay
    under another log level diverge."""
    return sys._getframe(2).f_globals.get("__name__", "").startswith("logging")


def _recording(kind, original, encode=None, decode=None):
    def patched(*args, **kwargs):
        if not _running.get(_get_ident()):  # _current_recorder, inlined: a hot path
            return original(*args, **kwargs)
        recorder = active_recorders.get(id(current_or_none()))
        if recorder is None or _from_logging():
            return original(*args, **kwargs)
        label = ",".join([repr(arg) for arg in args] +
                         ["%s=%r" % item for item in sorted(kwargs.items())])
        produce = (lambda: original(*args, **kwargs)) if encode is None else \
            (lambda: encode(original(*args, **kwargs), *args))
        value = recorder.draw(kind, label, produce)
        return value if decode is None else decode(value, *args)
    patched.__wrapped__ = original
    patched.__name__ = getattr(original, "__name__", kind)
    patched.__doc__ = getattr(original, "__doc__", None)
    return patched


_randbelow = random.Random()._randbelow  # an unpatched source for choice's index

#: unpatched sources for ``req.randint`` & co: drawing through the patched
#: module functions would record every value twice
generator = random.Random()
clock = time.time


def _choice_patch(original):
    def choice(seq):
        recorder = _current_recorder()
        if recorder is None:
            return original(seq)
        if not seq:
            return original(seq)  # raises IndexError, as random.choice does
        index = recorder.draw("random.choice", str(len(seq)), lambda: _randbelow(len(seq)))
        return seq[index]
    choice.__wrapped__ = original
    return choice


def _shuffle_patch(original):
    def shuffle(x):
        recorder = _current_recorder()
        if recorder is None:
            return original(x)
        def produce():
            order = list(range(len(x)))
            original(order)
            return order
        order = recorder.draw("random.shuffle", str(len(x)), produce)
        x[:] = [x[i] for i in order]
    shuffle.__wrapped__ = original
    return shuffle


_PATCHED = {
    random: ["random", "randint", "randrange", "uniform", "getrandbits", "gauss",
             "triangular", "betavariate", "expovariate", "normalvariate"],
    time: ["time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
           "perf_counter_ns", "localtime", "gmtime", "ctime", "strftime"],
}


def install_patches():
    """Route module-level random/time calls of durable controllers to their
    recorders (idempotent, process-wide; other callers see the originals)."""
    global _installed
    with _patch_lock:
        if _installed:
            return
        for module, names in _PATCHED.items():
            for name in names:
                original = getattr(module, name)
                if name in ("localtime", "gmtime"):
                    patched = _recording("%s.%s" % (module.__name__, name), original,
                                         encode=lambda result, *args: list(result),
                                         decode=lambda value, *args: time.struct_time(value))
                else:
                    patched = _recording("%s.%s" % (module.__name__, name), original)
                setattr(module, name, patched)
        random.choice = _choice_patch(random.choice)
        random.shuffle = _shuffle_patch(random.shuffle)
        _installed = True


def new_uuid4():
    """``uuid.uuid4()`` as text (JSON), for ``req.uuid4()``."""
    return str(uuid.uuid4())
