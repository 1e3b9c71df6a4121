"""Loopback servers as context managers: the plumbing under every reference peer of the course.

A server binds a loopback address (127.0.0.1 by default, any 127.x.y.z or ::1 allowed) on port 0,
reads back the real address the kernel chose (`server.address`), and serves from a background
thread. Leaving the `with` block (or calling `close()`) stops the thread, closes every socket and
joins every thread it started, so that re-running a notebook cell never leaves "Address already
in use" or a stray thread. Loops poll their stop flag at a bounded interval (the CPython
socketserver habit), so closing takes at most about `POLL` seconds.

Each server keeps `events`: what it saw on the wire, as plain data (tuples of strings, numbers and
bytes), so that a check can say what the peer observed ("the server received b'hi' from
127.0.0.1:40312") and a grader can compare it outside the learner's kernel.

Subclasses implement `handle_connection(conn, addr)` (TCP, one thread per connection) or
`handle_datagram(data, addr)` (UDP, one thread); what else they may override and what they may
call is listed in the docstrings of `LoopbackServer`, `TcpServer` and `UdpServer`, the way the
standard library's socketserver lists it. Which peers `python -m course serve NAME` starts is the
table in course/peers.py, the one place a peer gets its name.
"""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable

from course.errors import SetupError

__all__ = [
    "POLL",
    "JOIN_TIMEOUT",
    "Address",
    "loopback_host",
    "family_of",
    "format_address",
    "LoopbackServer",
    "TcpServer",
    "UdpServer",
    "tcp_pair",
]

POLL = 0.05  # seconds: how often a serving loop looks at its stop flag
JOIN_TIMEOUT = 2.0  # seconds a close() waits for each thread before it calls that a bug

Address = tuple  # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6


def loopback_host(host: str) -> str:
    """Return `host` if it is a loopback address (127.0.0.0/8 or ::1), else raise SetupError."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise SetupError(
            f"{host!r} is not an IP address; the course binds loopback addresses only, such as '127.0.0.1'"
        ) from None
    if not ip.is_loopback:
        raise SetupError(
            f"{host} is not a loopback address; the course only binds 127.0.0.0/8 or ::1 so that no traffic leaves this machine"
        )
    return host


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def format_address(address: Address) -> str:
    """'127.0.0.1:54012' or '[::1]:54012'."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LoopbackServer:
    """Base class: one socket on a loopback address, served by threads, cleaned up on exit.

    `start()` (or entering the `with` block) binds the address, calls `setup(sock)`, then runs
    `serve_forever()` in a thread; `close()` (or leaving the block) sets the stop flag, closes every
    tracked socket and joins every thread `spawn` started.

    Methods that may be overridden:

    - setup(sock): once, after bind and before serving (call super().setup(sock) to keep the
      base's listen() or timeout);
    - serve_forever(): the serving loop, in its own thread; it must return soon after `stopping`
      becomes true (TcpServer and UdpServer have one: override it only for a loop of your own);
    - start(): to clean up what a failed start left (call super().start()).

    Methods for subclasses (call them, do not override them):

    - spawn(target, name, *args): run `target(*args)` in a thread that close() joins;
    - track(sock): a socket close() must close (it is closed at once if the server is stopping);
    - untrack(sock): close a tracked socket now and forget it;
    - record(kind, *data): remember what was seen on the wire (`events`, `events_of(kind)`);
    - stopping: true once close() has begun; stop_event: the same as a threading.Event, to wait
      on (`self.stop_event.wait(seconds)` is a pause that close() cuts short).
    """

    sock_type = socket.SOCK_STREAM

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = loopback_host(host)
        self.requested_port = port
        self.address: Address | None = None
        self.events: list[tuple] = []
        self._events_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self.sock: socket.socket | None = None

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "LoopbackServer":
        if self.sock is not None:
            raise SetupError(f"{type(self).__name__} at {self.where} is already started")
        sock = socket.socket(family_of(self.host), self.sock_type)
        try:
            if self.sock_type == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise SetupError(
                f"cannot bind {self.host} port {self.requested_port}: {exc.strerror}; use port 0 to let the kernel choose a free port"
            ) from exc
        self.sock = sock
        self.address = sock.getsockname()
        self.track(sock)
        self.setup(sock)
        self.spawn(self.serve_forever, f"{type(self).__name__}-{self.port}")
        return self

    def setup(self, sock: socket.socket) -> None:
        """Called once after bind, before serving starts (TCP servers listen here)."""

    def serve_forever(self) -> None:
        """The serving loop, run in its own thread by start(); returns once `stopping`."""
        raise NotImplementedError(f"{type(self).__name__} has no serve_forever(); subclass TcpServer or UdpServer")

    def close(self) -> None:
        """Stop serving, close every socket, join every thread. Safe to call twice."""
        self._stop.set()
        with self._sockets_lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for s in sockets:
            try:
                if s.type == socket.SOCK_STREAM and s is not self.sock:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        stuck = []
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(JOIN_TIMEOUT)
                if t.is_alive():
                    stuck.append(t.name)
        self._threads = [t for t in self._threads if t.is_alive()]
        if stuck:
            raise SetupError(f"{type(self).__name__} could not stop threads {stuck} within {JOIN_TIMEOUT} s")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.where}>"

    # -- what a notebook reads -----------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.address[1] if self.address else self.requested_port

    @property
    def where(self) -> str:
        return format_address(self.address) if self.address else f"{self.host}:{self.requested_port} (not started)"

    @property
    def stopping(self) -> bool:
        """True once close() has begun: a loop or handler should return."""
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        """The event close() sets: wait on it for a pause that close() cuts short."""
        return self._stop

    def record(self, *event) -> None:
        """Remember something seen on the wire, as plain data."""
        with self._events_lock:
            self.events.append((time.monotonic(), *event))

    def events_of(self, kind: str) -> list[tuple]:
        """The events of one kind, without their timestamps: e.g. events_of('recv')."""
        with self._events_lock:
            return [e[1:] for e in self.events if e[1] == kind]

    # -- for subclasses --------------------------------------------------------------------------
    def spawn(self, target: Callable, name: str, *args) -> threading.Thread:
        """Run target(*args) in a daemon thread named `name` that close() joins."""
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()]
        self._threads.append(t)
        t.start()
        return t

    def track(self, s: socket.socket) -> None:
        """Make close() close `s` too; if the server is already stopping, close `s` now."""
        with self._sockets_lock:
            if self._stop.is_set():
                s.close()
                return
            self._sockets.add(s)

    def untrack(self, s: socket.socket) -> None:
        """Close `s` now and forget it."""
        with self._sockets_lock:
            self._sockets.discard(s)
        s.close()


