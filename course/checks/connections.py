"""The checks of assignment 07's graded cells: a learner's short and long clients (same interface:
`request(bytes) -> bytes`, `close()`, context manager; the long one must reconnect once when the
server closed the connection it reuses, and only then), a learner's server with an idle timeout
and a cap per client, and a learner's measurement function. Checks drive idle closes with the
server's events and `wait_for`, never with sleeps, and a busy machine (dozens of kernels on two
cores) makes them slower, never changes a verdict: every wait ends as soon as its condition holds
(CHECK_TIMEOUT only bounds it), a measurement is judged by its mechanism (connections, requests
per connection, and a lower bound the server imposes on a new connection's first reply), never by
comparing two timings.

The lesson's peers and measurements (IdleTimeoutServer, exchange, connect_from, ...) live in
`course.connections`; the checks import them, never the reverse.
"""
from __future__ import annotations

import select
import socket
import time
from typing import Any

from course.checks import expect_type, no_leaked_sockets, record_evidence
from course.checks.runner import call_with_deadline, learner_errors
from course.connections import CHECK_TIMEOUT, IdleTimeoutServer, connect_from, exchange, recv_line
from course.deadline import Deadline, wait_for
from course.errors import PeerError, SetupError, YourCodeError
from course.serving import Address, format_address

__all__ = [
    "CALL_DEADLINE",
    "FIRST_REPLY_DELAY",
    "ACTIVE_PROOF",
    "CAP_IDLE_TIMEOUT",
    "check_short_client",
    "check_long_client_reuses",
    "check_long_client_reconnects",
    "check_long_client_hard",
    "check_idle_timeout",
    "check_connection_cap",
    "check_cap_frees_slots",
    "check_measurement",
]

CALL_DEADLINE = 2 * CHECK_TIMEOUT  # a learner's request may reconnect: two timeouts in the worst case
FIRST_REPLY_DELAY = 0.03  # s the checks' server holds the first reply on a connection (check_measurement)


# ----------------------------------------------------------------------------------------------
# A learner's clients
# ----------------------------------------------------------------------------------------------
def _hint_name(cls) -> str:
    return getattr(cls, "__name__", "your client")


def _make_client(cls, address: Address, timeout: float = CHECK_TIMEOUT):
    name = _hint_name(cls)
    client = call_with_deadline(cls, address, timeout=timeout, name=name)
    for method in ("request", "close", "__enter__", "__exit__"):
        if not callable(getattr(client, method, None)):
            raise YourCodeError(f"{name}({format_address(address)}) has no {method}() method; "
                                f"both clients need request(line), close() and a with-block (__enter__/__exit__)")
    return client


def _request(client, line: bytes, what: str, timeout: float = CALL_DEADLINE) -> bytes:
    name = f"{type(client).__name__}.request"
    with learner_errors(f"{name}({line!r})", what):
        reply = call_with_deadline(client.request, line, timeout=timeout, name=name)
    expect_type(reply, bytes, f"{name}({line!r})")
    return reply


def _expect_reply(client, line: bytes, expected: bytes, what: str = "") -> bytes:
    reply = _request(client, line, what)
    if reply != expected:
        raise YourCodeError(
            f"{type(client).__name__}.request({line!r}) returned {reply!r}; expected {expected!r} "
            f"(the reply line without its b'\\n'){'; ' + what if what else ''}"
        )
    return reply


def _close(client) -> None:
    call_with_deadline(client.close, timeout=CHECK_TIMEOUT, name=f"{type(client).__name__}.close")


def _expect_value_error(client, line: bytes) -> bool:
    name = f"{type(client).__name__}.request"
    try:
        got = call_with_deadline(client.request, line, timeout=CALL_DEADLINE, name=name)
    except ValueError:
        return True
    except (NotImplementedError, YourCodeError):
        raise
    except Exception as exc:
        raise YourCodeError(f"{name}({line!r}) raised {type(exc).__name__}; a request containing b'\\n' "
                            f"would be two requests on the wire: raise ValueError before sending") from exc
    raise YourCodeError(f"{name}({line!r}) returned {got!r}; a request containing b'\\n' would be two "
                        f"requests on the wire: raise ValueError before sending")


