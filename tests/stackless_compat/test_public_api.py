"""The public surface of ``stackless_compat``: the names legacy Stackless code
imports, ``install()`` and ``TaskletExit`` (Stackless' Doc/library/stackless/stackless.rst,
README.md)."""

import builtins
import importlib
import sys

import pytest

import stackless_compat

EXPECTED_ALL = {
    "tasklet", "channel", "bomb", "TaskletExit",
    "run", "schedule", "schedule_remove",
    "getcurrent", "getmain", "getruncount", "getcurrentid", "get_thread_info",
    "atomic", "enable_softswitch", "switch_trap",
    "set_channel_callback", "get_channel_callback",
    "set_schedule_callback", "get_schedule_callback", "set_error_handler",
    "getdebug", "getuncollectables", "getthreads",
    "install", "stackless",
}


def test_all_is_exactly_the_stackless_surface():
    assert set(stackless_compat.__all__) == EXPECTED_ALL
    assert len(stackless_compat.__all__) == len(EXPECTED_ALL)  # no duplicates


@pytest.mark.parametrize("name", sorted(EXPECTED_ALL))
def test_every_public_name_exists_and_has_a_docstring(name):
    obj = getattr(stackless_compat, name)
    assert obj.__doc__ and obj.__doc__.strip()


@pytest.mark.parametrize("name", ["tasklet", "channel", "bomb", "TaskletExit", "atomic"])
def test_the_public_classes_are_classes(name):
    assert isinstance(getattr(stackless_compat, name), type)


def test_the_module_has_a_docstring():
    assert stackless_compat.__doc__ and stackless_compat.__doc__.strip()


def test_tasklet_exit_subclasses_system_exit_not_exception():
    assert issubclass(stackless_compat.TaskletExit, SystemExit)
    assert not issubclass(stackless_compat.TaskletExit, Exception)


def test_live_attributes_are_not_in_all_but_are_readable():
    for name in ("current", "main", "runcount", "threads", "uncollectables", "debug"):
        assert name not in stackless_compat.__all__
        getattr(stackless_compat, name)


@pytest.fixture
def installed():
    """Run install() and undo everything it changed afterwards."""
    saved_module = sys.modules.get("stackless", None)
    had_builtin = hasattr(builtins, "TaskletExit")
    saved_builtin = getattr(builtins, "TaskletExit", None)
    try:
        yield stackless_compat.install()
    finally:
        if saved_module is None:
            sys.modules.pop("stackless", None)
        else:
            sys.modules["stackless"] = saved_module
        if had_builtin:
            builtins.TaskletExit = saved_builtin
        elif hasattr(builtins, "TaskletExit"):
            del builtins.TaskletExit


def test_install_returns_the_package(installed):
    assert installed is stackless_compat


def test_install_makes_import_stackless_give_this_package(installed):
    import stackless
    assert stackless is stackless_compat
    assert importlib.import_module("stackless") is stackless_compat
    assert stackless.stackless is stackless_compat


def test_install_makes_star_import_give_the_stackless_names(installed):
    namespace = {}
    exec("from stackless import *", namespace)
    for name in EXPECTED_ALL:
        assert namespace[name] is getattr(stackless_compat, name)


def test_install_puts_tasklet_exit_in_builtins(installed):
    assert builtins.TaskletExit is stackless_compat.TaskletExit
    namespace = {}
    exec("caught = None\ntry:\n    raise TaskletExit\nexcept SystemExit as e:\n    caught = e",
         namespace)
    assert isinstance(namespace["caught"], stackless_compat.TaskletExit)


def test_install_twice_is_harmless(installed):
    assert stackless_compat.install() is stackless_compat
    import stackless
    assert stackless is stackless_compat


def test_legacy_code_runs_unchanged_after_install(installed):
    source = (
        "import stackless\n"
        "out = []\n"
        "ch = stackless.channel()\n"
        "def producer():\n"
        "    for i in range(3):\n"
        "        ch.send(i)\n"
        "    ch.send_exception(StopIteration)\n"
        "def consumer():\n"
        "    for v in ch:\n"
        "        out.append(v)\n"
        "stackless.tasklet(producer)()\n"
        "stackless.tasklet(consumer)()\n"
        "stackless.run()\n"
    )
    namespace = {}
    exec(source, namespace)
    assert namespace["out"] == [0, 1, 2]


def test_the_fixture_undid_install():
    # runs after the install tests in file order: nothing may leak
    assert sys.modules.get("stackless") is None or sys.modules["stackless"] is not stackless_compat
    assert getattr(builtins, "TaskletExit", None) is not stackless_compat.TaskletExit


def test_the_debug_and_thread_functions_answer_as_stackless_does():
    import threading
    assert stackless_compat.getdebug() is False and stackless_compat.debug is False
    assert stackless_compat.getuncollectables() == [] == stackless_compat.uncollectables
    threads = stackless_compat.getthreads()
    assert isinstance(threads, list) and threads[0] == threading.main_thread().ident
    assert threading.get_ident() in threads


def test_from_stackless_import_star_gives_the_module_itself():
    namespace = {}
    exec("from stackless_compat import *", namespace)
    assert namespace["stackless"] is stackless_compat


def test_wrong_arity_calls_raise_type_error_in_stackless_c_words():
    import threading
    task, channel = stackless_compat.tasklet(lambda: None), stackless_compat.channel()
    expected = [
        (lambda: task.insert(1), "insert() takes no arguments (1 given)"),
        (lambda: task.remove(1, 2), "remove() takes no arguments (2 given)"),
        (lambda: task.kill(0, 1), "kill() takes at most 1 argument (2 given)"),
        (lambda: task.set_atomic(0, 1), "set_atomic() takes exactly one argument (2 given)"),
        (lambda: task.set_atomic(), "set_atomic() takes exactly one argument (0 given)"),
        (lambda: task.set_ignore_nesting(0, 1),
         "set_ignore_nesting() takes exactly one argument (2 given)"),
        (lambda: task.raise_exception(), "raise_exception() takes at least 1 argument"),
        (lambda: stackless_compat.run(0, 0, 0, 0, 0, 1),
         "run_watchdog() takes at most 5 arguments (6 given)"),
        (lambda: channel.send_throw(ValueError, None, None, 1),
         "send_throw expected at most 3 arguments, got 4"),
        (lambda: channel.__next__(1), "expected 0 arguments, got 1"),
    ]
    for call, message in expected:
        with pytest.raises(TypeError) as info:
            call()
        assert str(info.value) == message
    main, current, runcount = stackless_compat.get_thread_info(threading.get_ident(), 0)
    assert main is stackless_compat.getmain() and runcount == 1
    assert type(stackless_compat.channel(1, 2, x=3)).__name__ == "channel"
