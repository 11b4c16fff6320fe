"""Spawn cost: create N tasklets and run each to completion, vs raw greenlet and others.

Every contender runs the same empty function N times (100k by default), each
in a microthread of its own, until all have finished; the time per
microthread is reported.  The baseline is raw greenlet: ``greenlet(f).switch()``
N times (create + switch, each runs to its end at once).  Contenders:

* stackless_compat, the Stackless way: ``tasklet(f)()`` then ``stackless.run()``,
  in chunks of 1000 tasklets (see below);
* stackless_compat one at a time: ``tasklet(f)().run()`` N times;
* ``gevent.spawn`` N times + ``gevent.joinall``;
* ``asyncio.create_task`` N times + ``asyncio.gather`` (timed inside the loop).

A single ``run()`` over all N queued tasklets is also tried once, in a
subprocess: each tasklet that ends starts the next, never-run one from its
dying greenlet, which nests the C stack (~600 bytes per tasklet), so past
~13k queued tasklets that crashed with SIGSEGV (8 MiB stack) when this was
written.  The summary says whether it still does.

    python bench/spawn.py [--count N] [--repeats R]
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from greenlet import greenlet  # noqa: E402

import stackless_compat as stackless  # noqa: E402
from _common import measure, print_table, timed  # noqa: E402


def work():
    pass


def raw_greenlet(n):
    def loop():
        for _ in range(n):
            greenlet(work).switch()
    return timed(loop) / n


CHUNK = 1000


def stackless_batch(n, chunk=CHUNK):
    def loop():
        tasklet = stackless.tasklet
        for start in range(0, n, chunk):
            for _ in range(min(chunk, n - start)):
                tasklet(work)()
            stackless.run()
    seconds = timed(loop) / n
    assert stackless.getruncount() == 1
    return seconds


def unchunked_run_survives(n):
    """Queue ``n`` tasklets and run() them all at once, in a subprocess: "ok" or the failure."""
    code = "import spawn; spawn.stackless_batch(%d, chunk=%d)" % (n, n)
    result = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(__file__),
                            capture_output=True, text=True, timeout=120)
    if result.returncode == 0:
        return "ok"
    if result.returncode < 0:
        return "CRASH (%s)" % signal.Signals(-result.returncode).name
    return "FAILED (exit %d)" % result.returncode


def stackless_one_by_one(n):
    def loop():
        tasklet = stackless.tasklet
        for _ in range(n):
            tasklet(work)().run()
    seconds = timed(loop) / n
    assert stackless.getruncount() == 1
    return seconds


def gevent_spawn(n):
    import gevent

    def loop():
        spawn = gevent.spawn
        gevent.joinall([spawn(work) for _ in range(n)])
    return timed(loop) / n


async def awork():
    pass


def asyncio_tasks(n):
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        create_task = asyncio.create_task
        await asyncio.gather(*[create_task(awork()) for _ in range(n)])
        return (loop.time() - start) / n
    return asyncio.run(main())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.count
    baseline = "raw greenlet(f).switch()"
    contenders = {
        baseline: lambda: raw_greenlet(n),
        "stackless tasklet(f)() + run()": lambda: stackless_batch(n),
        "stackless tasklet(f)().run() each": lambda: stackless_one_by_one(n),
        "asyncio create_task + gather": lambda: asyncio_tasks(n),
    }
    try:
        import gevent  # noqa: F401
        contenders["gevent.spawn + joinall"] = lambda: gevent_spawn(n)
    except ImportError:
        print("(gevent not installed: skipped)")
    results = measure(contenders, args.repeats)
    print_table("create + run to completion, per microthread (%d each, median of %d)"
                % (n, args.repeats), results, baseline)
    survives = unchunked_run_survives(n)
    print("one run() over %d queued tasklets (subprocess): %s" % (n, survives))
    ours = results["stackless tasklet(f)() + run()"]
    summary = ("summary: spawn+run %.0f ns/tasklet = %.2fx raw greenlet (+%.0f ns; target <= 2x:"
               " %s); one by one %.2fx; %.2fx asyncio"
               % (ours * 1e9, ours / results[baseline], (ours - results[baseline]) * 1e9,
                  "met" if ours / results[baseline] <= 2 else "NOT met",
                  results["stackless tasklet(f)().run() each"] / results[baseline],
                  ours / results["asyncio create_task + gather"]))
    if "gevent.spawn + joinall" in results:
        summary += "; %.2fx gevent" % (ours / results["gevent.spawn + joinall"])
    summary += "; one run() over %d: %s" % (n, survives)
    print(summary)


if __name__ == "__main__":
    main()
