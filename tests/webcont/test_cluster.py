"""Several webcont nodes behind REAL nginx, on one shared store, with failover.

Marked ``cluster`` (run alone with ``pytest -m cluster``).  Starts three
nodes and Debian's nginx on loopback ports in a temporary prefix, plays 50
interleaved games, kills one node with SIGKILL mid-game, finishes every game
on the others, restarts it and checks its games come home.  A second variant
does the same on a real PostgreSQL server.  Every process started is stopped.
"""

import re
import signal
import socket
import time

import pytest

from bench._cluster_parts import NGINX, Nginx
from tests import postgres_server

from .support import Client, ServerProcess, continuation_id, won

pytestmark = pytest.mark.cluster

FACTORY = "tests.webcont.durable_apps:cluster_node"
NODES = ["n0", "n1", "n2"]


def nginx_in_front(nodes):
    """``bench/_cluster_parts.Nginx`` in front of ``nodes``, once it answers
    ``/healthz`` through to them."""
    nginx = Nginx(nodes, fail_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            Client(nginx.port, timeout=2).request("/healthz")
            return nginx
        except OSError:
            if time.monotonic() > deadline:
                nginx.stop()
                raise
            time.sleep(0.05)


def secret_of(page):
    return int(re.search(r"<!-- secret=(\d+) -->", page).group(1))


def tries_of(page):
    match = re.search(r"tries=(\d+)", page) or re.search(r"Yay \d+ in (\d+)", page)
    return int(match.group(1))


def play_cluster(store_url):
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    ports = {name: postgres_server.free_port() for name in NODES}
    nodes = {name: ServerProcess(FACTORY, port=ports[name], store=store_url, node=name).__enter__()
             for name in NODES}
    nginx = nginx_in_front([(name, "127.0.0.1:%d" % ports[name]) for name in NODES])
    try:
        client = Client(nginx.port)
        games = []
        for _ in range(50):
            status, headers, page = client.get("/")
            assert status == 200, page
            home = headers["X-Webcont-Node"]
            assert continuation_id(page).startswith(home + "-")
            games.append({"home": home, "page": page, "low": 1, "high": 100, "tries": 0,
                          "secret": secret_of(page), "done": False, "served_by": []})
        assert len({game["home"] for game in games}) == 3  # new games spread over the nodes

        def one_round():
            for game in games:
                if game["done"]:
                    continue
                guess = (game["low"] + game["high"]) // 2
                started = time.monotonic()
                status, headers, page = client.get("/", __wc=continuation_id(game["page"]),
                                                   guess=guess)
                elapsed = time.monotonic() - started
                assert status == 200, page
                game["tries"] += 1
                game["served_by"].append((headers["X-Webcont-Node"], elapsed))
                assert secret_of(page) == game["secret"]  # the same game, replayed or not
                assert tries_of(page) == game["tries"]    # no lost and no doubled move
                if won(page):
                    game["done"] = True
                elif "too low" in page:
                    game["low"] = guess + 1
                else:
                    game["high"] = guess - 1
                game["page"] = page

        one_round()
        assert all(by == game["home"] for game in games for by, _ in game["served_by"])
        victim = "n1"
        nodes[victim].process.send_signal(signal.SIGKILL)
        nodes[victim].process.wait(10)
        marks = {id(game): len(game["served_by"]) for game in games}
        one_round()
        moved = [game for game in games if game["home"] == victim and not game["done"]
                 and len(game["served_by"]) > marks[id(game)]]
        assert moved, "no game of the killed node was still running"
        first_after_kill = [game["served_by"][marks[id(game)]] for game in moved]
        assert all(by != victim for by, _ in first_after_kill)
        slowest = max(elapsed for _, elapsed in first_after_kill)
        assert slowest < 3.0, "failover took %.2f s" % slowest
        # the node comes back on its port: its games go home again
        nodes[victim] = ServerProcess(FACTORY, port=ports[victim], store=store_url,
                                      node=victim).__enter__()
        time.sleep(3)  # nginx retries a failed server after fail_timeout (1 s)
        marks = {id(game): len(game["served_by"]) for game in games}
        one_round()
        back = [game["served_by"][marks[id(game)]][0] for game in games
                if game["home"] == victim and len(game["served_by"]) > marks[id(game)]]
        assert back and all(by == victim for by in back)
        for _ in range(10):
            if all(game["done"] for game in games):
                break
            one_round()
        assert all(game["done"] for game in games)
        for game in games:
            assert "Yay %d in %d" % (game["secret"], game["tries"]) in game["page"]
        for name in NODES:
            status, _, text = Client(ports[name]).request("/healthz")
            assert status == 200 and "store ok" in text
    finally:
        nginx.stop()
        for name, server in nodes.items():
            if server.process.poll() is None:
                code, _, err = server.stop()
                assert code == 0, err


def test_fifty_games_through_nginx_survive_a_killed_node_on_sqlite(tmp_path):
    play_cluster("sqlite:///%s" % (tmp_path / "cluster.db"))


def test_fifty_games_through_nginx_survive_a_killed_node_on_postgresql():
    reason = postgres_server.unavailable_reason()
    if reason:
        pytest.skip("PostgreSQL variant not run: " + reason)
    server = postgres_server.PostgresServer().start()
    try:
        play_cluster(server.url)
    finally:
        server.stop()


def test_nginx_in_front_absorbs_half_requests_a_node_alone_could_not(tmp_path):
    """A node that takes 20 connections, and keeps half requests for a minute,
    behind nginx: 200 half requests sent to nginx never reach it (nginx reads
    whole requests before it picks a node), and a game goes on at once."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    port = postgres_server.free_port()
    node = ServerProcess(FACTORY, port=port, store="sqlite:///%s" % (tmp_path / "g.db"),
                         node="n0", serve_options={"connection_limit": 20,
                                                   "read_timeout": 60.0}).__enter__()
    nginx = nginx_in_front([("n0", "127.0.0.1:%d" % port)])
    held = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", nginx.port), timeout=10)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        started = time.monotonic()
        status, _, page = Client(nginx.port, timeout=10).get("/")
        assert status == 200 and time.monotonic() - started < 2.0
        status, _, page = Client(nginx.port, timeout=10).get("/", __wc=continuation_id(page),
                                                             guess=50)
        assert status == 200
    finally:
        for sock in held:
            sock.close()
        nginx.stop()
        node.__exit__(None, None, None)
