"""What webcont relies on inside waitress, checked so that an upgrade that moves
it fails here, loudly, rather than as a slow or hung server.

setup.cfg pins the waitress versions these checks passed on (3.0.x).
``serve()`` uses waitress' public ``create_server`` and ``Adjustments``, plus:
the server's ``channel_class`` (replaced after construction, so that a
connection's ``service()`` runs in a hub tasklet and its busy loop goes), the
task dispatcher's ``add_task``/``queue``/``active_count``/``queue_logger``,
the server's ``_map``/``accepting``/``active_channels``/``pull_trigger`` for
the graceful stop, a channel's ``requests``/``will_close``/
``close_when_flushed``/``total_outbufs_len`` in ``writable()``, its
``received()``/``request`` for the read timeout, and its ``task_class``,
whose ``write()`` webcont's task takes over for a response's first bytes
(``build_response_header``, ``wrote_header``, ``complete``, ``has_body``,
``chunked_response``, ``content_length``, ``content_bytes_written``).
"""

import inspect
from importlib.metadata import version

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import Task, ThreadedTaskDispatcher, WSGITask

from webcont._server import Server


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


def test_the_waitress_version_is_one_webcont_was_checked_against():
    major, minor = (int(part) for part in version("waitress").split(".")[:2])
    assert (major, minor) == (3, 0), (
        "waitress %s: re-check tests/webcont/test_waitress_contract.py, then the pin"
        " in setup.cfg" % version("waitress"))


def test_the_server_takes_its_channel_class_from_the_instance_at_accept():
    server = create_server(hello, host="127.0.0.1", port=0)
    try:
        assert server.channel_class is HTTPChannel
        accept = inspect.getsource(type(server).handle_accept)
        assert "self.channel_class(" in accept
        for name in ("_map", "accepting", "active_channels", "pull_trigger", "adj",
                     "effective_host", "effective_port", "task_dispatcher"):
            assert hasattr(server, name), name
    finally:
        server.close()


def test_a_channel_answers_its_requests_in_service_and_reports_its_buffers():
    source = inspect.getsource(HTTPChannel.service)
    assert "self.requests[0]" in source and "add_task(self)" in source
    for name in ("requests", "will_close", "close_when_flushed", "total_outbufs_len"):
        assert name in inspect.getsource(HTTPChannel), name
    assert callable(HTTPChannel.writable)


def test_a_channel_keeps_its_half_read_request_until_it_is_complete():
    # the read timeout (webcont._server._Channel.received) relies on
    # ``request`` being the request still arriving, None once it is complete,
    # and on will_close making the next write turn close the connection
    source = inspect.getsource(HTTPChannel.received)
    assert "self.request = self.parser_class(" in source
    assert "self.request = None" in source and "self.request.completed" in source
    assert "self.will_close" in inspect.getsource(HTTPChannel.writable)
    assert "self.handle_close()" in inspect.getsource(HTTPChannel.handle_write)


def test_a_task_writes_its_head_once_then_the_bytes_its_length_allows():
    # webcont._server._Task.write does the first write itself, as Task.write would
    assert "self.task_class(self, request)" in inspect.getsource(HTTPChannel.service)
    assert HTTPChannel.task_class is WSGITask and WSGITask.write is Task.write
    source = inspect.getsource(Task.write)
    for name in ("self.complete", "self.wrote_header", "self.build_response_header()",
                 "self.has_body", "self.chunked_response", "self.content_length",
                 "self.content_bytes_written", "channel.write_soon("):
        assert name in source, name
    assert "chunked_response = True" in inspect.getsource(Task.build_response_header)


def test_the_dispatcher_queues_tasks_and_counts_active_threads():
    dispatcher = ThreadedTaskDispatcher()
    assert hasattr(dispatcher, "queue") and hasattr(dispatcher, "active_count")
    assert hasattr(dispatcher, "queue_logger")
    assert "queue_logger.warning" in inspect.getsource(ThreadedTaskDispatcher.add_task)
    assert "count" in inspect.signature(wasyncore.loop).parameters


def test_serve_wires_its_channel_and_dispatcher_as_expected():
    for threads in (1, 4):
        server = Server(hello, host="127.0.0.1", port=0, threads=threads)
        try:
            assert issubclass(server.waitress.channel_class, HTTPChannel)
            assert server.waitress.channel_class is not HTTPChannel
            assert isinstance(server.waitress.task_dispatcher, ThreadedTaskDispatcher)
        finally:
            server.gateway.close(1.0)
            server.waitress.task_dispatcher.shutdown(timeout=1)
            server.waitress.close()
