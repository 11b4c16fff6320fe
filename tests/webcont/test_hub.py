"""The hub in-process, through gateway(): draining order, timers, timeouts, shutdown."""

import concurrent.futures
import io
import logging
import threading
import time

import pytest

import stackless_compat as stackless
import webcont
from webcont import SessionlessApp, TimeoutException

from .support import close_inline_gateway


def call(app, path="/", query="", method="GET", body=b""):
    """Call a WSGI callable the way a server thread would; return (status, body)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = headers
    chunks = app(environ, start_response)
    return captured["status"], b"".join(chunks).decode()


@pytest.fixture
def gateways():
    made = []

    def make(app, **options):
        gateway = webcont.gateway(app, **options)
        made.append(gateway)
        return gateway
    yield make
    for gateway in made:
        gateway.close()


def test_the_hub_drains_the_run_queue_before_taking_the_next_request(gateways):
    # The seed's ordering trap: the worker registers only after send() returned.
    registry, events = {}, []
    hand_over = stackless.channel

    def worker(reply, key):
        reply.send("page for %s" % key)   # the request resumes first (prefer receiver)...
        stackless.schedule()              # ...and the worker yields once more,
        registry[key] = True              # so it registers late
        events.append(("registered", key))

    def app(environ, start_response):
        key = environ["QUERY_STRING"]
        events.append(("request", key, key in registry))
        reply = hand_over()
        stackless.tasklet(worker)(reply, key)
        page = reply.receive()
        events.append(("answered", key))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [page.encode()]

    gateway = gateways(app)
    for key in ("a", "a", "b"):
        assert call(gateway, query=key) == ("200 OK", "page for %s" % key)
    assert events == [("request", "a", False), ("answered", "a"), ("registered", "a"),
                      ("request", "a", True), ("answered", "a"), ("registered", "a"),
                      ("request", "b", False), ("answered", "b"), ("registered", "b")]


def test_every_request_runs_on_the_one_hub_thread(gateways):
    threads = set()

    def app(environ, start_response):
        threads.add(threading.get_ident())
        stackless.schedule()
        start_response("200 OK", [])
        return [b"ok"]
    gateway = gateways(app)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: call(gateway), range(64)))
    assert results == [("200 OK", "ok")] * 64
    assert threads == {gateway.hub.thread_id}


def test_expiry_fires_on_a_timer_without_any_traffic(gateways):
    cleaned = threading.Event()

    def controller(req):
        try:
            req.continue_("waiting")
        except TimeoutException:
            cleaned.set()
            raise
    gateway = gateways(SessionlessApp({"/": controller}, continuation_timeout=0.2))
    assert call(gateway)[0] == "200 OK"
    assert cleaned.wait(5), "the continuation was not expired by the hub's timer"


def test_an_app_served_again_by_a_new_hub_expires_its_games_there(gateways):
    """The first hub stopped with the expiry timer: the new hub sets its own."""
    cleaned = []

    def controller(req):
        game = req.parameters["game"][0]
        try:
            req.continue_("waiting")
        except TimeoutException:
            cleaned.append(game)
            raise
    app = SessionlessApp({"/": controller}, continuation_timeout=0.3)
    first = gateways(app)
    assert call(first, query="game=old")[0] == "200 OK"  # its expiry timer: on the first hub
    first.hub.stop()
    second = gateways(app)
    assert call(second, query="game=new")[0] == "200 OK"
    deadline = time.monotonic() + 5
    while "new" not in cleaned and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "new" in cleaned, "the second hub never expired the game it holds"


def test_a_request_the_app_never_answers_gets_504_and_its_tasklet_is_killed(gateways):
    killed = threading.Event()

    def app(environ, start_response):
        try:
            stackless.channel().receive()
        finally:
            killed.set()
    gateway = gateways(app, request_timeout=0.3)
    started = time.monotonic()
    status, page = call(gateway)
    assert status == "504 Gateway Timeout" and "did not answer" in page
    assert time.monotonic() - started < 5
    assert killed.wait(5)
    assert call(gateways(lambda e, s: (s("200 OK", []), [b"x"])[1]))[0] == "200 OK"


def test_close_kills_suspended_controllers_so_finally_blocks_run():
    finished = []

    def controller(req):
        try:
            req.continue_("first page")
        finally:
            finished.append(req.continuation_id)
    gateway = webcont.gateway(SessionlessApp({"/": controller}))
    for _ in range(3):
        assert call(gateway)[0] == "200 OK"
    gateway.close()
    assert len(finished) == 3


def test_close_kills_what_the_hub_spawned_and_leaves_an_apps_own_tasklets_to_it():
    """The hub knows its tasklets because it spawned them (requests, controllers);
    a tasklet an app makes itself is the app's to end (here, in its close())."""
    events, gate = [], stackless.channel()

    def waits(label):
        try:
            gate.receive()
        finally:
            events.append(label)

    def controller(req):
        stackless.tasklet(waits)("the app's own")
        try:
            req.continue_("first page")
        finally:
            events.append("controller")
    app = SessionlessApp({"/": controller})
    closing = app.close

    def close(timeout=10.0):
        events.append("app.close")
        closing(timeout)
    app.close = close
    gateway = webcont.gateway(app)
    assert call(gateway)[0] == "200 OK"
    assert gateway.hub._spawned and all(task.alive for task in gateway.hub._spawned)
    gateway.close()
    assert events == ["controller", "app.close"]


