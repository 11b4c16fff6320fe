"""A million suspended durable games in one process: memory, store, resume, restart.

One process holds ``--games`` (1,000,000) suspended games of the demo's
guess-the-number game, ``demo_app(durable=True, store=..., secret=...)`` on
a fresh SQLite NORMAL store, driven in process through ``InlineGateway``
(the WSGI callable of ``webcont.serve`` with one worker thread: the caller
is the hub; no HTTP, no thread hop).  Each game was started (``GET /``,
step 0) and its first page answered (a guess of 50 that did not win, step
1), then left waiting for its next guess.  ``max_continuations`` (``--loaded``,
the app's default 10,000) bounds the games kept in memory; the rest are
unloaded: only their rows in the store remain.

What is real and what is cloned:

* real: ``--loaded`` games played through the app (they fill the cap: all in
  memory), then ``--unloaded`` more (each pushes the least recently used
  one out of memory, so that many real games are unloaded);
* cloned: the remaining games up to ``--games``, written straight into the
  store's tables by SQL from a child process (so its SQLite cache is not in
  the RSS measured here), ``--batch`` games a transaction, then the WAL is
  checkpointed: clone ``i`` copies the chain row and the two step rows of
  real live game ``i mod real`` under a new random 38-character chain id
  (as long as a real one).  A clone is a game the process never saw:
  exactly what an unloaded game is to it.

Measured, each against a baseline taken in the same run:

* RSS (``/proc/self/statm``) after each stage, against the process with its
  app open and one game played (the baseline); per loaded game (the first
  stage over its games), per real unloaded game (the second stage: the cap
  stays full, so this is what unloading leaves behind) and per game overall
  at ``--games`` (everything but the baseline and the loaded games,
  divided by the unloaded ones; the SQLite page cache counts here); what
  a loaded game holds: its objects tracked by the gc, the time of a full
  gc pass over them, and its Python allocations by source file
  (``tracemalloc``, over ``--traced`` games played into an app of their
  own);
* store bytes per game: the SQLite file after ``wal_checkpoint(TRUNCATE)``
  against the events JSON each game records, and where the file's pages go
  (``dbstat``: each table and index);
* resuming an unloaded game: ``--resumes`` random live games not in memory
  (nearly all clones; five more before, untimed, warm up), each answered
  with a guess of 50 (it never wins: 50 did not the first time) and timed,
  wall and process CPU: one store query, a replay of its two recorded
  steps, the move recorded; then its next move, now in memory, timed the
  same way (the baseline);
* the first page after a restart (a new app and gateway on the same store,
  the old one closed): a new game (``GET /``, which opens the store) and
  then resuming a random unloaded game, against the same on a store holding
  20 games; and the store work of one expiry sweep (due games, purge of old
  tombstones), which every unloaded resume's read queues behind.

Targets: RSS < 1 GB with ``--games`` games; unloaded resume p99 < 10 ms.

    python bench/million.py [--games 1000000] [--loaded 10000] [--unloaded 2000]
                            [--resumes 1000] [--restarts 3] [--batch 250000] [--traced 1000]
                            [--quick]
"""

import argparse
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc

# the project root instead of bench/, whose http.py would shadow the http package
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT

from bench._common import continuation_id, rss_bytes  # noqa: E402
from bench.durable import InProcess, fresh_store, sqlite_file_bytes  # noqa: E402
from bench._million_store import (clone, clone_rows, events_bytes, live_count,  # noqa: E402
                                  sample_unloaded, store_breakdown, time_sweep)

RSS_TARGET = 1 << 30
RESUME_P99_TARGET = 10e-3
GUESS = 50  # every game's first answer, and it did not win: it never wins


def quantile(values, q):
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


def check_move(page):
    if "too low" not in page and "too high" not in page:
        raise AssertionError("unexpected page: %s" % page[:500])
    return page


def play(server, count):
    """``count`` real games, each started and its first page answered (never won)."""
    played = 0
    while played < count:
        page = server.get()
        page = server.get("__wc=%s&guess=%d" % (continuation_id(page), GUESS))
        if continuation_id(page) is not None:  # else 50 won it (1 in 100): not counted
            played += 1


