"""Long and short connections: what a connection costs, what it leaves behind, and how a server
and a client live with connections that stay open.

A *short* connection carries one request: connect, send, read the reply, close. A *long* one
carries many requests over one connection (seed 001, "长连接和短连接"; seed 002's Go client and
server). This module gives assignment 07 its reference peers and its measurements:

- `IdleTimeoutServer` (CLI name `idle-echo`): a newline-delimited request/response server (echo,
  or seed 002's JSON sum `{"A":7,"B":4}` -> `{"Sum":11}`) that closes a connection idle for more
  than `idle_timeout` seconds (seed 002's 30 s read deadline, made short and configurable) and
  refuses more than `max_per_client` open connections from one client IP (seed 001's advice) with
  one line `ERROR too many connections from <ip> (limit <n>)`.
- Measurements, returning plain data: `compare_short_long` (per-request latencies, medians,
  ratio), `count_time_wait` and `time_wait_remaining` (TIME_WAIT sockets and their timers, read
  from /proc/net/tcp: Linux holds TIME_WAIT for a fixed 60 s, TCP_TIMEWAIT_LEN in
  include/net/tcp.h, not the 2 x 2 min of RFC 793's MSL), the keepalive options of a socket and
  the kernel's defaults (/proc/sys/net/ipv4/tcp_keepalive_time, _intvl, _probes: 7200, 75, 9),
  `compare_tcp_udp` (request/response over UDP, TCP long and TCP short connections, by size), and
  `plot_latencies`.
- Checks for the graded cells: a learner's short and long clients (same interface:
  `request(bytes) -> bytes`, `close()`, context manager; the long one must reconnect once when the
  server closed the connection it reuses, and only then), a learner's server with an idle timeout
  and a cap per client, and a learner's measurement function. Checks drive idle closes with the
  server's events and `wait_for`, never with sleeps, and a busy machine (dozens of kernels on two
  cores) makes them slower, never changes a verdict: every wait ends as soon as its condition holds
  (CHECK_TIMEOUT only bounds it), a measurement is judged by its mechanism (connections, requests
  per connection, and a lower bound the server imposes on a new connection's first reply), never by
  comparing two timings.
"""
from __future__ import annotations

import json
import os
import select
import socket
import statistics
import struct
import threading
import time
from typing import Any, Callable

from course.checks import call_with_deadline, expect_type, no_leaked_sockets, record_evidence
from course.deadline import Deadline, wait_for
from course.errors import PeerError, SetupError, YourCodeError
from course.kernel import _diag, sockets_on_port
from course.serving import POLL, Address, TcpServer, UdpServer, format_address, register

__all__ = [
    "REQUEST_TIMEOUT",
    "CHECK_TIMEOUT",
    "CALL_DEADLINE",
    "FIRST_REPLY_DELAY",
    "MAX_LINE",
    "recv_line",
    "connect_from",
    "exchange",
    "json_sum",
    "IdleTimeoutServer",
    "time_short_connections",
    "time_long_connection",
    "summarize",
    "compare_short_long",
    "plot_latencies",
    "TIME_WAIT_SECONDS_LINUX",
    "TIME_WAIT_SECONDS_RFC793",
    "count_time_wait",
    "CLOSING_STATES",
    "wait_until_closed",
    "time_wait_table",
    "time_wait_remaining",
    "KEEPALIVE_SYSCTLS",
    "keepalive_defaults",
    "keepalive_settings",
    "set_keepalive",
    "dead_peer_detection_seconds",
    "TIMER_KINDS",
    "kernel_timer",
    "reuse_after_server_close",
    "UDP_MAX_PAYLOAD",
    "ACK",
    "compare_tcp_udp",
    "plot_tcp_udp",
    "check_short_client",
    "check_long_client_reuses",
    "check_long_client_reconnects",
    "check_long_client_hard",
    "ACTIVE_PROOF",
    "check_idle_timeout",
    "check_connection_cap",
    "check_cap_frees_slots",
    "check_measurement",
    "main",
]

