"""Web continuations on tasklets, served by waitress.

A controller writes a page and, instead of returning, suspends in its
tasklet until the next request that carries its continuation id: a whole
multi-step interaction is one plain function with local variables.

Public API: ``SessionlessApp``, ``SessionlessRequest``, ``TimeoutException``,
``gateway(wsgi_app)`` and ``serve(wsgi_app, host, port, *, ready=None,
**waitress_options)``;
``escape(text)`` for what a controller echoes into a page.
"""

from ._app import SessionlessApp, SessionlessRequest, TimeoutException
from ._gateway import gateway
from ._pages import escape
from ._server import serve

__all__ = ["SessionlessApp", "SessionlessRequest", "TimeoutException", "gateway", "serve",
           "escape"]
