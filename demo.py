"""Serve webcont's demos: guess-the-number at /, a sign-up wizard at /wizard.

    python demo.py [--host H] [--port P] [--threads N] [--timeout S]
                   [--store URL [--secret-file PATH] [--node NAME]]

With ``--store`` (``sqlite:///games.db`` or ``postgresql://...``) the games
are durable: they survive a restart of the server.  With ``--node`` this
process is one node of a cluster behind nginx (``python -m webcont
nginx-config``; see docs/deploy.md): all nodes share the store and the
secret file.
"""

import argparse
import logging
import os
import secrets
import sys
import time

import webcont
from webcont._store import StoreUnavailable
from webcont.demos import demo_app

#: the demo's log lines: time (with milliseconds after a comma), level, logger, message
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080; 0: any free port)")
    parser.add_argument("--threads", type=int, default=1,
                        help="waitress worker threads (1: the worker is the hub itself)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a game waits for the next guess (300)")
    parser.add_argument("--store", metavar="URL", help="keep games durable in this store:"
                        " sqlite:///games.db or postgresql://user@host/db; their ids are"
                        " signed with the secret in --secret-file (by default"
                        " webcont-secret.txt in the current directory)")
    parser.add_argument("--secret-file", metavar="PATH", default="webcont-secret.txt",
                        help="file holding the id secret for --store (webcont-secret.txt;"
                        " created, mode 600, if there is none; never replaced). Use the"
                        " same file at every start and on every node: with another"
                        " secret, the store's games answer 404")
    parser.add_argument("--node", help="this node's name in a cluster (e.g. n0; needs --store)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    if args.node and not args.store:
        parser.error("--node needs --store: the nodes of a cluster share their games' store")
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    options = {"continuation_timeout": args.timeout}
    if args.store:
        try:
            secret, created = read_secret(args.secret_file)
        except (OSError, ValueError) as exc:
            print("demo: cannot use the secret file %s: %s" % (args.secret_file, exc),
                  file=sys.stderr)
            return 2
        options.update(durable=True, store=args.store, secret=secret, node=args.node)
    try:
        app = demo_app(**options)
    except ValueError as exc:
        parser.error(str(exc))
    if args.store:
        try:
            opened = app.open(secret_source="file %s%s" % (
                os.path.abspath(args.secret_file), " (just created)" if created else ""))
        except StoreUnavailable as exc:
            print("demo: the store cannot be used: %s" % exc, file=sys.stderr)
            app.close()
            return 1
        logging.getLogger("demo").info("%s", opened)

    def announce(url):
        print("webcont demo: open %s in your browser (Ctrl-C to stop)" % url, flush=True)
    try:
        webcont.serve(app, host=args.host, port=args.port, threads=args.threads, ready=announce)
    except OSError as exc:
        print("demo: cannot listen on %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 2
    return 0


def read_secret(path, wait=5.0):
    """``(secret, created)``: the id secret in ``path``, or a new random one
    written there (mode 600) if the file is absent.

    An existing file is never replaced: one holding fewer than 16 characters
    raises ``ValueError``.  Nodes started together on one file agree: the
    first creates it, the others read what it wrote.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(path) as file:
                secret = file.read().strip()
        except FileNotFoundError:
            secret = secrets.token_hex(32)
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another node created it just now: read theirs
                continue
            with os.fdopen(descriptor, "w") as file:
                file.write(secret + "\n")
            return secret, True
        if len(secret) >= 16:
            return secret, False
        if secret or time.monotonic() > deadline:
            raise ValueError("it holds %d characters, fewer than the 16 an id secret needs;"
                             " put a longer one in it, or delete it to have one made"
                             % len(secret))
        time.sleep(0.05)  # empty: another node may be writing it right now


if __name__ == "__main__":
    sys.exit(main())