class TcpServer(LoopbackServer):
    """A listening TCP socket; each accepted connection is served by `handle_connection` in its
    own thread, with a per-operation timeout of `io_timeout` seconds.

    Methods that may be overridden: handle_connection(conn, addr) (the one every peer overrides:
    serve one accepted connection; returning closes it), setup(sock) (call super().setup(sock),
    which listens), idle_seconds(), and those of LoopbackServer. Attributes to set: backlog,
    io_timeout, idle_limit.

    Methods for subclasses: recv_or_stop(conn, bufsize) (a recv that returns b'' on stop or after
    idle_seconds() of silence), and those of LoopbackServer (spawn, track, untrack, record,
    stopping, stop_event). Each accepted connection is tracked and recorded ('accept', 'close').
    """

    sock_type = socket.SOCK_STREAM
    backlog = 16
    io_timeout = 5.0
    #: Seconds of silence after which `recv_or_stop` ends a connection. None (the default) means
    #: `io_timeout`, as checks and notebooks have it; math.inf waits as long as the client stays
    #: connected (`python -m course serve` without --idle). Set it before start().
    idle_limit: float | None = None

    def idle_seconds(self) -> float:
        """How long `recv_or_stop` waits for a silent client: `idle_limit`, or `io_timeout` when None."""
        return self.io_timeout if self.idle_limit is None else self.idle_limit

    def setup(self, sock: socket.socket) -> None:
        sock.listen(self.backlog)
        sock.settimeout(POLL)

    def serve_forever(self) -> None:
        """Accept connections until stopping; each one goes to handle_connection in its own thread."""
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed under us: we are stopping
            self.track(conn)
            if self._stop.is_set():
                return
            conn.settimeout(self.io_timeout)
            self.record("accept", format_address(addr))
            self.spawn(self._run_handler, f"{type(self).__name__}-conn-{addr[1]}", conn, addr)

    def _run_handler(self, conn: socket.socket, addr: Address) -> None:
        try:
            self.handle_connection(conn, addr)
        except (OSError, ValueError):
            pass  # the peer went away or we are stopping: nothing to serve any more
        finally:
            self.record("close", format_address(addr))
            self.untrack(conn)

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        raise NotImplementedError

    def recv_or_stop(self, conn: socket.socket, bufsize: int = 65536) -> bytes:
        """recv that wakes up every POLL seconds to notice a stop; b'' at EOF, on stop, or after
        `idle_seconds()` of silence."""
        conn.settimeout(POLL)
        waited = 0.0
        limit = self.idle_seconds()
        try:
            while not self._stop.is_set():
                try:
                    return conn.recv(bufsize)
                except TimeoutError:
                    waited += POLL
                    if waited >= limit:
                        return b""
            return b""
        finally:
            conn.settimeout(self.io_timeout)