def move(server, chain, step):
    """Answer step ``step`` of ``chain`` with the never-winning guess; the page."""
    cid = server.app._chains.signer.make(chain, step)
    return check_move(server.get("__wc=%s&guess=%d" % (cid, GUESS)))


def traced_per_game(directory, count):
    """What a loaded game holds, by tracemalloc: (bytes a game, [(source file, bytes a
    game)] largest first), over ``count`` games played into an app of their own."""
    _, url = fresh_store(directory, "traced")
    server = InProcess(url, max_continuations=count + 10)
    play(server, 1)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    play(server, count)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    server.close()
    by_file = after.compare_to(before, "filename")
    total = sum(stat.size_diff for stat in by_file)
    top = [(os.path.relpath(stat.traceback[0].filename, ROOT)
            if stat.traceback[0].filename.startswith(ROOT)
            else os.path.basename(stat.traceback[0].filename), stat.size_diff / count)
           for stat in by_file[:5] if stat.size_diff > 0]
    return total / count, top


def time_gc():
    """Seconds of one full collection (what a generation-2 pass costs the hub now)."""
    t0 = time.perf_counter()
    gc.collect()
    return time.perf_counter() - t0


def time_resumes(server, targets):
    """For each (chain, step), unloaded: time its move (a replay), then its next
    move (in memory).  Returns ([(wall, CPU) seconds] unloaded, the same in memory);
    CPU is the process' (all threads: the store's too)."""
    unloaded, loaded = [], []
    clock, cpu = time.perf_counter, time.process_time
    for chain, step in targets:
        replays = server.replays
        t0, c0 = clock(), cpu()
        page = move(server, chain, step)
        t1, c1 = clock(), cpu()
        move(server, chain, step + 1)
        t2, c2 = clock(), cpu()
        if server.replays != replays + 1:
            raise AssertionError("the timed resume of %s did not replay exactly once" % chain)
        if "__wc" not in page:
            raise AssertionError("no next move on %s" % page[:300])
        unloaded.append((t1 - t0, c1 - c0))
        loaded.append((t2 - t1, c2 - c1))
    return unloaded, loaded


def time_restart(server, rng):
    """Restart ``server`` (a new app on its store); (first new game, first resume of
    an unloaded game) in seconds."""
    server.restart()
    t0 = time.perf_counter()
    page = server.get()  # opens the store
    t1 = time.perf_counter()
    if continuation_id(page) is None:
        raise AssertionError("no game after the restart: %s" % page[:300])
    (chain, step), = sample_unloaded(server, 1, rng)
    t2 = time.perf_counter()
    move(server, chain, step)
    t3 = time.perf_counter()
    return t1 - t0, t3 - t2


def restarts(directory, url, count, rng, server=None):
    """``count`` restart samples on ``url``; [(first game s, first resume s, sweep s)]."""
    own = server is None
    if own:
        server = InProcess(url, max_continuations=10)
        play(server, 20)
    samples = [time_restart(server, rng) + (time_sweep(server),) for _ in range(count)]
    if own:
        server.close()
    return samples


