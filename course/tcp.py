"""TCP reference peers and checks: the servers and clients a learner's TCP code meets (assignment 04).

The servers bind a loopback address on port 0 (see `course.serving`), serve each connection in its
own thread and record what they saw in `events`. Each is also a CLI peer (`python -m course list`):

- `TcpEchoServer` ("tcp-echo") sends back every byte it receives;
- `TcpSumServer` ("tcp-sum") is seed 002's sum service made exact: one JSON request per line,
  `{"A": 7, "B": 4}` in, `{"Sum": 11}` out, as many as the client likes on one connection, and
  `{"Error": "..."}` for a line that is not a valid request (seed 002's Go server reads one fixed
  256-byte buffer per request and ignores the Unmarshal error: it answers text that is not JSON
  with Sum 0, and `{"A":"7","B":4}` with Sum 4, since Unmarshal fills the fields it can);
- `SilentServer` ("tcp-silent") accepts and never answers: what a client's timeout is for;
- `ReplyThenCloseServer` ("tcp-reply-close") reads one request line, answers in several writes and
  closes: "read until the server closes" (recv returns b"") is the only way to know the reply ended;
- `TcpChatServer` ("tcp-chat") is seed 004's chat with a scripted operator; "exit" ends a chat.

Between two writes, `ReplyThenCloseServer` (and the checks' clients, when they split a message on
purpose) wait until the peer has *read* what was sent, as the kernel reports it (`queues`: the
sock_diag netlink lookup that `ss` uses, or /proc/net/tcp where netlink is not allowed). That is a
condition, not a sleep: the pieces reach the reader as separate recv() results on any machine, so
a reader that assumes "one recv = one message" fails every time.

The second half of the module runs a learner's code against these peers. A learner's server is a
function `serve(listener, stop)`: `ServerUnderTest` makes the listening socket (127.0.0.1, port 0),
runs `serve` in a thread, and at the end sets `stop` and checks that `serve` returned and left no
socket and no thread behind. The `check_*` functions raise `YourCodeError` with one sentence that
says what to check, and record deterministic evidence (data and booleans; never ports or times).
"""
from __future__ import annotations

import json
import random
import socket
import struct
import threading
from contextlib import ExitStack, contextmanager
from typing import Callable

from course import kernel
from course.checks import DEFAULT_TIMEOUT, call_with_deadline, expect_type, no_leaked_sockets, record_evidence
from course.deadline import Deadline, wait_for
from course.errors import YourCodeError
from course.serving import POLL, Address, TcpServer, format_address, register

__all__ = [
    "state_of",
    "queues",
    "peer_has_read",
    "wait_until_peer_read",
    "wait_until_delivered",
    "sum_answer",
    "encode_line",
    "TcpEchoServer",
    "LineServer",
    "TcpSumServer",
    "SilentServer",
    "ReplyThenCloseServer",
    "TcpChatServer",
    "ReferenceClient",
    "race_slow_and_fast",
    "chat",
    "accepted_connection",
    "socket_table",
    "TcpChatConnection",
    "chat_window",
    "ServerUnderTest",
    "run_server",
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
# What the kernel says about a connection
# ----------------------------------------------------------------------------------------------
def _proc_address(address: Address) -> str:
    """An IPv4 address as /proc/net/tcp prints it: 127.0.0.1:54012 -> '0100007F:D2FC'."""
    return f"{socket.inet_aton(address[0])[::-1].hex().upper()}:{address[1]:04X}"


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLMSG_ERROR, NLM_F_REQUEST = 4, 20, 2, 1
TCP_LISTEN, TCP_TIME_WAIT = 10, 6


def _diag_lookup(local: Address, remote: Address) -> tuple[int, int] | None:
    """(receive queue, send queue) of the IPv4 TCP connection local -> remote, or None if there
    is no such connection (none, only a listener, or one in TIME_WAIT)."""
    found = _diag(local, remote)
    if found is None or found[0] in (TCP_LISTEN, TCP_TIME_WAIT):  # the lookup fell back on the listener, or a dead connection
        return None
    return found[1], found[2]


def _diag(local: Address, remote: Address) -> tuple[int, int, int] | None:
    """(state code, receive queue, send queue) of the IPv4 TCP socket local -> remote (remote
    ('0.0.0.0', 0) finds a listener), asked to the kernel with one sock_diag netlink request (what
    `ss` uses); None if there is none. An exact lookup costs microseconds however many sockets the
    machine has; OSError where netlink is not allowed."""
    request = (
        struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF)
        + struct.pack(">HH", local[1], remote[1])
        + socket.inet_aton(local[0]) + bytes(12)
        + socket.inet_aton(remote[0]) + bytes(12)
        + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)  # any interface, no cookie
    )
    message = struct.pack("=IHHII", 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, 1, 0) + request
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendto(message, (0, 0))
        reply = nl.recv(65536)
    (kind,) = struct.unpack_from("=H", reply, 4)
    if kind == NLMSG_ERROR:
        (errno,) = struct.unpack_from("=i", reply, 16)
        if errno in (0, -2):  # ENOENT: no such connection
            return None
        raise OSError(-errno, "sock_diag lookup failed")
    rqueue, wqueue = struct.unpack_from("=II", reply, 16 + 56)
    return reply[16 + 1], rqueue, wqueue


