"""webcont's public names: the documented contract (the README and docs/), all present."""

import inspect

import webcont


def test_the_contract_names_are_exported_and_documented():
    assert set(webcont.__all__) == {"SessionlessApp", "SessionlessRequest", "TimeoutException",
                                    "gateway", "serve", "escape"}
    for name in webcont.__all__:
        assert inspect.getdoc(getattr(webcont, name)), name


def test_serve_and_gateway_keep_their_signatures():
    serve = inspect.signature(webcont.serve)
    assert list(serve.parameters)[:3] == ["wsgi_app", "host", "port"]
    assert serve.parameters["host"].default == "127.0.0.1"
    assert serve.parameters["port"].default == 8080
    assert any(p.kind is p.VAR_KEYWORD for p in serve.parameters.values())
    assert list(inspect.signature(webcont.gateway).parameters)[0] == "wsgi_app"


def test_timeout_exception_is_an_exception_controllers_can_catch():
    assert issubclass(webcont.TimeoutException, Exception)