class UdpServer(LoopbackServer):
    """A bound UDP socket; every datagram goes to `handle_datagram(data, addr)` in one thread.

    Methods that may be overridden: handle_datagram(data, addr) (the one every peer overrides:
    answer one datagram, recorded as 'recv' before the call), setup(sock) (call super().setup(sock)),
    serve_forever() (a loop of your own, built on next_datagram()), and those of LoopbackServer.
    Attribute to set: max_datagram.

    Methods for subclasses: next_datagram() (the next datagram within POLL s, recorded, or None),
    sendto(data, addr) (send and record 'send'), settle(timeout), and those of LoopbackServer
    (spawn, track, untrack, record, stopping, stop_event).
    """

    sock_type = socket.SOCK_DGRAM
    max_datagram = 65535

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._markers: dict = {}  # address of a settle() probe -> (marker bytes, Event)

    def setup(self, sock: socket.socket) -> None:
        sock.settimeout(POLL)

    def serve_forever(self) -> None:
        """Hand every datagram to handle_datagram until stopping."""
        while not self._stop.is_set():
            got = self.next_datagram()
            if got is not None:
                self.handle_datagram(*got)

    def next_datagram(self) -> tuple[bytes, Address] | None:
        """The next datagram (data, addr) that arrives within POLL s, recorded as ('recv', addr,
        data); None when none did, when the socket reported an error (e.g. an ICMP port
        unreachable: keep serving) or was closed (stopping), or for a settle() marker."""
        try:
            data, addr = self.sock.recvfrom(self.max_datagram)
        except OSError:  # TimeoutError included
            return None
        marker = self._markers.get(addr)
        if marker is not None and data == marker[0]:
            marker[1].set()  # settle(): everything queued before it is handled
            return None
        self.record("recv", format_address(addr), data)
        return data, addr

    def settle(self, timeout: float = 5.0) -> None:
        """Return once every datagram that reached the server's socket so far has been handled.

        A datagram sent to the server returns from sendto() once it is queued on the server's
        socket, but the server thread handles it a moment later: a check that counts what the
        server received right after the learner's function returned could miss the last one.
        This sends a marker datagram from a socket of its own and waits until the server thread
        has taken it from the queue, which is first in, first out: everything before it is done.
        The marker is neither recorded nor handed to handle_datagram."""
        import secrets

        with socket.socket(family_of(self.host), socket.SOCK_DGRAM) as probe:
            probe.bind((self.host, 0))
            marker = (secrets.token_bytes(16), threading.Event())
            self._markers[probe.getsockname()] = marker
            try:
                probe.sendto(marker[0], self.address)
                if not marker[1].wait(timeout):
                    raise SetupError(f"{type(self).__name__} at {self.where} did not handle its queued datagrams "
                                     f"within {timeout} s; is the machine very busy?")
            finally:
                self._markers.pop(probe.getsockname(), None)

    def sendto(self, data: bytes, addr: Address) -> None:
        self.sock.sendto(data, addr)
        self.record("send", format_address(addr), data)

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        raise NotImplementedError


@contextmanager
def tcp_pair(host: str = "127.0.0.1", sndbuf: int | None = None, rcvbuf: int | None = None, timeout: float = 2.0):
    """Yield (sender, receiver): two ends of one TCP connection on loopback, port 0.

    `sndbuf` is set on the sender, `rcvbuf` on the receiver (through the listening socket, before
    the handshake). Both get a `timeout`; both are closed on exit.
    """
    family = family_of(loopback_host(host))
    listener = socket.socket(family, socket.SOCK_STREAM)
    sender = socket.socket(family, socket.SOCK_STREAM)
    receiver = None
    try:
        listener.bind((host, 0))
        if rcvbuf is not None:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        listener.listen(1)
        listener.settimeout(timeout)
        if sndbuf is not None:
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sender.settimeout(timeout)
        sender.connect(listener.getsockname())
        receiver, _ = listener.accept()
        receiver.settimeout(timeout)
        listener.close()
        yield sender, receiver
    finally:
        listener.close()
        sender.close()
        if receiver is not None:
            receiver.close()