def state_of(sock: socket.socket) -> str:
    """The kernel's TCP state of `sock` ('LISTEN', 'ESTABLISHED', 'CLOSE_WAIT'...), found with one
    sock_diag lookup (`kernel.tcp_state`, which reads the whole /proc table, where netlink is
    not allowed, or for IPv6)."""
    try:
        local = sock.getsockname()
        try:
            remote = sock.getpeername()
        except OSError:
            remote = ("0.0.0.0", 0)
        if sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM:
            found = _diag(local, remote)
            if found is not None and (remote[1] or found[0] == TCP_LISTEN):
                return kernel.TCP_STATES.get(found[0], f"UNKNOWN({found[0]})")
            if found is None:
                return "CLOSE"
    except OSError:
        pass
    return kernel.tcp_state(sock)


def queues(sock: socket.socket) -> tuple[int, int]:
    """(bytes `sock` sent that its peer has not acknowledged yet, bytes waiting in the peer's
    receive queue that the peer's program has not read yet), from /proc/net/tcp; (0, 0) when the
    connection is gone. Both ends must be in this network namespace (always true on loopback).

    It asks the kernel about these two sockets only (sock_diag netlink, `_diag_lookup`): reading
    the whole /proc table, the fallback, costs tens of ms on a machine with thousands of sockets.
    """
    try:
        local, remote = sock.getsockname(), sock.getpeername()
    except (OSError, ValueError):
        return (0, 0)  # closed or no longer connected: nothing more will be read
    if sock.family != socket.AF_INET:
        entries = kernel.all_sockets(("tcp",))
        mine = [e for e in entries if e.local == tuple(local[:2]) and e.remote == tuple(remote[:2])]
        peer = [e for e in entries if e.local == tuple(remote[:2]) and e.remote == tuple(local[:2]) and e.state != "TIME_WAIT"]
        return (mine[0].tx_queue if mine else 0, peer[0].rx_queue if peer else 0)
    try:
        mine, peer = _diag_lookup(local, remote), _diag_lookup(remote, local)
        return (mine[1] if mine else 0, peer[0] if peer else 0)
    except OSError:
        pass  # no netlink here (a sandbox): read the whole table instead
    me, them = _proc_address(local), _proc_address(remote)
    try:
        with open("/proc/net/tcp") as f:
            text = f.read()
    except OSError:
        return (0, 0)
    tx = rx = 0
    for line in text.splitlines()[1:]:
        if me not in line:
            continue
        fields = line.split(None, 5)
        if fields[1] == me and fields[2] == them:
            tx = int(fields[4].split(":")[0], 16)
        elif fields[1] == them and fields[2] == me and fields[3] != "06":  # 06: TIME_WAIT
            rx = int(fields[4].split(":")[1], 16)
    return (tx, rx)


def peer_has_read(sock: socket.socket) -> bool:
    """True when everything `sock` sent has reached the peer and the peer's program has read it:
    our send queue is empty (all acknowledged) and the peer's receive queue is empty. A peer that
    is gone (closed) has nothing left to read, so that counts as read too."""
    return queues(sock) == (0, 0)


