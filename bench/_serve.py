"""Serve one benchmark app on a free loopback port; print its URL on stdout.

    python bench/_serve.py hello|page|game|seed [--threads N] [--store URL --secret S]

``hello``: a hello-world WSGI app under plain waitress.  ``page``: plain
waitress answering every request with the bytes and headers of a game page
(rendered once by the demo at start-up), to tell what a bigger response costs
waitress from what webcont costs.  ``game``:
``webcont.demos.demo_app()`` (guess-the-number at ``/``) under
``webcont.serve``; with ``--store`` it is durable instead,
``demo_app(durable=True, store=URL, secret=S)`` (``bench/durable.py``).
``seed``: the seed program, ``tests/seed_app.py``, under ``webcont.serve``.
Stop it with SIGTERM.
"""

import argparse
import os
import sys

# the project root instead of bench/, whose http.py would shadow the http package
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hello(environ, start_response):
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def static_page():
    """A WSGI app answering the demo's first page, status and headers, always."""
    import webcont
    from bench._common import waitress_environ
    from webcont.demos import demo_app
    gateway = webcont.gateway(demo_app())
    answer = {}
    body = b"".join(gateway(waitress_environ(), lambda status, headers: answer.update(
        status=status, headers=headers)))
    gateway.close()

    def page(environ, start_response):
        start_response(answer["status"], answer["headers"])
        return [body]
    return page


def with_store_counts(app):
    """``app`` plus ``GET /_bench/store``: the store's commits, committed operations
    and WAL fsyncs (zeros in memory)."""
    def counted(environ, start_response):
        if environ.get("PATH_INFO") != "/_bench/store":
            return app(environ, start_response)
        store = app._chains.store if app._chains is not None else None  # opened at first use
        start_response("200 OK", [("Content-Type", "text/plain")])
        counts = (store.commits, store.committed_operations, store.journal_syncs) if store \
            else (0, 0, 0)
        return [b"%d %d %d" % counts]
    counted.close = app.close
    return counted


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("app", choices=["hello", "page", "game", "seed"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--store", help="game only: durable, keeping games in this store URL")
    parser.add_argument("--secret", default="bench-secret-" + "x" * 20,
                        help="the durable id secret (with --store)")
    args = parser.parse_args()
    if args.store and args.app != "game":
        parser.error("--store is for the game only")
    ready = lambda url: print(url, flush=True)  # noqa: E731
    if args.app in ("hello", "page"):
        from waitress.server import create_server
        app = hello if args.app == "hello" else static_page()
        server = create_server(app, host="127.0.0.1", port=0, threads=args.threads)
        ready("http://127.0.0.1:%s/" % server.effective_port)
        server.run()
        return
    import webcont
    if args.app == "game":
        from webcont.demos import demo_app
        app = demo_app(durable=True, store=args.store, secret=args.secret) if args.store \
            else demo_app()
        app = with_store_counts(app)  # (in memory too: both pay for the wrapper)
    else:
        from tests.seed_app import SessionlessApp
        app = SessionlessApp()
    webcont.serve(app, host="127.0.0.1", port=0, threads=args.threads, ready=ready)


if __name__ == "__main__":
    main()