def _wait_closes(server: IdleTimeoutServer, count: int, what: str, timeout: float = CHECK_TIMEOUT) -> None:
    wait_for(
        lambda: len(server.events_of("close")) >= count,
        timeout,
        lambda: f"the server saw {len(server.events_of('close'))} of {count} connections closed {timeout} s "
                f"after {what}; does close() (and each short request) close its socket?",
    )


def check_short_client(cls, hard: bool = False) -> None:
    """A short-connection client: one connection per request, closed after the reply."""
    lines = [b"hello", b"second request", b"x" * 3000] if not hard else [b"a", b"", b"\xff\x00 binary", b"y" * 20000]
    evidence: dict[str, Any] = {"request_sizes": [len(line) for line in lines]}
    with IdleTimeoutServer(idle_timeout=5.0, reply_chunk=1000 if hard else None) as server:
        with no_leaked_sockets(f"{_hint_name(cls)}", ignore_ports=[server.port]):
            client = _make_client(cls, server.address)
            try:
                replies = [_expect_reply(client, line, line) for line in lines]
                _wait_closes(server, len(lines), f"{len(lines)} requests")
                if server.accepts != len(lines):
                    raise YourCodeError(f"the server accepted {server.accepts} connections for {len(lines)} requests "
                                        f"of your {_hint_name(cls)}; a short client opens one connection per request")
                if hard:
                    evidence["newline_raises"] = _expect_value_error(client, b"two\nlines")
            finally:
                _close(client)
        evidence.update(replies_echoed=replies == lines, accepts=server.accepts, closed=len(server.events_of("close")))
    if hard:
        with IdleTimeoutServer(max_requests=0) as server:
            client = _make_client(cls, server.address)
            try:
                evidence["closed_without_reply"] = _expect_connection_error(client, server, max_accepts=2)
            finally:
                _close(client)
    record_evidence("short client", **evidence)


def _accepted_so_far(server: IdleTimeoutServer) -> int:
    """How many connections reached the server so far, counting those still waiting in its accept
    queue: one more connection (a marker) goes through the same queue; the server accepts in order,
    in one thread, so once it has accepted the marker it has counted every earlier one."""
    with connect_from("127.0.0.1", server.address) as marker:
        where = format_address(marker.getsockname())
        wait_for(lambda: ("accept", where) in server.events_of("accept"), CHECK_TIMEOUT,
                 f"the server at {server.where} did not accept a connection within {CHECK_TIMEOUT} s", error=PeerError)
        return server.events_of("accept").index(("accept", where))


def _expect_connection_error(client, server, max_accepts: int, why: str = "retry once at most, then raise",
                             line: bytes = b"anyone there?") -> str:
    name = f"{type(client).__name__}.request"
    try:
        got = call_with_deadline(client.request, line, timeout=CALL_DEADLINE, name=name)
    except ConnectionError as exc:
        opened = _accepted_so_far(server)
        if opened > max_accepts:
            raise YourCodeError(f"{name}({line!r}) opened {opened} connection(s) to a server that closes them at once "
                                f"(at most {max_accepts} expected); {why}") from exc
        return "ConnectionError"
    except (NotImplementedError, YourCodeError):
        raise
    except Exception as exc:
        raise YourCodeError(f"{name}({line!r}) raised {type(exc).__name__} when the server closed the "
                            f"connection without a reply; raise ConnectionError (recv returned b'')") from exc
    raise YourCodeError(f"{name}({line!r}) returned {got!r} although the server closed the connection "
                        f"without replying; raise ConnectionError when recv returns b'' before a full line")


def check_long_client_reuses(cls, n: int = 5) -> None:
    """A long-connection client: many requests over one connection, closed by close()."""
    lines = [f"request {i}".encode() for i in range(n)]
    with IdleTimeoutServer(idle_timeout=5.0) as server:
        with no_leaked_sockets(f"{_hint_name(cls)}", ignore_ports=[server.port]):
            client = _make_client(cls, server.address)
            try:
                replies = [_expect_reply(client, line, line) for line in lines]
                if server.accepts != 1:
                    raise YourCodeError(f"the server accepted {server.accepts} connections for {n} requests of your "
                                        f"{_hint_name(cls)}; a long client opens one connection and reuses it")
            finally:
                _close(client)
            _wait_closes(server, 1, f"{_hint_name(cls)}.close()")
        record_evidence("long client reuses", requests=lines, replies=replies, accepts=server.accepts)


