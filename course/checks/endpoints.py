"""Checks of assignment 08: connect_any, http_get and serve_echo_buffered.

Learner code runs only through `course.checks.runner` (call_with_deadline, LearnerCall); every check
records deterministic evidence (what was asked and what was observed as data and booleans, never a
port or a time) and fails with one sentence that says what happened and what to check.

While a check runs, `socket.getaddrinfo` (and so `socket.create_connection`) resolves numeric
addresses only: the names of the hidden cases (`*.course.test`) exist only in the resolver the check
passes, and a learner's code that asks the system about them gets socket.gaierror at once instead
of sending a DNS query off the machine.
"""
from __future__ import annotations

import array
import fcntl
import gc
import random
import re
import selectors
import socket
import struct
import termios
import threading
import warnings
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator

from course.checks import no_leaked_sockets, record_evidence
from course.checks.runner import LearnerCall, call_with_deadline, describe_call
from course import kernel
from course.deadline import Deadline, wait_for
from course.endpoints import HttpReplyServer, StaticResolver, http_reply, listening, refusing, silent
from course.errors import YourCodeError
from course.serving import format_address
from course.tcp import ReferenceClient, SilentServer

__all__ = [
    "check_connect_any",
    "check_connect_any_ipv6",
    "check_connect_any_fallback",
    "check_connect_any_hard",
    "check_http_get",
    "check_http_get_hard",
    "check_http_get_until_close",
    "check_http_get_pieces_hard",
    "check_echo_buffered",
    "check_echo_buffered_hard",
    "check_slow_reader",
    "check_slow_readers_hard",
]

NAME = "dual.course.test"  # a name only the check's resolver knows (.test is reserved, RFC 2606)


# ----------------------------------------------------------------------------------------------
# No name leaves the machine
# ----------------------------------------------------------------------------------------------
@contextmanager
def numeric_names_only() -> Iterator[None]:
    """While the block runs, socket.getaddrinfo answers numeric addresses only (AI_NUMERICHOST)
    and raises socket.gaierror for a name, without asking /etc/hosts or a DNS server."""
    real = socket.getaddrinfo

    def numeric(host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - getaddrinfo's names
        try:
            return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is a name, and the course's checks resolve no names: "
                                  f"use the resolve function you were given") from None

    socket.getaddrinfo = numeric
    try:
        yield
    finally:
        socket.getaddrinfo = real


class _Unclosed:
    """ResourceWarnings about sockets that CPython closed itself (garbage collected without close()),
    recorded from every thread while the block runs (warnings.catch_warnings is process-wide)."""

    def __init__(self) -> None:
        self.caught: list[warnings.WarningMessage] = []
        self._catcher = warnings.catch_warnings(record=True)

    def __enter__(self) -> "_Unclosed":
        gc.collect()  # garbage made before the block is not the code's under test
        self.caught = self._catcher.__enter__()
        warnings.simplefilter("always", ResourceWarning)
        return self

    def __exit__(self, *exc_info) -> None:
        self._catcher.__exit__(*exc_info)

    def sockets(self, ignore_port: int | None = None) -> list[str]:
        """The 'unclosed <socket.socket ...>' messages so far (after a collection), but for sockets
        whose local port is `ignore_port` (a reference server's own)."""
        gc.collect()
        out = []
        for w in list(self.caught):
            text = str(w.message)
            if not (issubclass(w.category, ResourceWarning) and "socket" in text):
                continue
            local = _LADDR.search(text)
            if ignore_port is not None and local and int(local.group(1)) == ignore_port:
                continue
            out.append(text)
        return out


_LADDR = re.compile(r"laddr=\('[^']*', (\d+)")


@contextmanager
def sockets_closed_by_the_code(call: str, hint: str = "close the socket of every attempt that failed",
                               ignore_port: int | None = None) -> Iterator[None]:
    """Fail if a socket made in the block was garbage-collected without close(). CPython then closes
    it itself and says so with a ResourceWarning ('unclosed <socket.socket ...>'): a socket whose
    name was rebound in a loop, or that only a finished function or an exception's traceback still
    held, is gone from /proc as soon as it is collected, so no_leaked_sockets alone would see it or
    not depending on when the collector runs. Collecting at the end makes it the same every time."""
    with _Unclosed() as unclosed:
        yield
        found = unclosed.sockets(ignore_port)
    if found:
        raise YourCodeError(f"{call} left {len(found)} socket(s) for the garbage collector to close "
                            f"({found[0][:120]}); {hint}")


