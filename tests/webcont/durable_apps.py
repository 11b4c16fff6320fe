"""Durable apps the durable tests serve (in-process and as real servers)."""

import asyncio
import random
import secrets

from webcont import SessionlessApp, TimeoutException
from webcont._pages import escape

from tests import seed_app

_cleanups = []


def seed_game(store, secret="s" * 32, **options):
    """The seed's guess_the_number, unedited, as a durable route."""
    app = SessionlessApp(store=store, secret=secret, **options)
    app.route("/", seed_app.guess_the_number, durable=True)
    return app


def adder(req):
    """Adds the numbers it is sent; draws a bonus with req.randint each step."""
    total, moves = 0, 0
    try:
        while True:
            bonus = req.randint(0, 9)
            req.continue_('<p id="state">total=%d moves=%d bonus=%d</p>'
                          '<form><input type="hidden" name="__wc" value="%s"></form>'
                          % (total, moves, bonus, escape(req.continuation_id)))
            total += int(req.parameters.get("n", ["0"])[0]) + bonus
            moves += 1
            if moves >= 1000:
                return "done"
    except TimeoutException:
        _cleanups.append("timeout")
        raise


def adder_app(store, secret="s" * 32, version="1", **options):
    app = SessionlessApp(store=store, secret=secret, **options)
    app.route("/", adder, durable=True, version=version)
    return app


def adder_same_events(req):
    """Version 2 of adder: different text, the same events: old games go on."""
    total, moves = 0, 0
    while True:
        bonus = req.randint(0, 9)
        req.continue_('<p id="state">total=%d moves=%d bonus=%d (v2)</p>'
                      '<form><input type="hidden" name="__wc" value="%s"></form>'
                      % (total, moves, bonus, escape(req.continuation_id)))
        total += int(req.parameters.get("n", ["0"])[0]) + bonus
        moves += 1


def adder_other_events(req):
    """Version 3: draws twice per step: old games cannot be replayed."""
    total, moves = 0, 0
    while True:
        bonus = req.randint(0, 9) + req.randint(0, 9)
        req.continue_('<p id="state">total=%d moves=%d bonus=%d (v3)</p>'
                      '<form><input type="hidden" name="__wc" value="%s"></form>'
                      % (total, moves, bonus, escape(req.continuation_id)))
        total += int(req.parameters.get("n", ["0"])[0]) + bonus
        moves += 1


def adder_patched(req):
    """Version 4: a deliberate branch with req.patched, so old games go on."""
    total, moves = 0, 0
    while True:
        bonus = req.randint(0, 9)
        if req.patched("double-bonus"):
            bonus *= 2
        req.continue_('<p id="state">total=%d moves=%d bonus=%d (v4)</p>'
                      '<form><input type="hidden" name="__wc" value="%s"></form>'
                      % (total, moves, bonus, escape(req.continuation_id)))
        total += int(req.parameters.get("n", ["0"])[0]) + bonus
        moves += 1


_unrecorded_random = random.Random().random


def sneaky(req):
    """Draws randomness behind webcont's back: replay_check must catch it."""
    while True:
        req.continue_('<p>%f</p><form><input type="hidden" name="__wc" value="%s"></form>'
                      % (_unrecorded_random(), escape(req.continuation_id)))


def seed_server_app(store, secret="s" * 32, continuation_timeout=300):
    """For tests.webcont.serve_app: the durable seed game."""
    return seed_game(store, secret, continuation_timeout=float(continuation_timeout))


def revealing_game(req):
    """The guess game, with its secret in an HTML comment (for cluster tests only)."""
    secret = random.randint(1, 100)
    tries, message = 0, "Guess a number between 1 and 100"
    while True:
        req.continue_('<!-- secret=%d --><p id="message">%s</p><p>tries=%d</p>'
                      '<form action="/"><input type="hidden" name="__wc" value="%s">'
                      '<input name="guess"></form>'
                      % (secret, message, tries, escape(req.continuation_id)))
        guess = int(req.parameters["guess"][0])
        tries += 1
        if guess == secret:
            return '<!-- secret=%d --><p id="message">Yay %d in %d</p>' % (secret, guess, tries)
        message = "too low" if guess < secret else "too high"


def cluster_node(store, node, secret="c" * 32, sweep_interval=0.5):
    """One node of a test cluster: the revealing game, durable on a shared store."""
    app = SessionlessApp(store=store, secret=secret, node=node,
                         sweep_interval=float(sweep_interval))
    app.route("/", revealing_game, durable=True)
    return app


def chatty(req):
    """Logs inside the controller (log records read the clock): replays must not care."""
    import logging
    logger = logging.getLogger("tests.chatty")
    moves = 0
    while True:
        logger.warning("move %d of %s", moves, req.environ.get("PATH_INFO", "?"))
        req.continue_('<p id="state">moves=%d</p><form><input type="hidden" name="__wc"'
                      ' value="%s"></form>' % (moves, escape(req.continuation_id)))
        moves += 1
        if req.parameters.get("boom"):
            raise ValueError("boom on request")


def short_game(req):
    """Two moves and it is over."""
    req.continue_('<form><input type="hidden" name="__wc" value="%s"></form>'
                  % escape(req.continuation_id))
    return '<p id="state">final=%s</p>' % escape(req.parameters["n"][0])