def run(args, directory):
    """The whole bench; prints the table and returns (summary text, all targets
    met, the figures by name)."""
    rng = random.Random(3)
    MiB = 1 << 20
    # the restart baseline: a store holding a few games
    _, small_url = fresh_store(directory, "small")
    small = restarts(directory, small_url, args.restarts, rng)

    path, url = fresh_store(directory, "million")
    server = InProcess(url, max_continuations=args.loaded)
    play(server, 1)
    file0, _ = sqlite_file_bytes(path)
    rss0, objects0 = rss_bytes(), len(gc.get_objects())
    t0 = time.perf_counter()
    play(server, args.loaded - 1)
    rss1, objects1 = rss_bytes(), len(gc.get_objects())
    gc_pass = time_gc()
    play(server, args.unloaded)
    rss2 = rss_bytes()
    t2 = time.perf_counter()
    real = args.loaded + args.unloaded
    cloned = clone(server, path, args.games, args.batch)
    t3 = time.perf_counter()
    rss3 = rss_bytes()
    in_memory = len(server.app._chains.live)
    targets = sample_unloaded(server, args.resumes + 5, rng)
    time_resumes(server, targets[:5])  # warm-up, not counted
    unloaded_both, loaded_both = time_resumes(server, targets[5:])
    unloaded, loaded = [w for w, _ in unloaded_both], [w for w, _ in loaded_both]
    unloaded_cpu, loaded_cpu = [c for _, c in unloaded_both], [c for _, c in loaded_both]
    rss4 = rss_bytes()
    steps, json_bytes = events_bytes(server)
    live = server.app._chains.store.read(lambda store, cursor: live_count(cursor)).result(600)
    games = real + cloned
    after = restarts(directory, url, args.restarts, rng, server)
    server.close()
    file1, free1 = sqlite_file_bytes(path)
    breakdown = store_breakdown(path)
    traced, traced_top = traced_per_game(directory, args.traced)  # last: RSS is measured

    per_loaded = (rss1 - rss0) / (args.loaded - 1)
    per_real_unloaded = (rss2 - rss1) / args.unloaded
    per_unloaded = (rss4 - rss0 - in_memory * per_loaded) / (games - in_memory)
    print("A million suspended durable games: %d games (%d real: %d played into memory,"
          " then %d more; %d cloned in the store), max_continuations=%d; SQLite NORMAL;"
          " real games %.1f s, cloning %.1f s" % (games, real, args.loaded, args.unloaded,
                                                  cloned, args.loaded, t2 - t0, t3 - t2))
    print("(a) process memory (RSS)")
    print("  %-44s %10s %12s" % ("stage", "RSS MiB", "+ MiB"))
    for name, value in (("app open, 1 game (baseline)", rss0),
                        ("+ %d games in memory" % (args.loaded - 1), rss1),
                        ("+ %d real games, as many unloaded" % args.unloaded, rss2),
                        ("+ %d cloned games (store only)" % cloned, rss3),
                        ("+ %d unloaded resumes (%d in memory)" % (len(targets), in_memory),
                         rss4)):
        print("  %-44s %10.1f %12.1f" % (name, value / MiB, (value - rss0) / MiB))
    print("  per loaded game       %8.0f B" % per_loaded)
    print("  (each: %.0f objects tracked by the gc; a full gc pass with them all: %.1f ms)"
          % ((objects1 - objects0) / (args.loaded - 1), gc_pass * 1e3))
    print("  of which Python allocations %7.0f B  (tracemalloc over %d games; the rest: the"
          " greenlets' frame stacks, allocator slack), by source:"
          % (traced, args.traced))
    for name, size in traced_top:
        print("    %-40s %7.0f B" % (name, size))
    print("  per real unloaded game %7.0f B  (RSS growth while each new game unloaded one;"
          " SQLite's page caches fill here)" % per_real_unloaded)
    print("  per unloaded game, all %7.1f B  ((final - baseline - loaded) / %d unloaded)"
          % (per_unloaded, games - in_memory))
    print("(b) store bytes per game (%d games, %d steps)" % (games, steps))
    print("  events JSON                 %7.1f B  (%d bytes)" % (json_bytes / games, json_bytes))
    print("  SQLite file                 %7.1f B  (%d -> %d bytes after a checkpoint;"
          " %d free pages)" % ((file1 - file0) / games, file0, file1, free1))
    for name, size in breakdown:
        print("    %-32s %7.1f B" % (name, size / games))
    p50u, p99u = quantile(unloaded, 0.5), quantile(unloaded, 0.99)
    p50l, p99l = quantile(loaded, 0.5), quantile(loaded, 0.99)
    print("(c) resuming a random game (%d samples; unloaded: replayed from the store)"
          % len(unloaded))
    print("  %-22s %9s %9s %9s %12s %12s" % ("", "p50 ms", "p99 ms", "max ms",
                                             "CPU p50 ms", "CPU p99 ms"))
    for name, wall, cpu in (("in memory (baseline)", loaded, loaded_cpu),
                            ("unloaded", unloaded, unloaded_cpu)):
        print("  %-22s %9.2f %9.2f %9.2f %12.2f %12.2f"
              % (name, quantile(wall, 0.5) * 1e3, quantile(wall, 0.99) * 1e3,
                 max(wall) * 1e3, quantile(cpu, 0.5) * 1e3, quantile(cpu, 0.99) * 1e3))
    print("  ratio p50 %.2fx, p99 %.2fx" % (p50u / p50l, p99u / p99l))
    small_game = statistics.median(s[0] for s in small)
    small_resume = statistics.median(s[1] for s in small)
    big_game = statistics.median(s[0] for s in after)
    big_resume = statistics.median(s[1] for s in after)
    small_sweep = statistics.median(s[2] for s in small)
    big_sweep = statistics.median(s[2] for s in after)
    print("(d) first page after a restart (new app on the same store; median of %d)"
          % args.restarts)
    print("  %-24s %12s %19s %10s" % ("store", "new game ms", "unloaded resume ms",
                                       "sweep ms"))
    print("  %-24s %12.2f %19.2f %10.2f" % ("a few games (baseline)", small_game * 1e3,
                                            small_resume * 1e3, small_sweep * 1e3))
    print("  %-24s %12.2f %19.2f %10.2f" % ("%d games" % games, big_game * 1e3,
                                            big_resume * 1e3, big_sweep * 1e3))
    print("  (sweep: the store work of one expiry pass, every sweep_interval; resumes wait"
          " for it)")
    print()
    rss_ok = rss4 < RSS_TARGET
    resume_ok = p99u < RESUME_P99_TARGET
    summary = ("%d games: RSS %.0f MiB (target < 1024 MiB: %s); %.0f B per loaded game,"
               " %.0f B per unloaded game in memory, %.0f B per game in the store;"
               " unloaded resume p50 %.2f ms, p99 %.2f ms (target p99 < 10 ms: %s) against"
               " %.2f / %.2f ms in memory; first page after a restart %.1f ms"
               " (%.1f ms with a few games), first resume %.1f ms (%.1f ms), sweep %.1f ms"
               " (%.1f ms)"
               % (games, rss4 / MiB, "met" if rss_ok else "NOT met", per_loaded, per_unloaded,
                  (file1 - file0) / games, p50u * 1e3, p99u * 1e3,
                  "met" if resume_ok else "NOT met", p50l * 1e3, p99l * 1e3,
                  big_game * 1e3, small_game * 1e3, big_resume * 1e3, small_resume * 1e3,
                  big_sweep * 1e3, small_sweep * 1e3))
    figures = dict(games=games, live_in_store=live, in_memory=in_memory, rss=rss4,
                   traced=traced, per_loaded=per_loaded, per_unloaded=per_unloaded,
                   store_per_game=(file1 - file0) / games, json_per_game=json_bytes / games,
                   unloaded=unloaded, loaded=loaded, restarts=after, small_restarts=small)
    return summary, rss_ok and resume_ok, figures


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=1_000_000)
    parser.add_argument("--loaded", type=int, default=10_000,
                        help="max_continuations: real games played into memory")
    parser.add_argument("--unloaded", type=int, default=2_000,
                        help="real games played beyond the cap (each unloads one)")
    parser.add_argument("--resumes", type=int, default=1_000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--batch", type=int, default=250_000, help="cloned games a transaction")
    parser.add_argument("--traced", type=int, default=1_000,
                        help="games played under tracemalloc (what a loaded game holds)")
    parser.add_argument("--clone-into", help=argparse.SUPPRESS)  # the cloning child
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3,000 games, 300 in memory, 50 resumes")
    args = parser.parse_args(argv)
    if args.quick:
        args.games, args.loaded, args.unloaded = 3_000, 300, 200
        args.resumes, args.restarts, args.batch, args.traced = 50, 1, 1_000, 100
    if not args.clone_into and (args.loaded < 2 or args.unloaded < 1
                                or args.games < args.loaded + args.unloaded):
        parser.error("need --loaded >= 2, --unloaded >= 1, --games >= --loaded + --unloaded")
    return args


def main(argv=None):
    args = parse(argv)
    if args.clone_into:
        clone_rows(args.clone_into, args.games, args.batch)
        return
    directory = tempfile.mkdtemp(prefix="webcont-million-bench-")
    try:
        summary, ok, _ = run(args, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print("summary: %s; targets: %s" % (summary, "all met" if ok else "NOT all met"))


if __name__ == "__main__":
    main()
