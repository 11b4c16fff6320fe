"""Soak webcont over loopback HTTP: long load, faults under load, a flood, a stop.

The longer runs of what ``tests/webcont/test_reliability.py`` and
``test_security.py`` check quickly.  Each scenario starts its own server
(``tests/webcont/serve_app.py`` on 127.0.0.1, port 0), drives it with raw
keep-alive sockets and prints its figures; every scenario is bounded both in
time (``--seconds`` shared by all) and in requests (``--max-requests``).

* ``load``: ``--games`` guess-the-number games played to the end by
  ``--parallel`` players, in two rounds; every page is checked to belong to
  its game and move.  Figures: requests/s, latency p50/p99/max, server RSS at
  the start, at the peak and after each round once the games' continuations
  and tombstones are gone (it must not grow from one round to the next).
* ``faults``: the same games while a saboteur keeps sending faults: clients
  that vanish mid-request or trickle a request byte by byte, controllers that
  raise, exit, block on a channel or block the hub thread, a timer callback
  that raises, forged ids, oversized and non-UTF-8 requests.  No game may be
  lost, and no tasklet may be left beyond the suspended games.
* ``flood``: one client starts new games far past ``max_continuations``;
  the cap must hold and RSS must stay flat once it is reached.
* ``stop``: SIGTERM with ``--suspended`` games waiting: time to stop, exit
  code, and every controller's ``finally:`` run.

    python bench/soak.py [--scenarios load,faults,flood,stop] [--seconds 240]
                         [--games 5000] [--parallel 50] [--threads 1]
                         [--max-requests 400000] [--suspended 1000] [--quick]

Exits 1 if any check failed.
"""

import argparse
import os
import random
import re
import signal
import sys
import threading
import time

# the project root instead of bench/, whose http.py would shadow the http package
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from tests.webcont.support import RawClient, ServerProcess, continuation_id, message  # noqa: E402


class Budget:
    """The shared bounds: a deadline and a request count (thread-safe enough: a
    race only lets a few requests past the count)."""

    def __init__(self, seconds, max_requests):
        self.deadline = time.monotonic() + seconds
        self.max_requests = max_requests
        self.requests = 0

    def spend(self, requests=1):
        self.requests += requests
        return self.left()

    def left(self):
        return time.monotonic() < self.deadline and self.requests < self.max_requests


