"""Fixtures of the durable-store tests: a store URL on SQLite and on a real PostgreSQL."""

import secrets

import pytest

from tests import postgres_server


def running_postgres():
    """Start a throwaway PostgreSQL server from Debian's packages; yield it, stop it
    (skips the test, saying why, where it cannot be started)."""
    reason = postgres_server.unavailable_reason()
    if reason:
        pytest.skip("PostgreSQL backend not tested: " + reason)
    server = postgres_server.PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the whole session."""
    yield from running_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh store: a SQLite file, or a new database on the PostgreSQL server."""
    return _fresh_store(request, request.param, tmp_path)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_store(request, tmp_path):
    """No store (in-memory games, ``""``), or a fresh one as ``store_url``."""
    return "" if request.param == "memory" else _fresh_store(request, request.param, tmp_path)


def _fresh_store(request, kind, tmp_path):
    if kind == "sqlite":
        return "sqlite:///%s" % (tmp_path / "games.db")
    server = request.getfixturevalue("postgres")
    import psycopg
    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(server.url, autocommit=True) as connection:
        connection.execute("CREATE DATABASE %s" % name)
    return server.url.rsplit("/", 1)[0] + "/" + name
