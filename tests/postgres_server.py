"""A real, throwaway PostgreSQL server for tests (Debian's ``postgresql`` package).

``PostgresServer().start()`` runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` in a fresh temporary directory, listening only
on 127.0.0.1 and a free port; ``stop()`` stops it and deletes the directory.
PostgreSQL refuses to run as root, so under root it runs as the
``postgres`` user the Debian package creates.  ``unavailable_reason()`` says
why no server can be started here (for a clear skip).
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


def _binaries():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def unavailable_reason():
    """None if a server can be started, else why not."""
    if _binaries() is None:
        return "PostgreSQL server binaries are not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One PostgreSQL server on loopback; ``url`` once started."""

    def __init__(self):
        self.bin = _binaries()
        self.directory = None
        self.port = None
        self.url = None

    def _run(self, *args):
        command = [os.path.join(self.bin, args[0])] + list(args[1:])
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        subprocess.run(command, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)

    def start(self):
        self.directory = tempfile.mkdtemp(prefix="webcont-pg-")
        os.chmod(self.directory, 0o755)
        data = os.path.join(self.directory, "data")
        os.mkdir(data, 0o700)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.directory, data):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
                  "-E", "UTF8")
        self.port = free_port()
        options = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (
            self.port, self.directory)
        self._options = options
        self.resume()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        return self

    def pause(self):
        """Stop the server as an outage would (connections cut), keeping its data."""
        self._run("pg_ctl", "-D", os.path.join(self.directory, "data"), "-m", "fast",
                  "-w", "stop")

    def resume(self):
        """Start the server (again) on the same port and data."""
        self._run("pg_ctl", "-D", os.path.join(self.directory, "data"), "-o", self._options,
                  "-w", "-t", "30", "-l", os.path.join(self.directory, "server.log"), "start")

    def stop(self):
        if self.directory is None:
            return
        try:
            self._run("pg_ctl", "-D", os.path.join(self.directory, "data"), "-m", "fast",
                      "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