# ----------------------------------------------------------------------------------------------
# connect_any
# ----------------------------------------------------------------------------------------------
FALLBACK_HINT = ("create each socket with the family, type and proto of its answer, give it the timeout, "
                 "connect; on OSError close it and try the next answer")


def _accept_learners(listener: socket.socket, sock: socket.socket, call: str) -> None:
    """Fail unless `sock` (what connect_any returned) is a connected TCP socket whose connection
    `listener` holds."""
    if not isinstance(sock, socket.socket):
        raise YourCodeError(f"{call} returned {sock!r}; it should return the connected socket.socket")
    try:
        mine = sock.getsockname()[:2]
        sock.getpeername()
    except OSError:
        raise YourCodeError(f"{call} returned a socket that is not connected; return the socket whose connect() succeeded") from None
    listener.settimeout(2.0)
    conn, peer = listener.accept()
    with conn:
        if tuple(peer[:2]) != tuple(mine):
            raise YourCodeError(f"{call} returned a socket at {format_address(mine)}, but the connection that reached "
                                f"{format_address(listener.getsockname())} came from {format_address(peer)}")


def _connect_case(connect_any: Callable, host: str, port: int, listener: socket.socket, family: int,
                  resolve: Callable | None = None, timeout: float = 2.0, deadline: float = 4.0) -> dict:
    kwargs = {} if resolve is None else {"resolve": resolve}
    call = describe_call("connect_any", (host, port, timeout), {"resolve": "<the check's resolver>"} if resolve else {})
    with no_leaked_sockets(call), numeric_names_only(), sockets_closed_by_the_code(call):
        try:
            sock = call_with_deadline(connect_any, host, port, timeout, timeout=deadline, name="connect_any", **kwargs)
        except (NotImplementedError, YourCodeError):
            raise
        except Exception as exc:
            raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; an address in its answers accepts "
                                f"connections at {format_address(listener.getsockname())}; {FALLBACK_HINT}") from exc
        try:
            _accept_learners(listener, sock, call)
            if sock.family != family or sock.type != socket.SOCK_STREAM:
                raise YourCodeError(f"{call} returned a socket of family {sock.family!r} and type {sock.type!r}; "
                                    f"expected {socket.AddressFamily(family)!r}, SOCK_STREAM (the answer's own)")
            got = {"family": socket.AddressFamily(sock.family).name, "connected": True}
        finally:
            if isinstance(sock, socket.socket):
                sock.close()
    return got


def check_connect_any(connect_any: Callable) -> None:
    """Visible: connect_any('127.0.0.1', port) with the default resolver (a numeric address:
    getaddrinfo answers it without asking anyone)."""
    with listening("127.0.0.1") as (listener, (host, port)):
        got = _connect_case(connect_any, host, port, listener, socket.AF_INET)
    record_evidence("connect_any_ipv4", host=host, **got)


def check_connect_any_ipv6(connect_any: Callable) -> None:
    """Hidden: an IPv6-only listener on ::1, with the default resolver."""
    with listening("::1") as (listener, (host, port)):
        got = _connect_case(connect_any, host, port, listener, socket.AF_INET6)
    record_evidence("connect_any_ipv6", host=host, **got)


def check_connect_any_fallback(connect_any: Callable) -> None:
    """Visible: a name whose first address (::1) refuses and whose second (127.0.0.1) listens."""
    with refusing("::1") as first, listening("127.0.0.1") as (listener, second):
        resolve = StaticResolver({NAME: [first, second]})
        got = _connect_case(connect_any, NAME, 80, listener, socket.AF_INET, resolve)
        _resolver_was_asked(resolve, "connect_any")
    record_evidence("connect_any_fallback", answers=["::1 refuses", "127.0.0.1 listens"], **got)


def _resolver_was_asked(resolve: StaticResolver, name: str) -> None:
    if not resolve.calls or resolve.calls[0][0] != NAME:
        raise YourCodeError(f"{name} connected without asking the resolver it was given about {NAME!r} "
                            f"(it was asked {resolve.calls}); call resolve(host, port, type=socket.SOCK_STREAM)")


