"""Parameter parsing and option validation: the edge where bad input is refused."""

import io
from urllib.parse import parse_qs

import pytest
from hypothesis import given, strategies as st

from webcont._parameters import BadRequest, _parse, parse_parameters
from webcont._settings import APP_OPTIONS, validate


def environ(query="", body=None, content_type="application/x-www-form-urlencoded"):
    env = {"REQUEST_METHOD": "POST" if body is not None else "GET", "QUERY_STRING": query}
    if body is not None:
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_TYPE"] = content_type
    return env


def test_query_and_form_fields_merge_into_lists_as_the_seed_did():
    params = parse_parameters(environ("a=1&b=2&a=3", body=b"a=4&c=%C3%A9"))
    assert params == {"a": ["1", "3", "4"], "b": ["2"], "c": ["é"]}


def test_blank_values_are_dropped_as_parse_qs_did_in_the_seed():
    assert parse_parameters(environ("guess=&x=1")) == {"x": ["1"]}


def test_raw_utf8_bytes_in_the_query_string_are_decoded():
    # WSGI passes raw bytes as latin-1 characters
    query = "name=%s" % "é".encode("utf-8").decode("latin-1")
    assert parse_parameters(environ(query)) == {"name": ["é"]}


@pytest.mark.parametrize("query", ["x=%FF", "x=%C3", "x=" + "\xff"])
def test_non_utf8_input_is_a_400(query):
    with pytest.raises(BadRequest) as error:
        parse_parameters(environ(query))
    assert error.value.args[0] == "400 Bad Request"


def test_too_long_a_query_is_a_414_and_too_many_fields_a_400():
    with pytest.raises(BadRequest) as error:
        parse_parameters(environ("x=" + "1" * 100), max_query_bytes=50)
    assert error.value.args[0] == "414 URI Too Long"
    with pytest.raises(BadRequest) as error:
        parse_parameters(environ("&".join("f%d=1" % n for n in range(20))), max_fields=10)
    assert error.value.args[0] == "400 Bad Request"
    with pytest.raises(BadRequest):
        parse_parameters(environ("a=1&b=2", body=b"c=3&d=4"), max_fields=3)


def test_other_form_encodings_are_refused_with_415():
    with pytest.raises(BadRequest) as error:
        parse_parameters(environ(body=b"{}", content_type="application/json"))
    assert error.value.args[0] == "415 Unsupported Media Type"


def test_options_are_validated_and_unknown_ones_named():
    assert validate({"continuation_timeout": "2.5"}, APP_OPTIONS)["continuation_timeout"] == 2.5
    with pytest.raises(ValueError, match="unknown option.*colour"):
        validate({"colour": 1}, APP_OPTIONS)
    with pytest.raises(ValueError, match="max_continuations"):
        validate({"max_continuations": 0}, APP_OPTIONS)
    with pytest.raises(ValueError, match="max_fields"):
        validate({"max_fields": 1.5}, APP_OPTIONS)


@given(st.text(alphabet="ab=&;%+2Fé \x00", max_size=30), st.integers(0, 6))
def test_queries_are_parsed_as_parse_qs_parses_them_with_or_without_escapes(text, most):
    """``_parse`` splits a query with nothing to unquote itself: the same
    fields and values as ``parse_qs`` in every case, and the same refusal."""
    try:
        expected = parse_qs(text, max_num_fields=most, errors="strict")
    except ValueError as error:
        with pytest.raises(type(error)):
            _parse(text, most)
    else:
        assert _parse(text, most) == expected


def test_a_game_steps_query_is_split_without_parse_qs(monkeypatch):
    import webcont._parameters as parameters
    monkeypatch.setattr(parameters, "parse_qs", None)  # would raise TypeError if called
    assert parse_parameters(environ("__wc=Ab-_9&guess=42&=x&y&z=&guess=7")) == {
        "__wc": ["Ab-_9"], "guess": ["42", "7"], "": ["x"]}
    with pytest.raises(BadRequest, match="more than 3 fields"):
        parse_parameters(environ("a=1&b=2&c=3&d=4"), max_fields=3)
