"""The checks of notebook 04 (TCP client and server): what its graded cells call, with their case tables.

- `check_fetch`, `check_fetch_empty_reply`, `check_fetch_hard`: the learner's fetch(address,
  request, timeout) against a `ReplyThenCloseServer` that answers in several writes and closes, a
  `SilentServer`, and a loopback port where nothing listens.
- `check_echo_*`: the learner's serve_echo(listener, stop), talked to by `ReferenceClient`s (a slow
  and a fast client, many clients at once, clients that leave early or reset).
- `check_sum_answer`: the learner's sum_answer(line) on VALID_REQUESTS and MALFORMED_REQUESTS;
  `check_sum_*`: the learner's serve_sum(listener, stop), requests coalesced, cut into pieces,
  interleaved over several connections, malformed on the wire.

A learner's server runs in `ServerUnderTest`, built on `course.checks.runner.LearnerCall`: the
listening socket is made here (127.0.0.1, port 0), `serve` runs in a thread, and at the end `stop`
is set and the check makes sure `serve` returned and left no socket and no thread behind. Each
check raises `YourCodeError` with one sentence that says what to check, and records deterministic
evidence (data and booleans; never ports or times). The peers live in `course.tcp` and the sum
protocol in `course.sumproto` (the requests sent, the reference answers, the reading of the
learner's replies); this module imports them, never the reverse.
"""
from __future__ import annotations

import random
import socket
import threading
from contextlib import ExitStack, contextmanager
from typing import Callable

from course import kernel, sumproto
from course.checks import expect_type, no_leaked_sockets, record_evidence
from course.checks.runner import DEFAULT_TIMEOUT, LearnerCall, call_with_deadline, learner_errors
from course.deadline import Deadline, wait_for
from course.errors import YourCodeError
from course.serving import Address, format_address
from course.tcp import ReferenceClient, ReplyThenCloseServer, SilentServer, race_slow_and_fast, sum_answer

__all__ = [
    "ServerUnderTest",
    "READ_UNTIL_CLOSE_HINT",
    "check_fetch",
    "check_fetch_empty_reply",
    "check_fetch_hard",
    "CONCURRENT_HINT",
    "SILENT_AT_STOP",
    "check_echo_slow_fast",
    "check_echo_stops_cleanly",
    "check_echo_many_clients",
    "check_echo_early_close",
    "VALID_REQUESTS",
    "MALFORMED_BY_KIND",
    "MALFORMED_REQUESTS",
    "MALFORMED_ON_THE_WIRE",
    "check_sum_answer",
    "check_sum_server",
    "check_sum_coalesced",
    "check_sum_stream",
    "check_sum_concurrent",
    "check_sum_malformed_on_the_wire",
]