def _form(req, state):
    """A page showing ``state`` with a form carrying the continuation id."""
    return ('<p id="state">%s</p><form><input type="hidden" name="__wc" value="%s"></form>'
            % (state, escape(req.continuation_id)))


def quitter(req):
    """Leaves with SystemExit (not an Exception) when asked to."""
    moves = 0
    while True:
        req.continue_(_form(req, "moves=%d" % moves))
        moves += 1
        if req.parameters.get("quit"):
            raise SystemExit("bye")


def _forgiving(high):
    """A controller that swallows every Exception around its step, as careless
    validation code does; versions differ in the range of their one draw."""
    def forgiving(req):
        total = 0
        while True:
            req.continue_(_form(req, "total=%d" % total))
            try:
                total += int(req.parameters["n"][0]) * req.randint(1, high)
            except Exception:
                pass
    forgiving.__name__ = "forgiving_%d" % high
    return forgiving


forgiving_v1 = _forgiving(9)
forgiving_v2 = _forgiving(99)  # replays a v1 log with another draw: diverges


def forgiving_v3(req):
    """forgiving_v1 without its draw, retrying whatever goes wrong, suspending too."""
    total = 0
    while True:
        try:
            req.continue_(_form(req, "total=%d" % total))
            total += int(req.parameters["n"][0])
        except Exception:
            continue


def consuming(req):
    """Takes its input out of req.parameters in place."""
    total = 0
    while True:
        req.continue_(_form(req, "total=%d" % total))
        total += int(req.parameters["n"].pop())


def counter(req):
    """Adds the numbers it is sent (no draws: the same code runs in memory)."""
    total, moves = 0, 0
    while True:
        req.continue_(_form(req, "total=%d moves=%d" % (total, moves)))
        total += int(req.parameters.get("n", ["0"])[0])
        moves += 1


def counter_app(store="", secret="o" * 32, node="", **options):
    """``counter`` at ``/`` and ``/other``; durable on ``store``, in memory without."""
    app = SessionlessApp(store=store or None, secret=secret, node=node or None, **options)
    for path in ("/", "/other"):
        app.route(path, counter, durable=bool(store))
    return app


def echoer(req):
    """Shows what it was sent, escaped (a page a client can make big)."""
    text = ""
    while True:
        req.continue_(_form(req, "moves=%d" % len(text)) + "<p>%s</p>" % escape(text))
        text = req.parameters.get("text", [""])[0]


def limits_app(store, secret="l" * 32, version=None, **options):
    """``counter`` at ``/``, ``echoer`` at ``/echo`` (durable) and an in-memory ``/ping``."""
    app = SessionlessApp(store=store, secret=secret, **options)
    app.route("/", counter, durable=True, version=version)
    app.route("/echo", echoer, durable=True)
    app.route("/ping", lambda req: "pong")
    return app


def _charge(calls_file, key, fail=False):
    """Stands in for a payment: one line in ``calls_file`` per real call; a fresh token."""
    token = secrets.token_hex(4)
    with open(calls_file, "a") as calls:
        calls.write("%s %s\n" % (key, token))
    if fail:
        raise KeyError("card %s declined" % token)
    return token


async def _async_token(calls_file, key):
    """``_charge``, as a coroutine."""
    await asyncio.sleep(0)
    return _charge(calls_file, key + "a")


def charger_app(store, calls_file, secret="s" * 32, **options):
    """Each step charges through req.to_thread and shows every token so far;
    ``fail=1`` makes that step's charge raise (shown, with its type)."""
    def charger(req):
        tokens = []
        while True:
            try:
                tokens.append(req.to_thread(_charge, calls_file, req.step_id,
                                            fail="fail" in req.parameters))
            except KeyError as exc:
                tokens.append("%s:%s" % (type(exc).__name__, exc.args[0]))
            try:
                req.to_thread(lambda: (1, 2))  # a tuple: refused, it would replay as a list
            except TypeError as exc:
                refused = "cannot be recorded" in str(exc)
            tokens.append(req.await_(_async_token(calls_file, req.step_id)))
            req.continue_('<p id="tokens">%s</p><p id="refused">%s</p>'
                          '<form><input type="hidden" name="__wc" value="%s"></form>'
                          % (escape(" ".join(tokens)), refused, escape(req.continuation_id)))
    app = SessionlessApp(store=store, secret=secret, **options)
    app.route("/", charger, durable=True, version="1")
    return app


def careless_charger_app(store, calls_file, secret="s" * 32, **options):
    """Each step charges through req.to_thread, taking any failure for a declined card."""
    def careless(req):
        tokens = []
        while True:
            try:
                tokens.append(req.to_thread(_charge, calls_file, req.step_id))
            except Exception as exc:
                tokens.append("declined:%s" % type(exc).__name__)
            req.continue_('<p id="tokens">%s</p>'
                          '<form><input type="hidden" name="__wc" value="%s"></form>'
                          % (escape(" ".join(tokens)), escape(req.continuation_id)))
    app = SessionlessApp(store=store, secret=secret, **options)
    app.route("/", careless, durable=True, version="1")
    return app


def mixed_app(store, secret="s" * 32, **options):
    """The adder, durable at ``/``, and the demo game kept in memory at ``/memory``."""
    from webcont.demos import guess_the_number
    app = adder_app(store, secret, **options)
    app.route("/memory", guess_the_number)
    return app