def wait_until_peer_read(sock: socket.socket, timeout: float = 1.0, stop: threading.Event | None = None) -> bool:
    """Wait (polling /proc, never sleeping blindly) until the peer has read what `sock` sent.
    Returns False if that did not happen within `timeout` s (or `stop` was set), True otherwise."""
    deadline = Deadline(timeout)
    while not peer_has_read(sock):
        if deadline.expired() or (stop is not None and stop.is_set()):
            return False
        (stop or threading.Event()).wait(min(0.005, deadline.remaining()))
    return True


def wait_until_delivered(sock: socket.socket, timeout: float = 1.0) -> bool:
    """Wait until the peer's kernel has acknowledged everything `sock` sent (it sits in the peer's
    receive buffer, read or not). Returns False on timeout."""
    deadline = Deadline(timeout)
    while queues(sock)[0]:
        if deadline.expired():
            return False
        threading.Event().wait(min(0.005, deadline.remaining()))
    return True


# ----------------------------------------------------------------------------------------------
# The sum protocol (seed 002, made exact): pure functions, no sockets
# ----------------------------------------------------------------------------------------------
def sum_answer(line: bytes) -> dict:
    """The reference answer to one request line (without its b'\\n'): {'Sum': A + B} for a JSON
    object whose "A" and "B" are integers, else {'Error': why}. Other keys are ignored."""
    try:
        request = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return {"Error": "the request is not UTF-8 text"}
    except ValueError as exc:
        return {"Error": f"the request is not JSON: {exc}"}
    if not isinstance(request, dict):
        return {"Error": 'a request is a JSON object such as {"A": 7, "B": 4}'}
    for key in ("A", "B"):
        value = request.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            return {"Error": f"{key} must be an integer, got {value!r}"}
    return {"Sum": request["A"] + request["B"]}


def encode_line(obj) -> bytes:
    """One message of the line protocols of this module: compact JSON, UTF-8, then b'\\n'."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


# ----------------------------------------------------------------------------------------------
# Reference servers
# ----------------------------------------------------------------------------------------------
@register("tcp-echo")
class TcpEchoServer(TcpServer):
    """Sends back every byte it receives, on each connection, until the client closes."""

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        while True:
            data = self.recv_or_stop(conn)
            if not data:
                return
            self.record("recv", f"{addr[0]}:{addr[1]}", data)
            conn.sendall(data)


class LineServer(TcpServer):
    """A server of a line protocol: `handle_line(line)` answers each b'\\n'-terminated line (the
    line without its b'\\n'); it returns the bytes to send, or None to close the connection."""

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        buffer = b""
        while True:
            data = self.recv_or_stop(conn)
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                self.record("recv", format_address(addr), line)
                reply = self.handle_line(line)
                if reply is None:
                    return
                conn.sendall(reply)
                self.record("send", format_address(addr), reply)

    def handle_line(self, line: bytes) -> bytes | None:
        raise NotImplementedError


@register("tcp-sum")
class TcpSumServer(LineServer):
    """Seed 002's sum service, one JSON request per line: {"A":7,"B":4} -> {"Sum":11}, many per connection."""

    def handle_line(self, line: bytes) -> bytes:
        return encode_line(sum_answer(line))


@register("tcp-silent")
class SilentServer(TcpServer):
    """Accepts every connection and never sends a byte (what a client's timeout is for)."""

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        while True:
            data = self.recv_or_stop(conn)
            if not data:
                return
            self.record("recv", format_address(addr), data)