def check_long_client_reconnects(cls, reset: bool = False, rounds: int = 1) -> None:
    """After the server closed the idle connection, the next request still gets its reply, on a
    second connection (which the following request reuses)."""
    evidence: dict[str, Any] = {"reset_on_idle": reset, "rounds": rounds}
    with IdleTimeoutServer(idle_timeout=0.2, reset_on_idle=reset) as server:
        with no_leaked_sockets(f"{_hint_name(cls)}", ignore_ports=[server.port]):
            client = _make_client(cls, server.address)
            try:
                replies = [_expect_reply(client, b"before idle", b"before idle")]
                for r in range(rounds):
                    wait_for(lambda: len(server.events_of("close")) > r, server.idle_timeout + CHECK_TIMEOUT,
                             "the server did not close the idle connection", error=PeerError)
                    if server.idle_closes <= r:
                        raise YourCodeError(f"your {_hint_name(cls)} closed its connection right after a request; a "
                                            f"long client keeps it open for the next request")
                    how = "an RST (ConnectionResetError)" if reset else "a FIN (recv returns b'')"
                    replies.append(_request(
                        client, b"after idle",
                        f"after the server closed the idle connection with {how}; catch it, "
                        f"connect again and retry the request once",
                    ))
                    if replies[-1] != b"after idle":
                        raise YourCodeError(f"{type(client).__name__}.request(b'after idle') returned {replies[-1]!r} "
                                            f"after the server closed the idle connection; reconnect and retry the "
                                            f"request when recv returns b'' (or raises ConnectionResetError)")
                replies.append(_expect_reply(client, b"reused", b"reused"))
                # Each new connection must follow an idle close (a stalled machine may add idle closes).
                accepts, idle_closes = server.accepts, server.idle_closes
                if not rounds + 1 <= accepts <= idle_closes + 1:
                    raise YourCodeError(f"the server accepted {accepts} connections after closing {idle_closes} idle "
                                        f"ones; open a new connection only when the one you reuse failed, then reuse "
                                        f"the new one")
            finally:
                _close(client)
        evidence.update(replies=replies, new_connection_per_idle_close=True)
    record_evidence("long client reconnects", **evidence)


def check_long_client_hard(cls) -> None:
    """Harder cases: a server that closes after every 3 replies (replies in pieces); a request
    with a newline (ValueError); a server that closes every connection at once (the first request
    fails on a fresh connection: ConnectionError, no retry); a server going down after one
    connection (the request fails on the reused connection, then on the fresh one: ConnectionError
    after exactly one retry)."""
    evidence: dict[str, Any] = {}
    lines = [f"{i:03d}".encode() for i in range(10)]
    with IdleTimeoutServer(idle_timeout=5.0, max_requests=3, reply_chunk=2) as server:
        with no_leaked_sockets(f"{_hint_name(cls)}", ignore_ports=[server.port]):
            client = _make_client(cls, server.address)
            try:
                evidence["replies"] = [_expect_reply(client, line, line, "the server closes each connection after 3 replies: notice it, reconnect and retry once")
                                       for line in lines]
                if server.accepts != 4:
                    raise YourCodeError(f"the server closes a connection after 3 replies, so 10 requests need 4 "
                                        f"connections; yours opened {server.accepts}")
                evidence["newline_raises"] = _expect_value_error(client, b"two\nlines")
            finally:
                _close(client)
        evidence["accepts"] = server.accepts
    with IdleTimeoutServer(max_requests=0) as server:
        client = _make_client(cls, server.address)
        try:
            evidence["fresh_failure_raises"] = _expect_connection_error(
                client, server, max_accepts=1,
                why="a request that fails on a connection just opened is not retried: raise ConnectionError")
        finally:
            _close(client)
    with IdleTimeoutServer(max_requests=1, serve_connections=1) as server:
        client = _make_client(cls, server.address)
        try:
            evidence["first_reply"] = _expect_reply(client, b"first", b"first")
            evidence["retry_fails_raises"] = _expect_connection_error(
                client, server, max_accepts=2, line=b"second",
                why="after the reused connection failed, retry once on a new connection; if that fails too, "
                    "raise ConnectionError")
        finally:
            _close(client)
    record_evidence("long client hard cases", **evidence)