def check_connect_any_hard(connect_any: Callable) -> None:
    """Hidden: the families the other way round; a first address that never answers (a per-attempt
    timeout must end that attempt); every address refusing (the last attempt's
    ConnectionRefusedError, no socket left open)."""
    outcomes = {}
    with refusing("127.0.0.1") as first, listening("::1") as (listener, second):
        resolve = StaticResolver({NAME: [first, second]})
        outcomes["v4_refuses_v6_listens"] = _connect_case(connect_any, NAME, 80, listener, socket.AF_INET6, resolve)
    with silent("127.0.0.1") as first, listening("::1") as (listener, second):
        resolve = StaticResolver({NAME: [first, second]})
        try:
            outcomes["first_silent"] = _connect_case(connect_any, NAME, 80, listener, socket.AF_INET6, resolve,
                                                     timeout=0.3, deadline=3.0)
        except YourCodeError as exc:
            raise YourCodeError(f"with a first address that never answers a SYN and timeout=0.3: {exc}; give each "
                                f"attempt's socket settimeout(timeout) before connect, so that the attempt ends "
                                f"with TimeoutError and the next address is tried") from None
    with refusing("::1") as a, refusing("127.0.0.1") as b:
        resolve = StaticResolver({NAME: [a, b]})
        call = describe_call("connect_any", (NAME, 80, 1.0), {"resolve": "<the check's resolver>"})
        with no_leaked_sockets(call), numeric_names_only(), sockets_closed_by_the_code(call):
            try:
                got = call_with_deadline(connect_any, NAME, 80, 1.0, timeout=3.0, name="connect_any", resolve=resolve)
            except (NotImplementedError, YourCodeError):
                raise
            except ConnectionRefusedError:
                got = None
                outcomes["all_refuse"] = "ConnectionRefusedError"
            except Exception as exc:
                raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc} when both addresses refused; raise the "
                                    f"exception of the last attempt (here ConnectionRefusedError) instead") from exc
            else:
                if isinstance(got, socket.socket):
                    got.close()
                raise YourCodeError(f"{call} returned {got!r} when both addresses refused; raise the exception of the "
                                    f"last attempt (here ConnectionRefusedError)")
    record_evidence("connect_any_hard", **outcomes)


# ----------------------------------------------------------------------------------------------
# http_get
# ----------------------------------------------------------------------------------------------
HTTP_CLOSE_HINT = ("close the socket in every case: open it with 'with socket.create_connection(...) as sock:' (or close it "
                   "in a finally block), so that it is closed when recv raises TimeoutError too")
HTTP_HINT = ("read until the headers' end (b'\\r\\n\\r\\n') has arrived, then Content-Length bytes of body if the "
             "headers give it (any letter case), else until recv returns b''")


def _check_request(request: bytes, path: str, netloc: str, call: str) -> None:
    shown = request[:200]
    if not request.endswith(b"\r\n\r\n") or b"\r\n" not in request:
        raise YourCodeError(f"{call} sent {shown!r}; every line of an HTTP request ends in CRLF (b'\\r\\n') and the "
                            f"headers end with an empty line (b'\\r\\n\\r\\n')")
    lines = request[:-4].split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise YourCodeError(f"{call} sent {shown!r}, with a line ending that is not CRLF; end every line in b'\\r\\n'")
    want = f"GET {path} HTTP/1.1".encode()
    if lines[0] != want:
        raise YourCodeError(f"{call} sent the request line {lines[0]!r}; expected {want!r} (the URL's path, '/' when it "
                            f"has none, with its query)")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"host") != netloc.encode():
        raise YourCodeError(f"{call} sent Host: {headers.get(b'host')!r}; expected {netloc.encode()!r}, the host and port "
                            f"as the URL writes them (HTTP/1.1 requires the Host header)")
    if headers.get(b"connection", b"").lower() != b"close":
        raise YourCodeError(f"{call} sent no 'Connection: close' header ({shown!r}); send it, so that the server closes "
                            f"after its answer")


def _http_case(http_get: Callable, parts: list[bytes], expected: tuple[int, bytes], *, path: str = "/index.html",
               url_path: str | None = None, keep_open: bool = False, host: str = "127.0.0.1", deadline: float = 4.0) -> dict:
    with no_leaked_sockets("http_get"), HttpReplyServer(parts, keep_open=keep_open, host=host) as server, numeric_names_only():
        netloc = format_address(server.address)
        url = f"http://{netloc}{path if url_path is None else url_path}"
        call = describe_call("http_get", (url,))
        try:
            with sockets_closed_by_the_code(call, HTTP_CLOSE_HINT, ignore_port=server.address[1]):
                got = call_with_deadline(http_get, url, timeout=deadline, name="http_get")
        except (NotImplementedError, YourCodeError):
            raise
        except TimeoutError as exc:
            why = ("it keeps the connection open after the body: stop after Content-Length bytes" if keep_open
                   else "it answered and closed")
            raise YourCodeError(f"{call} raised TimeoutError against a server whose answer was {sum(map(len, parts))} bytes "
                                f"in {len(parts)} piece(s) ({why}); {HTTP_HINT}") from exc
        except Exception as exc:
            raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; the answer was {b''.join(parts)[:120]!r} "
                                f"in {len(parts)} piece(s); {HTTP_HINT}") from exc
        requests = server.requests()
        if requests:
            _check_request(requests[0], path, netloc, call)
        if not (isinstance(got, tuple) and len(got) == 2):
            raise YourCodeError(f"{call} returned {got!r}; it should return a tuple (status, body)")
        status, body = got
        if type(status) is not int or not isinstance(body, bytes):
            raise YourCodeError(f"{call} returned ({status!r}, {body[:40]!r}): a {type(status).__name__} and a "
                                f"{type(body).__name__}; the status is an int, the body bytes (not decoded)")
        if (status, body) != expected:
            raise YourCodeError(f"{call} returned ({status}, {body[:60]!r}... {len(body)} bytes); expected ({expected[0]}, "
                                f"{expected[1][:60]!r}... {len(expected[1])} bytes); the answer came in {len(parts)} "
                                f"piece(s); {HTTP_HINT}")
    return {"status": status, "body": body}


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:]) if b > a]