@register("tcp-reply-close")
class ReplyThenCloseServer(TcpServer):
    """Reads one request line, answers it in several writes, then closes the connection.

    `parts` (bytes) is the reply, one write each; by default the reply quotes the request. Between
    two writes the server waits until the client has read the previous part (`wait_until_peer_read`,
    at most `pause_timeout` s), so a client that stops after its first recv() misses the rest. The
    wait ends as soon as the client has read (or closed): the deadline only bounds a client that
    does neither, and is long enough that a slow machine never sends two parts as one.
    """

    pause_timeout = 5.0

    def __init__(self, host: str = "127.0.0.1", port: int = 0, parts: list[bytes] | None = None):
        super().__init__(host, port)
        self.parts = None if parts is None else [bytes(p) for p in parts]

    def reply_to(self, request: bytes) -> list[bytes]:
        if self.parts is not None:
            return list(self.parts)
        return [b"you sent: ", request.rstrip(b"\n"), b"\n", b"goodbye\n"]

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        request = b""
        while b"\n" not in request:
            data = self.recv_or_stop(conn)
            if not data:
                break
            request += data
        self.record("recv", format_address(addr), request)
        for i, part in enumerate(self.reply_to(request)):
            if i:
                wait_until_peer_read(conn, self.pause_timeout, self._stop)
            if self.stopping:
                return
            conn.sendall(part)
            self.record("send", format_address(addr), part)
        self.record("closing", format_address(addr))


