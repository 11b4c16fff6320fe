"""Serve webcont's demos: guess-the-number at /, a sign-up wizard at /wizard.

    python demo.py [--host H] [--port P] [--threads N] [--timeout S]
"""

import argparse
import logging
import sys

import webcont
from webcont.demos import demo_app


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (8080; 0: any free port)")
    parser.add_argument("--threads", type=int, default=1,
                        help="waitress worker threads (1: the worker is the hub itself)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a game waits for the next guess (300)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if not args.timeout > 0:
        parser.error("--timeout must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = demo_app(continuation_timeout=args.timeout)

    def announce(url):
        print("webcont demo: open %s in your browser (Ctrl-C to stop)" % url, flush=True)
    try:
        webcont.serve(app, host=args.host, port=args.port, threads=args.threads, ready=announce)
    except OSError as exc:
        print("demo: cannot listen on %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