def check_http_get(http_get: Callable) -> None:
    """Visible: 200 with Content-Length, in one write, then the server closes."""
    body = b"hello, world\n"
    got = _http_case(http_get, [http_reply(200, body)], (200, body))
    record_evidence("http_get_content_length", **got)


def check_http_get_hard(http_get: Callable) -> None:
    """Hidden: a server that keeps the connection open after a Content-Length body; the header named
    in lower case; a 404; a URL with a query; a URL without a path; an IPv6 URL."""
    out = {}
    body = b"the body ends here; the connection stays open"
    out["keep_open"] = _http_case(http_get, [http_reply(200, body)], (200, body), keep_open=True)
    lower = http_reply(200, b"abc", length=False, headers=(("content-length", "3"),))
    out["lower_case_header"] = _http_case(http_get, [lower], (200, b"abc"), keep_open=True)
    out["not_found"] = _http_case(http_get, [http_reply(404, b"no such page\n")], (404, b"no such page\n"), path="/missing")
    out["query"] = _http_case(http_get, [http_reply(200, b"found")], (200, b"found"), path="/search?q=tcp&lang=zh")
    out["no_path"] = _http_case(http_get, [http_reply(200, b"root")], (200, b"root"), path="/", url_path="")
    out["ipv6"] = _http_case(http_get, [http_reply(200, b"over IPv6")], (200, b"over IPv6"), host="::1")
    record_evidence("http_get_hard", **out)


def check_http_get_until_close(http_get: Callable) -> None:
    """Visible: no Content-Length; the body in three pieces; the server closes to end it."""
    body = "第一段，第二段，第三段。\n".encode("utf-8")
    reply = http_reply(200, body, length=False)
    head = len(reply) - len(body)
    got = _http_case(http_get, _cut(reply, [head, head + 7, head + 20]), (200, body))
    record_evidence("http_get_until_close", **got)


def check_http_get_pieces_hard(http_get: Callable) -> None:
    """Hidden: headers cut in pieces (inside the blank line that ends them); a 200 kB binary body with
    Content-Length in pieces; a server that never answers (TimeoutError, no socket left open)."""
    out = {}
    reply = http_reply(200, b"short body", length=False)
    end = reply.index(b"\r\n\r\n")
    out["headers_in_pieces"] = _http_case(http_get, _cut(reply, [5, 20, end + 1, end + 3]), (200, b"short body"))
    rng = random.Random(8)
    big = bytes(rng.randrange(256) for _ in range(200_000))
    reply = http_reply(200, big)
    head = len(reply) - len(big)
    out["big_binary_body"] = _http_case(http_get, _cut(reply, [head - 10, head + 1000, head + 150_000]), (200, big))["status"]
    with no_leaked_sockets("http_get, when the server never answers"), SilentServer() as server:
        url = f"http://{format_address(server.address)}/"
        # the TimeoutError's traceback holds http_get's frame: a socket it did not close stays open
        # until the collector frees that frame, so no_leaked_sockets alone would see it or not
        with sockets_closed_by_the_code(f"http_get({url!r}, 0.3), when the server never answers,", HTTP_CLOSE_HINT,
                                        ignore_port=server.address[1]):
            try:
                got = call_with_deadline(http_get, url, 0.3, timeout=3.0, name="http_get")
            except (NotImplementedError, YourCodeError):
                raise
            except TimeoutError:
                out["silent_server"] = "TimeoutError"
            except Exception as exc:
                raise YourCodeError(f"http_get({url!r}, 0.3) raised {type(exc).__name__}: {exc} against a server that never "
                                    f"answers; give the socket the timeout and let recv's TimeoutError propagate") from exc
            else:
                raise YourCodeError(f"http_get({url!r}, 0.3) returned {got!r} from a server that never answers; let recv's "
                                    f"TimeoutError propagate")
    record_evidence("http_get_pieces_hard", **out)