# -- a learner's server ----------------------------------------------------------------------
def _start_server(cls, **kwargs):
    name = getattr(cls, "__name__", "your server")
    server = call_with_deadline(cls, name=name, **kwargs)
    call_with_deadline(server.start, name=f"{name}.start")
    if not server.address:
        raise YourCodeError(f"{name}.start() left .address empty; build on course.serving.TcpServer")
    return server


def _stop_server(server) -> None:
    try:
        call_with_deadline(server.close, timeout=5.0, name=f"{type(server).__name__}.close")
    except SetupError as exc:
        raise YourCodeError(f"{type(server).__name__} did not stop: {exc}; does handle_connection return when "
                            f"recv returns b'' or times out?") from exc


def _served(sock: socket.socket, line: bytes, who: str, server_name: str) -> None:
    try:
        reply = exchange(sock, line)
    except TimeoutError:
        raise YourCodeError(f"your {server_name} did not answer {line!r} from {who} within {CHECK_TIMEOUT} s; "
                            f"does it echo each line followed by b'\\n'?") from None
    except (ConnectionError, ValueError) as exc:
        raise YourCodeError(f"your {server_name} closed the connection of {who} instead of answering {line!r} "
                            f"({type(exc).__name__}); is it closing connections that are not idle?") from None
    if reply != line:
        raise YourCodeError(f"your {server_name} answered {reply!r} to {line!r} from {who}; it should echo the line")


