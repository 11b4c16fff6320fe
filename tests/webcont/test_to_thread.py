"""req.to_thread over real HTTP: blocking calls leave the hub to the others."""

import concurrent.futures
import threading
import time

import pytest

from .support import Client, ServerProcess, play_to_the_end, won


# threads=1: the worker is the hub; with more, each waiting request holds a
# waitress worker, so there must be more workers than sleepers
@pytest.mark.parametrize("threads", [1, 12])
def test_while_eight_controllers_sleep_in_to_thread_game_steps_are_answered_at_once(threads):
    with ServerProcess("tests.webcont.fixture_apps:blocking", threads=threads,
                       to_thread_workers=8) as server:
        sleepers = concurrent.futures.ThreadPoolExecutor(8)
        started = time.monotonic()
        slow = [sleepers.submit(Client(server.port, timeout=10).get, "/sleep", seconds=0.5)
                for _ in range(8)]
        time.sleep(0.05)  # the eight are in their to_thread calls now
        latencies = []
        client = Client(server.port, timeout=10)
        while time.monotonic() - started < 0.45:
            begun = time.monotonic()
            pages, final = play_to_the_end(client)
            assert won(final)
            latencies.append((time.monotonic() - begun) / len(pages))
        results = [future.result(10) for future in slow]
        elapsed = time.monotonic() - started
        sleepers.shutdown()
    assert all(status == 200 and "slept 0.5" in page for status, _, page in results)
    assert elapsed < 1.5  # the eight slept side by side, not one after another
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    assert p99 < 0.05, "game steps waited for the sleepers: p99 %.3f s" % p99


def test_an_exception_raised_in_the_thread_reaches_the_controller_with_its_type():
    with ServerProcess("tests.webcont.fixture_apps:blocking") as server:
        status, _, page = Client(server.port).get("/fail")
        assert status == 200 and "caught KeyError: &#x27;missing&#x27;" in page


def test_calls_queue_when_every_pool_thread_is_busy():
    with ServerProcess("tests.webcont.fixture_apps:blocking", to_thread_workers=2) as server:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: Client(server.port, timeout=10).get(
                "/sleep", seconds=0.3), range(4)))
        elapsed = time.monotonic() - started
    assert all(status == 200 for status, _, _ in results)
    assert 0.55 < elapsed < 1.5  # two at a time: two rounds of 0.3 s


def test_to_thread_outside_the_hub_is_a_clear_error():
    from webcont._offload import ThreadPool
    pool = ThreadPool(1)
    with pytest.raises(RuntimeError, match="hub"):
        pool.call(time.sleep, (0,))
    pool.shutdown(1)


def test_shutdown_waits_for_running_calls_then_gives_up_with_a_log_line(caplog):
    from webcont._offload import ThreadPool
    pool = ThreadPool(2)
    release = threading.Event()
    quick = pool.submit(time.sleep, (0.1,))
    stuck = pool.submit(release.wait, (10,))
    time.sleep(0.02)
    started = time.monotonic()
    assert pool.shutdown(0.3) is False
    assert 0.25 < time.monotonic() - started < 2
    assert quick.done() and not stuck.done()
    assert "1 to_thread call(s) still running" in caplog.text
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(time.sleep, (0,))
    release.set()
    assert stuck.result(5) is True


def test_coroutines_run_on_the_apps_loop_or_with_asyncio_run_in_a_thread():
    with ServerProcess("tests.webcont.fixture_apps:blocking") as server:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            started = time.monotonic()
            naps = list(pool.map(lambda _: Client(server.port, timeout=10).get(
                "/await", seconds=0.4), range(6)))
            elapsed = time.monotonic() - started
        assert all(status == 200 and "napped 0.4" in page for status, _, page in naps)
        assert elapsed < 1.2  # the six waited side by side on one loop
        status, _, page = Client(server.port).get("/await", seconds=0.01, fail=1)
        assert status == 200 and "caught LookupError" in page
        status, _, page = Client(server.port).get("/asyncio-run")
        assert status == 200 and "napped 0.01" in page


def test_shutdown_fails_the_queued_calls_at_once_and_they_never_run(caplog):
    from webcont._offload import ThreadPool
    pool = ThreadPool(1)
    release, ran = threading.Event(), []
    busy = pool.submit(release.wait, (10,))
    queued = [pool.submit(ran.append, (number,)) for number in range(3)]
    time.sleep(0.05)
    assert pool.shutdown(0.2) is False  # the busy one still runs
    for future in queued:  # failed when shutdown returned, not when a thread frees up
        assert future.done()
        with pytest.raises(RuntimeError, match="never ran"):
            future.result(0)
    assert "3 queued to_thread call(s) dropped" in caplog.text
    release.set()
    assert busy.result(5) is True
    time.sleep(0.1)
    assert ran == []


def test_closing_a_gateway_while_calls_wait_in_the_pool_posts_nothing_to_the_stopped_hub(caplog):
    """The queued call's future fails at the stop; its waiter was killed with the
    hub, and nothing tries to wake it there (no "exception calling callback")."""
    import io

    import webcont
    from webcont import SessionlessApp
    release, ran, entered = threading.Event(), [], threading.Event()

    def slow(req):
        entered.set()
        return "slept %s" % req.to_thread(release.wait, 10)

    def queued(req):
        return "ran %s" % req.to_thread(ran.append, 1)
    app = SessionlessApp({"/slow": slow, "/queued": queued}, to_thread_workers=1)
    gateway = webcont.gateway(app)
    answers = []

    def get(path):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
                   "wsgi.input": io.BytesIO(b"")}
        answers.append(b"".join(gateway(environ, lambda s, h, e=None: answers.append(s))))
    browsers = [threading.Thread(target=get, args=(path,)) for path in ("/slow", "/queued")]
    browsers[0].start()
    assert entered.wait(5)
    browsers[1].start()
    time.sleep(0.2)  # /queued waits behind /slow for the pool's one thread
    gateway.close(timeout=0.3)
    for browser in browsers:
        browser.join(5)
    release.set()
    time.sleep(0.1)
    assert ran == []
    assert len([a for a in answers if isinstance(a, str)]) == 2  # both were answered
    assert "exception calling callback" not in caplog.text
