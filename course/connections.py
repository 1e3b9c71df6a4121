"""Long and short connections: what a connection costs, what it leaves behind, and how a server
and a client live with connections that stay open.

A *short* connection carries one request: connect, send, read the reply, close. A *long* one
carries many requests over one connection (seed 001, "长连接和短连接"; seed 002's Go client and
server). This module gives assignment 07 its reference peers and its measurements:

- `IdleTimeoutServer` (CLI name `idle-echo`): a newline-delimited request/response server (echo,
  or seed 002's JSON sum `{"A":7,"B":4}` -> `{"Sum":11}` as course.sumproto answers it, a bad
  request `{"Error":"..."}`) that closes a connection idle for more than `idle_timeout` seconds
  (seed 002's 30 s read deadline, made short and configurable) and refuses more than
  `max_per_client` open connections from one client IP (seed 001's advice) with one line
  `ERROR too many connections from <ip> (limit <n>)`.
- Measurements, returning plain data: `compare_short_long` (per-request latencies, medians,
  ratio), `count_time_wait` and `time_wait_timers` (TIME_WAIT sockets and their timers, read
  from /proc/net/tcp: Linux holds TIME_WAIT for a fixed 60 s, TCP_TIMEWAIT_LEN in
  include/net/tcp.h, not the 2 x 2 min of RFC 793's MSL), the keepalive options of a socket and
  the kernel's defaults (/proc/sys/net/ipv4/tcp_keepalive_time, _intvl, _probes: 7200, 75, 9),
  `compare_tcp_udp` (request/response over UDP, TCP long and TCP short connections, by size), and
  `plot_latencies`.
- The checks of the graded cells (a learner's short and long clients, server and measurement)
  live in `course.checks.connections`; `connections.check_*`, the names of earlier releases,
  still reach them.
"""
from __future__ import annotations

import socket
import statistics
import struct
import threading
import time
from typing import Any, Callable

from course import sumproto
from course.checks import forward_moved_checks
from course.deadline import Deadline, wait_for
from course.errors import PeerError, SetupError
from course.kernel import TCP_TIMEWAIT_LEN, all_sockets, sockets_on_port
from course.kernel.diag import query as diag_query
from course.serving import POLL, Address, TcpServer, UdpServer, format_address

__all__ = [
    "REQUEST_TIMEOUT",
    "CHECK_TIMEOUT",
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
    "time_wait_timers",
    "KEEPALIVE_SYSCTLS",
    "keepalive_defaults",
    "keepalive_settings",
    "set_keepalive",
    "dead_peer_detection_seconds",
    "TIMER_NAMES",
    "kernel_timer",
    "reuse_after_server_close",
    "UDP_MAX_PAYLOAD",
    "ACK",
    "compare_tcp_udp",
    "plot_tcp_udp",
    "main",
]

REQUEST_TIMEOUT = 5.0  # seconds any single request of this module's demos may take (loopback: microseconds)
# Seconds a check gives one step (a learner's call, a reference peer's answer, a close it waits
# for) before it blames the code under test. A step takes tens of microseconds on loopback; this
# bound is for a machine running dozens of kernels on two cores, where a thread may wait seconds
# for the CPU. Correct code never waits for it (every wait ends when its condition holds), so a
# busy machine makes a check slower, never changes its verdict.
CHECK_TIMEOUT = 5.0
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
    """Seed 002's sum as the course speaks it (course.sumproto, the "course" dialect, no ids, as
    assignment 04's TCP lines): b'{"A":7,"B":4}' -> b'{"Sum":11}'; a request that is not a JSON
    object with integers "A" and "B" (b'{"A":"7","B":4}' included) gets b'{"Error":"<what is wrong>"}'."""
    return sumproto.answer(line, ids=False)


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
                        self.stop_event.wait(self.first_reply_delay - (time.monotonic() - held))
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
                ends = diag_query(conn.family, (peer, me))
            except OSError:
                ends = sockets_on_port(me[1])
            ends = [e for e in ends if (e.local, e.remote) == (peer, me) and e.state == "ESTABLISHED"]
            if not ends or ends[0].rx_queue == 0:
                return  # read (or the client is gone, or lives in another network namespace)
            self.stop_event.wait(0.001)

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
# TIME_WAIT, read from /proc/net/tcp (course.kernel's reader)
# ----------------------------------------------------------------------------------------------
TIME_WAIT_SECONDS_LINUX = int(TCP_TIMEWAIT_LEN)  # TCP_TIMEWAIT_LEN (include/net/tcp.h): fixed, not a sysctl
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


def time_wait_timers(port: int) -> list[float]:
    """Seconds left before each TIME_WAIT socket on `port` disappears, largest first (a fresh one
    shows about 60 s on Linux), from the timer column of /proc/net/tcp."""
    return sorted((e.timer_seconds for e in all_sockets(("tcp",))
                   if e.timer == "time_wait" and port in (e.local[1], e.remote[1])), reverse=True)


def time_wait_remaining(port: int) -> list[float]:
    """Deprecated name of time_wait_timers (course.kernel.time_wait_remaining is per connection)."""
    import warnings

    warnings.warn("connections.time_wait_remaining is now time_wait_timers", DeprecationWarning, stacklevel=2)
    return time_wait_timers(port)


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


# course.kernel's timer names -> the names this lesson prints
TIMER_NAMES = {None: "none", "retransmit": "retransmit", "keepalive": "keepalive", "time_wait": "TIME_WAIT",
               "zero_window_probe": "zero-window probe"}


def kernel_timer(sock: socket.socket) -> tuple[str, float]:
    """The timer the kernel runs for this connected socket, from /proc/net/tcp: ('keepalive', 4.99)
    means a keepalive probe is due in 4.99 s; ('none', 0.0) means no timer."""
    key = (sock.getsockname()[:2], sock.getpeername()[:2])
    for e in all_sockets(("tcp",)):
        if (e.local, e.remote) == key:
            return TIMER_NAMES.get(e.timer, str(e.timer)), e.timer_seconds or 0.0
    return "none", 0.0


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

    def serve_forever(self) -> None:
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


# The checks moved to course.checks.connections; notebooks of earlier releases call them here.
__getattr__ = forward_moved_checks(__name__, "course.checks.connections")


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
              f"{count_time_wait(server.port)}; the newest expires in {max(time_wait_timers(server.port), default=0):.1f} s")
    print("size      UDP ms   TCP long ms  TCP short ms  short/long  long/UDP")
    for row in compare_tcp_udp():
        udp = f"{row['udp_ms']:8.3f}" if row["udp_ms"] else "       -"
        ratio = f"{row['long_over_udp']:8.2f}" if row["long_over_udp"] else "       -"
        print(f"{row['size']:>8} {udp} {row['tcp_long_ms']:12.3f} {row['tcp_short_ms']:13.3f} "
              f"{row['short_over_long']:11.2f} {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

