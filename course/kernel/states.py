"""Connections over time: a connection's state by socket or by 4-tuple, waiting for a state, a
timeline of states, and the TIME_WAIT timer.

A connection is named by its 4-tuple (local, remote). The kernel keeps that name when the socket
that owned it is gone: after close() a connection can still be in FIN_WAIT2, LAST_ACK or TIME_WAIT,
on a line of /proc/net/tcp whose inode is 0. So the functions below follow a socket through its own
TCP_INFO while its descriptor is open, and by its 4-tuple afterwards (course.kernel.window: sock_diag,
or /proc where netlink is not available).
"""
from __future__ import annotations

import socket
import threading as _threading
import time as _time
from typing import Union as _Union

from course.deadline import Deadline
from course.kernel import proc, window
from course.kernel.proc import TCP_STATES, SocketEntry, normal_address as _addr
from course.kernel.tcpinfo import own_state as _own_state

__all__ = ["Connection", "connection_of", "connection_state", "wait_for_state", "StateRecorder",
           "time_wait_remaining", "on_port"]

Connection = tuple  # (local (host, port), remote (host, port)): the name the kernel files a connection under


def connection_of(sock: socket.socket) -> Connection | None:
    """(local, remote) of a socket: remote is ('0.0.0.0', 0) (or ('::', 0)) for a listener;
    None for a closed socket, or one that is neither bound nor connected."""
    try:
        local = _addr(sock.getsockname())
    except OSError:
        return None
    if local[1] == 0:
        return None
    try:
        remote = _addr(sock.getpeername())
    except OSError:
        try:
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        except OSError:
            listening = 0
        if not listening:
            return None  # bound only, or its connection is already over (e.g. in TIME_WAIT)
        remote = ("::" if sock.family == socket.AF_INET6 else "0.0.0.0", 0)
    return (local, remote)



def _lookup(conn: "Connection") -> str | None:
    """The state of the connection with this exact 4-tuple, None if the kernel has none."""
    e = window.current().lookup(conn)
    return e.state if e else None


def on_port(port: int) -> list[SocketEntry]:
    """Every TCP socket whose local or remote port is `port` (sock_diag dump, else /proc)."""
    return [e for e in window.current().tcp_sockets() if port in (e.local[1], e.remote[1])]


