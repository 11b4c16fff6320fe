"""Memory: resident bytes per suspended tasklet and per suspended web continuation.

Each measurement runs in a fresh subprocess: it reads its RSS
(``/proc/self/statm``) after warming up, creates N suspended microthreads,
collects garbage, reads RSS again; bytes per item = growth / N.  The
baseline is a bare greenlet suspended in ``main.switch()``.  Contenders:

* a tasklet blocked in ``receive()`` on one shared channel;
* a tasklet blocked on a channel of its own (one more object each);
* a web continuation: a ``webcont.demos.guess_the_number`` game waiting for
  its next guess, started by a GET through ``webcont.gateway(app)`` in
  process, with a waitress-like environ.  Its cost includes the tasklet, the
  controller's frames, the request object, the environ of its last request,
  the continuation id and the store entry.  Then the games are left to
  expire: the bench counts the controllers that got ``TimeoutException``
  (from webcont's "timed out" debug log records), checks the store is empty
  and that an expired id answers 410.  The ``continuation_timeout`` is 1.5x
  the creation time a probe of 500 games predicts; should creating them be
  slower than that, it stops early (and says so) rather than measure while
  the first ones expire.

Tasklets are started with ``tasklet(f)(channel).run()`` one at a time.  The
Stackless way, queuing them all and then calling ``stackless.run()`` once, is
also tried (in a subprocess) and reported.  The table says which core ran
(the C types of ``_speedups`` or pure Python, ``STACKLESS_COMPAT_PURE=1``).

Targets: a tasklet blocked in ``receive()`` <= 1.1x a bare suspended greenlet
(issue 13); a continuation <= 8 KiB.

    python bench/memory.py [--count N] [--games N] [--repeats R]
"""

import argparse
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from _common import continuation_id, rss_bytes, wsgi_get  # noqa: E402

KIB = 1024


# -- children: one kind of suspended microthread per process ---------------------------

def bare_greenlets(n):
    from greenlet import getcurrent, greenlet
    main = getcurrent()

    def wait():
        main.switch()
    keep = []
    greenlet(wait).switch()  # warm up
    gc.collect()
    before = rss_bytes()
    for _ in range(n):
        g = greenlet(wait)
        g.switch()
        keep.append(g)
    gc.collect()
    return {"bytes": (rss_bytes() - before) / n}


def tasklets(n, own_channel):
    import stackless_compat as stackless
    shared = stackless.channel()

    def wait(channel):
        channel.receive()
    keep = []
    from stackless_compat._core import SPEEDUPS
    core = "C core" if SPEEDUPS else "pure"
    stackless.tasklet(wait)(stackless.channel()).run()  # warm up
    gc.collect()
    before = rss_bytes()
    for _ in range(n):
        task = stackless.tasklet(wait)(stackless.channel() if own_channel else shared)
        task.run()
        keep.append(task)
    gc.collect()
    grown = rss_bytes() - before
    assert all(t.blocked for t in keep)
    return {"bytes": grown / n, "core": core}


def queued_then_run(n):
    """The Stackless idiom: queue n tasklets that block, then one run()."""
    import stackless_compat as stackless
    channel = stackless.channel()
    for _ in range(n):
        stackless.tasklet(channel.receive)()
    try:
        stackless.run()
    except RecursionError:
        return {"result": "RecursionError after %d blocked" % -channel.balance}
    return {"result": "ok (%d blocked)" % -channel.balance}


