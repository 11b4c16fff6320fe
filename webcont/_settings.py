"""webcont's options, validated once at the edge (the way waitress does it).

One table maps each option to its converter and default; unknown options
and bad values raise ``ValueError`` naming them.
"""

__all__ = ["APP_OPTIONS", "GATEWAY_OPTIONS", "SERVE_OPTIONS", "WAITRESS_DEFAULTS", "validate"]


def positive_number(value):
    number = float(value)
    if not number > 0:
        raise ValueError("must be > 0")
    return number


def positive_int(value):
    if isinstance(value, bool) or int(value) != float(value):
        raise ValueError("must be a whole number")
    number = int(value)
    if number <= 0:
        raise ValueError("must be > 0")
    return number


def networks(value):
    """``"always"``, ``"never"`` or comma-separated addresses/networks -> a tuple
    of ``ipaddress`` networks (``always``: every address)."""
    import ipaddress
    if isinstance(value, (list, tuple)):
        value = ",".join(str(part) for part in value)
    text = str(value).strip()
    if text == "always":
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    if text in ("never", ""):
        return ()
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(","))


#: SessionlessApp options: name -> (converter, default, meaning)
APP_OPTIONS = {
    "continuation_timeout": (positive_number, 300.0,
                             "seconds a suspended controller waits for its next request"),
    "max_continuations": (positive_int, 10_000,
                          "live continuations kept; beyond it the oldest is expired"),
    "max_query_bytes": (positive_int, 8192, "longest query string accepted (else 414)"),
    "max_fields": (positive_int, 100, "most form fields accepted (else 400)"),
    "tombstone_timeout": (positive_number, 600.0,
                          "seconds a used or expired id is remembered (a resubmission gets"
                          " the same page, 409 or 410) before it is forgotten (then 404)"),
    "max_replay_bytes": (positive_int, 16 << 20,
                         "bytes of answered pages kept so that a form submitted twice gets"
                         " the same page again; beyond it the oldest are forgotten (then 409)"),
    "max_kept_page_bytes": (positive_int, 16 << 20,
                            "bytes of the pages games last answered, kept for the owner's"
                            " 'continue where you left off'; beyond it the least recently"
                            " used are dropped (a durable game's is rendered again by replay)"),
    "max_step_bytes": (positive_int, 16 << 10,
                       "bytes of input one step of a durable game records (its fields as"
                       " JSON); a larger answer is refused (413) and the game stays put"),
    "max_game_bytes": (positive_int, 256 << 10,
                       "bytes of input a durable game records in all; a step past it is"
                       " refused (413): this bounds what a replay reads and runs"),
    "to_thread_workers": (positive_int, 8,
                          "threads running req.to_thread() calls; more calls than that queue"),
    "health_details": (networks, "127.0.0.0/8,::1",
                       "who GET /healthz tells how many games are in memory and why the"
                       " store failed (everyone else gets ok/unhealthy only): networks,"
                       " 'always' or 'never'; behind a proxy set trusted_proxy, or every"
                       " client has the proxy's address"),
    "sweep_interval": (positive_number, 5.0,
                       "seconds between passes expiring durable games past their deadline"),
    "store_timeout": (positive_number, 5.0,
                      "seconds a durable request waits for the store before it answers 503"),
}

#: gateway() / serve() options
GATEWAY_OPTIONS = {
    "max_body_bytes": (positive_int, 65_536, "largest request body accepted (else 413)"),
    "request_timeout": (positive_number, 30.0,
                        "seconds a request may wait for the application (else 504)"),
    "stall_warning": (positive_number, 10.0,
                      "seconds the hub may spend on one request or timer pass before it"
                      " is logged as stalled, with the stack it is stuck in"),
}

#: serve()'s own options (the rest go to waitress)
SERVE_OPTIONS = {
    "read_timeout": (positive_number, 10.0,
                     "seconds a connection may take to send a whole request (line,"
                     " headers, body), from its first byte, or from connecting for the"
                     " first; else it is closed (waitress itself only closes idle ones)"),
    "shutdown_grace": (positive_number, 10.0,
                       "seconds a stop waits for requests in flight, and again for the"
                       " suspended controllers' finally: blocks"),
}

#: waitress options that serve() sets unless given: name -> (default or None, why).
#: None means "derived from max_body_bytes" (see _server.waitress_defaults).
WAITRESS_DEFAULTS = {
    "max_request_body_size": (None, "twice max_body_bytes: waitress spools up to 1 GiB"
                              " by default before the app can refuse it"),
    "max_request_header_size": (65_536, "request line and headers; waitress allows 256 KiB"),
    "expose_tracebacks": (False, "tracebacks go to the log, never to the client"),
    "connection_limit": (500, "connections at once (waitress: 100); with read_timeout, more"
                         " than one client trickling requests can hold before they are closed"),
}


def validate(options, table):
    """Return ``{name: value}`` for every option of ``table``, converted.

    ``ValueError`` names an unknown option or a bad value.
    """
    unknown = sorted(set(options) - set(table))
    if unknown:
        raise ValueError("unknown option(s): %s (known: %s)"
                         % (", ".join(unknown), ", ".join(sorted(table))))
    result = {}
    for name, (convert, default, _meaning) in table.items():
        value = options.get(name, default)
        try:
            result[name] = convert(value)
        except (TypeError, ValueError) as exc:
            raise ValueError("bad value for %s: %r (%s)" % (name, value, exc)) from None
    return result