def test_a_stray_tasklet_that_raises_is_logged_and_the_hub_goes_on(gateways, caplog):
    def doomed():
        raise ZeroDivisionError("stray")

    def app(environ, start_response):
        stackless.tasklet(doomed)()
        start_response("200 OK", [])
        return [b"fine"]
    gateway = gateways(app)
    with caplog.at_level(logging.ERROR, logger="webcont._hub"):
        assert call(gateway) == ("200 OK", "fine")
        assert call(gateway) == ("200 OK", "fine")
    assert "stray" in caplog.text


def test_an_app_that_raises_or_misbehaves_gets_a_500_page(gateways):
    def raises(environ, start_response):
        raise RuntimeError("boom")

    def no_start_response(environ, start_response):
        return [b"body"]

    def str_chunks(environ, start_response):
        start_response("200 OK", [])
        return ["not bytes"]
    for app in (raises, no_start_response, str_chunks):
        status, page = call(gateways(app))
        assert status == "500 Internal Server Error"
        assert "boom" not in page and "<!DOCTYPE html>" in page


def test_bodies_over_the_limit_are_refused_before_the_hub(gateways):
    seen = []

    def app(environ, start_response):
        seen.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b""]
    gateway = gateways(app, max_body_bytes=10)
    assert call(gateway, method="POST", body=b"0123456789")[0] == "200 OK"
    assert call(gateway, method="POST", body=b"0123456789X")[0] == "413 Content Too Large"
    assert seen == [b"0123456789"]


def test_sessionless_app_outside_a_hub_says_how_to_serve_it():
    app = SessionlessApp({"/": lambda req: "x"})
    with pytest.raises(RuntimeError, match="webcont.serve"):
        call(app)


def test_a_closed_inline_gateway_is_no_longer_the_threads_hub():
    """A gateway this thread drove (as tests and benchmarks do) and then closed
    leaves no current hub behind: an app called here afterwards says how to serve it."""
    from webcont._gateway import InlineGateway
    posted = []
    app = SessionlessApp({"/": lambda req: "x"})
    gateway = InlineGateway(app, posted.append)
    assert call(gateway)[0] == "200 OK"
    close_inline_gateway(gateway, posted)
    with pytest.raises(RuntimeError, match="webcont.serve"):
        call(SessionlessApp({"/": lambda req: "x"}))


@pytest.mark.parametrize("kind", ["thread", "inline"])
def test_a_posted_callback_counts_as_busy_for_the_stall_watch(kind):
    """Store completions resume tasklets through posted callbacks: a controller
    stuck after one must show in busy_since as one run by a request does."""
    from webcont._hub import ThreadHub
    from webcont._inline import InlineHub
    started, release = threading.Event(), threading.Event()
    seen = []

    def stuck():
        started.set()
        release.wait(5)
        seen.append("ran")
    if kind == "thread":
        hub = ThreadHub()
        hub.post(stuck)
    else:
        hub = InlineHub(server_post=lambda callback: None)
        hub.post(stuck)
        runner = threading.Thread(target=hub.run_posted)
        runner.start()
    assert started.wait(5)
    assert hub.busy_since is not None and hub.busy_with == "a posted callback"
    release.set()
    deadline = time.monotonic() + 5
    while hub.busy_since is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.busy_since is None and seen == ["ran"]
    if kind == "thread":
        hub.stop()
    else:
        runner.join(5)
        hub.close()