@register("tcp-chat")
class TcpChatServer(LineServer):
    """Seed 004's chat server with a scripted operator: answers each line; "exit" closes the chat.

    `script` holds the operator's answers in order; an answer "exit" closes the connection instead
    of sending anything (as in seed 004, "exit" is typed locally and never travels). When the
    script runs out, or without one, the server answers "got: <line>".
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, script: list[str] | None = None):
        super().__init__(host, port)
        self.script = list(script or [])
        self._turn = 0
        self._turn_lock = threading.Lock()

    def handle_line(self, line: bytes) -> bytes | None:
        with self._turn_lock:
            answer = self.script[self._turn] if self._turn < len(self.script) else None
            self._turn += 1
        if answer is None:
            answer = "got: " + line.decode("utf-8", "replace")
        if answer == "exit":
            return None
        return answer.encode("utf-8") + b"\n"


# ----------------------------------------------------------------------------------------------
# Reference clients
# ----------------------------------------------------------------------------------------------
class ReferenceClient:
    """A client of the course, talking to a server under test: every read has a deadline, and
    `watch()` is called between two polls so that a server that crashed is reported at once."""

    def __init__(self, address: Address, label: str = "a client", timeout: float = DEFAULT_TIMEOUT, watch: Callable[[], None] = lambda: None):
        self.address, self.label, self.timeout, self.watch = address, label, timeout, watch
        self.where = format_address(address)
        self.sock = socket.create_connection(address[:2], timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self, reset: bool = False) -> None:
        """Close; with reset=True the kernel sends RST instead of FIN (SO_LINGER with 0 s)."""
        if self.sock.fileno() != -1 and reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def finish(self) -> None:
        """Half-close: the kernel sends a FIN (the server's recv() returns b'' after the data), and
        this client can still read what the server sends back."""
        self.sock.shutdown(socket.SHUT_WR)

    def send_in_pieces(self, data: bytes, cuts: list[int]) -> None:
        """Send `data` cut at the offsets `cuts`, waiting after each piece until the server has read
        it: the server's recv() sees each piece alone."""
        start = 0
        for cut in sorted(set(cuts)) + [len(data)]:
            if cut <= start:
                continue
            self.sock.sendall(data[start:cut])
            start = cut
            if cut < len(data):  # a condition, not a pause: the server has read this piece (or left)
                wait_until_peer_read(self.sock, self.timeout)

    def _fill(self, deadline: Deadline) -> bool:
        """One recv into the buffer; False at the deadline. Sets `eof` when the server closed."""
        while not deadline.expired():
            self.watch()
            self.sock.settimeout(max(0.001, min(POLL, deadline.remaining())))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                return False
            self.buffer += data
            return True
        self.watch()
        return False

    def read_available(self, n: int, timeout: float | None = None) -> bytes:
        """Up to `n` bytes: as many as arrived before `n` were there, EOF or the deadline."""
        deadline = Deadline(timeout or self.timeout)
        while len(self.buffer) < n and not self.eof and self._fill(deadline):
            pass
        got, self.buffer = self.buffer[:n], self.buffer[n:]
        return got

    def read_exactly(self, n: int, hint: str) -> bytes:
        got = self.read_available(n)
        if len(got) < n:
            what = "closed the connection" if self.eof else f"sent nothing more within {self.timeout} s"
            raise YourCodeError(
                f"{self.label} got {len(got)} of the {n} bytes it expected ({got[:60]!r}) from your server at "
                f"{self.where}, which then {what}; {hint}"
            )
        return got

    def next_line(self, timeout: float | None = None) -> bytes | None:
        """The next line without its b'\\n'; None if the server closed first; TimeoutError if
        no full line came within `timeout` s."""
        deadline = Deadline(timeout or self.timeout)
        while b"\n" not in self.buffer and not self.eof and self._fill(deadline):
            pass
        if b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            return line
        if self.eof:
            return None
        raise TimeoutError(f"no full line from {self.where} within {timeout or self.timeout} s (got {self.buffer[:80]!r})")

    def read_line(self, hint: str) -> bytes:
        """One line, without its b'\\n'; YourCodeError (with `hint`) if none comes."""
        deadline = Deadline(self.timeout)
        while b"\n" not in self.buffer and not self.eof and self._fill(deadline):
            pass
        if b"\n" not in self.buffer:
            what = "closed the connection" if self.eof else f"sent no b'\\n' within {self.timeout} s"
            raise YourCodeError(
                f"{self.label} waited for a line from your server at {self.where} and got {self.buffer[:80]!r}, "
                f"then the server {what}; {hint}"
            )
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def server_closed(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """True if the server closes the connection (recv returns b'') within `timeout` s."""
        deadline = Deadline(timeout)
        while not self.eof and self._fill(deadline):
            pass
        return self.eof


def race_slow_and_fast(
    address: Address,
    timeout: float = DEFAULT_TIMEOUT,
    watch: Callable[[], None] = lambda: None,
    slow_data: bytes = b"slow client: one byte at a time",
    fast_data: bytes = b"fast client: all at once",
) -> dict:
    """A slow client connects first and sends one byte; while it is still open, a fast client sends
    everything and waits (at most `timeout` s) for its echo; then the slow client trickles the rest,
    one byte per round trip. Returns what each got and `fast_done_before_slow`."""
    with ReferenceClient(address, "the slow client", timeout, watch) as slow:
        slow.send(slow_data[:1])
        slow_echo = slow.read_exactly(1, "is your server accepting connections and echoing what it receives?")
        with ReferenceClient(address, "the fast client", timeout, watch) as fast:
            fast.send(fast_data)
            fast_echo = fast.read_available(len(fast_data))
        fast_done_before_slow = fast_echo == fast_data
        for byte in slow_data[1:]:
            slow.send(bytes([byte]))
            slow_echo += slow.read_exactly(1, "does your server echo every byte, also after another client came and went?")
    return {
        "slow_sent": slow_data,
        "slow_echo": slow_echo,
        "fast_sent": fast_data,
        "fast_echo": fast_echo,
        "fast_done_before_slow": fast_done_before_slow,
    }


def chat(address: Address, messages: list[str], timeout: float = DEFAULT_TIMEOUT) -> list[tuple[str, str]]:
    """Seed 004's chat client, scripted: send each message as a line and read the answer. The
    message "exit" closes the connection without sending anything; the server closing (recv
    returns b'') ends the chat too. Returns the transcript as (who, text) pairs."""
    transcript = []
    with ReferenceClient(address, "the chat client", timeout) as client:
        for message in messages:
            if message == "exit":
                transcript.append(("client", "exit: closes the connection"))
                break
            client.send(message.encode("utf-8") + b"\n")
            transcript.append(("client", message))
            answer = client.next_line(timeout)
            if answer is None:
                transcript.append(("server", "closed the connection: recv() returned b''"))
                break
            transcript.append(("server", answer.decode("utf-8", "replace")))
    return transcript


# ----------------------------------------------------------------------------------------------
# Small helpers for the lesson: a connection ready to look at, a table of sockets, a chat window
# ----------------------------------------------------------------------------------------------
@contextmanager
def accepted_connection(backlog: int = 8, timeout: float = DEFAULT_TIMEOUT):
    """The server's steps done for you: yields (listener, conn, client), a listening socket on
    127.0.0.1 port 0, a client connected to it, and the socket accept() returned for that client.
    Every socket has `timeout`; all three are closed on exit."""
    with ExitStack() as stack:
        listener = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(backlog)
        listener.settimeout(timeout)
        client = stack.enter_context(socket.create_connection(listener.getsockname(), timeout=timeout))
        conn, _ = listener.accept()
        stack.enter_context(conn)
        conn.settimeout(timeout)
        yield listener, conn, client


def socket_table(**named: socket.socket) -> str:
    """One line per socket: its name, local address, peer address and the kernel's TCP state."""
    rows = []
    for name, sock in named.items():
        try:
            peer = format_address(sock.getpeername())
        except OSError:
            peer = "(no peer)"
        rows.append(f"{name:<10} local {format_address(sock.getsockname()):<17} peer {peer:<17} {state_of(sock)}")
    return "\n".join(rows)


class TcpChatConnection:
    """A chat client's connection for `course.chat.ChatWindow`: send(text) writes one line
    ("exit" closes the connection instead, as in seed 004); receive(timeout) returns
    (line, "server"), None if nothing came, and reports once that the server closed."""

    def __init__(self, address: Address, timeout: float = DEFAULT_TIMEOUT):
        self.client = ReferenceClient(address, "the chat client", timeout)
        self.closed_reported = False

    def send(self, text: str) -> None:
        if text.strip() == "exit":  # seed 004 trims the line (strings.TrimSpace) before comparing
            self.close()
            return
        self.client.send(text.encode("utf-8") + b"\n")

    def receive(self, timeout: float):
        if self.client.eof:
            if self.closed_reported:
                raise OSError("the server closed the connection")
            self.closed_reported = True
            return ("closed the connection: recv() returned b''", "server")
        try:
            line = self.client.next_line(timeout)
        except TimeoutError:
            return None
        return (line.decode("utf-8", "replace"), "server") if line is not None else self.receive(timeout)

    def close(self) -> None:
        self.client.close()


def chat_window(script: list[str] | None = None):
    """An interactive chat with a `TcpChatServer` (started here) in a `course.chat.ChatWindow`.
    Headless (under nbgrader) it starts nothing and returns a closed window: nothing to type into."""
    from course import chat as chat_view

    if hasattr(chat_view, "close_all"):
        chat_view.close_all()  # re-running the cell closes the previous window, its server and socket
    headless = getattr(chat_view, "is_headless", None) or getattr(chat_view, "headless")
    if headless():
        window = chat_view.ChatWindow(lambda text: None, None, title="TCP chat (headless: nothing started)", headless=True)
        window.close()
        return window
    server = TcpChatServer(script=script).start()
    try:
        connection = TcpChatConnection(server.address)
    except OSError:
        server.close()
        raise

    def close_both() -> None:
        connection.close()
        server.close()

    # ends_on="exit": typing exit does what Close does (stops the receiving thread first, then closes
    # the connection and the server), so the thread never reads a closed socket
    return chat_view.ChatWindow(connection.send, connection.receive, title=f"TCP chat with {server.where}",
                                on_close=close_both, ends_on="exit")


# ----------------------------------------------------------------------------------------------
# Running a learner's server: serve(listener, stop)
# ----------------------------------------------------------------------------------------------
class ServerUnderTest:
    """Runs a learner's `serve(listener, stop)` in a thread on a listening socket made here
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
        self.error: BaseException | None = None
        self.returned = False
        self.thread_errors: list[tuple[str, BaseException]] = []
        self.listener: socket.socket | None = None
        self.address: Address | None = None
        self._stopped = False

    def __enter__(self) -> "ServerUnderTest":
        self._threads_before = set(threading.enumerate())
        self._previous_hook = threading.excepthook
        threading.excepthook = self._excepthook
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.listener, self.address = listener, listener.getsockname()
        self.where = format_address(self.address)
        self.thread = threading.Thread(target=self._run, name=f"learner-{self.name}", daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self.serve(self.listener, self.stop_event)
        except BaseException as exc:  # reported by check_running() / stop()
            self.error = exc
        finally:
            self.returned = True

    def _excepthook(self, args) -> None:
        if args.thread is not None and args.thread not in self._threads_before and args.exc_value is not None:
            self.thread_errors.append((args.thread.name, args.exc_value))
        self._previous_hook(args)

    def call(self) -> str:
        return f"{self.name}(listener, stop)"

    def check_running(self) -> None:
        if self.error is not None:
            if isinstance(self.error, NotImplementedError):
                raise self.error
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

    def _learner_threads(self) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in self._threads_before and t.is_alive() and t is not self.thread]

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
                waits = [kernel.thread_waits_on_io(t) for t in self._learner_threads()]
                return all(w is not False for w in waits)

            try:
                wait_for(settled, 2.0, "")
            except YourCodeError:
                pass  # threads that wait on locks or queues: stop them as they are
        self.stop_event.set()
        self.thread.join(self.stop_timeout)
        during = f" (while {while_connected})" if while_connected else ""
        if self.thread.is_alive():
            self._wake()
            raise YourCodeError(
                f"{self.call()} did not return within {self.stop_timeout} s after stop was set{during}; give the "
                f"listening socket and every connection a timeout (e.g. 0.05 s), check stop.is_set() after each "
                f"timeout, and join the client threads"
            )
        self.check_running()
        try:
            wait_for(
                lambda: not self._learner_threads(),
                self.stop_timeout,
                lambda: (
                    f"{len(self._learner_threads())} thread(s) of your server were still running "
                    f"{self.stop_timeout} s after {self.call()} returned{during} ({', '.join(t.name for t in self._learner_threads()[:3])}); "
                    f"make each client's thread end when stop is set (recv with a timeout, then look at stop.is_set()) "
                    f"and join it before returning"
                ),
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
                self.stop_event.set()
                self.thread.join(min(self.stop_timeout, 0.5))
                if self.thread.is_alive():
                    self._wake()
                    self.thread.join(0.2)
            if exc_type is not None and issubclass(exc_type, YourCodeError) and not self.thread_errors:
                # a client saw the connection close: was it because a thread of the server died?
                deadline = Deadline(0.5)
                while self._learner_threads() and not self.thread_errors and not deadline.expired():
                    threading.Event().wait(0.01)
            if exc_type is not None and issubclass(exc_type, YourCodeError) and self.thread_errors and not str(exc).startswith("thread "):
                raise self._thread_error() from exc
        finally:
            self.listener.close()
            threading.excepthook = self._previous_hook


def run_server(serve: Callable, name: str | None = None) -> ServerUnderTest:
    """`with run_server(serve_echo) as server:` runs your serve(listener, stop) on 127.0.0.1 port 0;
    `server.address` is where clients connect; leaving the block stops it and checks it stopped."""
    return ServerUnderTest(serve, name)


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
            except Exception as exc:
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
    try:
        got = call_with_deadline(fetch, address, request, timeout, timeout=timeout + 2.0, name="fetch")
    except NotImplementedError:
        raise
    except YourCodeError:
        raise
    except expected:
        return expected.__name__
    except Exception as exc:
        raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; it should raise {expected.__name__}: {why}") from exc
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
    return json.dumps(expected) if "Sum" in expected else '{"Error": "<why, as a string>"} and nothing else'


def check_sum_answer(sum_answer_fn: Callable, lines: list[bytes] | None = None) -> None:
    """Call the learner's sum_answer(line) on each line and compare with the protocol."""
    lines = VALID_REQUESTS[:2] if lines is None else lines
    calls = []
    try:
        for line in lines:
            call = f"sum_answer({line!r})"
            try:
                got = call_with_deadline(sum_answer_fn, line, name="sum_answer")
            except (NotImplementedError, YourCodeError):
                raise
            except Exception as exc:
                raise YourCodeError(
                    f"{call} raised {type(exc).__name__}: {exc}; it should return {_describe_expected(line)}"
                ) from exc
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
        got = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise YourCodeError(f"your server answered {line!r} with {raw[:80]!r}, which is not a JSON line; send json.dumps(answer).encode() + b'\\n'") from None
    if not (_valid_reply(got, line) if exact else isinstance(got, dict) and "Error" in got):
        raise YourCodeError(f"your server answered {line!r} with {raw[:80]!r}; expected {_describe_expected(line)}")
    return got


def _random_requests(rng: random.Random, n: int) -> list[bytes]:
    return [json.dumps({"A": rng.randint(-10**6, 10**6), "B": rng.randint(-10**6, 10**6)}).encode() for _ in range(n)]


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