# ----------------------------------------------------------------------------------------------
# serve_echo_buffered
# ----------------------------------------------------------------------------------------------
SMALL_BUFFER = 32 * 1024  # SO_SNDBUF / SO_RCVBUF asked for on the check's sockets (Linux doubles it)
STALL = 1.5  # seconds without room to send: the server has stopped reading this client


class _Server:
    """A learner's serve(listener, stop, limit=...) on 127.0.0.1 port 0, with small buffers on the
    listener (accepted connections inherit them), inside no_leaked_sockets."""

    def __init__(self, serve: Callable, limit: int):
        self.serve, self.limit = serve, limit
        self.stack = ExitStack()

    def __enter__(self) -> "_Server":
        self.stack.__enter__()
        self.stack.enter_context(no_leaked_sockets(f"serve_echo_buffered(listener, stop, limit={self.limit})"))
        listener = self.stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.address, self.where = listener.getsockname(), format_address(listener.getsockname())
        self.stop_event = threading.Event()
        self.unclosed = self.stack.enter_context(_Unclosed())
        self.run = self.stack.enter_context(LearnerCall(self.serve, listener, self.stop_event, name="serve_echo_buffered",
                                                        stop_event=self.stop_event, limit=self.limit))
        self.stack.callback(self._wake)  # first of all on the way out: a server still waiting wakes up and sees stop
        return self

    def __exit__(self, *exc_info):
        return self.stack.__exit__(*exc_info)

    @property
    def call(self) -> str:
        return f"serve_echo_buffered(listener, stop, limit={self.limit})"

    def watch(self) -> None:
        if self.run.done and (self.run.error is not None or not self.stop_event.is_set()):
            if isinstance(self.run.error, NotImplementedError):
                raise self.run.error
            what = f"raised {type(self.run.error).__name__}: {self.run.error}" if self.run.error else "returned"
            raise YourCodeError(f"{self.call} {what} while clients were connected to {self.where}; keep serving "
                                f"until stop is set, and end only the connection that failed") from self.run.error
        if self.run.thread_errors:
            name, exc = self.run.thread_errors[0]
            raise YourCodeError(f"thread {name!r} of your server died of {type(exc).__name__}: {exc}") from exc

    def client(self, label: str) -> ReferenceClient:
        return ReferenceClient(self.address, label, watch=self.watch)

    def quiet(self) -> bool:
        """True when the server has nothing left to do that it knows of: no connection waiting to be
        accepted, no byte it has not read, no client's close it has not acted on (CLOSE_WAIT), and its
        threads asleep in the kernel waiting on their sockets (not running, not on a lock)."""
        host, port = self.address
        for e in kernel.on_port(port):
            if e.local != (host, port):
                continue  # a client's end
            if e.rx_queue or e.state == "CLOSE_WAIT":  # for the listener, rx_queue is its accept queue
                return False
        return self.quiet_threads()

    def quiet_threads(self) -> bool:
        """True when every thread of the server sleeps in the kernel on a socket (not running, not on a lock)."""
        threads = [self.run.thread, *self.run.started_threads()]
        return all(kernel.thread_waits_on_io(t) is not False for t in threads)

    def stop(self, while_connected: str) -> None:
        self.watch()
        # Set stop only once nothing is left to wake the server: one that waits in select() without a
        # timeout is then asleep for good, and is caught every time, not only when a client's last
        # close happened to wake it after stop was set. (A server that never settles, such as one
        # whose threads wait on queues, is stopped as it is after 2 s.)
        try:
            wait_for(self.quiet, 2.0, "")
        except YourCodeError:
            pass
        self.stop_event.set()
        if not self.run.join(1.0):
            raise YourCodeError(f"{self.call} did not return within 1 s after stop was set (while {while_connected}); "
                                f"select with a short timeout (0.05 s) and look at stop.is_set() after each select")
        self.watch()
        left = self.run.wait_threads(1.0)
        if left:
            raise YourCodeError(f"{self.call} returned but left thread(s) {[t.name for t in left]} running; end and "
                                f"join every thread it starts before it returns")
        host, port = self.address
        mine = [m for m in self.unclosed.sockets() if "raddr=" in m and f"laddr=('{host}', {port})" in m]
        if mine:
            raise YourCodeError(f"{self.call} left {len(mine)} connection(s) for Python's garbage collector to close "
                                f"instead of closing them itself ({mine[0][:120]}); the clients saw them close only "
                                f"because CPython frees a socket nothing refers to; close every connection yourself, "
                                f"when its client is done and before returning once stop is set")

    def _wake(self) -> None:
        """A server still running (it missed stop) gets one more connection, so that a select()
        without a timeout returns, sees stop set and ends instead of waiting forever."""
        if self.run.done:
            return
        self.stop_event.set()
        try:
            with socket.create_connection(self.address, timeout=0.5):
                self.run.join(0.5)
        except OSError:
            pass