class Checks:
    """Collects failed checks instead of stopping at the first."""

    def __init__(self):
        self.failures = []

    def __call__(self, ok, what):
        if not ok:
            self.failures.append(what)
            print("  CHECK FAILED: %s" % what, flush=True)
        return ok


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def stats(port):
    page = RawClient(port).get("/_stats")[2]
    fields = re.search(r'id="stats">([^<]*)<', page).group(1)
    return {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", fields)}


def wait_for_quiet(port, seconds):
    """Wait until no continuation, tombstone or stray tasklet is left; return the stats."""
    deadline = time.monotonic() + seconds
    while True:
        counts = stats(port)
        if counts == {"live": 0, "tombstones": 0, "tasklets": 0} or time.monotonic() > deadline:
            return counts
        time.sleep(0.25)


def play(client, budget, latencies, problems):
    """One game to the end; returns its ids, or None when the budget ran out."""
    status, _, page = client.get("/")
    budget.spend()
    if status != 200:
        problems.append("new game: %d" % status)
        return None
    low, high, guesses, ids = 1, 100, 0, [continuation_id(page)]
    while True:
        guess = (low + high) // 2
        started = time.monotonic()
        status, _, page = client.get("/", __wc=ids[-1], guess=guess)
        latencies.append(time.monotonic() - started)
        budget.spend()
        guesses += 1
        if status != 200:
            problems.append("move %d: %d %s" % (guesses, status, message(page)[:80]))
            return None
        text = message(page)
        if text.startswith("Yay"):
            if text != ("Yay - %d is the right number, you made it in %d guess%s."
                        % (guess, guesses, "" if guesses == 1 else "es")):
                problems.append("wrong final page: %r" % text)
            return ids
        if text not in ("You guessed %d - which is too low" % guess,
                        "You guessed %d - which is too high" % guess) \
                or "You have guessed %d time%s." % (guesses, "" if guesses == 1 else "s") not in page:
            problems.append("a page of another game or move: %r" % text)
            return None
        low, high = (guess + 1, high) if "low" in text else (low, guess - 1)
        ids.append(continuation_id(page))


def run_players(port, games, parallel, budget):
    """Play ``games`` games with ``parallel`` players; return (ids per game, latencies,
    problems, seconds)."""
    results, latencies, problems = [], [], []
    counter = iter(range(games))
    lock = threading.Lock()

    def player():
        client = RawClient(port)
        while budget.left():
            with lock:
                if next(counter, None) is None:
                    return
            try:
                ids = play(client, budget, latencies, problems)
            except (OSError, ValueError) as exc:
                problems.append("connection: %r" % exc)
                client = RawClient(port)
                continue
            if ids is not None:
                results.append(ids)
    started = time.monotonic()
    players = [threading.Thread(target=player) for _ in range(parallel)]
    for thread in players:
        thread.start()
    for thread in players:
        thread.join()
    return results, latencies, problems, time.monotonic() - started


def report_games(check, results, latencies, problems, seconds, wanted):
    requests = sum(len(ids) for ids in results) + len(results)
    every_id = [cid for ids in results for cid in ids]
    print("  games won: %d of %d; %d requests in %.1f s: %.0f req/s"
          % (len(results), wanted, requests, seconds, requests / max(seconds, 1e-9)))
    if latencies:
        print("  move latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms"
              % (percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3,
                 max(latencies) * 1e3))
    check(not problems, "%d game problem(s), first: %s" % (len(problems), problems[:3]))
    check(len(every_id) == len(set(every_id)), "an id was served to two games")


# -- scenarios --------------------------------------------------------------------------


def scenario_load(args, budget, check):
    print("load: %d games in two rounds, %d players, threads=%d"
          % (args.games, args.parallel, args.threads))
    with ServerProcess("tests.webcont.fixture_apps:demo", threads=args.threads,
                       continuation_timeout=3.0, tombstone_timeout=3.0) as server:
        run_players(server.port, 50, 10, budget)  # warm up
        wait_for_quiet(server.port, 10)
        rss = [server.rss_kb()]
        peak = [rss[0]]
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.5):
                peak.append(server.rss_kb())
        sampler = threading.Thread(target=sample)
        sampler.start()
        for number in (1, 2):
            # some games abandoned half way: their continuations must expire
            for _ in range(min(200, args.games // 20)):
                client = RawClient(server.port)
                client.get("/", __wc=continuation_id(client.get("/")[2]), guess=50)
                client.close()
                budget.spend(2)
            games = args.games // 2
            results, latencies, problems, seconds = run_players(server.port, games,
                                                                args.parallel, budget)
            print(" round %d:" % number)
            report_games(check, results, latencies, problems, seconds, games)
            counts = wait_for_quiet(server.port, 15)
            check(counts == {"live": 0, "tombstones": 0, "tasklets": 0},
                  "state left after the games: %s" % counts)
            rss.append(server.rss_kb())
        sampling.set()
        sampler.join()
        print("  server RSS: start %d KiB, peak %d KiB, after round 1 %d KiB (%+d),"
              " after round 2 %d KiB (%+d)" % (rss[0], max(peak), rss[1], rss[1] - rss[0],
                                              rss[2], rss[2] - rss[0]))
        # The first round raises the allocator's high-water mark (mostly the pages
        # remembered for replay, freed with their tombstones but not returned to the
        # OS); what must not happen is growth from one round to the next.
        check(rss[2] - rss[1] < 4 * 1024, "RSS grew from one round to the next")
        check(server.log().count("Task queue depth") < 50, "the queue warning flooded the log")


def saboteur(port, budget, stop, tally, check):
    """Sends one fault after another until ``stop``; counts them in ``tally``."""
    hello = b"GET /?guess=1 HTTP/1.1\r\nHost: x\r\n\r\n"

    def expect(path, statuses, **params):
        status = RawClient(port, timeout=20).get(path, **params)[0]
        check(status in statuses, "%s answered %d, not %s" % (path, status, statuses))

    def vanish_mid_body():
        client = RawClient(port)
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\nguess=")
        client.close()

    def vanish_before_answer():
        client = RawClient(port)
        client.send(hello)
        client.close()

    def trickle():
        client = RawClient(port)
        for index in range(len(hello)):
            client.send(hello[index:index + 1])
            time.sleep(0.01)
        check(client.response()[0] == 200, "a trickled request was not answered")

    faults = {
        "vanish mid-body": vanish_mid_body,
        "vanish before the answer": vanish_before_answer,
        "trickle": trickle,
        "controller raises": lambda: expect("/now", {500}),
        "controller exits": lambda: expect("/exit", {500}),
        "controller blocks on a channel": lambda: expect("/stuck", {500, 504}),
        "controller blocks the hub 0.2 s": lambda: expect("/sleep", {200}, seconds="0.2"),
        "timer callback raises": lambda: expect("/bad-timer", {200}),
        "forged id": lambda: expect("/", {404}, __wc="%022d" % random.getrandbits(64)),
        "query too long": lambda: expect("/", {414}, x="9" * 9000),
        "not UTF-8": lambda: expect("/?guess=%FF", {400}),
    }
    names = list(faults)
    while not stop.is_set() and budget.left():
        name = random.choice(names)
        try:
            faults[name]()
        except OSError as exc:
            check(False, "%s: %r" % (name, exc))
        tally[name] = tally.get(name, 0) + 1
        budget.spend()
        time.sleep(0.01)


def scenario_faults(args, budget, check):
    games = max(100, args.games // 2)
    print("faults: %d games, %d players, threads=%d, with a saboteur"
          % (games, args.parallel, args.threads))
    with ServerProcess("tests.webcont.fixture_apps:faulty", threads=args.threads,
                       serve_options={"request_timeout": 2.0}) as server:
        stop, tally = threading.Event(), {}
        sabotage = threading.Thread(target=saboteur, args=(server.port, budget, stop, tally, check))
        sabotage.start()
        results, latencies, problems, seconds = run_players(server.port, games, args.parallel,
                                                            budget)
        stop.set()
        sabotage.join()
        report_games(check, results, latencies, problems, seconds, games)
        print("  faults sent: %s" % ", ".join("%s %d" % item for item in sorted(tally.items())))
        counts = stats(server.port)
        check(counts["tasklets"] == counts["live"], "tasklets left on the hub: %s" % counts)
        stuck = tally.get("controller blocks on a channel", 0)
        time.sleep(0.5)
        check(server.log().count("CLEANUP stuck") == stuck,
              "blocked controllers not all killed (%d of %d)"
              % (server.log().count("CLEANUP stuck"), stuck))


def scenario_flood(args, budget, check):
    cap, total = 1000, max(5000, args.games * 4)
    print("flood: %d new games from one client, max_continuations=%d" % (total, cap))
    with ServerProcess("tests.webcont.fixture_apps:demo", threads=args.threads,
                       max_continuations=cap) as server:
        client = RawClient(server.port)
        samples, started = [], time.monotonic()
        for number in range(1, total + 1):
            if not budget.left():
                break
            client.send(b"GET /?x=%d HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n"
                        % (number, b"p" * 4000))
            status = client.response()[0]
            budget.spend()
            if not check(status == 200, "new game %d answered %d" % (number, status)):
                break
            if number % (total // 10) == 0:
                samples.append((number, server.rss_kb()))
        seconds = time.monotonic() - started
        counts = stats(server.port)
        print("  %d new games in %.1f s; live %d, tombstones %d" %
              (number, seconds, counts["live"], counts["tombstones"]))
        print("  RSS by games started: %s" % ", ".join("%d: %d KiB" % s for s in samples))
        check(counts["live"] <= cap, "the cap did not hold: %s" % counts)
        after_cap = [rss for games, rss in samples if games >= 2 * cap]
        if len(after_cap) >= 2:
            check(max(after_cap) - after_cap[0] < 4 * 1024, "RSS grew past the cap")
        check(server.log().count("evicted") < 30, "eviction warnings flooded the log")


def scenario_stop(args, budget, check):
    print("stop: SIGTERM with %d suspended games" % args.suspended)
    with ServerProcess("tests.webcont.fixture_apps:cleanup_reporter",
                       threads=args.threads) as server:
        client = RawClient(server.port)
        for _ in range(args.suspended):
            client.get("/wait")
        budget.spend(args.suspended)
        live = stats(server.port)["live"]
        started = time.monotonic()
        code, out, log = server.stop(signal.SIGTERM, timeout=60)
        seconds = time.monotonic() - started
    cleaned = log.count("CLEANUP finally")
    print("  %d suspended; stopped in %.2f s with exit code %s; %d finally: blocks ran"
          % (live, seconds, code, cleaned))
    check(code == 0 and "exited cleanly" in out, "unclean exit: %s" % code)
    check(cleaned == live == args.suspended, "finally: blocks ran %d of %d" % (cleaned, live))


SCENARIOS = {"load": scenario_load, "faults": scenario_faults, "flood": scenario_flood,
             "stop": scenario_stop}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="load,faults,flood,stop")
    parser.add_argument("--seconds", type=float, default=240.0,
                        help="time bound for the whole run (240)")
    parser.add_argument("--max-requests", type=int, default=400_000)
    parser.add_argument("--games", type=int, default=5000)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="waitress worker threads (1)")
    parser.add_argument("--suspended", type=int, default=1000)
    parser.add_argument("--quick", action="store_true",
                        help="small numbers: a smoke run of every scenario")
    args = parser.parse_args(argv)
    if args.quick:
        args.games, args.parallel, args.suspended = 300, 10, 100
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error("unknown scenario(s): %s" % ", ".join(unknown))
    budget, check = Budget(args.seconds, args.max_requests), Checks()
    started = time.monotonic()
    for name in names:
        if not budget.left():
            print("%s: skipped, the time or request budget is spent" % name)
            continue
        SCENARIOS[name](args, budget, check)
    print("summary: soak: %d requests in %.0f s; %s" % (
        budget.requests, time.monotonic() - started,
        "all checks passed" if not check.failures else "%d check(s) FAILED" % len(check.failures)))
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
