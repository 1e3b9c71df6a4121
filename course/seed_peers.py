"""Peers that behave as the seeds' own Go servers do, flaws included, so that a learner can run the
seeds' real programs (seed 002's sum client, seed 004's chat client) against them.

The course's own peers are line-framed (`tcp-sum`, `tcp-chat`): that is what 04 and 06 teach. The
seeds' programs send without any framing: seed 002's client writes `{"A":7,"B":4}` with no newline
and takes whatever one `conn.Read` returns as the answer; seed 004's client writes the line typed,
trimmed, with no newline. Against a line-framed peer they get no answer. These peers speak the seeds'
dialect instead:

- `SeedTcpSumServer` ("tcp-sum-seed002"): seed 002's `tcp_server.go`;
- `SeedUdpSumServer` ("udp-sum-seed002"): seed 002's `udp_server.go` (no "id");
- `SeedChatServer` ("tcp-chat-seed004"): seed 004's chat server, with a scripted operator.

Each docstring lists what the seed's server does wrong, and this peer does the same, on purpose.
Where the Go program would crash or leak (a failed write ends the whole Go server through the
seed's `CheckError`), the peer only ends that connection: a reference peer never takes the others
down. All bind loopback on port 0, poll their stop flag, and record what they saw in `events`.
"""
from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from typing import Callable

from course import sumproto
from course.serving import POLL, Address, TcpServer, UdpServer, format_address

__all__ = [
    "SEED_DEADLINE",
    "CHAT_READ_SIZE",
    "SeedTcpSumServer",
    "SeedUdpSumServer",
    "SeedChatServer",
    "got",
]

SEED_DEADLINE = 30.0  # seconds: conn.SetReadDeadline(time.Now().Add(30 * time.Second)) in seed 002
CHAT_READ_SIZE = 1024  # bytes: var data [1024]byte in seed 004


def _deadline_at(seconds: float | None) -> float | None:
    if seconds is not None and seconds < 0:
        raise ValueError(f"deadline must be 0 (none) or a positive number of seconds, got {seconds!r}")
    return time.monotonic() + seconds if seconds else None


class _ReadOnce(TcpServer):
    """A TCP peer that takes one recv() of at most `read_size` bytes as one message, as the seeds'
    servers take one conn.Read: it polls every POLL s so that close() stops it at once."""

    read_size = sumproto.SEED_READ_SIZE

    def read_once(self, conn: socket.socket, until: float | None) -> bytes | None:
        """One read: the bytes, b'' at end of stream or on stop, None when `until` (monotonic) passed."""
        conn.settimeout(POLL)
        while not self.stopping:
            if until is not None and time.monotonic() >= until:
                return None
            try:
                return conn.recv(self.read_size)
            except TimeoutError:
                continue
        return b""


class SeedTcpSumServer(_ReadOnce):
    """Seed 002's TCP sum server: one Read of at most 256 bytes is one request, the reply
    {"Sum":N} is written with no newline, many requests per connection until a 30 s deadline.

    The seed's flaws, kept on purpose:
    - one Read is taken as one request: two requests in one write ({"A":7,"B":4}{"A":1,"B":2}) are
      one invalid request, answered {"Sum":0} once, so a client waiting for two replies waits
      forever; a request split over two reads gets two {"Sum":0}; a request over 256 bytes is cut;
    - json.Unmarshal's error is ignored: text that is not JSON is answered {"Sum":0}, and
      {"A":"7","B":4} gets {"Sum":4} (Go fills the fields it can); "a" fills A (case-insensitive);
    - the read deadline is set once, when the connection is accepted: the connection is closed
      `deadline` seconds (30) after it was accepted, however busy it is (0: no deadline);
    - the sum wraps around as Go's 64-bit int does.
    A newline after the JSON is whitespace to Go, so `nc` works too, one request per line typed.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, deadline: float = SEED_DEADLINE):
        super().__init__(host, port)
        _deadline_at(deadline)
        self.deadline = deadline

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        who = format_address(addr)
        until = _deadline_at(self.deadline)
        while True:
            data = self.read_once(conn, until)
            if data is None:
                self.record("deadline", who)  # Go: "read from socket error: ... i/o timeout", then Close
                return
            if not data:
                return
            self.record("recv", who, data)
            reply = sumproto.answer(data, "seed002")
            conn.settimeout(self.io_timeout)
            conn.sendall(reply)
            self.record("send", who, reply)


class SeedUdpSumServer(UdpServer):
    """Seed 002's UDP sum server: each datagram is one request (no "id"), answered {"Sum":N} to
    its sender; the whole server stops 30 s after it started.

    The seed's flaws, kept on purpose:
    - it reads into 256 bytes: a longer datagram is cut (the kernel drops the rest) and answered
      {"Sum":0}, or a wrong sum when the cut still leaves valid JSON;
    - json.Unmarshal's error is ignored, as in the TCP server ({"Sum":0} for text that is not JSON);
    - no "id": a late reply to an earlier request cannot be told from the reply to this one;
    - the read deadline is set once, on the server's socket, before the loop: `deadline` seconds
      (30) after start the server stops for every client and closes its socket (the Go program
      ends), and a connected client's next recv() gets ConnectionRefusedError (0: no deadline).
    """

    max_datagram = sumproto.SEED_READ_SIZE

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, deadline: float = SEED_DEADLINE):
        super().__init__(host, port)
        _deadline_at(deadline)
        self.deadline = deadline
        self.expired = threading.Event()

    def serve_forever(self) -> None:
        until = _deadline_at(self.deadline)
        while not self.stopping:
            if until is not None and time.monotonic() >= until:
                self.record("deadline")
                self.expired.set()
                self.untrack(self.sock)  # the Go program returns: its socket is closed
                return
            got = self.next_datagram()
            if got is not None:
                self.handle_datagram(*got)

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        try:
            self.sendto(sumproto.answer(data, "seed002"), addr)
        except OSError:
            if not self.stopping:
                raise


class _Terminal:
    """Seed 004's operator at the terminal: shows a message, prompts, and reads the line typed on
    standard input, waiting in POLL-second steps so that stopping the server ends the wait."""

    def __init__(self):
        self.pending = b""  # typed bytes not yet taken as an answer

    def ask(self, text: str, stop: threading.Event) -> str | None:
        """The next line typed (without its newline), or None at the end of input or on stop."""
        sys.stdout.write(f"Access Info :  {text}\n回复信息 (reply): ")
        sys.stdout.flush()
        while b"\n" not in self.pending:
            if stop.is_set():
                return None
            ready, _, _ = select.select([sys.stdin], [], [], POLL)
            if not ready:
                continue
            chunk = os.read(sys.stdin.fileno(), 4096)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode("utf-8", "replace")


def got(text: str) -> str:
    """The operator's default answer: 'got: <text>'."""
    return "got: " + text


