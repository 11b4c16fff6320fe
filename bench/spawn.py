"""Spawn cost: create N tasklets and run each to completion, vs raw greenlet and others.

Every contender runs the same tiny function ``work(i)`` N times (100k by
default), each in a microthread of its own, until all have finished; the
time per microthread is reported.  The baseline is raw greenlet:
``greenlet(work).switch(i)`` N times (create + switch, each runs to its end
at once).  Contenders:

* stackless_compat, the Stackless way: ``tasklet(work)(i)`` N times, then one
  ``stackless.run()`` over all of them;
* the same in chunks of 1000 (``run()`` after each chunk);
* stackless_compat one at a time: ``tasklet(work)(i).run()`` N times;
* ``gevent.spawn`` N times + ``gevent.joinall``;
* ``asyncio.create_task`` N times + ``asyncio.gather`` (timed inside the loop).

A tasklet that ends runs the next never-run one on its own greenlet, and a
greenlet whose tasklet ended waits in a pool for the next new tasklet
(``stackless_compat/_greenlets.py``), so most tasklets never create a
greenlet.  Target (issue 13): ``tasklet(f)(i)`` + ``run()`` <= 0.3x raw greenlet.

    python bench/spawn.py [--count N] [--repeats R]
"""

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from greenlet import greenlet  # noqa: E402

import stackless_compat as stackless  # noqa: E402
from stackless_compat._core import SPEEDUPS  # noqa: E402
from _common import measure, print_table, timed  # noqa: E402


def work(i):
    pass


def raw_greenlet(n):
    def loop():
        for i in range(n):
            greenlet(work).switch(i)
    return timed(loop) / n


def stackless_batch(n, chunk=None):
    chunk = chunk or n

    def loop():
        tasklet = stackless.tasklet
        for start in range(0, n, chunk):
            for i in range(start, min(start + chunk, n)):
                tasklet(work)(i)
            stackless.run()
    seconds = timed(loop) / n
    assert stackless.getruncount() == 1
    return seconds


def stackless_one_by_one(n):
    def loop():
        tasklet = stackless.tasklet
        for i in range(n):
            tasklet(work)(i).run()
    seconds = timed(loop) / n
    assert stackless.getruncount() == 1
    return seconds


def gevent_spawn(n):
    import gevent

    def loop():
        spawn = gevent.spawn
        gevent.joinall([spawn(work, i) for i in range(n)])
    return timed(loop) / n


async def awork(i):
    pass


def asyncio_tasks(n):
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        create_task = asyncio.create_task
        await asyncio.gather(*[create_task(awork(i)) for i in range(n)])
        return (loop.time() - start) / n
    return asyncio.run(main())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.count
    baseline = "raw greenlet(f).switch(i)"
    ours_name = "stackless tasklet(f)(i) x N + run()"
    contenders = {
        baseline: lambda: raw_greenlet(n),
        ours_name: lambda: stackless_batch(n),
        "stackless, run() every 1000": lambda: stackless_batch(n, 1000),
        "stackless tasklet(f)(i).run() each": lambda: stackless_one_by_one(n),
        "asyncio create_task + gather": lambda: asyncio_tasks(n),
    }
    try:
        import gevent  # noqa: F401
        contenders["gevent.spawn + joinall"] = lambda: gevent_spawn(n)
    except ImportError:
        print("(gevent not installed: skipped)")
    results = measure(contenders, args.repeats)
    print_table("create + run to completion, per microthread (%d each, median of %d; %s)"
                % (n, args.repeats, "C core" if SPEEDUPS else "pure Python"), results, baseline)
    ours = results[ours_name] / results[baseline]
    summary = ("summary: spawn+run %.0f ns/tasklet = %.2fx raw greenlet (target <= 0.3x: %s);"
               " one by one %.2fx; %.2fx asyncio"
               % (results[ours_name] * 1e9, ours, "met" if ours <= 0.3 else "NOT met",
                  results["stackless tasklet(f)(i).run() each"] / results[baseline],
                  results[ours_name] / results["asyncio create_task + gather"]))
    if "gevent.spawn + joinall" in results:
        summary += "; %.2fx gevent" % (results[ours_name] / results["gevent.spawn + joinall"])
    print(summary)


if __name__ == "__main__":
    main()
