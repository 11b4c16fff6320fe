"""``demo.py`` itself: its flags, a game over HTTP, durable games and the secret file."""

import os
import signal
import subprocess
import sys
import time

import pytest

from .support import (ROOT, Client, continuation_id, demo_process, play_to_the_end,
                      refused_statuses, won)


def run_demo(*arguments, timeout=30):
    return subprocess.run([sys.executable, os.path.join(ROOT, "demo.py")] + list(arguments),
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_demo_prints_its_url_serves_a_game_and_stops_on_sigint():
    server = demo_process("--timeout", "60")
    with server:
        _, final = play_to_the_end(Client(server.port))
        assert won(final)
        status, _, page = Client(server.port).get("/wizard")
        assert status == 200 and continuation_id(page)
        code, out, err = server.stop(signal.SIGINT)
    assert code == 0, err
    assert "stopped" in err  # the graceful stop was logged
    assert "http://" not in out + err  # the URL was printed once, on the first line


@pytest.mark.parametrize("arguments, complaint", [
    (["--threads", "0"], "--threads must be at least 1"),
    (["--timeout", "0"], "--timeout must be positive"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--node", "n0"], "--node needs --store"),
    (["--store", "mysql://x"], "unsupported store URL"),
])
def test_bad_flags_get_a_clear_message_and_exit_code_2(arguments, complaint, tmp_path):
    result = run_demo(*arguments, "--secret-file", str(tmp_path / "secret"))
    assert result.returncode == 2
    assert complaint in result.stderr


def test_a_durable_demo_game_survives_a_restart_on_its_secret_file(tmp_path):
    store = "sqlite:///%s" % (tmp_path / "games.db")
    secret_file = tmp_path / "secret"
    with demo_process("--store", store, "--secret-file", str(secret_file)) as server:
        client = Client(server.port)
        for _ in range(5):  # 50 is the secret one game in a hundred: then play another
            _, _, page = client.get("/")
            status, _, page = client.get("/", __wc=continuation_id(page), guess=50)
            if not won(page):
                break
        assert status == 200 and "You have guessed 1 time." in page
    assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
    secret = secret_file.read_text()
    with demo_process("--store", store, "--secret-file", str(secret_file)) as server:
        status, _, page = Client(server.port).get("/", __wc=continuation_id(page), guess=25)
        assert status == 200 and ("You have guessed 2 times." in page or won(page)), page
    assert secret_file.read_text() == secret  # read again, not replaced


@pytest.mark.parametrize("content", ["short\n", ""])
def test_a_secret_file_too_short_is_refused_and_left_alone(tmp_path, content):
    secret_file = tmp_path / "secret"
    secret_file.write_text(content)
    result = run_demo("--store", "sqlite:///%s" % (tmp_path / "games.db"),
                      "--secret-file", str(secret_file))
    assert result.returncode == 2
    assert "fewer than the 16 an id secret needs" in result.stderr
    assert secret_file.read_text() == content


@pytest.mark.parametrize("store, reason", [
    ("postgresql://someone:hunter2@127.0.0.1:%d/games", "Connection refused"),
    ("sqlite:///%s/not-a-directory/games.db", "File exists"),
])
def test_a_store_that_cannot_be_reached_at_start_is_a_clear_error(tmp_path, store, reason):
    from tests.postgres_server import free_port
    if store.startswith("postgresql"):
        pytest.importorskip("psycopg", reason="postgresql stores need psycopg")
        store = store % free_port()  # nothing listens there
    else:
        (tmp_path / "not-a-directory").write_text("")
        store = store % tmp_path
    started = time.monotonic()
    result = run_demo("--port", "0", "--store", store, "--secret-file", str(tmp_path / "s"))
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert result.stderr.count("demo: the store cannot be used: cannot open") == 1
    assert reason in result.stderr
    assert "hunter2" not in result.stderr + result.stdout  # the password stays hidden
    assert "Traceback" not in result.stderr
    assert "http://" not in result.stdout  # it never listened


def test_a_durable_demo_says_at_start_where_its_games_and_secret_are(tmp_path):
    store = "sqlite:///%s" % (tmp_path / "games.db")
    secret_file = tmp_path / "secret"
    for created in (True, False):
        with demo_process("--store", store, "--secret-file", str(secret_file)) as server:
            pass
        lines = [line for line in server.stderr_text.splitlines() if "durable games on" in line]
        assert len(lines) == 1, server.stderr_text
        assert "kept in %s" % store in lines[0] and str(secret_file) in lines[0]
        assert lines[0].endswith("(just created)") == created


def test_a_secret_that_does_not_fit_the_stores_games_is_warned_about_loudly(tmp_path):
    store = "sqlite:///%s" % (tmp_path / "games.db")
    first, other = str(tmp_path / "first"), str(tmp_path / "elsewhere" / "secret")
    os.mkdir(tmp_path / "elsewhere")
    with demo_process("--store", store, "--secret-file", first) as server:
        client = Client(server.port)
        _, _, page = client.get("/")
        status, _, page = client.get("/", __wc=continuation_id(page), guess=50)
        if "Yay" in page:  # one game in a hundred is won at once: play another
            _, _, page = client.get("/")
            status, _, page = client.get("/", __wc=continuation_id(page), guess=51)
        assert status == 200 and "Yay" not in page
    assert "DOES NOT FIT" not in server.stderr_text
    # started from another directory: a new secret file, and the game is lost to it
    with demo_process("--store", store, "--secret-file", other) as server:
        pass
    warnings = [line for line in server.stderr_text.splitlines() if "DOES NOT FIT" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0]
    assert "1 game(s) waiting" in warnings[0] and other in warnings[0]
    with demo_process("--store", store, "--secret-file", first) as server:
        status, _, page = Client(server.port).get("/", __wc=continuation_id(page), guess=25)
        assert status == 200  # the right secret again: the game goes on
    assert "DOES NOT FIT" not in server.stderr_text


def test_the_default_secret_file_is_documented_next_to_store_and_ignored_by_git():
    options = run_demo("--help").stdout.split("options:")[1]
    store_help = options[options.index("--store URL"):options.index("--secret-file PATH")]
    assert "webcont-secret.txt" in "".join(store_help.split())  # (wrapped at its hyphen)
    with open(os.path.join(ROOT, ".gitignore")) as ignored:
        assert "webcont-secret.txt" in ignored.read().split()


def test_one_player_leaves_a_quiet_log_favicons_and_all(tmp_path):
    """A browser asks for the page and the favicon at once, on two connections."""
    import threading
    with demo_process("--store", "sqlite:///%s" % (tmp_path / "g.db"),
                      "--secret-file", str(tmp_path / "secret")) as server:
        client, icons = Client(server.port), Client(server.port)
        status, headers, body = icons.get("/favicon.ico")
        assert status == 204 and body == "" and "max-age" in headers["Cache-Control"]
        page = None
        for guess in (50, 25, 75, 12, 88, 6, 94):
            fetched = threading.Thread(target=icons.get, args=("/favicon.ico",))
            fetched.start()  # together with the page, as a browser does
            if page is None:
                status, _, page = client.get("/")
            else:
                status, _, page = client.get("/", __wc=continuation_id(page), guess=guess)
            fetched.join(10)
            assert status == 200
            if won(page):
                page = None
    log = server.stderr_text
    assert "WARNING" not in log and "favicon" not in log, log
    assert refused_statuses(log) == [], log  # no 404 nor any other refusal


def test_the_quiet_log_check_reads_refusal_lines_by_their_format_not_digits():
    """A timestamp's ",404" milliseconds once failed the test above; a real 404 must not pass."""
    import logging

    import demo
    from webcont._ratelog import log_refused
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))
    handler = Keep()
    handler.setFormatter(logging.Formatter(demo.LOG_FORMAT))
    logger = logging.getLogger("webcont._app.quiet_log_check")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.setLevel(logging.INFO)
        logger.info("game 4041c0de started at 08:00:01,404")
        log_refused(logger, {"REQUEST_METHOD": "GET", "PATH_INFO": "/favicon from x: 200 .ico",
                             "REMOTE_ADDR": "127.0.0.1"}, "404", "no route")
        log_refused(logger, {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "REMOTE_ADDR": "::1"},
                    "413", "body too large")
    finally:
        logger.removeHandler(handler)
    quiet = "2026-12-05 08:01:10,404 INFO webcont._app: game 404 of 404\n" + records[0]
    assert "404" in quiet and refused_statuses(quiet) == []  # the substring check failed here
    assert refused_statuses("\n".join(records)) == ["404", "413"]
