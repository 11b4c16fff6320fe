"""The optional C fast path (_speedups.c) and the pure-Python hand-over agree.

The rest of the suite runs with whichever is installed (the C one when it
could be built); this module runs the channel, scheduler, tasklet and model
tests once more in a subprocess with STACKLESS_COMPAT_PURE=1, so both paths
are checked on every run.
"""

import os
import subprocess
import sys

import pytest

import stackless_compat as stackless
from stackless_compat import _core

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_fast_path_is_installed_when_it_was_built():
    built = any(name.startswith("_speedups") and name.endswith((".so", ".pyd"))
                for name in os.listdir(os.path.dirname(_core.__file__)))
    if os.environ.get("STACKLESS_COMPAT_PURE"):
        assert not _core.SPEEDUPS
    else:
        assert _core.SPEEDUPS == built
    if _core.SPEEDUPS:
        assert type(stackless.channel.send).__name__ == "method_descriptor"
        assert stackless.channel.send.__doc__.startswith("Send")


def test_send_takes_its_value_by_keyword_and_has_a_signature_either_way():
    import inspect
    assert list(inspect.signature(stackless.channel.send).parameters)[-1] == "value"
    assert list(inspect.signature(stackless.channel.receive).parameters) in (["self"], [])
    channel = stackless.channel()
    got = []
    stackless.tasklet(lambda: got.append(channel.receive()))()
    stackless.run()
    channel.send(value="by keyword")
    assert got == ["by keyword"]
    with pytest.raises(TypeError):
        channel.send(1, 2)
    with pytest.raises(TypeError):
        channel.send(val=1)


def test_a_tempval_released_while_blocking_may_use_the_same_channel():
    """Its __del__ runs Python code mid-operation; it must see a whole channel."""
    channel = stackless.channel()
    seen = []

    class Noisy:
        def __del__(self):
            seen.append(channel.balance)
            seen.append(channel.queue is None or channel.queue.blocked)

    def blocker():
        stackless.getcurrent().tempval = Noisy()
        seen.append(channel.receive())

    stackless.tasklet(blocker)()
    stackless.run()
    channel.send("x")
    stackless.run()
    assert "x" in seen and seen[-1] == "x"
    balance, whole = seen[0], seen[1]
    assert balance in (0, -1) and whole
    assert channel.balance == 0 and channel.queue is None


def test_subclasses_and_the_slow_cases_still_work_through_the_fast_path():
    class Tagged(stackless.channel):
        __slots__ = ("tag",)

    channel = Tagged()
    channel.tag = "t"
    got = []
    stackless.tasklet(lambda: got.append(channel.receive()))()
    stackless.run()
    channel.send(1)                      # fast: a waiting receiver
    stackless.set_channel_callback(lambda *args: got.append("cb"))
    stackless.tasklet(lambda: got.append(channel.receive()))()
    stackless.run()
    channel.send(2)                      # slow: a channel callback is set
    stackless.set_channel_callback(None)
    if _core.SPEEDUPS:
        with pytest.raises(TypeError):
            stackless.channel.send(object(), 1)  # the C descriptor checks its self
    assert got == [1, "cb", "cb", 2]


@pytest.mark.skipif(not _core.SPEEDUPS, reason="the C fast path is not built here:"
                    " the whole suite already runs on the pure-Python hand-over")
def test_the_pure_python_hand_over_passes_the_same_tests():
    files = ["tests/stackless_compat/%s.py" % name for name in
             ("test_channel", "test_scheduler", "test_tasklet", "test_channel_model",
              "test_greenlets", "test_gc", "test_callbacks", "test_public_api",
              "test_threads", "test_many_tasklets", "test_tracing",
              "test_watchdog")]
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
                            + files, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, STACKLESS_COMPAT_PURE="1"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


_EMPTIED_SCHEDULER = """
import stackless_compat as stackless
from stackless_compat._state import current_scheduler
sched = current_scheduler()
channel = stackless.channel()
stackless.tasklet(channel.receive)()
stackless.run()  # it waits on the channel
del sched.switch_hooks  # as the collector's clear step leaves a dying scheduler
try:
    channel.send(1)
except Exception:  # (whatever the Python policy raises; the point is no crash)
    print("refused")
"""


def test_a_scheduler_missing_its_fields_is_refused_not_a_crash():
    """The C hand-over reads the scheduler's fields directly: one that was
    cleared (or had a field deleted) goes to the Python policy, which raises."""
    done = subprocess.run([sys.executable, "-c", _EMPTIED_SCHEDULER], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode >= 0, "killed by signal %d: %s" % (-done.returncode, done.stderr)
    assert "refused" in done.stdout, done.stdout + done.stderr



def test_a_value_handed_over_is_not_kept_once_received_and_dropped():
    """greenlet carries a switched value in a tuple the C hand-over reuses:
    the reused tuple must not keep the last value alive."""
    import gc
    import weakref

    class Value:
        pass

    channel = stackless.channel()
    stackless.tasklet(lambda: channel.send(Value()))()
    value = channel.receive()  # the sender starts and hands its value straight over
    gone = weakref.ref(value)
    stackless.run()  # the sender resumes after its send and ends
    del value
    gc.collect()
    assert gone() is None


_STALE_BUILD = """
import sys, types
sys.modules["stackless_compat._speedups"] = types.ModuleType("stackless_compat._speedups")
import stackless_compat
"""


def test_a_build_of_older_c_source_is_refused_with_a_clear_error():
    """A C core that calls Python methods by their old names must not load:
    it would fail later, in the rare cases it leaves to Python."""
    env = {key: value for key, value in os.environ.items() if key != "STACKLESS_COMPAT_PURE"}
    done = subprocess.run([sys.executable, "-c", _STALE_BUILD], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "built from older source: rebuild it" in done.stderr