class _Follow:
    """Follows one socket: its own TCP_INFO while its descriptor is open, then its 4-tuple."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.conn = connection_of(sock)

    def state(self) -> str:
        own = _own_state(self.sock)  # the socket itself while its descriptor is open
        if own is not None:
            if self.conn is None or self.conn[1][1] == 0:
                self.conn = connection_of(self.sock) or self.conn
            if own != "CLOSE":
                return own
        if self.conn is not None:  # closed, or handed over to a TIME_WAIT: ask by 4-tuple
            return _lookup(self.conn) or "CLOSE"
        return "CLOSE"


def connection_state(target: "_Union[socket.socket, Connection]") -> str:
    """The kernel's state of a connection: given a socket (followed by its 4-tuple once closed or
    once the kernel has moved it to TIME_WAIT) or a (local, remote) pair. 'CLOSE' when gone."""
    if isinstance(target, socket.socket):
        return _Follow(target).state()
    return _lookup((_addr(target[0]), _addr(target[1]))) or "CLOSE"


def wait_for_state(target: "_Union[socket.socket, int, Connection]", state: str, timeout: float = 2.0) -> str:
    """Wait until a socket (or connection 4-tuple) is in `state`, or, given a port number, until
    some TCP socket on that port is; return the state. Raises TimeoutError, with the states seen
    last, when `timeout` seconds pass first.

    A socket is named by its 4-tuple when the wait starts; to wait for the TIME_WAIT of a socket
    whose connection may already be over (or closed), pass `connection_of(sock)` taken before."""
    if state not in TCP_STATES.values():
        raise ValueError(f"{state!r} is not a TCP state name; use one of {sorted(TCP_STATES.values())}")
    follow = _Follow(target) if isinstance(target, socket.socket) else None
    deadline = Deadline(timeout)
    seen: object = None
    while True:
        if isinstance(target, int):
            seen = sorted({e.state for e in on_port(target)})
            if state in seen:
                return state
        else:
            seen = follow.state() if follow is not None else connection_state(target)
            if seen == state:
                return state
        if deadline.expired():
            what = f"port {target}" if isinstance(target, int) else "the connection"
            raise TimeoutError(f"{what} did not reach {state} within {timeout} s; the kernel showed {seen}")
        _time.sleep(min(0.001, deadline.remaining()))


class StateRecorder:
    """Samples the TCP states of some sockets (or of every socket on a port) from /proc/net/tcp in
    a background thread, and keeps each change with its time: a timeline of a connection's life.

        with StateRecorder(client=c, server=a) as rec:      # or StateRecorder(port=server_port)
            c.close(); ...
        rec.changes        # [(seconds since start, 'client', 'FIN_WAIT2'), ...]
        rec.states('client')   # ['ESTABLISHED', 'FIN_WAIT2', 'TIME_WAIT']

    Sockets can also be added later with `add(name, sock)`. A state that lasts less than the
    sampling interval (reading /proc/net/tcp takes some milliseconds) may be missed; `note(label, state)` adds
    one the caller knows about (e.g. right after a call returned). Sampling stops on exit, or after
    `max_seconds` at the latest, so that a forgotten recorder never runs on.
    """

    def __init__(self, port: int | None = None, interval: float = 0.002, max_seconds: float = 10.0, **sockets: socket.socket):
        self.port = port
        self.interval = min(max(interval, 0.0005), 0.1)  # bounded: never busy-spin, never doze
        self.max_seconds = max_seconds
        self._follow = {name: _Follow(s) for name, s in sockets.items()}
        self.changes: list[tuple[float, str, str]] = []
        self._last: dict[str, str] = {}
        self._noted_at: dict[str, float] = {}
        self._lock = _threading.Lock()
        self._stop = _threading.Event()
        self._thread: _threading.Thread | None = None
        self.started = 0.0
        self.stopped_at: float | None = None

    def add(self, name: str, sock: socket.socket) -> None:
        """Follow one more socket from now on (e.g. the socket accept() returned)."""
        with self._lock:
            self._follow[name] = _Follow(sock)
            self._noted_at[name] = _time.monotonic()  # samples read before now know nothing of it
        self.sample()

    def note(self, name: str, state: str) -> None:
        """Record a state seen by other means (e.g. SYN_SENT while connect() was running)."""
        with self._lock:
            self._noted_at[name] = _time.monotonic()
            self._change(name, state)

    def wait_for(self, name: str, state: str, timeout: float = 2.0) -> str:
        """Wait until the socket followed as `name` is in `state` (see wait_for_state), and mark
        it on the timeline even if it lasts less than one sampling interval."""
        with self._lock:
            follow = self._follow[name]
        wait_for_state(follow.conn if follow.conn is not None else follow.sock, state, timeout)
        self.note(name, state)
        return state

    def _change(self, name: str, state: str) -> None:
        if self._last.get(name) != state:
            self._last[name] = state
            self.changes.append((round(_time.monotonic() - self.started, 6), name, state))

    def sample(self) -> None:
        """Take one sample now (the thread calls this every `interval` seconds)."""
        read_at = _time.monotonic()
        with self._lock:
            follows = list(self._follow.items())
        states = [(name, f.state()) for name, f in follows]
        port_states = sorted((e.local, e.remote, e.state) for e in on_port(self.port)) if self.port is not None else []
        with self._lock:
            for name, state in states:
                if read_at < self._noted_at.get(name, 0.0):
                    continue  # read before a state noted since: stale for this socket
                self._change(name, state)
            for local, remote, state in port_states:
                self._change(f"{local[0]}:{local[1]} -> {remote[0]}:{remote[1]}", state)

    def _run(self) -> None:
        end = _time.monotonic() + self.max_seconds
        while not self._stop.is_set() and _time.monotonic() < end:
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "StateRecorder":
        self.started = _time.monotonic()
        self.sample()
        self._thread = _threading.Thread(target=self._run, name="StateRecorder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.sample()
        self.stopped_at = round(_time.monotonic() - self.started, 6)

    def labels(self) -> list[str]:
        seen: list[str] = []
        for _, name, _ in self.changes:
            if name not in seen:
                seen.append(name)
        return seen

    def states(self, name: str) -> list[str]:
        """The states `name` went through, in order, each once per visit."""
        return [s for _, n, s in self.changes if n == name]

    def timeline(self) -> dict[str, list[tuple[float, float, str]]]:
        """label -> [(start, end, state), ...] in seconds since the recorder started."""
        end_all = self.stopped_at if self.stopped_at is not None else round(_time.monotonic() - self.started, 6)
        out: dict[str, list[tuple[float, float, str]]] = {}
        for name in self.labels():
            points = [(t, s) for t, n, s in self.changes if n == name]
            out[name] = [(t, points[i + 1][0] if i + 1 < len(points) else end_all, s) for i, (t, s) in enumerate(points)]
        return out


def time_wait_remaining(conn: Connection) -> float | None:
    """Seconds this TIME_WAIT connection still has to live, from the timer column of
    /proc/net/tcp (`tr:tm->when`, in USER_HZ ticks); None if the connection is not in TIME_WAIT."""
    want = (_addr(conn[0]), _addr(conn[1]))
    for e in proc.all_sockets(("tcp",)):
        if e.state == "TIME_WAIT" and (e.local, e.remote) == want:
            return e.timer_seconds
    return None