def _echo_exactly(client: ReferenceClient, data: bytes, who: str) -> bytes:
    got = client.read_available(len(data))
    if got != data:
        same = "the same bytes" if data.startswith(got) else "different bytes"
        raise YourCodeError(f"{who} sent {len(data)} bytes to your server and got {len(got)} back ({same}) within 2 s; "
                            f"echo every byte, in order, with an output buffer per connection")
    return got


def check_echo_buffered(serve: Callable) -> None:
    """Visible: two clients at once, 20 kB each, echoed exactly; then stop while one is connected."""
    rng = random.Random(21)
    a_data, b_data = (bytes(rng.randrange(256) for _ in range(20_000)) for _ in range(2))
    with _Server(serve, 65536) as server:
        with server.client("client A") as a, server.client("client B") as b:
            a.send(a_data)
            b.send(b_data)
            _echo_exactly(a, a_data, "client A")
            _echo_exactly(b, b_data, "client B")
            a.close()
            server.stop(while_connected="client B was connected and silent")
            if not b.server_closed(2.0):
                raise YourCodeError(f"{server.call} returned, but client B's connection stayed open; close every "
                                    f"connection before returning")
    record_evidence("echo_buffered_two_clients", a=len(a_data), b=len(b_data), echoed=True, stopped=True)


def check_echo_buffered_hard(serve: Callable) -> None:
    """Hidden: five clients at once; a client that sends 1 MB and half-closes, reading only when
    the server takes nothing for a while (with a large limit the server has most of it still to
    send when recv returns b''): it must get all of it, then the close; a client that resets its
    connection. (A server that blocks in sendall() is not deadlocked here: that is the slow-reader
    cell's rule, not this one's.)"""
    rng = random.Random(22)
    with _Server(serve, 16 * 1024 * 1024) as server:
        with ExitStack() as stack:
            clients = [stack.enter_context(server.client(f"client {i + 1} of 5")) for i in range(5)]
            data = [bytes(rng.randrange(256) for _ in range(5000)) for _ in clients]
            for c, d in zip(clients, data):
                c.send(d)
            for i, (c, d) in enumerate(zip(clients, data)):
                _echo_exactly(c, d, f"client {i + 1} of 5")
        big = array.array("I", range(256 * 1024)).tobytes()  # 1 MB, every 4 bytes a counter
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            s.settimeout(5.0)
            s.connect(server.address)
            early = _send_all_then_half_close(s, big, server)  # the server reads all of it (limit 16 MB)
            got = early + _read_to_end(s, server, "the client that half-closed")
            if got != big:
                raise YourCodeError(f"a client sent {len(big)} bytes and closed its side (shutdown SHUT_WR); it "
                                    f"got {len(got)} bytes back before your server closed; when recv returns b'', send "
                                    f"what is still in that connection's buffer, then close it")
        with server.client("a client that resets") as r:
            r.send(b"x" * 1000)
            r.close(reset=True)
        with server.client("a client after the reset") as c:
            c.send(b"still there?")
            _echo_exactly(c, b"still there?", "a client after the reset")
            server.stop(while_connected="a client was connected")
    record_evidence("echo_buffered_hard", five_clients=True, flushed_before_close=True, survived_reset=True)