# ----------------------------------------------------------------------------------------------
# Running a learner's server: serve(listener, stop)
# ----------------------------------------------------------------------------------------------
class ServerUnderTest:
    """Runs a learner's `serve(listener, stop)` in a `LearnerCall` on a listening socket made here
    (127.0.0.1, port 0, backlog 16), so that reference clients can talk to it at `address`.

    `check_running()` raises at once if `serve` raised or returned before it was asked to stop, or
    if one of its threads died of an exception. `stop()` sets `stop`, waits for `serve` to return
    and for the threads it started to end, and fails if they do not within `stop_timeout` s.
    Leaving the `with` block always closes the listening socket.
    """

    def __init__(self, serve: Callable, name: str | None = None, stop_timeout: float = 1.0):
        self.serve = serve
        self.name = name or getattr(serve, "__name__", "serve")
        self.stop_timeout = stop_timeout
        self.stop_event = threading.Event()
        self.run: LearnerCall | None = None
        self.listener: socket.socket | None = None
        self.address: Address | None = None
        self._stopped = False

    def __enter__(self) -> "ServerUnderTest":
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
        except OSError:
            listener.close()
            raise
        self.listener, self.address = listener, listener.getsockname()
        self.where = format_address(self.address)
        self.run = LearnerCall(self.serve, listener, self.stop_event, name=self.name, stop_event=self.stop_event)
        return self

    # what the LearnerCall saw ------------------------------------------------------------------
    @property
    def thread(self) -> threading.Thread:
        return self.run.thread

    @property
    def error(self) -> BaseException | None:
        return self.run.error if self.run is not None else None

    @property
    def returned(self) -> bool:
        return self.run is not None and self.run.done

    @property
    def thread_errors(self) -> list[tuple[str, BaseException]]:
        return self.run.thread_errors if self.run is not None else []

    def call(self) -> str:
        return f"{self.name}(listener, stop)"

    def check_running(self) -> None:
        if self.error is not None:
            if isinstance(self.error, NotImplementedError):
                raise self.error
            # not learner_errors' shape: the sentence names where it served before the hint
            raise YourCodeError(
                f"{self.call()} raised {type(self.error).__name__}: {self.error}, serving on {self.where}; "
                f"read the traceback above and keep the accept loop running until stop is set"
            ) from self.error
        if self.returned and not self.stop_event.is_set():
            raise YourCodeError(
                f"{self.call()} returned while its clients were still connected to {self.where}; it should "
                f"keep accepting connections until stop.is_set() is true"
            )
        if self.thread_errors:
            raise self._thread_error()

    def _thread_error(self) -> YourCodeError:
        name, exc = self.thread_errors[0]
        error = YourCodeError(
            f"thread {name!r} of your server died of {type(exc).__name__}: {exc}; catch what one client can "
            f"cause (OSError such as ConnectionResetError, ValueError from a bad request) in the code that "
            f"serves that client, so that only that client's connection ends"
        )
        error.__cause__ = exc
        return error

    def stop(self, while_connected: str = "") -> None:
        """Ask the learner's server to stop and check that it did, leaving no thread behind.
        `while_connected` names the clients still connected (and silent) at that moment."""
        self._stopped = True
        self.check_running()
        if while_connected:
            # Set stop only once the server's threads wait on their sockets again: a thread that
            # reads without a timeout is then blocked in recv() for sure, and is caught every time
            # (not only when it happened to look at stop.is_set() before its next recv).
            def settled() -> bool:
                waits = [kernel.thread_waits_on_io(t) for t in self.run.started_threads()]
                return all(w is not False for w in waits)

            try:
                wait_for(settled, 2.0, "")
            except YourCodeError:
                pass  # threads that wait on locks or queues: stop them as they are
        self.stop_event.set()
        during = f" (while {while_connected})" if while_connected else ""
        if not self.run.join(self.stop_timeout):
            self._wake()
            raise YourCodeError(
                f"{self.call()} did not return within {self.stop_timeout} s after stop was set{during}; give the "
                f"listening socket and every connection a timeout (e.g. 0.05 s), check stop.is_set() after each "
                f"timeout, and join the client threads"
            )
        self.check_running()
        try:
            alive = self.run.wait_threads(self.stop_timeout)
            if alive:
                raise YourCodeError(
                    f"{len(alive)} thread(s) of your server were still running "
                    f"{self.stop_timeout} s after {self.call()} returned{during} ({', '.join(t.name for t in alive[:3])}); "
                    f"make each client's thread end when stop is set (recv with a timeout, then look at stop.is_set()) "
                    f"and join it before returning"
                )
        finally:
            self.check_running()

    def _wake(self) -> None:
        """Unblock a learner's accept() that has no timeout: shutdown wakes it on Linux."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self._stopped and exc_type is None:
                self.stop()
                return
            if not self.returned:
                # not run.stop(): a StoppedByCheck raised as serve ends by itself (woken by the
                # shutdown) escapes LearnerCall's thread and prints a traceback in the notebook
                self.stop_event.set()
                if not self.run.join(min(self.stop_timeout, 0.5)):
                    self._wake()
                    self.run.join(0.2)
            if exc_type is not None and issubclass(exc_type, YourCodeError) and not self.thread_errors:
                # a client saw the connection close: was it because a thread of the server died?
                deadline = Deadline(0.5)
                while self.run.started_threads() and not self.thread_errors and not deadline.expired():
                    threading.Event().wait(0.01)
            if exc_type is not None and issubclass(exc_type, YourCodeError) and self.thread_errors and not str(exc).startswith("thread "):
                raise self._thread_error() from exc
        finally:
            self.listener.close()
            if self.run is not None:
                self.run.restore_hook()


class _Checked:
    """A server under test inside `no_leaked_sockets`: what every check of a learner's server uses."""

    def __init__(self, serve: Callable, name: str | None = None):
        self.name = name or getattr(serve, "__name__", "serve")
        self.stack = ExitStack()
        self.server = ServerUnderTest(serve, self.name)

    def __enter__(self) -> ServerUnderTest:
        self.stack.enter_context(no_leaked_sockets(f"{self.name}(listener, stop)"))
        return self.stack.enter_context(self.server)

    def __exit__(self, *exc_info):
        return self.stack.__exit__(*exc_info)


