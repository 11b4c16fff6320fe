"""What one ``req.to_thread`` (or ``req.await_``) call of a no-op adds to a step.

In process, through ``InlineGateway`` (the WSGI callable of ``webcont.serve``
with one worker thread: the caller is the hub, no HTTP): a controller that
counts steps, each step making one call of a no-op first, in these
variants, against the plain step (no call) measured in the same run:

* ``to_thread(noop)``: the app's thread pool, the hub waits in the tasklet;
* ``await_(noop())``: a coroutine on the app's shared event loop;
* ``to_thread(asyncio.run, noop())``: a loop made and closed per call;
* durable (SQLite NORMAL): the plain step, and a step with
  ``to_thread(noop)``, whose outcome is committed before the controller goes
  on (so a second commit per step).

Rounds of ``--steps`` steps per variant are interleaved, ``--repeats``
times; each figure is the median of its rounds: microseconds per step, and
the added cost over the plain step of its kind (in memory or durable).

    python bench/to_thread.py [--steps 300] [--repeats 7]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from bench._common import continuation_id, inline_get  # noqa: E402


def noop():
    return None


async def anoop():
    return None


CALLS = {
    "plain step": None,
    "to_thread(noop)": lambda req: req.to_thread(noop),
    "await_(noop())": lambda req: req.await_(anoop()),
    "to_thread(asyncio.run, noop())": lambda req: req.to_thread(asyncio.run, anoop()),
}


def counter(call):
    def controller(req):
        steps = 0
        while True:
            if call is not None:
                call(req)
            req.continue_('<form><input type="hidden" name="__wc" value="%s"></form><p>%d</p>'
                          % (req.continuation_id, steps))
            steps += 1
    return controller


class Contender:
    """One app behind InlineGateway, one game, stepped ``steps`` times per round."""

    def __init__(self, call, store=None):
        from webcont import SessionlessApp
        from webcont._gateway import InlineGateway
        self.posted = []
        options = {} if store is None else {"store": store, "secret": "b" * 32}
        self.app = SessionlessApp(**options)
        self.app.route("/", counter(call), durable=store is not None, version="1")
        self.gateway = InlineGateway(self.app, self.posted.append)
        self.cid = continuation_id(self.get(""))

    def get(self, query):
        return inline_get(self.gateway, self.posted, query)

    def round(self, steps):
        started = time.perf_counter()
        for _ in range(steps):
            self.cid = continuation_id(self.get("__wc=%s" % self.cid))
        return (time.perf_counter() - started) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="bench-to-thread-")
    contenders = {name: Contender(call) for name, call in CALLS.items()}
    store = "sqlite:///%s" % os.path.join(directory, "%s.db")
    contenders["durable: plain step"] = Contender(None, store % "plain")
    contenders["durable: to_thread(noop)"] = Contender(CALLS["to_thread(noop)"], store % "call")
    for contender in contenders.values():
        contender.round(args.steps // 3)  # warm up: the pool, the loop, the store
    samples = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, contender in contenders.items():
            samples[name].append(contender.round(args.steps))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print("one call of a no-op per step, in process (InlineGateway), %d steps x %d rounds,"
          " medians" % (args.steps, args.repeats))
    print("  %-34s %9s %9s %7s" % ("contender", "us/step", "added us", "ratio"))
    for name, value in medians.items():
        base = medians["durable: plain step" if name.startswith("durable") else "plain step"]
        print("  %-34s %9.1f %9.1f %6.2fx" % (name, value * 1e6, (value - base) * 1e6,
                                              value / base))
    added = (medians["to_thread(noop)"] - medians["plain step"]) * 1e6
    shared = (medians["await_(noop())"] - medians["plain step"]) * 1e6
    per_call = (medians["to_thread(asyncio.run, noop())"] - medians["plain step"]) * 1e6
    print("\nsummary: one req.to_thread no-op adds %.0f us to a %.0f us step (%.2fx);"
          " req.await_ on the shared loop %.0f us, asyncio.run per call %.0f us;"
          " durable to_thread (recorded, committed) adds %.0f us to a %.0f us step"
          % (added, medians["plain step"] * 1e6,
             medians["to_thread(noop)"] / medians["plain step"], shared, per_call,
             (medians["durable: to_thread(noop)"] - medians["durable: plain step"]) * 1e6,
             medians["durable: plain step"] * 1e6))
    for contender in contenders.values():
        contender.app.close(timeout=1.0)


if __name__ == "__main__":
    main()
