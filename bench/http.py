"""HTTP on loopback: requests/s and p50/p99 latency, webcont vs plain waitress.

Contenders, each a server subprocess on a free loopback port (``_serve.py``):

* (a) waitress hello world, ``threads=1`` (the baseline) and 4 (waitress' default);
* (b) webcont (``webcont.serve``, one worker thread, the hub): every request
  is one step of a guess-the-number game (``webcont.demos``): it resumes a
  suspended controller, which answers and suspends again under a new id;
* (c) the seed program (``tests/seed_app.py``) under ``webcont.serve``, played
  the same way;
* (a') plain waitress answering the bytes and headers of a game page
  (``_serve.py page``).  It sends each response's head and body with a
  ``send()`` each, as waitress does; ``webcont.serve`` sends a page in one
  (``webcont._server._Task``), so (b) may beat (a') where sends dominate.

The load generator is ``wrk`` with ``game.lua``: ids are single use, so each
wrk thread keeps a pool of the ids read from its responses, and each request
takes one and resumes that game with a random guess (a won game leaves the
pool; an empty pool starts a new game with GET /: about 1 request in 100).
wrk is C, so the client costs far less CPU than a Python client would, and
its Lua ``response()`` hook is all it takes to follow the ids.  The same
script drives the hello-world server (no ids there: always GET /), so every
contender pays the same client-side cost.  One wrk thread (the machine has
2 cores: one for the client, one for the GIL-bound server), ``-c 8`` and
``-c 32`` keep-alive connections, runs of ``--duration`` seconds, repeated
and interleaved; medians are reported.  wrk is installed with apt-get if
missing; without it the bench says so and stops.

Besides requests/s (wall clock, so at the mercy of whatever else runs on a
shared machine), the server's CPU time per request is measured: the on-CPU
nanoseconds of all its threads (``/proc/PID/task/*/schedstat``) over a run,
divided by the requests of that run.  It hardly moves with outside load, and
its inverse ratio ("CPU ratio": baseline CPU per request / contender's) is
what the throughput ratio would be on an idle machine with the server
CPU-bound.

Target: (b) >= 0.8x (a) threads=1, in req/s and in CPU.  A level where the
baseline spent over twice the game step's CPU on its hello world is not
judged: a hello world does less than a game step, so plain waitress' main
loop was spinning there (the busy loop ``webcont._server._Channel`` avoids;
on some days and machines it takes hold at 8 connections already).

    python bench/http.py [--duration S] [--repeats R] [--concurrency 8,32]
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "game.lua")

SERVERS = {  # contender -> _serve.py arguments
    "(a) waitress hello, threads=1": ["hello", "--threads", "1"],
    "(a) waitress hello, threads=4": ["hello", "--threads", "4"],
    "(a') waitress, a game's page": ["page", "--threads", "1"],
    "(b) webcont game step": ["game"],
    "(c) seed under webcont.serve": ["seed"],
}
BASELINE = "(a) waitress hello, threads=1"


def find_wrk():
    """The path of wrk, installing Debian's package if needed; None if impossible."""
    if shutil.which("wrk") is None and shutil.which("apt-get") is not None:
        print("(wrk missing: apt-get install -y wrk)", flush=True)
        for command in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"],
                        ["apt-get", "install", "-y", "wrk"]):
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if shutil.which("wrk"):
                break
    return shutil.which("wrk")


def cpu_seconds(pid):
    """On-CPU time so far of all threads of process ``pid`` (Linux schedstat)."""
    total = 0
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        try:
            with open("%s/%s/schedstat" % (task_dir, tid)) as stat:
                total += int(stat.read().split()[0])
        except OSError:  # the thread just ended
            pass
    return total / 1e9


class Server:
    """A server subprocess; ``url`` once it listens."""

    def __init__(self, args):
        self.durable = "--store" in args  # then GET /_bench/store counts its commits
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "_serve.py")] + args,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError("server %s did not start" % args)

    def stop(self):
        stop_process(self.process)