def _closed_by_peer(sock: socket.socket) -> bool:
    """True if the peer closed the connection (FIN or RST); never blocks."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except ConnectionError:
        return True


ACTIVE_PROOF = 8  # requests the server answers after the idle timeout before an idle connection still open is its fault


def _active_request(sock: socket.socket, line: bytes, server_name: str) -> tuple[bool, float]:
    """One request of the active client: (answered, when its bytes were in the server's receive
    queue at the latest: after sendall returned on loopback; before it, if sendall failed)."""
    sent = time.monotonic()
    try:
        sock.sendall(line + b"\n")
        sent = time.monotonic()
        reply = recv_line(sock)
    except TimeoutError:
        raise YourCodeError(f"your {server_name} did not answer {line!r} from an active client within {CHECK_TIMEOUT} s; "
                            f"does it echo each line followed by b'\\n'?") from None
    except (ConnectionError, ValueError):
        return False, sent
    if reply != line:
        raise YourCodeError(f"your {server_name} answered {reply!r} to {line!r} from an active client; it should echo the line")
    return True, sent


def check_idle_timeout(cls, idle_timeout: float = 0.5, idle_clients: int = 1) -> None:
    """Idle connections are closed after `idle_timeout` without a request (not before half of it);
    a connection that sends a request every idle_timeout / 4 stays open for 2 x idle_timeout.

    The verdict does not depend on the machine's speed. An idle connection still open is the
    server's fault only once the server has answered the active client ACTIVE_PROOF times after
    the idle timeout (its threads were running, but it did not close the idle one). A closed
    active connection is the server's fault only if this check sent its request less than
    idle_timeout after it sent the one before (measured here, so the server's idle interval was
    shorter still); if this check itself stalled longer than that, a correct server may close the
    connection, and the check connects again and watches a new active connection."""
    name = getattr(cls, "__name__", "your server")
    server = _start_server(cls, idle_timeout=idle_timeout, max_per_client=10)
    closed_after: dict[int, float] = {}
    whole = Deadline(CHECK_TIMEOUT + 20 * idle_timeout)
    opened: list[socket.socket] = []
    try:
        idle = [connect_from("127.0.0.1", server.address) for _ in range(idle_clients)]
        opened += idle
        for i, sock in enumerate(idle):
            _served(sock, f"idle {i}".encode(), "an idle client", name)
        last_idle_request = time.monotonic()
        active = connect_from("127.0.0.1", server.address)
        opened.append(active)
        active_since = previous = time.monotonic()  # before the request: see below
        _served(active, b"active 0", "an active client", name)
        served_after_timeout = count = 0
        while len(closed_after) < len(idle) or time.monotonic() - active_since < 2 * idle_timeout:
            # Wait for an idle socket to see the server's FIN, at most until the next active request is due.
            open_idle = [s for i, s in enumerate(idle) if i not in closed_after]
            select.select(open_idle or [active], [], [], idle_timeout / 4)
            for i, sock in enumerate(idle):
                if i not in closed_after and _closed_by_peer(sock):
                    closed_after[i] = time.monotonic() - last_idle_request
            waited = time.monotonic() - last_idle_request
            if len(closed_after) < len(idle) and served_after_timeout >= ACTIVE_PROOF:
                raise YourCodeError(f"your {name}(idle_timeout={idle_timeout}) left an idle connection open "
                                    f"{waited:.1f} s after its last request, while it answered another client "
                                    f"{served_after_timeout} times; set a timeout on recv and close the connection "
                                    f"when it expires")
            if whole.expired():
                raise SetupError(f"the idle-timeout check of {name} could not keep a client active for "
                                 f"{2 * idle_timeout} s within {whole.seconds:g} s: this machine is too busy")
            count += 1
            line = f"active {count}".encode()
            started = time.monotonic()
            answered, sent = _active_request(active, line, name)
            if not answered:
                # A correct server's recv started after the previous request arrived (after
                # `previous`), so it cannot have timed out before this request arrived (by `sent`).
                if sent - previous < idle_timeout:
                    raise YourCodeError(f"your {name}(idle_timeout={idle_timeout}) closed the connection of a client "
                                        f"sending every {idle_timeout / 4:.2f} s (this request came {sent - previous:.2f} s "
                                        f"after the one before); count the idle time again after every request")
                # This check stalled for longer than the idle timeout: not the server's fault.
                active.close()
                active = connect_from("127.0.0.1", server.address)
                opened.append(active)
                active_since = previous = time.monotonic()
                _served(active, b"active again", "an active client", name)
                continue
            previous = started
            if waited > idle_timeout:
                served_after_timeout += 1
        early = [t for t in closed_after.values() if t < idle_timeout / 2]
        if early:
            raise YourCodeError(f"your {name}(idle_timeout={idle_timeout}) closed an idle connection {early[0]:.2f} s "
                                f"after its last request, long before the idle timeout")
    finally:
        for sock in opened:
            sock.close()
        _stop_server(server)
    record_evidence("server idle timeout", idle_timeout=idle_timeout, idle_clients=idle_clients,
                    idle_closed=len(closed_after), active_kept=True)


def _ask(sock: socket.socket, line: bytes) -> bytes | None:
    """Send a request and return the reply line; None if the server closed or reset the connection."""
    try:
        return exchange(sock, line)
    except TimeoutError:
        raise
    except (ConnectionError, ValueError):
        return None


def _first_line(sock: socket.socket, wait: float) -> bytes | None:
    """What a connection receives before sending anything: a refusal line, b'' if the server just
    closed it, or None if nothing came within `wait` s (the server is waiting for a request)."""
    sock.settimeout(wait)
    try:
        return recv_line(sock, limit=1000)
    except TimeoutError:
        return None
    except (ConnectionError, ValueError):
        return b""
    finally:
        sock.settimeout(CHECK_TIMEOUT)


def _closed_soon(sock: socket.socket, wait: float = CHECK_TIMEOUT) -> bool:
    select.select([sock], [], [], wait)
    return _closed_by_peer(sock)


# The cap check's servers close idle connections only after this many seconds: far longer than the
# CHECK_TIMEOUT it waits for a refusal line, so that a server without a cap still holds the extra
# connection open when that wait ends (with 5.0 s for both, its idle close raced the wait, and a busy
# machine turned "kept connection 3 open" into "closed connection 3 without a full line").
CAP_IDLE_TIMEOUT = 4 * CHECK_TIMEOUT


def check_connection_cap(cls, cap: int = 2, hosts: tuple[str, ...] = ("127.0.0.2", "127.0.0.3")) -> None:
    """`cap` connections from one client IP are served; the next one from that IP gets one line
    starting with b'ERROR' and is closed; other IPs still get in; the first ones still work."""
    name = getattr(cls, "__name__", "your server")
    server = _start_server(cls, idle_timeout=CAP_IDLE_TIMEOUT, max_per_client=cap)
    first, others = hosts[0], hosts[1:]
    opened: list[socket.socket] = []
    try:
        for i in range(cap):
            opened.append(connect_from(first, server.address))
            _served(opened[-1], f"{first} #{i + 1}".encode(), f"connection {i + 1} of {first}", name)
        extra = connect_from(first, server.address)
        opened.append(extra)
        line = _first_line(extra, wait=CHECK_TIMEOUT)
        if line is None:
            raise YourCodeError(f"your {name}(max_per_client={cap}) kept connection {cap + 1} from {first} open; count "
                                f"the open connections of each client IP (addr[0]) and refuse the extra one")
        if line == b"":
            raise YourCodeError(f"your {name}(max_per_client={cap}) closed connection {cap + 1} from {first} without a "
                                f"full line; send one line starting with b'ERROR' and ending with b'\\n', then close")
        if not line.startswith(b"ERROR"):
            raise YourCodeError(f"your {name}(max_per_client={cap}) refused connection {cap + 1} from {first} with "
                                f"{line!r}; send one line starting with b'ERROR' that says why, then close")
        if not _closed_soon(extra):
            raise YourCodeError(f"your {name} sent {line!r} to connection {cap + 1} from {first} but did not close it")
        for host in others:
            for i in range(cap):
                sock = connect_from(host, server.address)
                opened.append(sock)
                reply = _ask(sock, f"{host} #{i + 1}".encode())
                if reply is None or reply.startswith(b"ERROR"):
                    raise YourCodeError(f"your {name}(max_per_client={cap}) refused connection {i + 1} from {host} "
                                        f"while {first} held {cap}; count connections per client IP, not in total")
                if reply != f"{host} #{i + 1}".encode():
                    raise YourCodeError(f"your {name} answered {reply!r} to {host}; it should echo the line")
        for i, sock in enumerate(opened[:cap]):
            _served(sock, b"still here", f"connection {i + 1} of {first} after the refusal", name)
    finally:
        for sock in opened:
            sock.close()
        _stop_server(server)
    record_evidence("server connection cap", cap=cap, hosts=list(hosts), refusal_starts_with_error=True,
                    served_per_host=cap)


def _admit(host: str, address: Address, what: str) -> socket.socket:
    """A connection from `host` that the server serves, retried for CHECK_TIMEOUT s while the server
    refuses (it may take a moment to notice that an earlier connection ended)."""
    answers: list = []

    def try_once() -> socket.socket | None:
        sock = connect_from(host, address)
        answers.append(_ask(sock, b"let me in"))
        if answers[-1] == b"let me in":
            return sock
        sock.close()
        return None

    return wait_for(try_once, CHECK_TIMEOUT, lambda: what + f" (last answer: {answers[-1] if answers else None!r})")


def check_cap_frees_slots(cls, cap: int = 2, host: str = "127.0.0.4") -> None:
    """The cap counts open connections only: when one of a client's connections ends (the client
    closes it, or the server closes it as idle), that client may connect again."""
    name = getattr(cls, "__name__", "your server")
    idle_timeout = 0.5
    server = _start_server(cls, idle_timeout=idle_timeout, max_per_client=cap)
    opened: list[socket.socket] = []
    try:
        for i in range(cap):
            opened.append(connect_from(host, server.address))
            _served(opened[-1], b"fill", f"connection {i + 1} of {host}", name)
        opened.pop(0).close()
        opened.append(_admit(host, server.address,
                             f"{host} closed one of its {cap} connections, yet your {name}(max_per_client={cap}) "
                             f"still refused it {CHECK_TIMEOUT:g} s later; decrement the count when a connection ends"))
        for sock in opened:  # the server closes them all as idle: every slot frees up
            if not _closed_soon(sock, idle_timeout + CHECK_TIMEOUT):
                raise YourCodeError(f"your {name}(idle_timeout={idle_timeout}) left an idle connection of {host} open")
        for sock in opened:
            sock.close()
        opened.clear()
        for i in range(cap):
            opened.append(_admit(host, server.address,
                                 f"your {name}(max_per_client={cap}) refused {host} after closing its connections as "
                                 f"idle; decrement the count however the connection ends"))
    finally:
        for sock in opened:
            sock.close()
        _stop_server(server)
    record_evidence("server cap frees slots", cap=cap, admitted_after_client_close=True, admitted_after_idle_close=True)


# -- a learner's measurement -----------------------------------------------------------------
def check_measurement(fn, n: int = 40) -> None:
    """`fn(address, n)` returns (short, long): n latencies each, in seconds, measured against a
    server that holds the first reply on every connection FIRST_REPLY_DELAY s (a network where a
    new connection costs a round trip). The mechanism is checked, not the machine's speed: the
    server saw n connections carrying one request each and one carrying n, and every short
    latency includes a new connection (it is at least FIRST_REPLY_DELAY: a lower bound that no
    load can break, while a list of long latencies has one such value, its first)."""
    name = getattr(fn, "__name__", "your function")
    delay = FIRST_REPLY_DELAY
    with IdleTimeoutServer(idle_timeout=60.0, record_lines=False, first_reply_delay=delay) as server:
        result = call_with_deadline(fn, server.address, n, timeout=CALL_DEADLINE + 2 * n * delay, name=name)
        call = f"{name}(<server>, {n})"
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise YourCodeError(f"{call} returned {type(result).__name__}; return a pair (short, long) of lists")
        short, long = result
        for label, values in (("short", short), ("long", long)):
            if not isinstance(values, (list, tuple)) or len(values) != n:
                size = len(values) if hasattr(values, "__len__") else "?"
                raise YourCodeError(f"{call} returned {size} {label} latencies; expected a list of {n}")
            bad = [v for v in values if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0]
            if bad:
                raise YourCodeError(f"{call} returned {bad[0]!r} among the {label} latencies; each should be the "
                                    f"seconds one request took (a positive float, from time.perf_counter())")
        # The server counts a reply just after sending it: wait until it has counted all 2n.
        wait_for(lambda: sum(server.replies.values()) >= 2 * n, CHECK_TIMEOUT,
                 lambda: f"the server sent {sum(server.replies.values())} replies during {call}; expected {2 * n}: "
                         f"{n} requests over short connections and {n} over the long one")
        per_connection = sorted(server.replies.values())
        if server.accepts != n + 1 or per_connection != [1] * n + [n]:
            raise YourCodeError(f"the server accepted {server.accepts} connections during {call}, carrying "
                                f"{_runs(per_connection)} request(s) each; expected {n + 1}: {n} short ones with 1 "
                                f"request each and 1 long one with {n}")
        # Seconds, not a comparison of two noisy medians: the short ones cannot be faster than the delay.
        fast = [v for v in short if v < delay * 0.95]
        if fast:
            raise YourCodeError(f"{call}: {len(fast)} of the {n} short latencies (the first list) took less than the "
                                f"{delay * 1000:.0f} ms the checks' server holds the first reply on a new connection, "
                                f"e.g. {fast[0] * 1000:.3f} ms; return (short, long) in that order, and time each "
                                f"ShortClient.request call (connect, request, reply, close)")
    record_evidence("measurement", n=n, short_count=len(short), long_count=len(long), accepts=n + 1,
                    requests_per_connection=[1] * n + [n], short_include_a_new_connection=True)


def _runs(values: list[int]) -> str:
    """[1, 1, 1, 5] -> '3 x 1, 1 x 5': how many connections carried how many requests."""
    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{c} x {v}" for v, c in sorted(counts.items())) or "no"