def _send_all_then_half_close(sock: socket.socket, data: bytes, server: _Server) -> bytes:
    """Send all of `data`, then shutdown(SHUT_WR). Read only when the server has taken nothing for
    0.2 s, as a client that writes and reads at once would, so that the verdict does not depend on
    whether a server that blocks in sendall() happened to block here (that depends on the kernel's
    writability thresholds and the order of events): keep what was read and return it."""
    sock.setblocking(False)
    early, sent = [], 0
    deadline = Deadline(5.0)
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        while sent < len(data):
            server.watch()
            if deadline.expired():
                raise YourCodeError(f"a client could not send 1 MB to your server within 5 s although limit=16 MB (it "
                                    f"sent {sent} bytes, then the server took nothing more and sent nothing back); read "
                                    f"from a connection while its output buffer holds fewer than limit bytes")
            if sel.select(0.2):
                try:
                    sent += sock.send(data[sent:sent + 65536])
                    deadline = Deadline(5.0)
                except BlockingIOError:
                    pass
                continue
            while True:  # no room for 0.2 s: take what has come back
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    break
                if not chunk:
                    raise YourCodeError(f"your server closed a client's connection while the client was still sending "
                                        f"(after {sent} of {len(data)} bytes); close a connection only after its "
                                        f"client closed its side and every byte is sent")
                early.append(chunk)
                deadline = Deadline(5.0)
    sock.shutdown(socket.SHUT_WR)
    return b"".join(early)


def _read_to_end(sock: socket.socket, server: _Server, who: str, timeout: float = 2.0) -> bytes:
    chunks = []
    sock.settimeout(0.05)
    deadline = Deadline(timeout)
    while not deadline.expired():
        server.watch()
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not data:
            return b"".join(chunks)
        chunks.append(data)
        deadline = Deadline(timeout)  # progress: a new deadline
    got = b"".join(chunks)
    raise YourCodeError(f"{who} got {len(got)} bytes and then nothing for {timeout} s (no more data, no close) from your "
                        f"server at {server.where}; send what is buffered, and close once the client closed its side "
                        f"and everything is sent")


def _fill_until_stalled(sock: socket.socket, payload: bytes, server: _Server) -> int:
    """Send `payload` from a client that reads nothing until the server stops taking it (no room to
    send for STALL s); fail if it takes all of it. Returns how many bytes were sent."""
    sock.setblocking(False)
    sent = 0
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_WRITE)
        while sent < len(payload):
            server.watch()
            if not sel.select(STALL):
                return sent
            try:
                sent += sock.send(payload[sent:sent + 65536])
            except BlockingIOError:
                continue
    raise YourCodeError(
        f"a client that read nothing sent {sent} bytes to your server at {server.where} and it kept reading; with "
        f"limit={server.limit} it should stop reading from a connection (no EVENT_READ) while that many bytes wait to "
        f"be sent to it, so that a slow reader cannot make it buffer without bound")


def _slow_reader_round(server: _Server, readers: int, fast: int, seed: int) -> None:
    payload = array.array("I", range(2 * 1024 * 1024)).tobytes()  # 8 MB, every 4 bytes a counter
    with ExitStack() as stack:
        slow, sent = [], []
        for i in range(readers):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            s.settimeout(2.0)
            s.connect(server.address)
            slow.append(s)
            sent.append(_fill_until_stalled(s, payload, server))
        rng = random.Random(seed)
        for i in range(fast):
            _fast_client(server, i + 1, rng, f"while {readers} client(s) read nothing (their echo waiting)",
                         "; never block on one client: send() only what the kernel takes now (non-blocking) and "
                         "keep the rest for EVENT_WRITE")
        for i, s in enumerate(slow):
            s.setblocking(True)
            got = _read_exactly(s, sent[i], server, f"slow reader {i + 1}")
            if got != payload[:sent[i]]:
                raise YourCodeError(f"slow reader {i + 1} sent {sent[i]} bytes, then read its echo: {len(got)} bytes, "
                                    f"not the same ones; keep every byte in the connection's output buffer until "
                                    f"send() has taken it")


def _read_exactly(sock: socket.socket, n: int, server: _Server, who: str, timeout: float = 2.0) -> bytes:
    """n bytes from `sock`, with a deadline that starts again after each piece that arrives."""
    chunks, got = [], 0
    sock.settimeout(0.05)
    deadline = Deadline(timeout)
    while got < n and not deadline.expired():
        server.watch()
        try:
            data = sock.recv(min(65536, n - got))
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
        got += len(data)
        deadline = Deadline(timeout)
    if got < n:
        raise YourCodeError(f"{who} sent {n} bytes and read back only {got} (then nothing for {timeout} s, or the "
                            f"close) from your server at {server.where}; once the client reads again, send the rest "
                            f"of its output buffer (EVENT_WRITE) and read from it again")
    return b"".join(chunks)


def check_slow_reader(serve: Callable) -> None:
    """Visible: a client writes 8 MB and reads nothing: the server must stop reading from it (the
    client's sends stall), must still echo to a fast client meanwhile, and the slow reader must
    then read back exactly what it sent."""
    with _Server(serve, 32 * 1024) as server:
        _slow_reader_round(server, readers=1, fast=1, seed=31)
        server.stop(while_connected="no client was connected")
    record_evidence("echo_slow_reader", bounded=True, fast_client_served=True, slow_reader_echo_complete=True)


