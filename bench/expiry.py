"""Cost of a game step with 0, 10k and 100k other continuations alive: it must stay flat.

Each case is a worker subprocess holding one ``SessionlessApp`` (the
guess-the-number demo, ``max_continuations`` 200k, the default 300 s timeout)
behind ``InlineGateway``, the WSGI callable ``webcont.serve`` uses with one
worker thread: the calling thread is the hub, so a request is the hub's
whole work for it (parsing, store, id, expiry timer bookkeeping, tasklet
switches, page), without HTTP and without a thread hop.  The worker first
starts N idle games (the live continuations, waiting for guesses that never
come), then, on each request of the parent, times a batch of game steps:
8 games played in turn with random guesses, a won game replaced by a new
one.  The parent interleaves the batches of the three workers and reports
medians and the ratio to the 0 case, of wall time and of process CPU time
(all threads: the hub's timer thread included).  The verdict uses CPU time:
on this shared machine wall time per batch swings by 1.5x from run to run,
CPU time much less.  A step also leaves a tombstone and a
stale deadline in the store, so the store grows during the run as it does
in production.

    python bench/expiry.py [--live 0,10000,100000] [--steps K] [--repeats R]
"""

import argparse
import os
import queue
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from _common import continuation_id, wsgi_get  # noqa: E402

def worker(live):
    from webcont import SessionlessApp
    from webcont._gateway import InlineGateway
    from webcont.demos import guess_the_number

    posted = queue.SimpleQueue()  # the timer thread posts due timers here (none are due)
    app = SessionlessApp({"/": guess_the_number}, max_continuations=200_000)
    gateway = InlineGateway(app, posted.put)
    for _ in range(live):
        wsgi_get(gateway)
    games = [continuation_id(wsgi_get(gateway)[1]) for _ in range(8)]
    rng = random.Random(1)

    def steps(k):
        for i in range(k):
            slot = i % 8
            status, page = wsgi_get(gateway, "__wc=%s&guess=%d"
                                    % (games[slot], rng.randint(1, 100)))
            if status != "200 OK":
                raise AssertionError("%s: %s" % (status, page[:300]))
            games[slot] = continuation_id(page) or continuation_id(wsgi_get(gateway)[1])

    steps(500)  # warm up
    print("ready", flush=True)
    for line in sys.stdin:
        while not posted.empty():
            posted.get()()
        k = int(line)
        started, cpu = time.perf_counter(), time.process_time()
        steps(k)
        print((time.perf_counter() - started) / k, (time.process_time() - cpu) / k,
              len(app.continuations), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", default="0,10000,100000")
    parser.add_argument("--steps", type=int, default=1000, help="game steps per batch")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)

    levels = [int(n) for n in args.live.split(",")]
    workers = {n: subprocess.Popen([sys.executable, __file__, "--worker", str(n)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for n in levels}
    try:
        for n, process in workers.items():
            if process.stdout.readline().strip() != "ready":
                raise RuntimeError("worker %d failed" % n)
        samples, cpu_samples, live_seen = {n: [] for n in levels}, {n: [] for n in levels}, {}
        for _ in range(args.repeats):  # interleaved
            for n, process in workers.items():
                process.stdin.write("%d\n" % args.steps)
                process.stdin.flush()
                seconds, cpu, live = process.stdout.readline().split()
                samples[n].append(float(seconds))
                cpu_samples[n].append(float(cpu))
                live_seen[n] = int(live)
    finally:
        for process in workers.values():
            process.stdin.close()
            process.wait(60)
    results = {n: statistics.median(values) for n, values in samples.items()}
    cpu = {n: statistics.median(values) for n, values in cpu_samples.items()}
    base = results[levels[0]]
    print("game step through InlineGateway, by live continuations (%d steps, median of %d)"
          % (args.steps, args.repeats))
    print("  %-22s %12s %8s %12s %8s" % ("live continuations", "wall us", "ratio",
                                         "CPU us", "ratio"))
    for n in levels:
        print("  %-22s %12.1f %7.2fx %12.1f %7.2fx"
              % ("%d (%d)" % (n, live_seen[n]), results[n] * 1e6, results[n] / base,
                 cpu[n] * 1e6, cpu[n] / cpu[levels[0]]))
    cpu_base = cpu[levels[0]]
    worst = max(cpu[n] / cpu_base for n in levels)
    print("summary: game step %.0f us CPU (%.0f us wall) with %d live; CPU %s (wall %s); %s"
          % (cpu_base * 1e6, base * 1e6, levels[0],
             ", ".join("%dk live %.2fx" % (n // 1000, cpu[n] / cpu_base) for n in levels[1:]),
             ", ".join("%.2fx" % (results[n] / base) for n in levels[1:]),
             "flat (CPU within 1.25x)" if worst <= 1.25 else "NOT flat (worst %.2fx)" % worst))


if __name__ == "__main__":
    main()