def test_a_callback_posted_while_the_inline_hub_waits_for_it_costs_the_server_no_task():
    """A durable step waits in handle() for its commit: the completion posted
    then is run by that wait, not queued to waitress as an extra task."""
    from concurrent.futures import Future

    from webcont._inline import InlineHub
    from webcont._job import Job
    tasks = []
    hub = InlineHub(server_post=tasks.append)
    commit = Future()

    def app(environ, start_response):
        body = hub.wait(commit)  # as a durable step waits for the store
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    job = Job({"REQUEST_METHOD": "GET", "PATH_INFO": "/"})
    worker = threading.Thread(target=hub.handle, args=(app, job, 5.0))  # the worker is the hub
    worker.start()
    time.sleep(0.2)
    commit.set_result(b"committed")  # the store thread's completion
    worker.join(5)
    try:
        assert job.finished and job.body == [b"committed"]
        assert tasks == []
        hub.post(lambda: None)  # nobody waits now: the server must run it
        assert tasks == [hub.run_posted]
    finally:
        hub.close()


def test_what_the_inline_hub_posts_itself_in_a_task_runs_as_it_ends_unless_requests_are_queued():
    from webcont._inline import InlineHub
    queued, idle, record = [], [True], []
    hub = InlineHub(server_post=queued.append, server_idle=lambda: idle[0])

    def service():  # a waitress task whose request posts a commit, as a durable step does
        hub.post(lambda: record.append("commit"))
        record.append("served")
    try:
        hub.serve_task(service, "a lone request")
        assert record == ["served", "commit"] and queued == []  # no trip through the queue
        idle[0] = False  # other requests wait in waitress' queue: the commit goes behind
        hub.serve_task(service, "one of several")
        assert record == ["served", "commit", "served"] and len(queued) == 1
        queued.pop()()
        assert record == ["served", "commit", "served", "commit"]
    finally:
        hub.unbind()  # this thread drove it: no later test may find it current
        hub.close()


def test_the_inline_hub_is_alone_in_a_task_with_nothing_queued_nor_posted():
    from webcont._inline import InlineHub
    queued, idle, seen = [], [True], []
    hub = InlineHub(server_post=queued.append, server_idle=lambda: idle[0])

    def service():
        seen.append(hub.alone())
        hub.post(lambda: None)  # something of the hub's own now runs when the task ends
        seen.append(hub.alone())
    try:
        assert not hub.alone()  # outside a task: nobody knows what comes
        hub.serve_task(service, "a lone request")
        idle[0] = False
        hub.serve_task(service, "one of several")
        assert seen == [True, False, False, False]
    finally:
        hub.unbind()
        hub.close()


def test_shutdown_kills_request_tasklets_first_even_those_not_started_yet():
    """A request tasklet killed after its controller would hand the waiting
    request a 500; one not started yet has no frames to be recognised by."""
    from webcont._inline import InlineHub
    from webcont._job import Job
    hub = InlineHub(server_post=lambda callback: None)
    hub._bind()
    gate, requests_alive_then = stackless.channel(), []
    requests = []

    def controller():
        try:
            gate.receive()
        finally:
            requests_alive_then.append(sum(task.alive for task in requests))
    for _ in range(8):
        hub.spawn(controller)
    hub.drain()  # the controllers block on their channel
    for _ in range(8):
        requests.append(hub.spawn_request(lambda environ, start_response: [], Job({})))
    assert all(task.alive and task.frame is None for task in requests)  # queued, never run
    try:
        hub.kill_all()
    finally:
        hub.unbind()
    assert requests_alive_then == [0] * 8 and not any(task.alive for task in requests)
