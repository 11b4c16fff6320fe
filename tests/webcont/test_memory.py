"""The in-memory backend (``_memory``): what a suspended game keeps."""

import gc
import io
import tracemalloc

import stackless_compat as stackless
from webcont import SessionlessApp
from webcont._gateway import InlineGateway
from webcont.demos import guess_the_number

from .support import close_inline_gateway

GAMES = 300


def new_game(gateway, cookie=""):
    """GET / from the browser holding ``cookie``: the status; the cookie it holds after."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
               "wsgi.input": io.BytesIO(b""), "HTTP_COOKIE": cookie}
    answer = {}
    b"".join(gateway(environ, lambda status, headers, exc_info=None: answer.update(
        headers, status=status)))
    return answer["status"], answer.get("Set-Cookie", cookie).split(";")[0]


def _traced_per_item(make):
    """Python heap bytes that ``make()`` leaves allocated, per item (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return grown / GAMES, kept


def test_a_suspended_game_keeps_little_beyond_a_bare_tasklet_blocked_as_deep():
    """A game waits in receive() three Python calls below its tasklet's body
    (the request, the controller, ``continue_``), as the bare tasklets here
    do.  What it keeps beyond them, its kept page aside, is webcont's own
    (request, channel, continuation, id, owner tag): about 1.1 KiB.  A
    controller started by calling the request object nests a second
    interpreter loop whose C stack the greenlet keeps (~0.7 KiB more)."""
    def top(channel):
        middle(channel)

    def middle(channel):
        bottom(channel)

    def bottom(channel):
        channel.receive()

    def blocked_tasklets():
        """``GAMES`` tasklets blocked as deep as a game; their channels."""
        channels = [stackless.channel() for _ in range(GAMES)]
        for channel in channels:
            stackless.tasklet(top)(channel).run()
        return channels

    posted = []
    app = SessionlessApp({"/": guess_the_number}, continuation_timeout=600)
    gateway = InlineGateway(app, posted.append)
    channels = []
    try:
        status, cookie = new_game(gateway)  # one browser (a new one's cookie is a new header)
        for _ in range(20):  # warm up: imports, caches, free lists
            assert new_game(gateway, cookie) == ("200 OK", cookie)
        for channel in blocked_tasklets():
            channel.send_exception(stackless.TaskletExit)
        bare, channels = _traced_per_item(blocked_tasklets)
        game, _ = _traced_per_item(lambda: [new_game(gateway, cookie) for _ in range(GAMES)])
        page = app._pages.bytes / len(app._pages)
        assert len(app.continuations) == GAMES + 21
        assert game - page - bare < 1536, (game, page, bare)
    finally:
        for channel in channels:
            channel.send_exception(stackless.TaskletExit)
        close_inline_gateway(gateway, posted)