def check_slow_readers_hard(serve: Callable) -> None:
    """Hidden: three slow readers at once and three fast clients meanwhile; then, with limit=1 MB, a
    slow reader that reads what has arrived and stops again while three fast clients come."""
    with _Server(serve, 32 * 1024) as server:
        _slow_reader_round(server, readers=3, fast=3, seed=32)
        server.stop(while_connected="no client was connected")
    with _Server(serve, PAUSING_LIMIT) as server:
        _pausing_reader_round(server, seed=33)
        server.stop(while_connected="no client was connected")
    record_evidence("echo_slow_readers", readers=3, fast=3, bounded=True, all_echoes_complete=True,
                    pausing_reader=True)


PAUSING_LIMIT = 1024 * 1024  # far more than a connection's kernel buffers take (tens of kB here)
PAUSING_READ = 8 * SMALL_BUFFER  # what the pausing reader reads: twice both kernel buffers (each 2 * SMALL_BUFFER)


def _pausing_reader_round(server: _Server, seed: int) -> None:
    """A slow reader stalls the server; a fast client comes; the slow reader reads 256 KiB (more
    than both kernel buffers of its connection hold) and stops reading again; two more fast clients
    come. When the slow reader stalls, a server that sendall()s its buffer whenever the socket is
    writable is either blocked in that sendall already, or holds about `limit` bytes (1 MB) for it;
    then the slow reader's read empties the server's send buffer, so the socket is writable at some
    point with room for far less than that, and the sendall blocks until the slow reader reads
    again. Either way a fast client waits, every time. (With limit=32768 the whole buffer fits
    in the room a writable socket has, and such a server is not seen to block.)"""
    payload = array.array("I", range(2 * 1024 * 1024)).tobytes()  # 8 MB, every 4 bytes a counter
    rng = random.Random(seed)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        s.settimeout(2.0)
        s.connect(server.address)
        sent = _fill_until_stalled(s, payload, server)
        when = f"with limit={server.limit}, while a slow reader that sent {sent} bytes read nothing"
        _fast_client(server, 1, rng, when)
        # read more than the connection's two kernel buffers hold (the server's send buffer and this
        # client's receive buffer, both 64 KiB here): the server's socket is then writable at some
        # point while it holds far more for this client than the room it has
        first = _read_exactly(s, min(sent, PAUSING_READ), server, "the slow reader that pauses")
        # its socket on the server's side is writable again: wait until the server has sent into that
        # room (the slow reader has bytes again) and its threads wait again (in select, or blocked in
        # a send), so that the next fast clients come after that, every time
        try:
            wait_for(lambda: _unread(s) > 0 and server.quiet_threads(), 2.0, "")
        except YourCodeError:
            pass
        when = (f"with limit={server.limit}, after a slow reader that sent {sent} bytes read the {len(first)} that had "
                f"come back and stopped reading again")
        for i in (2, 3):
            _fast_client(server, i, rng, when)
        rest = _read_exactly(s, sent - len(first), server, "the slow reader that paused")
        if first + rest != payload[:sent]:
            raise YourCodeError(f"a slow reader sent {sent} bytes, read {len(first)}, paused, then read the rest: "
                                f"{len(first) + len(rest)} bytes, not the same ones; keep every byte in the "
                                f"connection's output buffer until send() has taken it")


def _unread(sock: socket.socket) -> int:
    """How many bytes wait in `sock`'s receive buffer (FIONREAD), without reading them."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


_BLOCKED_ON_THE_SLOW_READER = (
    ": your server blocked sending to the slow reader (a writable socket has room for some bytes, not for a whole "
    "buffer); send() only what the kernel takes now (a non-blocking socket, never sendall) and keep the rest for "
    "EVENT_WRITE")


def _fast_client(server: _Server, i: int, rng: random.Random, when: str, hint: str = _BLOCKED_ON_THE_SLOW_READER) -> None:
    """Fast client `i` sends 3,000 bytes and must get them back within 2 s while others wait;
    else YourCodeError('<when>, fast client <i> sent ... within 2 s<hint>')."""
    data = bytes(rng.randrange(256) for _ in range(3000))
    with server.client(f"fast client {i}") as c:
        c.send(data)
        got = c.read_available(len(data))
    if got != data:
        raise YourCodeError(f"{when}, fast client {i} sent {len(data)} bytes and got {len(got)} back within 2 s{hint}")