REQUEST_TIMEOUT = 5.0  # seconds any single request of this module's demos may take (loopback: microseconds)
# Seconds a check gives one step (a learner's call, a reference peer's answer, a close it waits
# for) before it blames the code under test. A step takes tens of microseconds on loopback; this
# bound is for a machine running dozens of kernels on two cores, where a thread may wait seconds
# for the CPU. Correct code never waits for it (every wait ends when its condition holds), so a
# busy machine makes a check slower, never changes its verdict.
CHECK_TIMEOUT = 5.0
CALL_DEADLINE = 2 * CHECK_TIMEOUT  # a learner's request may reconnect: two timeouts in the worst case
FIRST_REPLY_DELAY = 0.03  # s the checks' server holds the first reply on a connection (check_measurement)
MAX_LINE = 65536  # bytes: a request or reply line longer than this is an error


# ----------------------------------------------------------------------------------------------
# Lines on a stream
# ----------------------------------------------------------------------------------------------
def recv_line(sock: socket.socket, limit: int = MAX_LINE) -> bytes:
    """Read one line from a connection, without its b'\\n', and nothing after it (it peeks first,
    so that the next line stays in the kernel's buffer). Raise ConnectionError if the peer closes
    before the end of the line, ValueError if the line is longer than `limit` bytes."""
    line = b""
    while True:
        chunk = sock.recv(limit + 1 - len(line), socket.MSG_PEEK)
        if not chunk:
            raise ConnectionError(f"the peer closed the connection after {len(line)} bytes of a line")
        end = chunk.find(b"\n")
        take = len(chunk) if end < 0 else end + 1
        line += sock.recv(take)
        if line.endswith(b"\n"):
            return line[:-1]
        if len(line) > limit:
            raise ValueError(f"a line longer than {limit} bytes arrived; is the peer sending newlines?")


def connect_from(source_ip: str, address: Address, timeout: float = CHECK_TIMEOUT) -> socket.socket:
    """A TCP connection to `address` whose local address is `source_ip` (a 127.x.y.z: each one plays
    another client host), on a port the kernel chooses."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.bind((source_ip, 0))
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def exchange(sock: socket.socket, line: bytes) -> bytes:
    """Send one request line over a connection and return the reply line (both without b'\\n')."""
    sock.sendall(line + b"\n")
    return recv_line(sock)


# ----------------------------------------------------------------------------------------------
# The reference server
# ----------------------------------------------------------------------------------------------
def json_sum(line: bytes) -> bytes:
    """Seed 002's protocol: b'{"A":7,"B":4}' -> b'{"Sum":11}'; a malformed request gets an ERROR line."""
    try:
        request = json.loads(line)
        return json.dumps({"Sum": int(request["A"]) + int(request["B"])}, separators=(",", ":")).encode()
    except (ValueError, KeyError, TypeError):
        return b"ERROR expected a JSON object like {\"A\":7,\"B\":4}"


