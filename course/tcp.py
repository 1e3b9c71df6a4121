"""TCP reference peers and checks: the servers and clients a learner's TCP code meets (assignment 04).

The servers bind a loopback address on port 0 (see `course.serving`), serve each connection in its
own thread and record what they saw in `events`. Each is also a CLI peer (`python -m course list`):

- `TcpEchoServer` ("tcp-echo") sends back every byte it receives;
- `TcpSumServer` ("tcp-sum") is seed 002's sum service made exact (`course.sumproto`, dialect
  "course", without ids): one JSON request per line, `{"A":7,"B":4}` in, `{"Sum":11}` out, as many
  as the client likes on one connection, and `{"Error":"..."}` for a line that is not a valid
  request (seed 002's Go server, `course.seed_peers.SeedTcpSumServer`, reads one fixed 256-byte
  buffer per request and ignores the Unmarshal error: it answers text that is not JSON with Sum 0,
  and `{"A":"7","B":4}` with Sum 4, since Unmarshal fills the fields it can);
- `SilentServer` ("tcp-silent") accepts and never answers: what a client's timeout is for;
- `ReplyThenCloseServer` ("tcp-reply-close") reads one request line, answers in several writes and
  closes: "read until the server closes" (recv returns b"") is the only way to know the reply ended;
- `TcpChatServer` ("tcp-chat") is seed 004's chat with a scripted operator; "exit" ends a chat.

Between two writes, `ReplyThenCloseServer` (and the checks' clients, when they split a message on
purpose) wait until the peer has *read* what was sent, as the kernel reports it
(`unacked_and_unread`: the sock_diag netlink lookup that `ss` uses, or course.kernel's /proc reader
where netlink is not allowed). That is a
condition, not a sleep: the pieces reach the reader as separate recv() results on any machine, so
a reader that assumes "one recv = one message" fails every time.

A learner's server is a function `serve(listener, stop)`: `run_server(serve)` makes the listening
socket (127.0.0.1, port 0), runs `serve` in a thread, and at the end sets `stop` and checks that
`serve` returned and left no socket and no thread behind (`course.checks.tcp.ServerUnderTest`).
The checks of the graded cells live in `course.checks.tcp`; `tcp.check_*`, the names of earlier
releases, still reach them.
"""
from __future__ import annotations

import socket
import threading
import warnings
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Callable

from course import kernel, sumproto
from course.checks import forward_moved_checks
from course.checks.runner import DEFAULT_TIMEOUT
from course.deadline import Deadline
from course.errors import YourCodeError
from course.kernel.proc import normal_address
from course.serving import POLL, Address, TcpServer, format_address

if TYPE_CHECKING:
    from course.checks.tcp import ServerUnderTest

__all__ = [
    "state_of",
    "unacked_and_unread",
    "peer_has_read",
    "wait_until_peer_read",
    "wait_until_delivered",
    "sum_answer",
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
    "run_server",
]


# ----------------------------------------------------------------------------------------------
# What the kernel says about a connection
# ----------------------------------------------------------------------------------------------
def _diag(local: Address, remote: Address) -> kernel.SocketEntry | None:
    """The IPv4 TCP socket local -> remote (remote ('0.0.0.0', 0) finds a listener), asked to the
    kernel with one sock_diag netlink request (`kernel.diag.query`, what `ss` uses); None if there
    is none. An exact lookup costs microseconds however many sockets the machine has; OSError where
    netlink is not allowed."""
    found = kernel.diag.query(socket.AF_INET, ((local[0], local[1]), (remote[0], remote[1])))
    return found[0] if found else None


def _diag_lookup(local: Address, remote: Address) -> tuple[int, int] | None:
    """(receive queue, send queue) of the IPv4 TCP connection local -> remote, or None if there
    is no such connection (none, only a listener, or one in TIME_WAIT)."""
    found = _diag(local, remote)
    if found is None or found.state in ("LISTEN", "TIME_WAIT"):  # the lookup fell back on the listener, or a dead connection
        return None
    return found.rx_queue, found.tx_queue


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
            if found is not None and (remote[1] or found.state == "LISTEN"):
                return found.state
            if found is None:
                return "CLOSE"
    except OSError:
        pass
    return kernel.tcp_state(sock)


