"""Durable games on several nodes behind real nginx: scaling and failover.

Every node is ``demo.py --store URL --secret-file ... --node nK`` (the
durable demo game at ``/`` under ``webcont.serve``, one worker thread, which
is the hub) on a loopback port; all nodes share one store (a SQLite file,
WAL, ``synchronous=NORMAL``, in a temporary directory; with ``--store
postgresql`` a database on a throwaway PostgreSQL server,
``tests/postgres_server.py``) and one secret file.  nginx (Debian's
nginx-light) runs with the configuration ``python -m webcont nginx-config
--full`` prints (``webcont._nginx.nginx_config``), in a temporary prefix, on
a loopback port.  Everything started is stopped at the end, also on errors
(nginx with SIGQUIT, nodes with SIGTERM, SIGKILL after 20 s).

Two parts:

* ``scale``: requests/s of durable game steps, driven by ``wrk`` (one
  thread, ``-c`` keep-alive connections) with ``game.lua`` (which also
  counts the ``X-Webcont-Node`` of each response): each request
  resumes a game with a random guess under the id read from an earlier
  response, so nginx routes it to the game's home node by the id's prefix;
  a won game is replaced by a new one, which nginx gives to any node.
  Contenders, runs interleaved, medians of ``--repeats``: one node behind
  nginx (the baseline) and two nodes behind nginx, both with the config
  ``python -m webcont nginx-config --full`` writes (upstream keepalive
  included).  The two nodes are the same processes for both contenders
  (the one-node config lists only n0).  ``--separate-stores`` adds two more
  nodes with a SQLite file each behind their own nginx: not a deployment
  (no failover between them), a measure of what sharing one file costs.
  CPU: the load generator's (``wrk``, ``getrusage(RUSAGE_CHILDREN)`` around
  its run), nginx's (master and workers), the nodes' (all threads, the store
  writers included) and PostgreSQL's (postmaster and backends), from
  ``/proc/PID/task/*/schedstat``, as a share of one core and per request.
  Target: two nodes >= 1.4x one node, both behind the generated config.
* ``failover``: ``--nodes`` nodes behind nginx (``--fail-timeout`` 1 s, so a
  restarted node is taken back quickly; a refused connection costs nginx
  nothing, so the value does not change what is measured).  Starts ``--games`` games through nginx and
  plays each to ``--steps`` recorded steps with guesses that never win;
  then, for each node in turn: kill it with SIGKILL, time one step of each
  of its games through nginx (one client, one request at a time: nginx finds
  the node's port closed and moves on to a backup node, which replays the
  game from the store), restart the node on the same port, wait for nginx to
  take it back, and time one more step of each of its games (they go home:
  the node replays them again).  Every page is checked: the guess count goes
  on by one (no lost and no doubled move), the answering node is a survivor
  after the kill and the home node after the return.  A normal step is timed
  before the first kill for comparison.  At the end the bench waits up to a
  sweep interval (5 s) + 2 s for every node's sweeper to unload the stale
  copies of the games that went home (``/healthz`` counts the games each
  node holds).  Target: p99 of the first step after the kill <= 300 ms.

    python bench/cluster.py [--parts scale,failover] [--duration S] [--repeats R]
                            [--concurrency 16] [--nodes 3] [--games 90] [--steps 20]
                            [--fail-timeout 1] [--store sqlite|postgresql]
                            [--separate-stores]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# the project root instead of bench/, whose http.py would shadow the http package
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[0] = ROOT

import http.client  # noqa: E402  (after the path fix)

from bench._common import continuation_id, losing_range, run_parts  # noqa: E402
from bench.http import cpu_seconds, find_wrk  # noqa: E402
from bench._cluster_parts import (  # noqa: E402
    NGINX, Nginx, Node, children_cpu, free_port, open_store, store_cpu, upstreams)

HERE = os.path.join(ROOT, "bench")
SCRIPT = os.path.join(HERE, "game.lua")


def run_wrk(wrk, url, nodes, nginx, connections, seconds, cleanup):
    """One wrk run against ``url``: req/s, latency, and the CPU of everyone involved."""
    node_cpu = sum(cpu_seconds(node.process.pid) for node in nodes)
    nginx_cpu = nginx.cpu() if nginx is not None else 0.0
    db_cpu = store_cpu(cleanup)
    wrk_cpu = children_cpu()
    wall = time.perf_counter()
    out = subprocess.run([wrk, "-t1", "-c%d" % connections, "-d%ds" % seconds, "-s", SCRIPT,
                          url], capture_output=True, text=True, timeout=seconds + 60)
    wall = time.perf_counter() - wall
    wrk_cpu = children_cpu() - wrk_cpu
    node_cpu = sum(cpu_seconds(node.process.pid) for node in nodes) - node_cpu
    nginx_cpu = (nginx.cpu() - nginx_cpu) if nginx is not None else 0.0
    db_cpu = store_cpu(cleanup) - db_cpu
    match = re.search(r"RESULT (.*)", out.stdout)
    if match is None:
        raise RuntimeError("wrk failed:\n%s%s" % (out.stdout, out.stderr))
    fields = {key: int(value) for key, value in
              (pair.split("=") for pair in match.group(1).split())}
    served = re.search(r"SERVED (.*)", out.stdout).group(1)
    by_node = dict((part.split(":")[0], int(part.split(":")[1]))
                   for part in served.split(",") if part)
    requests = max(1, fields["requests"])
    return {"rps": fields["requests"] / (fields["duration_us"] / 1e6),
            "p50": fields["p50_us"] / 1e6, "p99": fields["p99_us"] / 1e6,
            "wrk": wrk_cpu / wall, "nginx": nginx_cpu / wall, "nodes": node_cpu / wall,
            "db": db_cpu / wall, "wrk_r": wrk_cpu / requests, "nginx_r": nginx_cpu / requests,
            "nodes_r": node_cpu / requests, "db_r": db_cpu / requests,
            "bad": fields["errors"] + fields["non2xx"], "by_node": by_node,
            "started": fields["started"], "resumed": fields["resumed"]}


BASELINE = "1 node, nginx"
TWO = "2 nodes, nginx"
SEPARATE = "2 nodes, SQLite each"


def part_scale(args, directory, cleanup):
    """(a): requests/s through nginx, 1 node against 2 nodes, on one shared store."""
    wrk = find_wrk()
    if wrk is None:
        print("wrk is not installed and apt-get could not install it: part scale skipped")
        return None
    store = open_store(args, directory, "scale", cleanup)
    secret_file = os.path.join(directory, "secret.txt")
    nodes, proxies, contenders = [], [], {}
    try:
        for name in ("n0", "n1"):
            nodes.append(Node(name, free_port(), store, secret_file, directory))
        for label, used in ((BASELINE, nodes[:1]), (TWO, nodes)):
            proxies.append(Nginx(upstreams(used)))
            contenders[label] = (proxies[-1].url, used, proxies[-1])
        if args.separate_stores:  # a diagnosis, not a deployment: no failover between them
            for name in ("m0", "m1"):
                nodes.append(Node(name, free_port(), "sqlite:///%s" % os.path.join(
                    directory, name + ".db"), secret_file, directory))
            proxies.append(Nginx(upstreams(nodes[2:])))
            contenders[SEPARATE] = (proxies[-1].url, nodes[2:],
                                                            proxies[-1])
        for label, (url, used, proxy) in contenders.items():  # warm up: imports, first games
            if len(used) == 2:
                run_wrk(wrk, url, used, proxy, 8, 1, cleanup)
        runs = {label: [] for label in contenders}
        for _ in range(args.repeats):  # interleaved
            for c in args.levels:
                for label, (url, used, proxy) in contenders.items():
                    runs[label].append((c, run_wrk(wrk, url, used, proxy, c, args.duration,
                                                   cleanup)))
    finally:
        for proxy in proxies:
            proxy.stop()
        codes = [node.stop() for node in nodes]
    if any(codes):
        print("(a node exited with %s: see the logs)" % codes)
    summary, verdicts = [], []
    fields = ("rps", "p50", "p99", "wrk", "nginx", "nodes", "db", "wrk_r", "nginx_r",
              "nodes_r", "db_r")
    postgres = args.store != "sqlite"
    for c in args.levels:
        med = {label: {field: statistics.median(r[field] for cc, r in samples if cc == c)
                       for field in fields} for label, samples in runs.items()}
        base = med[BASELINE]["rps"]
        print("(a) durable game steps on one shared %s store: wrk -t1 -c%d, %d s runs,"
              " median of %d" % ("PostgreSQL" if postgres else "SQLite", c, args.duration,
                                 args.repeats))
        print("    CPU columns: share of one core over the run / microseconds per request")
        print("  %-31s %6s %6s %6s %6s %11s %11s %11s %s%s"
              % ("contender", "req/s", "ratio", "p50 ms", "p99 ms", "wrk CPU", "nginx CPU",
                 "nodes CPU", "PG CPU     " if postgres else "", "answered by"))
        for label, samples in runs.items():
            m = med[label]
            by = {}
            for cc, r in samples:
                if cc == c:
                    for node, count in r["by_node"].items():
                        by[node] = by.get(node, 0) + count
            total = max(1, sum(by.values()))
            share = " ".join("%s %.0f%%" % (node, 100.0 * count / total)
                             for node, count in sorted(by.items()))
            db = "%4.0f%% %4.0fus " % (m["db"] * 100, m["db_r"] * 1e6) if postgres else ""
            print("  %-31s %6.0f %5.2fx %6.2f %6.2f %4.0f%% %4.0fus %4.0f%% %4.0fus"
                  " %4.0f%% %4.0fus %s%s"
                  % (label, m["rps"], m["rps"] / base, m["p50"] * 1e3, m["p99"] * 1e3,
                     m["wrk"] * 100, m["wrk_r"] * 1e6, m["nginx"] * 100, m["nginx_r"] * 1e6,
                     m["nodes"] * 100, m["nodes_r"] * 1e6, db, share))
        bad = sum(r["bad"] for samples in runs.values() for cc, r in samples if cc == c)
        games = sum(r["started"] for samples in runs.values() for cc, r in samples if cc == c)
        print("  (%d errors/non-2xx; %d games started, a won game is replaced; the nodes are"
              " the same processes for every contender)" % (bad, games))
        print()
        ratio = med[TWO]["rps"] / base
        verdicts.append(ratio >= 1.4 and bad == 0)
        two = med[TWO]
        summary.append("c=%d: 2 nodes %.0f req/s = %.2fx 1 node %.0f (target >= 1.4x: %s);"
                       " at 2 nodes wrk %.0f%% + nginx %.0f%% + nodes"
                       " %.0f%%%s of a core (%.0f/%.0f/%.0f%s us per request); p99 %.1f ms;"
                       " %d errors/non-2xx"
                       % (c, two["rps"], ratio, base, "met" if ratio >= 1.4 else "NOT met",
                          two["wrk"] * 100, two["nginx"] * 100, two["nodes"] * 100,
                          " + PostgreSQL %.0f%%" % (two["db"] * 100) if postgres else "",
                          two["wrk_r"] * 1e6, two["nginx_r"] * 1e6, two["nodes_r"] * 1e6,
                          "/%.0f" % (two["db_r"] * 1e6) if postgres else "",
                          two["p99"] * 1e3, bad))
        if args.separate_stores:
            summary[-1] += ("; diagnosis, 2 nodes with a SQLite file each (no"
                            " failover): %.2fx 1 node" % (med[SEPARATE]["rps"] / base))
    return "; ".join(summary), all(verdicts)


# -- part failover -------------------------------------------------------------------

class Client:
    """One keep-alive connection to nginx."""

    def __init__(self, port):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def get(self, query=""):
        """(status, answering node, page, seconds)."""
        started = time.perf_counter()
        try:
            self.connection.request("GET", "/?" + query if query else "/")
            response = self.connection.getresponse()
            page = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        return (response.status, response.getheader("X-Webcont-Node"), page,
                time.perf_counter() - started)

    def close(self):
        self.connection.close()


_GUESSES = re.compile(r"You have guessed (\d+) times?\.")
_WON = re.compile(r"Yay - \d+ is the right number")  # ids in a page can spell "Yay"


class Game:
    """A demo game played through nginx, never won: after a first guess of 50 it
    only guesses on the losing side."""

    def __init__(self, client, rng):
        self.client = client
        while True:
            status, self.home, self.page, _ = client.get()
            if status != 200:
                raise AssertionError("new game: %s %s" % (status, self.page[:300]))
            self.guesses = 0
            self.step(50)
            losing = losing_range(self.page)
            if losing is not None:  # else won by luck (1 in 100): another game
                self.low, self.high = losing
                break
        self.rng = rng
        if not continuation_id(self.page).startswith(self.home + "-"):
            raise AssertionError("the id does not name the home node %s" % self.home)

    def step(self, guess=None):
        """One guess; returns (answering node, seconds).  Checks the page."""
        if guess is None:
            guess = self.rng.randint(self.low, self.high)
        status, node, page, seconds = self.client.get(
            "__wc=%s&guess=%d" % (continuation_id(self.page), guess))
        if status != 200:
            raise AssertionError("step: %s from %s: %s" % (status, node, page[:300]))
        self.guesses += 1
        shown = _GUESSES.search(page)
        if not _WON.search(page) and (shown is None or int(shown.group(1)) != self.guesses):
            raise AssertionError("lost or doubled move: expected %d guesses, page says %s"
                                 % (self.guesses, shown and shown.group(1)))
        self.page = page
        return node, seconds


SWEEP_INTERVAL = 5.0  # the default sweep_interval of SessionlessApp (demo.py keeps it)


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100.0 * (len(ordered) - 1))))]


def part_failover(args, directory, cleanup):
    import random
    store = open_store(args, directory, "failover", cleanup)
    secret_file = os.path.join(directory, "secret.txt")
    names = ["n%d" % k for k in range(args.nodes)]
    nodes, nginx, client = {}, None, None
    rng = random.Random(5)
    normal, after_kill, after_back, extra, backups = [], [], [], {}, {}
    try:
        for name in names:
            nodes[name] = Node(name, free_port(), store, secret_file, directory)
        nginx = Nginx(upstreams(nodes.values()), fail_timeout=args.fail_timeout)
        client = Client(nginx.port)
        started = time.perf_counter()
        games = [Game(client, rng) for _ in range(args.games)]
        for _ in range(args.steps - 2):  # GET / and the first guess recorded 2 steps
            for game in games:
                node, seconds = game.step()
                if node != game.home:
                    raise AssertionError("a step left its home node while all were up")
                normal.append(seconds)
        built = time.perf_counter() - started
        homes = {name: sum(1 for game in games if game.home == name) for name in names}
        for victim in names:
            mine = [game for game in games if game.home == victim]
            nodes[victim].kill()
            for game in mine:
                node, seconds = game.step()
                if node == victim or node is None:
                    raise AssertionError("answered by %s after %s was killed" % (node, victim))
                after_kill.append(seconds)
                backups.setdefault(victim, {}).setdefault(node, 0)
                backups[victim][node] += 1
            nodes[victim].start()
            # nginx tries the node again once fail_timeout has passed (whole seconds)
            time.sleep(args.fail_timeout + 1.5)
            for game in mine:
                node, seconds = game.step()
                if node != victim:
                    raise AssertionError("a game of %s did not go home (%s)" % (victim, node))
                after_back.append(seconds)
        # the survivors' sweep unloads the copies of games that went home
        waited = time.perf_counter()
        deadline = waited + SWEEP_INTERVAL + 2
        while True:
            held = {name: node.games_in_memory() for name, node in nodes.items()}
            if held == homes or time.perf_counter() > deadline:
                break
            time.sleep(0.25)
        waited = time.perf_counter() - waited
        extra["stale"] = (held == homes, waited, held, homes)
    finally:
        if client is not None:
            client.close()
        if nginx is not None:
            nginx.stop()
        codes = [node.stop() for node in nodes.values()]
    if any(codes):
        print("(a node exited with %s: see the logs)" % codes)
    ok_stale, waited, held, homes = extra["stale"]
    print("(b) failover: %d nodes behind nginx (fail_timeout %d s), %d games of %d recorded"
          " steps (built in %.1f s); each node killed with SIGKILL in turn, one client"
          % (args.nodes, args.fail_timeout, args.games, args.steps, built))
    print("  %-40s %8s %8s %8s %8s %6s" % ("step through nginx", "p50 ms", "p99 ms", "max ms",
                                            "mean ms", "n"))
    for label, values in (("normal (all nodes up)", normal),
                          ("first after its home node was killed", after_kill),
                          ("first after the node came back", after_back)):
        print("  %-40s %8.2f %8.2f %8.2f %8.2f %6d"
              % (label, percentile(values, 50) * 1e3, percentile(values, 99) * 1e3,
                 max(values) * 1e3, statistics.mean(values) * 1e3, len(values)))
    print("  every page checked: the guess count went on by one (no lost or doubled move);"
          " answered by a survivor after a kill, by the home node after its return")
    print("  the killed node's games were answered by: %s" % "; ".join(
        "%s -> %s" % (victim, ", ".join("%s %d" % item for item in sorted(by.items())))
        for victim, by in sorted(backups.items())))
    print("  stale copies on the survivors unloaded by their sweep: %s (after %.1f s;"
          " games held %s, home games %s)"
          % ("yes" if ok_stale else "NO", waited,
             ", ".join("%s %d" % item for item in sorted(held.items())),
             ", ".join("%s %d" % item for item in sorted(homes.items()))))
    print()
    p99, worst = percentile(after_kill, 99), max(after_kill)
    ok = p99 <= 0.3
    return ("failover first step p99 %.1f ms, max %.1f ms, p50 %.1f ms (normal step p50 %.1f ms,"
            " p99 %.1f ms; %d samples; target p99 <= 300 ms: %s); after the return home p99"
            " %.1f ms; stale copies unloaded: %s"
            % (p99 * 1e3, worst * 1e3, percentile(after_kill, 50) * 1e3,
               percentile(normal, 50) * 1e3, percentile(normal, 99) * 1e3, len(after_kill),
               "met" if ok else "NOT met", percentile(after_back, 99) * 1e3,
               "yes" if ok_stale else "NO")), ok and ok_stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="scale,failover")
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="wrk runs per contender")
    parser.add_argument("--concurrency", default="16", help="wrk connections (comma list)")
    parser.add_argument("--nodes", type=int, default=3, help="nodes for part failover")
    parser.add_argument("--games", type=int, default=90, help="games for part failover")
    parser.add_argument("--steps", type=int, default=20,
                        help="recorded steps of each game before the kills")
    parser.add_argument("--fail-timeout", type=int, default=1,
                        help="nginx fail_timeout for part failover")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite",
                        help="the shared store (postgresql: a throwaway server,"
                        " tests/postgres_server.py)")
    parser.add_argument("--separate-stores", action="store_true",
                        help="part scale: also 2 nodes with a SQLite file each (a diagnosis"
                        " of the shared file's cost; no failover between them)")
    args = parser.parse_args(argv)
    args.levels = [int(c) for c in args.concurrency.split(",")]
    if args.steps < 2 or args.nodes < 2 or args.games < 1:
        parser.error("--steps >= 2, --nodes >= 2, --games >= 1")
    if NGINX is None:
        print("nginx is not installed (apt-get install nginx-light): nothing to measure")
        print("summary: skipped (no nginx)")
        return
    parts = args.parts.split(",")
    directory = tempfile.mkdtemp(prefix="webcont-cluster-bench-")
    cleanup = {}
    try:
        summary, verdicts = run_parts(parts, (("scale", part_scale), ("failover", part_failover)),
                                      args, directory, cleanup)
    finally:
        if "postgres" in cleanup:
            cleanup["postgres"].stop()
        shutil.rmtree(directory, ignore_errors=True)
    print("summary: %s; targets: %s" % ("; ".join(summary),
                                        "all met" if all(verdicts) else "NOT all met"))


if __name__ == "__main__":
    main()