class SeedChatServer(_ReadOnce):
    """Seed 004's chat server: each Read (at most 1024 bytes) is one message, answered by the
    operator with one line sent with no newline; the operator's "exit" closes the chat.

    The operator is scripted: `script` holds the answers typed, in order (each trimmed, as the
    seed's strings.TrimSpace does); after it, or without one, `reply(text)` answers (default
    'got: <text>'). With `operator=True` (the command line's --operator) a person is the operator,
    as in the seed: each message is printed as the seed prints it ("Access Info :  <text>"), then
    the seed's prompt "回复信息:" ("reply:"), and the line typed on standard input is the answer
    (after the script, if one is given); the end of input (Ctrl-D) counts as "exit". One prompt at a
    time: a message on another connection waits for its turn. Like the seed, it keeps no idle limit
    of its own; as every TcpServer it ends a connection silent for io_timeout seconds (none from the
    command line).

    The seed's flaws, kept on purpose:
    - no framing: two messages written close together come back from one Read as one message
      ("hi" and "there" as "hithere") and get one answer; a message over 1024 bytes gets two;
    - an answer that trims to "" makes the Go server write zero bytes, which sends nothing: the
      client then waits for an answer that never comes (both sides wait for each other);
    - "exit" is typed locally and never travels: the operator's "exit" closes the connection
      (the client's next Read gets EOF), and the client's own "exit" only closes it;
    - the server answers only after each message: it cannot speak first or twice in a row.
    (The seed's fragment also returns without closing the connection on a read error other than
    EOF, because its `defer conn.Close()` comes after the loop; this peer always closes.)
    """

    read_size = CHAT_READ_SIZE

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, script: list[str] | None = None,
                 reply: Callable[[str], str] | None = None, operator: bool = False):
        super().__init__(host, port)
        self.script = list(script or [])
        self.reply = reply or got
        self._turn = 0
        self._turn_lock = threading.Lock()
        self.terminal = _Terminal() if operator else None

    def operator(self, text: str) -> str:
        """The operator's next answer to `text`, trimmed as the seed trims what is typed."""
        with self._turn_lock:
            turn, self._turn = self._turn, self._turn + 1
            if turn >= len(self.script) and self.terminal is not None:
                typed = self.terminal.ask(text, self.stop_event)
                return "exit" if typed is None else typed.strip()
        answer = self.script[turn] if turn < len(self.script) else self.reply(text)
        return answer.strip()

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        who = format_address(addr)
        while True:
            data = self.recv_or_stop(conn, self.read_size)
            if not data:
                return
            self.record("recv", who, data)
            answer = self.operator(data.decode("utf-8", "replace"))
            if answer == "exit":
                self.record("exit", who)
                return
            payload = answer.encode("utf-8")
            conn.settimeout(self.io_timeout)
            if payload:
                conn.sendall(payload)
            self.record("send", who, payload)