def stop_process(process, timeout=20):
    """SIGTERM (a graceful stop), SIGKILL after ``timeout`` seconds; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def run_wrk(wrk, server, connections, seconds):
    """One wrk run: dict with rps, p50/p99 (seconds), server CPU per request, errors,
    non2xx, started, resumed."""
    url, cpu_before = server.url, cpu_seconds(server.process.pid)
    commits_before, syncs_before = store_counts(server)
    out = subprocess.run([wrk, "-t1", "-c%d" % connections, "-d%ds" % seconds, "-s", SCRIPT,
                          url], capture_output=True, text=True, timeout=seconds + 60)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    commits, syncs = store_counts(server)
    commits, syncs = commits - commits_before, syncs - syncs_before
    match = re.search(r"RESULT (.*)", out.stdout)
    if match is None:
        raise RuntimeError("wrk failed:\n%s%s" % (out.stdout, out.stderr))
    fields = {key: int(value) for key, value in
              (pair.split("=") for pair in match.group(1).split())}
    return {"rps": fields["requests"] / (fields["duration_us"] / 1e6),
            "p50": fields["p50_us"] / 1e6, "p99": fields["p99_us"] / 1e6,
            "cpu": cpu / max(1, fields["requests"]),
            "errors": fields["errors"], "non2xx": fields["non2xx"],
            "started": fields["started"], "resumed": fields["resumed"],
            "requests": fields["requests"],
            "commits": commits / max(1, fields["requests"]),
            "syncs": syncs / max(1, fields["requests"])}


def store_counts(server):
    """How many commits and WAL fsyncs (``_walsync``) a durable server's store made
    so far ((0, 0) for the others)."""
    if not server.durable:
        return 0, 0
    # here, not at the top: run as a script, this file is the "http" package
    # urllib.request would import (durable.py puts the project root first)
    import urllib.request
    with urllib.request.urlopen(server.url + "_bench/store", timeout=10) as answer:
        commits, _, syncs = answer.read().split()
        return int(commits), int(syncs)


def interleaved_runs(wrk, server_args, levels, repeats, duration):
    """Start a server per ``name -> _serve.py arguments``, warm each up, then run
    wrk ``repeats`` times over every (server, concurrency), interleaved.

    Returns ``(runs, medians)``: the raw results per ``(name, concurrency)`` and
    the median rps/p50/p99/cpu of each.  Every server is stopped.
    """
    servers = {}
    try:
        for name, arguments in server_args.items():
            servers[name] = Server(arguments)
        for server in servers.values():  # warm up: imports, store files, first games
            run_wrk(wrk, server, 8, 1)
        runs = {(name, c): [] for c in levels for name in servers}
        for _ in range(repeats):
            for c in levels:
                for name, server in servers.items():
                    runs[name, c].append(run_wrk(wrk, server, c, duration))
    finally:
        for server in servers.values():
            server.stop()
    medians = {key: {field: statistics.median(r[field] for r in samples)
                     for field in ("rps", "p50", "p99", "cpu", "commits", "syncs")}
               for key, samples in runs.items()}
    return runs, medians


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=1, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="8,32")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    wrk = find_wrk()
    if wrk is None:
        print("wrk is not installed and apt-get could not install it: all contenders skipped")
        print("summary: skipped (no wrk)")
        return

    runs, med = interleaved_runs(wrk, SERVERS, levels, args.repeats, args.duration)
    totals = {key: {field: sum(r[field] for r in samples)
                    for field in ("requests", "errors", "non2xx", "started", "resumed")}
              for key, samples in runs.items()}
    summary = []
    for c in levels:
        base, base_cpu = med[BASELINE, c]["rps"], med[BASELINE, c]["cpu"]
        print("concurrency %d: %d keep-alive connections, 1 wrk thread, %d s runs, median of %d"
              % (c, c, args.duration, args.repeats))
        print("  %-30s %7s %6s %7s %7s %8s %6s %8s %6s"
              % ("contender", "req/s", "ratio", "p50 ms", "p99 ms", "CPU us/r", "CPU r.",
                 "resumed", "errors"))
        for name in SERVERS:
            m, t = med[name, c], totals[name, c]
            resumed = ("%.0f%%" % (100.0 * t["resumed"] / max(1, t["started"] + t["resumed"]))
                       if not name.startswith("(a") else "-")
            print("  %-30s %7.0f %5.2fx %7.2f %7.2f %8.0f %5.2fx %8s %6d"
                  % (name, m["rps"], m["rps"] / base, m["p50"] * 1e3, m["p99"] * 1e3,
                     m["cpu"] * 1e6, base_cpu / m["cpu"], resumed, t["errors"] + t["non2xx"]))
        game = med["(b) webcont game step", c]
        page = med["(a') waitress, a game's page", c]
        if not _sane_baseline(med, c):
            print("  (the hello world took over twice the game step's CPU a request: plain"
                  " waitress fell into its busy loop (webcont/_server.py, _Channel); c=%d is"
                  " not judged)" % c)
        summary.append("c=%d: game step %.0f req/s = %.2fx hello t1 (CPU ratio %.2fx; %.2fx t4;"
                       " %.2fx, CPU %.2fx, waitress serving the same page),"
                       " p50 %.1f ms, p99 %.1f ms; seed %.2fx (CPU %.2fx)"
                       % (c, game["rps"], game["rps"] / base, base_cpu / game["cpu"],
                          game["rps"] / med["(a) waitress hello, threads=4", c]["rps"],
                          game["rps"] / page["rps"], page["cpu"] / game["cpu"],
                          game["p50"] * 1e3, game["p99"] * 1e3,
                          med["(c) seed under webcont.serve", c]["rps"] / base,
                          base_cpu / med["(c) seed under webcont.serve", c]["cpu"]))
    judged = [c for c in levels if _sane_baseline(med, c)]
    if judged:
        worst = min(min(med["(b) webcont game step", c]["rps"] / med[BASELINE, c]["rps"],
                        med[BASELINE, c]["cpu"] / med["(b) webcont game step", c]["cpu"])
                    for c in judged)
        verdict = "%s (judged at c=%s)" % ("met" if worst >= 0.8 else "NOT met",
                                           ",".join(map(str, judged)))
    else:
        verdict = "not judged (the baseline fell into waitress' busy loop at every level)"
    bad = sum(totals[key]["errors"] + totals[key]["non2xx"] for key in totals)
    print("summary: %s; target (b)/(a) >= 0.8 (req/s and CPU): %s; %d errors/non-2xx"
          % ("; ".join(summary), verdict, bad))


def _sane_baseline(med, c):
    """False if plain waitress spent over twice the game step's CPU on a hello world
    at ``c``: it does less than a game step, unless waitress' main loop spins (the
    busy loop ``webcont.serve`` avoids), and then a ratio to it means nothing."""
    return med[BASELINE, c]["cpu"] <= 2 * med["(b) webcont game step", c]["cpu"]


if __name__ == "__main__":
    main()
