"""Small controllers that show what continuations make easy.

* ``guess_the_number``: the seed's game with its bugs fixed: anything but
  a whole number from 1 to 100 in ASCII digits is answered with what is
  expected and the game goes on; "too low"/"too high".
* ``sign_up``: a three-step wizard whose state is just local variables;
  the back button cannot replay a step (each form is single use).  It
  checks and records the e-mail address through ``req.to_thread`` (a sleep
  stands in for a database): the game stays responsive meanwhile, and in
  durable mode a sign-up is recorded once, however often it is replayed.

``demo_app()`` routes them: the game at ``/``, the wizard at ``/wizard``.
Each page's ``<h1>`` is also its title (``_pages.page``).
"""

import random
import re
import threading
import time

from ._app import SessionlessApp
from ._pages import escape

__all__ = ["guess_the_number", "sign_up", "demo_app", "read_guess"]

LOW, HIGH = 1, 100

_GUESS_FORM = """<h1>Guess the number</h1>
<p id="message">%(message)s</p>
<p>%(count)s</p>
<form method="get" action="/">
<input type="hidden" name="__wc" value="%(cid)s">
<input type="text" name="guess" autofocus autocomplete="off" inputmode="numeric" aria-label="Your guess">
<input type="submit" value="Guess!">
</form>
<p><small>Other demo: <a href="/wizard">a sign-up wizard</a>.</small></p>"""

# ASCII digits only: int() also takes "\uff15" (a full-width 5), "1_0" and " 7 "
_DIGITS = re.compile(r"[0-9]+")


def plural(count, one, many):
    """``"1 guess"``, ``"2 guesses"``: ``count`` with the word that fits it."""
    return "%d %s" % (count, one if count == 1 else many)


def read_guess(text, low=LOW, high=HIGH):
    """``(number, None)`` for a whole number from ``low`` to ``high`` written in
    ASCII digits, else ``(None, message)`` saying what is expected."""
    text = text.strip()
    if not _DIGITS.fullmatch(text):
        return None, "You must guess a number between %d and %d." % (low, high)
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        shown = text if len(text) <= 12 else "That number"  # never echo 5000 digits
        return None, "%s is not between %d and %d." % (shown, low, high)
    return int(digits), None


def guess_the_number(req):
    """Pick a number in 1..100 and tell the player "too low"/"too high" until found."""
    secret = random.randint(LOW, HIGH)
    guesses = 0
    message = "Please start guessing numbers between %d and %d (both included)" % (LOW, HIGH)
    while True:
        req.continue_(_GUESS_FORM % dict(
            message=escape(message), cid=escape(req.continuation_id),
            count="You have guessed %s." % plural(guesses, "time", "times")))
        guess, problem = read_guess((req.parameters.get("guess") or [""])[0])
        if problem is not None:
            message = problem
            continue
        guesses += 1
        if guess < secret:
            message = "You guessed %d - which is too low" % guess
        elif guess > secret:
            message = "You guessed %d - which is too high" % guess
        else:
            break
    return ('<h1>Guess the number</h1>\n<p id="message">Yay - %d is the right number,'
            ' you made it in %s.</p>\n<p><a href="/">Play again</a></p>'
            % (guess, plural(guesses, "guess", "guesses")))


_STEP = """<h1>Sign up, step %(step)d of 3</h1>
%(error)s<form method="post" action="/wizard?__wc=%(cid)s">
<input type="hidden" name="__wc" value="%(cid)s">
%(fields)s
</form>"""

_QUESTION = """<label>%(label)s <input type="text" name="answer" value="%(value)s" autofocus></label>
<input type="submit" value="Next">"""


def _step(req, step, fields, problem):
    """Show step ``step`` (its ``fields``, and ``problem`` if there is one); return the answer."""
    error = '<p class="error">%s</p>\n' % escape(problem) if problem else ""
    req.continue_(_STEP % dict(step=step, error=error, fields=fields,
                               cid=escape(req.continuation_id)))
    return (req.parameters.get("answer") or [""])[0].strip()


def _ask(req, step, label, valid, error="Please answer.", problem=""):
    """Ask one question (saying ``problem`` first, if any) until ``valid(answer)``
    holds; return the answer."""
    value = ""
    while True:
        value = _step(req, step, _QUESTION % dict(label=escape(label), value=escape(value)),
                      problem)
        if valid(value):
            return value
        problem = error


class Members:
    """The demo's member list, standing in for a database that takes
    ``delay`` seconds to answer (called through ``req.to_thread``)."""

    def __init__(self, delay=0.3):
        self.delay = delay
        self._emails = set()
        self._lock = threading.Lock()

    def has(self, email):
        """True if ``email`` has signed up already (slowly)."""
        time.sleep(self.delay)
        with self._lock:
            return email.lower() in self._emails

    def add(self, name, email):
        """Sign ``email`` up (slowly); its member number."""
        time.sleep(self.delay)
        with self._lock:
            self._emails.add(email.lower())
            return len(self._emails)


MEMBERS = Members()


def sign_up(req):
    """A wizard: name, then e-mail, then a confirmation; all state in locals."""
    name = _ask(req, 1, "Your name:", lambda text: 0 < len(text) <= 100,
                "Please give a name of 1 to 100 characters.")
    taken = ""
    while True:
        email = _ask(req, 2, "Your e-mail, %s:" % name,
                     lambda text: "@" in text and len(text) <= 200,
                     "That does not look like an e-mail address.", taken)
        if not req.to_thread(MEMBERS.has, email):  # the game goes on meanwhile
            break
        taken = "%s has signed up already: another address, please." % email
    confirm = ('<p>Sign up %s &lt;%s&gt;?</p>\n'
               '<button type="submit" name="answer" value="yes" autofocus>Sign up</button>\n'
               '<button type="submit" name="answer" value="no">Cancel</button>'
               % (escape(name), escape(email)))
    answer = _step(req, 3, confirm, "")
    while answer not in ("yes", "no"):  # only a hand-made request sends anything else
        answer = _step(req, 3, confirm, "Please press one of the buttons.")
    if answer != "yes":
        return '<h1>Not signed up</h1>\n<p><a href="/wizard">Start again</a></p>'
    number = req.to_thread(MEMBERS.add, name, email)  # durable: recorded once
    return ('<h1>Welcome, %s!</h1>\n<p>Member number %d. We will write to %s.</p>\n'
            '<p><a href="/">Play a game</a></p>' % (escape(name), number, escape(email)))


def demo_app(durable=False, **options):
    """The demo site: the game at ``/`` and the wizard at ``/wizard``.

    With ``durable=True`` both keep their games in the store (``store=``,
    ``secret=`` options): they survive restarts.
    """
    app = SessionlessApp(**options)
    app.route("/", guess_the_number, durable=durable)
    app.route("/wizard", sign_up, durable=durable)
    return app