def unacked_and_unread(sock: socket.socket) -> tuple[int, int]:
    """(bytes `sock` sent that its peer has not acknowledged yet, bytes waiting in the peer's
    receive queue that the peer's program has not read yet): what this end of a connection still
    waits for; (0, 0) when the connection is gone. Both ends must be in this network namespace
    (always true on loopback). Not `course.buffers.queues`, which is one socket's own two queues.

    It asks the kernel about these two sockets only (sock_diag netlink, `_diag_lookup`): reading
    the whole /proc table (course.kernel.all_sockets), the fallback where netlink is not allowed,
    costs tens of ms on a machine with thousands of sockets.
    """
    try:
        local, remote = sock.getsockname(), sock.getpeername()
    except (OSError, ValueError):
        return (0, 0)  # closed or no longer connected: nothing more will be read
    if sock.family == socket.AF_INET:
        try:
            mine, peer = _diag_lookup(local, remote), _diag_lookup(remote, local)
            return (mine[1] if mine else 0, peer[0] if peer else 0)
        except OSError:
            pass  # no netlink here (a sandbox): read the whole table instead
    try:
        entries = kernel.all_sockets(("tcp",))
    except OSError:
        return (0, 0)
    local, remote = normal_address(local), normal_address(remote)
    mine = [e for e in entries if e.local == local and e.remote == remote]
    peer = [e for e in entries if e.local == remote and e.remote == local and e.state != "TIME_WAIT"]
    return (mine[0].tx_queue if mine else 0, peer[0].rx_queue if peer else 0)


def peer_has_read(sock: socket.socket) -> bool:
    """True when everything `sock` sent has reached the peer and the peer's program has read it:
    our send queue is empty (all acknowledged) and the peer's receive queue is empty. A peer that
    is gone (closed) has nothing left to read, so that counts as read too."""
    return unacked_and_unread(sock) == (0, 0)


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
    while unacked_and_unread(sock)[0]:
        if deadline.expired():
            return False
        threading.Event().wait(min(0.005, deadline.remaining()))
    return True


# ----------------------------------------------------------------------------------------------
# The sum protocol (seed 002, made exact): course.sumproto, as assignment 04's lines carry it
# ----------------------------------------------------------------------------------------------
def sum_answer(line: bytes) -> dict:
    """The reference answer to one request line (without its b'\\n'), as the dict exercise 3
    returns: {'Sum': A + B} for a JSON object whose "A" and "B" are integers, else {'Error': why}
    (`course.sumproto.answer`, no id: 04's lines are answered in order). Other keys are ignored."""
    return sumproto.decode(sumproto.answer(line, ids=False))


# ----------------------------------------------------------------------------------------------
# Reference servers
# ----------------------------------------------------------------------------------------------
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


class TcpSumServer(LineServer):
    """Seed 002's sum service, one JSON request per line: {"A":7,"B":4} -> {"Sum":11}, many per connection."""

    def handle_line(self, line: bytes) -> bytes:
        return sumproto.frame(sumproto.answer(line, ids=False))


class SilentServer(TcpServer):
    """Accepts every connection and never sends a byte (what a client's timeout is for)."""

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        while True:
            data = self.recv_or_stop(conn)
            if not data:
                return
            self.record("recv", format_address(addr), data)


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
                wait_until_peer_read(conn, self.pause_timeout, self.stop_event)
            if self.stopping:
                return
            conn.sendall(part)
            self.record("send", format_address(addr), part)
        self.record("closing", format_address(addr))


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
def run_server(serve: Callable, name: str | None = None) -> "ServerUnderTest":
    """`with run_server(serve_echo) as server:` runs your serve(listener, stop) on 127.0.0.1 port 0;
    `server.address` is where clients connect; leaving the block stops it and checks it stopped."""
    from course.checks.tcp import ServerUnderTest  # the checks import this module, never the reverse

    return ServerUnderTest(serve, name)


# ----------------------------------------------------------------------------------------------
# Names that moved: course.tcp.check_* (and the checks' tables) of earlier releases' notebooks
# reach course.checks.tcp
# ----------------------------------------------------------------------------------------------
_MOVED = frozenset({
    "ServerUnderTest", "READ_UNTIL_CLOSE_HINT", "CONCURRENT_HINT", "SILENT_AT_STOP",
    "VALID_REQUESTS", "MALFORMED_BY_KIND", "MALFORMED_REQUESTS", "MALFORMED_ON_THE_WIRE",
})
_forward_checks = forward_moved_checks(__name__, "course.checks.tcp")


def __getattr__(name: str):
    if name in _MOVED:
        from course.checks import tcp as moved

        return getattr(moved, name)
    if name == "queues":  # the old name, which course.buffers.queues (one socket's own queues) also had
        warnings.warn("course.tcp.queues is now course.tcp.unacked_and_unread", DeprecationWarning, stacklevel=2)
        return unacked_and_unread
    return _forward_checks(name)
