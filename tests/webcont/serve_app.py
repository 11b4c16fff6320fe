"""Run a WSGI app under webcont.serve on a free loopback port (for tests).

    python -m tests.webcont.serve_app MODULE:FACTORY [--threads N] [--set NAME=VALUE]...

Prints the URL on the first line of stdout once listening.  FACTORY is
called with the ``--set`` options (numbers converted) to build the app.
"""

import argparse
import importlib
import logging
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("factory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--serve", action="append", default=[],
                        help="NAME=VALUE options for webcont.serve")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module_name, _, attribute = args.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    app = factory(**_options(args.set))
    import webcont
    webcont.serve(app, host="127.0.0.1", port=args.port, threads=args.threads,
                  ready=lambda url: print(url, flush=True), **_options(args.serve))
    print("exited cleanly", flush=True)


def _options(pairs):
    options = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            options[name] = float(value) if "." in value else int(value)
        except ValueError:
            options[name] = value
    return options


if __name__ == "__main__":
    main()