class _TimeoutCounter(logging.Handler):
    """Counts webcont's "controller ... timed out" debug records (one per expired game)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record):
        if record.msg.startswith("controller %r timed out"):
            self.count += 1


def continuations(n):
    import webcont
    from webcont.demos import guess_the_number

    counter = _TimeoutCounter()
    # the package's logger: whichever webcont module reports a timeout, it propagates here
    app_log = logging.getLogger("webcont")
    app_log.addHandler(counter)
    app_log.setLevel(logging.DEBUG)
    app_log.propagate = False

    # time a few games first, to pick a timeout that outlasts creating all n
    probe = webcont.gateway(webcont.SessionlessApp({"/": guess_the_number}))
    started = time.monotonic()
    for _ in range(500):
        wsgi_get(probe)
    per_game = (time.monotonic() - started) / 500
    probe.close()
    timeout = max(2.0, 1.5 * per_game * n + 1.0)

    app = webcont.SessionlessApp({"/": guess_the_number}, continuation_timeout=timeout,
                                 max_continuations=n + 1000)
    gateway = webcont.gateway(app)
    first_deadline = time.monotonic() + timeout
    status, body = wsgi_get(gateway)  # warm up: one game, it expires with the others
    first_id = continuation_id(body)
    gc.collect()
    before = rss_bytes()
    started = time.monotonic()
    made = 0
    # if the machine is slower than the probe said, stop early rather than
    # measure while the first games already expire
    while made < n and time.monotonic() < first_deadline - 1.0:
        status, body = wsgi_get(gateway)
        assert status == "200 OK", status
        made += 1
    last_id = continuation_id(body)
    created = time.monotonic() - started
    gc.collect()
    grown = rss_bytes() - before
    live = len(app.continuations)
    print("created", flush=True)  # the parent may run other children while we wait
    # now let them all expire
    deadline = time.monotonic() + timeout + 60
    while counter.count < made + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    expired_after = time.monotonic() - (started + created + timeout)  # after the last deadline
    answers = [wsgi_get(gateway, "__wc=%s&guess=50" % cid)[0] for cid in (first_id, last_id)]
    result = {"bytes": grown / made, "made": made, "games": made + 1, "live": live,
              "expired": counter.count, "left": len(app.continuations), "answers": answers,
              "timeout": timeout, "create_s": created, "expiry_lag_s": expired_after}
    gateway.close()
    return result


CHILDREN = {
    "greenlet": bare_greenlets,
    "tasklet": lambda n: tasklets(n, own_channel=False),
    "tasklet+channel": lambda n: tasklets(n, own_channel=True),
    "queued": queued_then_run,
    "continuation": continuations,
}


def start_child(kind, n):
    """Start one measurement in a subprocess; ``finish_child`` gets its JSON result."""
    return subprocess.Popen([sys.executable, __file__, "--child", kind, "--count", str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_child(process, kind):
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise RuntimeError("%s child failed:\n%s" % (kind, err))
    return json.loads(out.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="tasklets / greenlets")
    parser.add_argument("--games", type=int, default=100_000, help="web continuations")
    parser.add_argument("--repeats", type=int, default=2,
                        help="tasklet measurements (RSS growth repeats to a few bytes)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](args.count)))
        return

    kinds = {"bare greenlet (main.switch())": "greenlet",
             "tasklet on a shared channel": "tasklet",
             "tasklet on a channel of its own": "tasklet+channel"}
    # RSS does not depend on CPU noise, so the tasklet children run while the
    # games child sleeps, waiting for its games to expire
    games_child = start_child("continuation", args.games)
    games_child.stdout.readline()
    samples = {name: [] for name in kinds}
    core = None
    for _ in range(args.repeats):  # interleaved
        for name, kind in kinds.items():
            result = finish_child(start_child(kind, args.count), kind)
            samples[name].append(result["bytes"])
            core = result.get("core", core)
    queued = finish_child(start_child("queued", 1000), "queued")["result"]
    games = finish_child(games_child, "continuation")

    results = {name: statistics.median(values) for name, values in samples.items()}
    results["web continuation (guess game)"] = games["bytes"]
    base = results["bare greenlet (main.switch())"]
    print("resident bytes per suspended item (%d tasklets, median of %d, %s; %d games, once)"
          % (args.count, args.repeats, core, games["made"]))
    print("  %-34s %10s %12s %7s" % ("contender", "bytes", "over greenlet", "ratio"))
    for name, value in results.items():
        print("  %-34s %10.0f %+12.0f %6.2fx" % (name, value, value - base, value / base))
    if games["made"] < args.games:
        print("(the games were created slower than planned: stopped at %d, before the first"
              " expired)" % games["made"])
    print("games: %d started (1 to warm up), %d live after %.1f s; timeout %.1f s; %d expired"
          " (TimeoutException), %d left in the store, %.1f s after the last deadline;"
          " expired ids answer %s"
          % (games["games"], games["live"], games["create_s"], games["timeout"],
             games["expired"], games["left"], games["expiry_lag_s"],
             "/".join(games["answers"])))
    print("queue 1000 tasklets that block, then one stackless.run(): %s" % queued)

    ratio = results["tasklet on a shared channel"] / base
    expired_ok = (games["expired"] == games["live"] == games["games"] and games["left"] == 0
                  and all(a.startswith("410") for a in games["answers"]))
    valid = games["live"] == games["games"]
    print("summary: tasklet %.2fx a bare greenlet (%.0f B; target <= 1.1x: %s);"
          " continuation %.1f KiB (target <= 8 KiB: %s); %d/%d games expired%s;"
          " queued+run(): %s"
          % (ratio, base, "met" if ratio <= 1.1 else "NOT met",
             games["bytes"] / KIB,
             ("met" if games["bytes"] <= 8 * KIB else "NOT met") if valid else
             "INVALID: some expired before the measure",
             games["expired"], games["games"], "" if expired_ok else " (NOT all: see above)",
             queued))


if __name__ == "__main__":
    main()
