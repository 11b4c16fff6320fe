"""Small controllers that show what continuations make easy.

* ``guess_the_number``: the seed's game with its bugs fixed (a non-number
  is answered "You must guess a number!" and the game goes on; "too
  low"/"too high").
* ``sign_up``: a three-step wizard whose state is just local variables;
  the back button cannot replay a step (each form is single use).

``demo_app()`` routes them: the game at ``/``, the wizard at ``/wizard``.
"""

import random

from ._app import SessionlessApp
from ._pages import escape

__all__ = ["guess_the_number", "sign_up", "demo_app"]

LOW, HIGH = 1, 100

_GUESS_FORM = """<h1>Guess the number</h1>
<p id="message">%(message)s</p>
<p>You have guessed %(guesses)d times.</p>
<form method="get" action="/">
<input type="hidden" name="__wc" value="%(cid)s">
<input type="text" name="guess" autofocus autocomplete="off" inputmode="numeric" aria-label="Your guess">
<input type="submit" value="Guess!">
</form>
<p><small>Other demo: <a href="/wizard">a sign-up wizard</a>.</small></p>"""


def guess_the_number(req):
    """Pick a number in 1..100 and tell the player "too low"/"too high" until found."""
    secret = random.randint(LOW, HIGH)
    guesses = 0
    message = "Please start guessing numbers between %d and %d (both included)" % (LOW, HIGH)
    while True:
        req.continue_(_GUESS_FORM % dict(message=escape(message), guesses=guesses,
                                         cid=escape(req.continuation_id)))
        text = (req.parameters.get("guess") or [""])[0].strip()
        try:
            guess = int(text)
        except ValueError:
            message = "You must guess a number!"
            continue
        if not LOW <= guess <= HIGH:
            message = "%d is not between %d and %d." % (guess, LOW, HIGH)
            continue
        guesses += 1
        if guess < secret:
            message = "You guessed %d - which is too low" % guess
        elif guess > secret:
            message = "You guessed %d - which is too high" % guess
        else:
            break
    return ('<h1>Guess the number</h1>\n<p id="message">Yay - %d is the right number,'
            ' you made it in %d guesses.</p>\n<p><a href="/">Play again</a></p>'
            % (guess, guesses))


_STEP = """<h1>Sign up, step %(step)d of 3</h1>
<p class="error">%(error)s</p>
<form method="post" action="%(path)s?__wc=%(cid)s">
<input type="hidden" name="__wc" value="%(cid)s">
<label>%(label)s <input type="text" name="answer" value="%(value)s" autofocus></label>
<input type="submit" value="Next">
</form>"""


def _ask(req, step, label, valid, error="Please answer.", value=""):
    """Ask one question until ``valid(answer)`` holds; return the answer."""
    problem = ""
    while True:
        req.continue_(_STEP % dict(step=step, label=escape(label), error=escape(problem),
                                   cid=escape(req.continuation_id), value=escape(value),
                                   path="/wizard"))
        value = (req.parameters.get("answer") or [""])[0].strip()
        if valid(value):
            return value
        problem = error


def sign_up(req):
    """A wizard: name, then e-mail, then a confirmation; all state in locals."""
    name = _ask(req, 1, "Your name:", lambda text: 0 < len(text) <= 100,
                "Please give a name of 1 to 100 characters.")
    email = _ask(req, 2, "Your e-mail, %s:" % name, lambda text: "@" in text and len(text) <= 200,
                 "That does not look like an e-mail address.")
    confirmed = _ask(req, 3, "Type yes to sign up %s <%s>:" % (name, email),
                     lambda text: text.lower() in ("yes", "no"), "Please type yes or no.")
    if confirmed.lower() != "yes":
        return '<h1>Not signed up</h1>\n<p><a href="/wizard">Start again</a></p>'
    return ('<h1>Welcome, %s!</h1>\n<p>We will write to %s.</p>\n<p><a href="/">Play a game</a></p>'
            % (escape(name), escape(email)))


def demo_app(durable=False, **options):
    """The demo site: the game at ``/`` and the wizard at ``/wizard``.

    With ``durable=True`` both keep their games in the store (``store=``,
    ``secret=`` options): they survive restarts.
    """
    app = SessionlessApp(**options)
    app.route("/", guess_the_number, durable=durable)
    app.route("/wizard", sign_up, durable=durable)
    return app