# ----------------------------------------------------------------------------------------------
# Checks: exercise "fetch" (a client that reads until the server closes)
# ----------------------------------------------------------------------------------------------
READ_UNTIL_CLOSE_HINT = "keep calling recv() until it returns b'' (the server closed), then decode everything at once"


def _fetch_once(fetch: Callable, parts: list[bytes], request: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    with no_leaked_sockets("fetch", ignore_ports=()):
        with ReplyThenCloseServer(parts=parts) as server:
            call = f"fetch({server.where!r}, {request!r}, {timeout})"
            try:
                got = call_with_deadline(fetch, server.address, request, timeout, timeout=timeout + 2.0, name="fetch")
            except (NotImplementedError, YourCodeError):
                raise
            except Exception as exc:  # not learner_errors' shape: the server's writes come before the hint
                raise YourCodeError(
                    f"{call} raised {type(exc).__name__}: {exc}, against a server that answers in {len(parts)} writes "
                    f"and closes; {READ_UNTIL_CLOSE_HINT} (a write may end in the middle of a UTF-8 character)"
                ) from exc
            received = b"".join(e[2] for e in server.events_of("recv"))
    expect_type(got, str, call)
    if received != request.encode("utf-8"):
        raise YourCodeError(
            f"the server received {received!r} but the request was {request!r}; send request.encode('utf-8') with sendall()"
        )
    expected = b"".join(parts).decode("utf-8")
    if got != expected:
        raise YourCodeError(
            f"{call} returned {got[:60]!r} ({len(got)} characters) but the server sent {expected[:60]!r} "
            f"({len(expected)} characters) in {len(parts)} writes before closing; {READ_UNTIL_CLOSE_HINT}"
        )
    return got


def check_fetch(fetch: Callable) -> None:
    """Visible check: a reply in three writes, then the server closes."""
    parts = [b"HTTP-ish reply, part one; ", b"part two; ", b"part three, then the server closes.\n"]
    request = "GET /report\n"
    got = _fetch_once(fetch, parts, request)
    record_evidence("fetch_three_writes", request=request, parts=parts, returned=got)


def check_fetch_empty_reply(fetch: Callable) -> None:
    """A server that closes without sending anything: fetch returns ''."""
    got = _fetch_once(fetch, [], "anyone there?\n")
    record_evidence("fetch_empty_reply", returned=got)


def check_fetch_hard(fetch: Callable) -> None:
    """Hidden checks: UTF-8 characters cut between writes, a large reply, a silent server (must
    raise TimeoutError within its timeout, without leaking the socket), and a refused connection."""
    text = "你好客户端，我是服务端：问题正在处理中……完毕。\n".encode("utf-8")
    cuts = [1, 4, 5, 17, 40]  # inside multi-byte characters
    parts = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    got_text = _fetch_once(fetch, parts, "你好服务端，我是客户端小黑!\n")
    rng = random.Random(4)
    big = bytes(rng.choices(b"abcdefghij\n", k=300_000))
    big_parts = [big[:1000], big[1000:200_000], big[200_000:]]
    got_big = _fetch_once(fetch, big_parts, "GET /big\n")

    with no_leaked_sockets("fetch, when the server never answers"):
        with SilentServer() as server:
            outcome = _expect_raise(fetch, server.address, "hello?\n", 0.3, expected=TimeoutError,
                                    why="the server never answers; with sock.settimeout(timeout), recv raises TimeoutError")
    with _port_where_nothing_listens() as address, no_leaked_sockets("fetch, when nothing listens"):
        refused = _expect_raise(fetch, address, "hello?\n", 0.5, expected=ConnectionRefusedError,
                                why="nothing listens there; let connect()'s ConnectionRefusedError propagate")
    record_evidence(
        "fetch_hard",
        utf8_returned=got_text,
        big_length=len(got_big),
        big_matches=got_big == big.decode(),
        silent_server=outcome,
        nothing_listening=refused,
    )


def _expect_raise(fetch: Callable, address: Address, request: str, timeout: float, expected: type, why: str) -> str:
    call = f"fetch({format_address(address)!r}, {request!r}, {timeout})"
    with learner_errors(call, f"it should raise {expected.__name__}: {why}"):
        try:
            got = call_with_deadline(fetch, address, request, timeout, timeout=timeout + 2.0, name="fetch")
        except expected:
            return expected.__name__
    raise YourCodeError(f"{call} returned {got!r}; it should raise {expected.__name__}: {why}")


@contextmanager
def _port_where_nothing_listens():
    """A loopback address where nothing listens, for as long as the block runs: a TCP socket bound
    there (port 0: the kernel's choice) that never listens, so a connect() there is refused (RST).
    Held without SO_REUSEADDR, the port cannot be taken by a listener of another test or process
    meanwhile, as it could if the socket were closed first (a "free port" race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()


# ----------------------------------------------------------------------------------------------
# Checks: exercise "serve_echo" (a concurrent echo server)
# ----------------------------------------------------------------------------------------------
CONCURRENT_HINT = (
    "serve each accepted connection in its own thread (threading.Thread(target=..., args=(conn, stop)).start()) "
    "so that one slow client cannot block the others"
)


SILENT_AT_STOP = "a client was still connected and had sent nothing since its last answer"


def _sockets_now() -> set[int]:
    return kernel.socket_inodes_of_this_process()


def _wait_until_closed_since(server: ServerUnderTest, before: set[int], timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Wait until every socket of this process opened since `before` is closed again (a client's
    own socket and the server's end of its connection), watching the server meanwhile. True if
    that happened within `timeout` s. A condition, not a pause: what follows (stop, say) starts
    only once the server has dealt with that client, however slow the machine."""
    deadline = Deadline(timeout)
    while _sockets_now() - before:
        server.check_running()
        if deadline.expired():
            return False
        threading.Event().wait(min(0.005, deadline.remaining()))
    server.check_running()
    return True


def check_echo_slow_fast(serve_echo: Callable) -> None:
    """Visible check: a slow client connects first and trickles bytes; a fast client must get its
    echo while the slow one is still open. Then the server must stop cleanly."""
    with _Checked(serve_echo) as server:
        result = race_slow_and_fast(server.address, watch=server.check_running)
        if result["slow_echo"] != result["slow_sent"]:
            raise YourCodeError(f"the slow client got {result['slow_echo']!r} back for {result['slow_sent']!r}; echo every byte unchanged")
        if not result["fast_done_before_slow"]:
            raise YourCodeError(
                f"the fast client got {result['fast_echo']!r} back for {result['fast_sent']!r} within {DEFAULT_TIMEOUT} s "
                f"while the slow client was still connected to {server.where}; {CONCURRENT_HINT}"
            )
        server.stop()
    record_evidence("echo_slow_fast", **result, stopped_cleanly=True)


def check_echo_stops_cleanly(serve_echo: Callable) -> None:
    """One client gets its echo and stays connected, silent; stop is set while it is connected:
    serve must return within 1 s, leaving no socket and no thread (the text's contract), and the
    client then sees its connection closed."""
    with _Checked(serve_echo) as server:
        with ReferenceClient(server.address, "a client", watch=server.check_running) as client:
            client.send(b"ping")
            echo = client.read_exactly(4, "echo what you receive with sendall()")
            server.stop(while_connected=SILENT_AT_STOP)
            closed = client.server_closed(DEFAULT_TIMEOUT)
            if not closed:
                raise YourCodeError(
                    f"{server.call()} returned after stop was set but the connection of a client still connected to "
                    f"{server.where} stayed open; close each connection (with conn:) when its thread ends"
                )
    record_evidence("echo_stops_cleanly", echo=echo, stopped_with_a_client_connected=True, connection_closed=closed)


def check_echo_many_clients(serve_echo: Callable, clients: int = 5, size: int = 20_000) -> None:
    """`clients` connections open at once, each sends `size` seeded random bytes; every echo must
    come back complete while all are still connected."""
    rng = random.Random(5)
    payloads = [bytes(rng.randrange(256) for _ in range(size)) for _ in range(clients)]
    with _Checked(serve_echo) as server, ExitStack() as stack:
        peers = [stack.enter_context(ReferenceClient(server.address, f"client {i + 1} of {clients}", watch=server.check_running)) for i in range(clients)]
        for peer, data in zip(peers, payloads):
            peer.send(data)
        complete = []
        for peer, data in zip(peers, payloads):
            echo = peer.read_exactly(len(data), f"all {clients} clients are connected at once; {CONCURRENT_HINT}")
            if echo != data:
                raise YourCodeError(f"{peer.label} got different bytes back from your server at {server.where}; echo the bytes unchanged, in order")
            complete.append(True)
        stack.close()
        server.stop()
    record_evidence("echo_many_clients", clients=clients, bytes_each=size, complete=complete, stopped_cleanly=True)


def check_echo_early_close(serve_echo: Callable) -> None:
    """Clients that leave early: one closes without sending, one without reading its echo, one
    resets the connection (RST); the server must keep serving a later client, then stop cleanly."""
    with _Checked(serve_echo) as server:
        ReferenceClient(server.address, "a client that closes at once", watch=server.check_running).close()
        with ReferenceClient(server.address, "a client that never reads", watch=server.check_running) as lazy:
            lazy.send(b"I will not read the echo")
        with ReferenceClient(server.address, "a client that half-closes", watch=server.check_running) as polite:
            polite.send(b"bye")
            polite.finish()  # FIN: the server's recv() returns b'' after b"bye"
            polite.read_exactly(3, "echo what you receive, also just before the client closes")
            if not polite.server_closed(DEFAULT_TIMEOUT):
                raise YourCodeError(
                    f"a client of {server.where} sent b'bye' and closed its side (your recv() returned b''), but your "
                    f"server kept the connection open for {DEFAULT_TIMEOUT} s; when recv() returns b'', leave that "
                    f"client's loop and close its socket"
                )
        before = _sockets_now()
        with ReferenceClient(server.address, "a client that resets", watch=server.check_running) as rude:
            rude.send(b"x" * 100)
            rude.read_exactly(100, "echo what you receive")
            rude.close(reset=True)
        _wait_until_closed_since(server, before)  # the server has met the RST before stop is ever set
        with ReferenceClient(server.address, "a client after them", watch=server.check_running) as last:
            last.send(b"still there?")
            echo = last.read_exactly(12, "does your server keep accepting after clients closed early or reset?")
        server.stop()
    record_evidence("echo_early_close", last_echo=echo, half_close_closed=True, stopped_cleanly=True)


# ----------------------------------------------------------------------------------------------
# Checks: exercises "sum_answer" and "serve_sum" (seed 002's sum service)
# ----------------------------------------------------------------------------------------------
VALID_REQUESTS = [b'{"A":7,"B":4}', b'{"A": -5, "B": 5}', b'{"B": 2, "A": 40}', b'{"A": 123456789012, "B": 1}',
                  b'{"A": 1, "B": 2, "C": "other keys are ignored"}', b'{"A": 0, "B": 0, "Sum": 99}']
# every kind of line the protocol answers with an error (the names say which rule each one is)
MALFORMED_BY_KIND = {
    "empty line": [b""],
    "not UTF-8": [b"\xc3\x28", b'{"A": 7, "B": \xff}'],
    "not JSON": [b"hello", b'{"A": 7, "B": 4', b'{"A":7,"B":4}{"A":7,"B":4}'],
    "not an object": [b"[7, 4]", b"null", b'"7+4"', b"11"],
    "missing key": [b'{"A": 1}', b'{"B": 4}', b"{}"],
    "not an integer": [b'{"A": "7", "B": 4}', b'{"A": 1.5, "B": 2}', b'{"A": 7, "B": 1e3}', b'{"A": 7, "B": null}', b'{"A": [7], "B": 4}'],
    "a boolean": [b'{"A": true, "B": 1}', b'{"A": 7, "B": false}'],
}
MALFORMED_REQUESTS = [line for lines in MALFORMED_BY_KIND.values() for line in lines]
# what the server check sends on the wire: lines that are not JSON (the other kinds are sum_answer's)
MALFORMED_ON_THE_WIRE = [b"hello", b'{"A": 7, "B": 4']


def _valid_reply(got, line: bytes) -> bool:
    expected = sum_answer(line)
    if "Sum" in expected:
        return isinstance(got, dict) and got == expected and type(got.get("Sum")) is int
    return isinstance(got, dict) and list(got) == ["Error"] and isinstance(got["Error"], str)


def _describe_expected(line: bytes) -> str:
    expected = sum_answer(line)
    return sumproto.encode(expected).decode("utf-8") if "Sum" in expected else '{"Error": "<why, as a string>"} and nothing else'


def check_sum_answer(sum_answer_fn: Callable, lines: list[bytes] | None = None) -> None:
    """Call the learner's sum_answer(line) on each line and compare with the protocol."""
    lines = VALID_REQUESTS[:2] if lines is None else lines
    calls = []
    try:
        for line in lines:
            call = f"sum_answer({line!r})"
            with learner_errors(call, f"it should return {_describe_expected(line)}"):
                got = call_with_deadline(sum_answer_fn, line, name="sum_answer")
            expect_type(got, dict, call)
            if not _valid_reply(got, line):
                raise YourCodeError(f"{call} returned {got!r}; expected {_describe_expected(line)}")
            calls.append({"line": line, "ok": True, "kind": list(got)[0]})
    finally:
        record_evidence("sum_answer", calls=calls)


def _parse_reply(client: ReferenceClient, line: bytes, exact: bool = True) -> dict:
    """The server's answer to `line`, checked against the protocol. exact=False (for a malformed
    line) asks only for an object with an "Error" key: what else the answer holds is sum_answer's
    business, graded by its own cells."""
    raw = client.read_line(
        f"answer each request line ({line!r} here) with one JSON object followed by b'\\n', and keep the "
        f"connection open for the next request until the client closes it"
    )
    try:
        got = sumproto.decode(raw)
    except ValueError:
        raise YourCodeError(f"your server answered {line!r} with {raw[:80]!r}, which is not a JSON line; send json.dumps(answer).encode() + b'\\n'") from None
    if not (_valid_reply(got, line) if exact else isinstance(got, dict) and "Error" in got):
        raise YourCodeError(f"your server answered {line!r} with {raw[:80]!r}; expected {_describe_expected(line)}")
    return got


def _random_requests(rng: random.Random, n: int) -> list[bytes]:
    return [sumproto.request(rng.randint(-10**6, 10**6), rng.randint(-10**6, 10**6)) for _ in range(n)]


def check_sum_server(serve_sum: Callable) -> None:
    """Visible check: several requests on one connection, one at a time."""
    replies = []
    with _Checked(serve_sum) as server:
        with ReferenceClient(server.address, "the client", watch=server.check_running) as client:
            for line in VALID_REQUESTS[:3]:
                client.send(line + b"\n")
                replies.append(_parse_reply(client, line))
            server.stop(while_connected=SILENT_AT_STOP)  # the connection stays open, the client silent
            closed = client.server_closed(DEFAULT_TIMEOUT)
            if not closed:
                raise YourCodeError(
                    f"{server.call()} returned after stop was set but the connection of a client still connected to "
                    f"{server.where} stayed open; close each connection (with conn:) when its thread ends"
                )
    record_evidence("sum_server_one_connection", requests=VALID_REQUESTS[:3], replies=replies,
                    stopped_with_a_client_connected=True, connection_closed=closed)


def check_sum_coalesced(serve_sum: Callable) -> None:
    """Two requests in one write: the server must answer both."""
    lines = VALID_REQUESTS[:2]
    with _Checked(serve_sum) as server:
        with ReferenceClient(server.address, "the client", watch=server.check_running) as client:
            client.send(b"\n".join(lines) + b"\n")
            replies = [_parse_reply(client, line) for line in lines]
        server.stop()
    record_evidence("sum_server_coalesced", requests=lines, replies=replies)


def check_sum_stream(serve_sum: Callable, n: int = 40) -> None:
    """Hidden: `n` requests in one write; then requests cut into pieces that the server reads one
    recv() at a time (a piece may end inside a request, or hold the end of one and the start of the next)."""
    rng = random.Random(2)
    lines = _random_requests(rng, n)
    with _Checked(serve_sum) as server:
        with ReferenceClient(server.address, "the client", watch=server.check_running) as client:
            client.send(b"".join(line + b"\n" for line in lines))
            coalesced = [_parse_reply(client, line) for line in lines]
            pieces = lines[:6] + [VALID_REQUESTS[0]]
            data = b"".join(line + b"\n" for line in pieces)
            cuts = sorted(rng.sample(range(1, len(data)), 8)) + [data.index(b"\n") + 1 + 3]
            client.send_in_pieces(data, cuts)
            split = [_parse_reply(client, line) for line in pieces]
        server.stop()
    record_evidence("sum_server_stream", coalesced=coalesced, split=split)


def check_sum_concurrent(serve_sum: Callable, connections: int = 4, rounds: int = 5) -> None:
    """Hidden: `connections` clients connected at once, each sending `rounds` requests, interleaved."""
    rng = random.Random(3)
    plan = [[_random_requests(rng, 1)[0] for _ in range(rounds)] for _ in range(connections)]
    replies = [[] for _ in range(connections)]
    with _Checked(serve_sum) as server, ExitStack() as stack:
        clients = [stack.enter_context(ReferenceClient(server.address, f"client {i + 1} of {connections}", watch=server.check_running)) for i in range(connections)]
        for r in range(rounds):
            for client, lines in zip(clients, plan):
                client.send(lines[r] + b"\n")
            for i, (client, lines) in enumerate(zip(clients, plan)):
                replies[i].append(_parse_reply(client, lines[r]))
        stack.close()
        server.stop()
    record_evidence("sum_server_concurrent", requests=plan, replies=replies)


def check_sum_malformed_on_the_wire(serve_sum: Callable) -> None:
    """Hidden: lines that are not JSON get {"Error": ...} on the same connection, which stays
    usable; a client that closes in the middle of a request, or resets its connection (RST), ends
    only its own thread."""
    with _Checked(serve_sum) as server:
        with ReferenceClient(server.address, "a client sending bad requests", watch=server.check_running) as client:
            answers = []
            for line in MALFORMED_ON_THE_WIRE + [VALID_REQUESTS[0]]:
                client.send(line + b"\n")
                answers.append("Error" in _parse_reply(client, line, exact=line == VALID_REQUESTS[0]))
        with ReferenceClient(server.address, "a client that leaves mid-request", watch=server.check_running) as quitter:
            quitter.send(b'{"A": 1, ')
        before = _sockets_now()
        with ReferenceClient(server.address, "a client that resets", watch=server.check_running) as rude:
            rude.send(VALID_REQUESTS[0] + b"\n")
            _parse_reply(rude, VALID_REQUESTS[0])
            rude.close(reset=True)
        _wait_until_closed_since(server, before)  # the server has met the RST before stop is ever set
        with ReferenceClient(server.address, "a client after them", watch=server.check_running) as last:
            last.send(VALID_REQUESTS[1] + b"\n")
            final = _parse_reply(last, VALID_REQUESTS[1])
        server.stop()
    record_evidence("sum_server_malformed", lines=MALFORMED_ON_THE_WIRE, is_error=answers, after=final)
