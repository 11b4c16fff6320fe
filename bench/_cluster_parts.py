"""The processes of bench/cluster.py: webcont nodes, nginx in front, the store.

Kept apart so that cluster.py holds the two measured parts; each class
starts its process on loopback in the bench's temporary directory and
stops it through the bench's ``cleanup`` list.
"""

import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import http.client

from bench.http import cpu_seconds, stop_process
from webcont._nginx import nginx_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Node:
    """``demo.py --node NAME`` on a fixed loopback port, sharing ``store`` and ``secret_file``."""

    def __init__(self, name, port, store, secret_file, directory):
        self.name, self.port = name, port
        self.args = [sys.executable, os.path.join(ROOT, "demo.py"), "--host", "127.0.0.1",
                     "--port", str(port), "--store", store, "--secret-file", secret_file,
                     "--node", name]
        self.log_path = os.path.join(directory, "%s.log" % name)
        self.process = None
        self.start()

    def start(self):
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.PIPE,
                                            stderr=log, text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], 60)  # bounded wait
        line = self.process.stdout.readline() if ready else ""
        if "http://" not in line:
            self.kill()
            with open(self.log_path) as log:
                tail = "".join(log.readlines()[-20:])
            raise RuntimeError("node %s did not start: %r; its log ends:\n%s"
                               % (self.name, line, tail))

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process.stdout.close()

    def stop(self):
        code = stop_process(self.process)
        if not self.process.stdout.closed:
            self.process.stdout.close()
        return code

    def games_in_memory(self):
        """The count of games this node holds, from its /healthz."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", "/healthz")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        match = re.search(r"(\d+) game\(s\) in memory", text)
        if match is None:
            raise RuntimeError("unexpected /healthz of %s: %r" % (self.name, text))
        return int(match.group(1))


def upstreams(nodes):
    """``[(name, address)]`` of ``Node``s, for ``Nginx``."""
    return [(node.name, node.address) for node in nodes]


class Nginx:
    """nginx -p PREFIX -c PREFIX/nginx.conf -g 'daemon off;' on a free loopback port,
    in front of ``nodes`` (``[(name, "host:port")]``); also tests/webcont/test_cluster.py's."""

    def __init__(self, nodes, fail_timeout=10):
        self.prefix = tempfile.mkdtemp(prefix="webcont-nginx-")
        self.port = free_port()
        config = nginx_config("127.0.0.1:%d" % self.port, nodes,
                              fail_timeout=fail_timeout, full=True)
        if os.geteuid() == 0:
            config = "user root;\n" + config  # workers must reach the private prefix
        self.config = config
        with open(os.path.join(self.prefix, "nginx.conf"), "w") as file:
            file.write(config)
        self.process = subprocess.Popen(
            [NGINX, "-p", self.prefix, "-c", os.path.join(self.prefix, "nginx.conf"),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    error = self.process.stderr.read() if self.process.poll() is not None else ""
                    self.stop()
                    raise RuntimeError("nginx did not start: %s" % error)
                time.sleep(0.05)
        self.url = "http://127.0.0.1:%d/" % self.port

    def pids(self):
        """The master and its workers."""
        pids = [self.process.pid]
        try:
            with open("/proc/%d/task/%d/children" % (self.process.pid, self.process.pid)) as f:
                pids += [int(pid) for pid in f.read().split()]
        except OSError:
            pass
        return pids

    def cpu(self):
        total = 0.0
        for pid in self.pids():
            try:
                total += cpu_seconds(pid)
            except OSError:
                pass
        return total

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()
        shutil.rmtree(self.prefix, ignore_errors=True)


# -- part scale ----------------------------------------------------------------------

def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def open_store(args, directory, name, cleanup):
    """The store URL for ``name``: a fresh SQLite file, or a database on the
    PostgreSQL server of this run (started once, stopped by ``cleanup``)."""
    if args.store == "sqlite":
        return "sqlite:///%s" % os.path.join(directory, name + ".db")
    if "postgres" not in cleanup:
        from tests import postgres_server
        reason = postgres_server.unavailable_reason()
        if reason:
            raise SystemExit("--store postgresql: " + reason)
        cleanup["postgres"] = postgres_server.PostgresServer().start()
    server = cleanup["postgres"]
    import psycopg
    with psycopg.connect(server.url, autocommit=True) as connection:
        connection.execute("CREATE DATABASE %s" % name)
    return server.url.rsplit("/", 1)[0] + "/" + name


def store_cpu(cleanup):
    """On-CPU seconds so far of the PostgreSQL server (postmaster and backends), or 0."""
    server = cleanup.get("postgres")
    if server is None:
        return 0.0
    with open(os.path.join(server.directory, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    total = cpu_seconds(master)
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        for pid in f.read().split():
            try:
                total += cpu_seconds(int(pid))
            except OSError:
                pass
    return total