@register("idle-echo")
class IdleTimeoutServer(TcpServer):
    """Echoes newline-terminated lines; closes connections idle too long; caps connections per client IP."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        idle_timeout: float = 30.0,
        max_per_client: int | None = None,
        protocol: str = "echo",
        max_requests: int | None = None,
        reset_on_idle: bool = False,
        reply_chunk: int | None = None,
        record_lines: bool = True,
        first_reply_delay: float = 0.0,
        serve_connections: int | None = None,
    ):
        """idle_timeout: seconds without a complete request before the server closes a connection
        (seed 002 uses 30 s); max_per_client: open connections allowed per client IP (None: no cap);
        protocol: 'echo' or 'sum' (seed 002's JSON sum); max_requests: close a connection after
        that many replies (0: close every connection at once, without answering); reset_on_idle:
        close idle connections with RST (SO_LINGER 0) instead of FIN; reply_chunk: send replies in
        pieces of this many bytes (a stream may arrive in any pieces); record_lines: keep every
        request in `events` (off for long measurements); first_reply_delay: hold the reply to the
        first request of each connection that many seconds (a network where a new connection costs
        a round trip before its first request is answered); serve_connections: serve only the first
        that many connections and close later ones at once, unread (a server going down).
        `replies` maps each connection served ('127.0.0.1:54012') to the replies sent on it."""
        super().__init__(host, port)
        if idle_timeout <= 0:
            raise SetupError(f"idle_timeout must be positive, got {idle_timeout!r} s")
        if protocol not in ("echo", "sum"):
            raise SetupError(f"protocol must be 'echo' or 'sum', got {protocol!r}")
        self.idle_timeout = idle_timeout
        self.max_per_client = max_per_client
        self.protocol = protocol
        self.max_requests = max_requests
        self.reset_on_idle = reset_on_idle
        self.reply_chunk = reply_chunk
        self.record_lines = record_lines
        self.first_reply_delay = first_reply_delay
        self.serve_connections = serve_connections
        self.connections = 0  # connections not refused by the cap, in the order they came
        self.replies: dict[str, int] = {}  # connection -> replies sent on it
        self.active: dict[str, int] = {}  # client IP -> open connections being served
        self._active_lock = threading.Lock()

    # -- what a notebook or a check reads ----------------------------------------------------
    @property
    def accepts(self) -> int:
        """How many connections the server accepted (refused ones included)."""
        return len(self.events_of("accept"))

    @property
    def idle_closes(self) -> int:
        return len(self.events_of("idle-close"))

    # -- serving -------------------------------------------------------------------------
    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        ip = addr[0]
        with self._active_lock:
            open_now = self.active.get(ip, 0)
            refuse = self.max_per_client is not None and open_now >= self.max_per_client
            if not refuse:
                self.active[ip] = open_now + 1
        if refuse:
            self.record("refuse", ip, self.max_per_client)
            conn.sendall(f"ERROR too many connections from {ip} (limit {self.max_per_client})\n".encode())
            return
        try:
            self._serve(conn, addr)
        finally:
            with self._active_lock:
                self.active[ip] -= 1
                if not self.active[ip]:
                    del self.active[ip]

    def _serve(self, conn: socket.socket, addr: Address) -> None:
        where = format_address(addr)
        with self._active_lock:
            self.connections += 1
            closing = self.max_requests == 0 or (self.serve_connections is not None
                                                 and self.connections > self.serve_connections)
            if not closing:
                self.replies[where] = 0
        if closing:
            self._close_unserved(conn)
            return
        conn.settimeout(min(POLL, self.idle_timeout / 4))
        buffer = b""
        served = 0
        last = time.monotonic()
        while not self.stopping:
            if b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if self.record_lines:
                    self.record("recv", where, line)
                if served == 0 and self.first_reply_delay:
                    held = time.monotonic()
                    while not self.stopping and time.monotonic() - held < self.first_reply_delay:
                        self._stop.wait(self.first_reply_delay - (time.monotonic() - held))
                self._reply(conn, self.respond(line))
                served += 1
                with self._active_lock:
                    self.replies[where] = served
                last = time.monotonic()
                if self.max_requests is not None and served >= self.max_requests:
                    return
                continue
            try:
                data = conn.recv(65536)
            except TimeoutError:
                if time.monotonic() - last >= self.idle_timeout:
                    self._close_idle(conn, where)
                    return
                continue
            if not data:
                return  # the client closed: it holds TIME_WAIT, we do not
            buffer += data
            if len(buffer) > MAX_LINE:
                conn.sendall(b"ERROR line too long\n")
                return

    def _close_unserved(self, conn: socket.socket) -> None:
        """Close a connection without answering, as a lingering close (RFC 9112, section 9.6): the
        FIN first, then read and drop what the client sends until it closes (at most idle_timeout),
        so that closing finds no unread data and sends no RST. The client always sees the end of
        the stream (recv returns b''), whatever the order in which its request and our FIN cross."""
        try:
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(min(POLL, self.idle_timeout))
            deadline = Deadline(self.idle_timeout)
            while not self.stopping and not deadline.expired():
                try:
                    if not conn.recv(65536):
                        return
                except TimeoutError:
                    continue
        except OSError:
            return

    def respond(self, line: bytes) -> bytes:
        return json_sum(line) if self.protocol == "sum" else line

    def _reply(self, conn: socket.socket, reply: bytes) -> None:
        data = reply + b"\n"
        if not self.reply_chunk:
            conn.sendall(data)
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), self.reply_chunk):
            conn.sendall(data[i : i + self.reply_chunk])
            if i + self.reply_chunk < len(data):
                self._wait_until_read(conn)

    def _wait_until_read(self, conn: socket.socket) -> None:
        """Wait until the client has read everything sent so far, so that each piece of a reply
        reaches its recv alone however busy the machine is. The client's end of the connection is
        the socket whose local address is our peer's: one sock_diag question about that exact
        4-tuple (about 0.1 ms; /proc/net/tcp, tens of ms once thousands of TIME_WAIT sockets fill
        it, only where sock_diag is missing)."""
        peer, me = conn.getpeername()[:2], conn.getsockname()[:2]
        deadline = Deadline(CHECK_TIMEOUT)
        while not self.stopping and not deadline.expired():
            try:
                ends = _diag(conn.family, (peer, me))
            except OSError:
                ends = sockets_on_port(me[1])
            ends = [e for e in ends if (e.local, e.remote) == (peer, me) and e.state == "ESTABLISHED"]
            if not ends or ends[0].rx_queue == 0:
                return  # read (or the client is gone, or lives in another network namespace)
            self._stop.wait(0.001)

    def _close_idle(self, conn: socket.socket, where: str) -> None:
        # Close here, before recording: whoever waits for the event finds the socket closed.
        if self.reset_on_idle:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        self.record("idle-close", where, self.idle_timeout)


# ----------------------------------------------------------------------------------------------
# Short versus long: measured
# ----------------------------------------------------------------------------------------------
def time_short_connections(address: Address, n: int, line: bytes = b"ping") -> list[float]:
    """Seconds taken by each of `n` requests, each on its own connection (connect, send, read the
    reply, close: the client closes first, so the client's side holds TIME_WAIT)."""
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as sock:
            reply = exchange(sock, line)
        latencies.append(time.perf_counter() - start)
        if reply != line:
            raise PeerError(f"the server at {format_address(address)} answered {reply!r} to {line!r}")
    return latencies


def time_long_connection(address: Address, n: int, line: bytes = b"ping") -> list[float]:
    """Seconds taken by each of `n` requests sent one after the other over one connection."""
    latencies = []
    with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as sock:
        for _ in range(n):
            start = time.perf_counter()
            reply = exchange(sock, line)
            latencies.append(time.perf_counter() - start)
            if reply != line:
                raise PeerError(f"the server at {format_address(address)} answered {reply!r} to {line!r}")
    return latencies


def summarize(short: list[float], long: list[float]) -> dict:
    """Plain data: both latency lists (seconds), their medians, and how many times slower short is."""
    short_median, long_median = statistics.median(short), statistics.median(long)
    return {
        "n": len(short),
        "short": list(short),
        "long": list(long),
        "short_median": short_median,
        "long_median": long_median,
        "ratio": short_median / long_median,
    }


def compare_short_long(address: Address, n: int = 200) -> dict:
    """Time `n` requests over `n` short connections, then over one long connection (see summarize)."""
    return summarize(time_short_connections(address, n), time_long_connection(address, n))


def plot_latencies(result: dict, ax=None):
    """Per-request latency (ms) of short and long connections, with their medians; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    for key, colour in (("short", "tab:red"), ("long", "tab:blue")):
        ms = [s * 1000 for s in result[key]]
        ax.plot(range(1, len(ms) + 1), ms, ".", ms=3, color=colour, alpha=0.6, label=f"{key} connections")
        ax.axhline(result[f"{key}_median"] * 1000, color=colour, lw=1.5,
                   label=f"{key}: median {result[f'{key}_median'] * 1000:.3f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("request number")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(f"{result['n']} requests on loopback: short is {result['ratio']:.1f}x slower (medians)")
    ax.legend(loc="upper right", fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------
# TIME_WAIT, read from /proc/net/tcp
# ----------------------------------------------------------------------------------------------
TIME_WAIT_SECONDS_LINUX = 60  # TCP_TIMEWAIT_LEN (include/net/tcp.h): fixed, not a sysctl
TIME_WAIT_SECONDS_RFC793 = 2 * 120  # 2 x MSL, with RFC 793's MSL of 2 minutes


def count_time_wait(port: int) -> int:
    """How many TCP sockets on `port` (local or remote) are in TIME_WAIT right now."""
    return sum(1 for e in sockets_on_port(port, "tcp") if e.state == "TIME_WAIT")


CLOSING_STATES = ("FIN_WAIT1", "FIN_WAIT2", "CLOSING", "CLOSE_WAIT", "LAST_ACK")


def wait_until_closed(port: int, timeout: float = CHECK_TIMEOUT) -> None:
    """Wait until no TCP connection on `port` is half-way through its close. The client's side
    enters TIME_WAIT only when the server's FIN arrives, and the server closes its side in its own
    thread a moment after the client (later still on a busy machine): count TIME_WAIT after this."""
    wait_for(lambda: not [e for e in sockets_on_port(port) if e.state in CLOSING_STATES], timeout,
             lambda: f"connections on port {port} still closing after {timeout} s: "
                     f"{[e.state for e in sockets_on_port(port) if e.state in CLOSING_STATES]}", error=PeerError)


def time_wait_table(port: int) -> list[tuple[str, str, str]]:
    """(local, remote, state) of the TIME_WAIT sockets on `port`: whose side holds them."""
    return sorted(
        (format_address(e.local), format_address(e.remote), e.state)
        for e in sockets_on_port(port, "tcp")
        if e.state == "TIME_WAIT"
    )


def _ipv4_endpoint(text: str) -> tuple[str, int]:
    """'0100007F:8503' (an address of /proc/net/tcp: one 32-bit word in host order) -> ('127.0.0.1', 34051)."""
    hex_ip, hex_port = text.split(":")
    return socket.inet_ntoa(struct.pack("=I", int(hex_ip, 16))), int(hex_port, 16)


def _proc_tcp_timers() -> dict[tuple[tuple[str, int], tuple[str, int]], tuple[int, float]]:
    """(local, remote) -> (timer kind, seconds left) of every IPv4 TCP socket. Kinds
    (net/ipv4/tcp_ipv4.c): 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe."""
    ticks = os.sysconf("SC_CLK_TCK")  # the file counts in clock ticks (USER_HZ)
    timers = {}
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if len(fields) < 6:
                continue
            kind, when = fields[5].split(":")
            local, remote = _ipv4_endpoint(fields[1]), _ipv4_endpoint(fields[2])
            timers[(local, remote)] = (int(kind, 16), int(when, 16) / ticks)
    return timers


def time_wait_remaining(port: int) -> list[float]:
    """Seconds left before each TIME_WAIT socket on `port` disappears, largest first (a fresh one
    shows about 60 s on Linux)."""
    left = [
        seconds
        for (local, remote), (kind, seconds) in _proc_tcp_timers().items()
        if kind == 3 and port in (local[1], remote[1])
    ]
    return sorted(left, reverse=True)


# ----------------------------------------------------------------------------------------------
# Keepalive
# ----------------------------------------------------------------------------------------------
KEEPALIVE_SYSCTLS = {
    "TCP_KEEPIDLE": "/proc/sys/net/ipv4/tcp_keepalive_time",
    "TCP_KEEPINTVL": "/proc/sys/net/ipv4/tcp_keepalive_intvl",
    "TCP_KEEPCNT": "/proc/sys/net/ipv4/tcp_keepalive_probes",
}


def keepalive_defaults() -> dict[str, int]:
    """The kernel's defaults for sockets that turn keepalive on (Linux: 7200 s, 75 s, 9 probes)."""
    out = {}
    for name, path in KEEPALIVE_SYSCTLS.items():
        with open(path) as f:
            out[name] = int(f.read())
    return out


def keepalive_settings(sock: socket.socket) -> dict[str, int]:
    """SO_KEEPALIVE (0 off, 1 on) and the three TCP keepalive options of one socket."""
    return {
        "SO_KEEPALIVE": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
        "TCP_KEEPIDLE": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        "TCP_KEEPINTVL": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        "TCP_KEEPCNT": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
    }


def set_keepalive(sock: socket.socket, idle: int = 60, interval: int = 10, count: int = 5) -> dict[str, int]:
    """Turn keepalive on: first probe after `idle` s without traffic, then every `interval` s; the
    kernel gives up (and the next recv raises TimeoutError) after `count` unanswered probes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)
    return keepalive_settings(sock)


def dead_peer_detection_seconds(settings: dict[str, int]) -> int:
    """Worst case before keepalive declares a silent peer dead: idle + count x interval."""
    return settings["TCP_KEEPIDLE"] + settings["TCP_KEEPCNT"] * settings["TCP_KEEPINTVL"]


TIMER_KINDS = {0: "none", 1: "retransmit", 2: "keepalive", 3: "TIME_WAIT", 4: "zero-window probe"}


def kernel_timer(sock: socket.socket) -> tuple[str, float]:
    """The timer the kernel runs for this connected socket, from /proc/net/tcp: ('keepalive', 4.99)
    means a keepalive probe is due in 4.99 s; ('none', 0.0) means no timer."""
    key = (sock.getsockname()[:2], sock.getpeername()[:2])
    kind, seconds = _proc_tcp_timers().get(key, (0, 0.0))
    return TIMER_KINDS.get(kind, str(kind)), seconds


# ----------------------------------------------------------------------------------------------
# Reusing a connection the server closed: what each call does
# ----------------------------------------------------------------------------------------------
def _outcome(call: Callable[[], Any]) -> str:
    try:
        value = call()
    except OSError as exc:
        return type(exc).__name__
    return "returned b''" if value == b"" else ("ok" if value is None else f"returned {value!r}")


def reuse_after_server_close(server: IdleTimeoutServer) -> dict[str, str]:
    """Open a connection, make one request, let the server close it as idle (waiting for its
    'idle-close' event), then reuse it: what sendall, recv and a second sendall do."""
    before = server.idle_closes
    with socket.create_connection(server.address, timeout=REQUEST_TIMEOUT) as sock:
        first = exchange(sock, b"first")
        wait_for(lambda: server.idle_closes > before, server.idle_timeout + CHECK_TIMEOUT,
                 f"the server at {server.where} did not close the idle connection", error=PeerError)
        return {
            "first request": f"returned {first!r}",
            "sendall after the server closed": _outcome(lambda: sock.sendall(b"second\n")),
            "recv": _outcome(lambda: sock.recv(100)),
            "sendall again": _outcome(lambda: sock.sendall(b"third\n")),
        }


# ----------------------------------------------------------------------------------------------
# TCP versus UDP, measured on loopback
# ----------------------------------------------------------------------------------------------
UDP_MAX_PAYLOAD = 65507  # bytes: 65535 (IPv4 total length) - 20 (IP header) - 8 (UDP header)
ACK = b"k"


class _TcpSink(TcpServer):
    """Reads requests framed as an 8-byte length and that many bytes; answers each with b'k'.
    Records nothing (for measurements)."""

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        while True:
            header = _recv_exactly(conn, 8, eof_ok=True)
            if not header:
                return
            (size,) = struct.unpack("!Q", header)
            left = size
            while left:
                chunk = conn.recv(min(left, 1 << 20))
                if not chunk:
                    return
                left -= len(chunk)
            conn.sendall(ACK)


class _UdpSink(UdpServer):
    """Answers every datagram with b'k', keeping no record of it (for measurements)."""

    def _serve_forever(self) -> None:
        while not self.stopping:
            try:
                _, addr = self.sock.recvfrom(self.max_datagram)
                self.sock.sendto(ACK, addr)
            except OSError:
                continue


def _recv_exactly(sock: socket.socket, n: int, eof_ok: bool = False) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            if eof_ok and not data:
                return b""
            raise PeerError(f"the connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def _time_udp(address, payload: bytes, n: int) -> list[float]:
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(REQUEST_TIMEOUT)
        for _ in range(n):
            start = time.perf_counter()
            sock.sendto(payload, address)
            sock.recvfrom(16)
            out.append(time.perf_counter() - start)
    return out


def _tcp_exchange(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack("!Q", len(payload)))
    sock.sendall(payload)
    if _recv_exactly(sock, 1) != ACK:
        raise PeerError("the TCP sink answered something other than b'k'")


def _time_tcp_long(address, payload: bytes, n: int) -> list[float]:
    out = []
    with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(n):
            start = time.perf_counter()
            _tcp_exchange(sock, payload)
            out.append(time.perf_counter() - start)
    return out


def _time_tcp_short(address, payload: bytes, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        with socket.create_connection(address, timeout=REQUEST_TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _tcp_exchange(sock, payload)
        out.append(time.perf_counter() - start)
    return out


def compare_tcp_udp(sizes: tuple[int, ...] = (64, 1024, 16384, 60000, 1_000_000, 8_000_000), n: int = 50) -> list[dict]:
    """For each size: send that many bytes and wait for a 1-byte answer, over UDP (one datagram,
    so only up to 65507 bytes), over TCP on one long connection, and over TCP with a new connection
    each time. Returns one row per size: median milliseconds and MB/s (bytes / median time) of
    each, and how TCP compares (None where UDP cannot carry the size in one datagram). Sizes above
    64 KB run n // 5 times (at least 3)."""
    rows = []
    with _TcpSink() as tcp, _UdpSink() as udp:
        for size in sizes:
            payload = bytes(size)
            runs = n if size <= UDP_MAX_PAYLOAD else max(3, n // 5)
            times = {
                "udp": _time_udp(udp.address, payload, runs) if size <= UDP_MAX_PAYLOAD else None,
                "tcp_long": _time_tcp_long(tcp.address, payload, runs),
                "tcp_short": _time_tcp_short(tcp.address, payload, runs),
            }
            row: dict[str, Any] = {"size": size, "runs": runs}
            for key, values in times.items():
                median = statistics.median(values) if values else None
                row[f"{key}_ms"] = median * 1000 if median else None
                row[f"{key}_MBps"] = size / median / 1e6 if median else None
            row["short_over_long"] = row["tcp_short_ms"] / row["tcp_long_ms"]
            row["long_over_udp"] = row["tcp_long_ms"] / row["udp_ms"] if row["udp_ms"] else None
            row["short_over_udp"] = row["tcp_short_ms"] / row["udp_ms"] if row["udp_ms"] else None
            rows.append(row)
    return rows


def plot_tcp_udp(rows: list[dict], ax=None):
    """MB/s of each way to move a block of bytes, by block size (log-log); returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    styles = (("udp", "tab:green", "UDP, one datagram"), ("tcp_long", "tab:blue", "TCP, one long connection"),
              ("tcp_short", "tab:red", "TCP, a new connection each time"))
    for key, colour, label in styles:
        points = [(r["size"], r[f"{key}_MBps"]) for r in rows if r[f"{key}_MBps"]]
        ax.plot(*zip(*points), "o-", color=colour, label=label)
    ax.axvline(UDP_MAX_PAYLOAD, color="gray", lw=1, ls=":", label="largest UDP datagram (65507 B)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bytes sent per exchange (answer: 1 byte)")
    ax.set_ylabel("MB/s (bytes / median time)")
    ax.set_title("Moving a block of bytes on loopback")
    ax.legend(fontsize=8)
    return ax


# ----------------------------------------------------------------------------------------------
# Checks for the graded cells
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
    try:
        reply = call_with_deadline(client.request, line, timeout=timeout, name=name)
    except (NotImplementedError, YourCodeError):
        raise
    except Exception as exc:
        raise YourCodeError(f"{name}({line!r}) raised {type(exc).__name__}: {exc}{'; ' + what if what else ''}") from exc
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


def check_connection_cap(cls, cap: int = 2, hosts: tuple[str, ...] = ("127.0.0.2", "127.0.0.3")) -> None:
    """`cap` connections from one client IP are served; the next one from that IP gets one line
    starting with b'ERROR' and is closed; other IPs still get in; the first ones still work."""
    name = getattr(cls, "__name__", "your server")
    server = _start_server(cls, idle_timeout=5.0, max_per_client=cap)
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


# ----------------------------------------------------------------------------------------------
# `python -m course.connections [N]`: the figures the notebook quotes, measured on this machine
# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 200
    with IdleTimeoutServer(record_lines=False) as server:
        result = compare_short_long(server.address, n)
        wait_until_closed(server.port)
        print(f"{n} requests, short connections: median {result['short_median'] * 1000:.3f} ms; "
              f"one long connection: median {result['long_median'] * 1000:.3f} ms; short/long {result['ratio']:.1f}x")
        print(f"TIME_WAIT sockets on port {server.port} after {n} short connections and 1 long one: "
              f"{count_time_wait(server.port)}; the newest expires in {max(time_wait_remaining(server.port), default=0):.1f} s")
    print("size      UDP ms   TCP long ms  TCP short ms  short/long  long/UDP")
    for row in compare_tcp_udp():
        udp = f"{row['udp_ms']:8.3f}" if row["udp_ms"] else "       -"
        ratio = f"{row['long_over_udp']:8.2f}" if row["long_over_udp"] else "       -"
        print(f"{row['size']:>8} {udp} {row['tcp_long_ms']:12.3f} {row['tcp_short_ms']:13.3f} "
              f"{row['short_over_long']:11.2f} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
