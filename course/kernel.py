"""What the kernel knows about sockets, read without root from /proc (Linux).

/proc/net/tcp, tcp6, udp and udp6 list every socket of this network namespace, one line each:
local and remote address in hex (the kernel's byte order), the state as a hex code
(include/net/tcp_states.h), the send and receive queue sizes, and the socket's inode. The inode
links a line to a file descriptor of a process: /proc/self/fd/N -> 'socket:[INODE]'.

This module is the course's window on real sockets: the TCP state of a given socket, every socket
on a port, and which sockets this process holds open (to catch a learner's leaked socket).
"""
from __future__ import annotations

import ipaddress
import os
import socket
import threading
import struct
from dataclasses import dataclass

__all__ = [
    "thread_waits_on_io",
    "TCP_STATES",
    "PROC_TABLES",
    "SocketEntry",
    "parse_proc_net",
    "all_sockets",
    "sockets_on_port",
    "socket_inodes_of_this_process",
    "entry_of",
    "tcp_state",
    "states_on_port",
    "TCP_INFO_FORMAT",
    "TCP_INFO_SIZE",
    "USER_HZ",
    "TCP_TIMEWAIT_LEN",
    "TcpInfo",
    "tcp_info",
    "Connection",
    "connection_of",
    "connection_state",
    "wait_for_state",
    "StateRecorder",
    "time_wait_remaining",
    "ss",
    "interface_mtu",
]

# include/net/tcp_states.h; the names are RFC 9293's, spelled as `ss` prints them, with underscores.
TCP_STATES = {
    1: "ESTABLISHED",
    2: "SYN_SENT",
    3: "SYN_RECV",
    4: "FIN_WAIT1",
    5: "FIN_WAIT2",
    6: "TIME_WAIT",
    7: "CLOSE",
    8: "CLOSE_WAIT",
    9: "LAST_ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "NEW_SYN_RECV",
}

PROC_TABLES = {"tcp": socket.AF_INET, "tcp6": socket.AF_INET6, "udp": socket.AF_INET, "udp6": socket.AF_INET6}


@dataclass(frozen=True)
class SocketEntry:
    """One line of /proc/net/{tcp,tcp6,udp,udp6}, decoded."""

    proto: str  # 'tcp' or 'udp'
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str  # a TCP state name; for UDP, 'UNCONN' or 'ESTABLISHED' (a connected UDP socket)
    tx_queue: int  # bytes in the send queue (TCP: sent but not yet acknowledged, plus unsent)
    rx_queue: int  # bytes in the receive queue, not yet read by the application
    inode: int


def _decode_address(text: str, family: socket.AddressFamily) -> tuple[str, int]:
    hex_ip, hex_port = text.split(":")
    raw = bytes.fromhex(hex_ip)
    if family == socket.AF_INET:
        packed = struct.pack("<I", struct.unpack(">I", raw)[0])  # one 32-bit word, host order
    else:
        packed = b"".join(struct.pack("<I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, 16, 4))
    ip = ipaddress.ip_address(packed)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(hex_port, 16)


def parse_proc_net(text: str, table: str) -> list[SocketEntry]:
    """Decode the text of /proc/net/<table> (table: tcp, tcp6, udp, udp6)."""
    family = PROC_TABLES[table]
    proto = table.rstrip("6")
    entries = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        code = int(fields[3], 16)
        if proto == "tcp":
            state = TCP_STATES.get(code, f"UNKNOWN({code})")
        else:
            state = "ESTABLISHED" if code == 1 else "UNCONN"
        tx, rx = (int(x, 16) for x in fields[4].split(":"))
        entries.append(
            SocketEntry(
                proto=proto,
                local=_decode_address(fields[1], family),
                remote=_decode_address(fields[2], family),
                state=state,
                tx_queue=tx,
                rx_queue=rx,
                inode=int(fields[9]),
            )
        )
    return entries


def all_sockets(protos: tuple[str, ...] = ("tcp", "udp")) -> list[SocketEntry]:
    """Every socket of this network namespace for the given protocols, IPv4 and IPv6."""
    entries = []
    for table in PROC_TABLES:
        if table.rstrip("6") not in protos:
            continue
        try:
            with open(f"/proc/net/{table}") as f:
                entries.extend(parse_proc_net(f.read(), table))
        except FileNotFoundError:
            continue  # e.g. IPv6 disabled
    return entries


def sockets_on_port(port: int, proto: str = "tcp") -> list[SocketEntry]:
    """Every socket whose local or remote port is `port`: a server's listener, its connections
    and their clients, including those in TIME_WAIT (which no process holds any more)."""
    return [e for e in all_sockets((proto,)) if port in (e.local[1], e.remote[1])]


def socket_inodes_of_this_process() -> set[int]:
    """Inodes of the sockets this process has open, from /proc/self/fd."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def entry_of(sock: socket.socket) -> SocketEntry | None:
    """The /proc/net line of this very socket (found by its inode), or None if it has none
    (a closed socket, or a family other than IPv4/IPv6 TCP/UDP)."""
    try:
        inode = os.fstat(sock.fileno()).st_ino
    except (OSError, ValueError):
        return None
    proto = "udp" if sock.type == socket.SOCK_DGRAM else "tcp"
    for e in all_sockets((proto,)):
        if e.inode == inode:
            return e
    return None


def tcp_state(sock: socket.socket) -> str:
    """The kernel's TCP state of a socket this process holds, e.g. 'ESTABLISHED' or 'CLOSE_WAIT'.
    A socket that is not listening or connected yet has no line in /proc: that is 'CLOSE'."""
    e = entry_of(sock)
    return e.state if e else "CLOSE"


def states_on_port(port: int) -> list[tuple[tuple[str, int], tuple[str, int], str]]:
    """(local, remote, state) of every TCP socket on `port`, sorted: a table a notebook can print."""
    return sorted((e.local, e.remote, e.state) for e in sockets_on_port(port, "tcp"))


# ==============================================================================================
# Connection life (assignment 05): TCP_INFO, states of connections over time, TIME_WAIT timers.
#
# A connection is named by its 4-tuple (local, remote). The kernel keeps that name when the socket
# that owned it is gone: after close() a connection can still be in FIN_WAIT2, LAST_ACK or
# TIME_WAIT, on a line of /proc/net/tcp whose inode is 0. So the functions below follow a socket
# through its own TCP_INFO while its descriptor is open, and by its 4-tuple afterwards (a
# sock_diag netlink query, as `ss` makes; /proc/net/tcp where netlink is not available).
# ==============================================================================================
import re as _re
import subprocess as _subprocess
import threading as _threading
import time as _time
from typing import Union as _Union

# struct tcp_info (include/uapi/linux/tcp.h): 8 one-byte fields, then 24 u32 up to tcpi_total_retrans
# (104 bytes; newer kernels append more, which we ask for and ignore).
TCP_INFO_FORMAT = "8B24I"
TCP_INFO_SIZE = struct.calcsize(TCP_INFO_FORMAT)  # 104
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc timers count these ticks
TCP_TIMEWAIT_LEN = 60.0  # seconds: `#define TCP_TIMEWAIT_LEN (60*HZ)` in include/net/tcp.h


@dataclass(frozen=True)
class TcpInfo:
    """What getsockopt(IPPROTO_TCP, TCP_INFO) says about one connection (times in microseconds)."""

    state: str  # tcpi_state, as a name of TCP_STATES ('CLOSE' for a socket that never connected)
    retransmits: int  # tcpi_retransmits: retransmissions of the segment now at the head, unanswered
    total_retrans: int  # tcpi_total_retrans: every retransmitted segment over the connection's life
    rto_us: int  # retransmission timeout now in force
    snd_mss: int  # MSS this side sends with (the peer's announced MSS minus options in every segment)
    rcv_mss: int  # estimated MSS of what the peer sends
    advmss: int  # MSS this side announced in its SYN option
    pmtu: int  # path MTU the kernel uses
    rtt_us: int  # smoothed round-trip time
    rttvar_us: int  # its variation
    snd_cwnd: int  # congestion window, in segments


def tcp_info(sock: socket.socket) -> TcpInfo:
    """Read TCP_INFO of a TCP socket this process holds (Linux)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(raw) < TCP_INFO_SIZE:
        raise OSError(f"TCP_INFO returned {len(raw)} bytes, fewer than the {TCP_INFO_SIZE} this course reads")
    v = struct.unpack(TCP_INFO_FORMAT, raw[:TCP_INFO_SIZE])
    u8, u32 = v[:8], v[8:]
    return TcpInfo(
        state=TCP_STATES.get(u8[0], "CLOSE"),
        retransmits=u8[2],
        total_retrans=u32[23],
        rto_us=u32[0],
        snd_mss=u32[2],
        rcv_mss=u32[3],
        advmss=u32[19],
        pmtu=u32[13],
        rtt_us=u32[15],
        rttvar_us=u32[16],
        snd_cwnd=u32[18],
    )


Connection = tuple  # (local (host, port), remote (host, port)): the name the kernel files a connection under


def _addr(a) -> tuple[str, int]:
    host = a[0]
    if host.startswith("::ffff:"):
        host = host[7:]
    return (host, a[1])


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


# -- sock_diag: ask the kernel about one connection by its 4-tuple ------------------------------
# Reading /proc/net/tcp costs tens of milliseconds once a machine holds a few thousand sockets
# (every TIME_WAIT of a test suite counts); a NETLINK_SOCK_DIAG request for one exact 4-tuple costs
# about 0.1 ms, the same question `ss` asks (linux/inet_diag.h). /proc stays the fallback.
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP, _NLM_F_MULTI = 0x1, 0x300, 0x2
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_ALL_STATES = 0xFFF


def _diag_request(family: int, conn: "Connection | None") -> bytes:
    if conn is None:
        sport = dport = 0
        src = dst = bytes(16)
    else:
        (lhost, sport), (rhost, dport) = conn
        src = socket.inet_pton(family, lhost).ljust(16, b"\0")
        dst = socket.inet_pton(family, rhost).ljust(16, b"\0")
    sockid = struct.pack("!HH16s16s", sport, dport, src, dst) + struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)
    body = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, _ALL_STATES) + sockid
    flags = _NLM_F_REQUEST | (_NLM_F_DUMP if conn is None else 0)
    return struct.pack("=IHHII", 16 + len(body), _SOCK_DIAG_BY_FAMILY, flags, 1, 0) + body


def _diag(family: int, conn: "Connection | None") -> list[SocketEntry]:
    """Sockets the kernel reports: the one with this exact 4-tuple (conn), or all (conn None).
    OSError if this kernel (or sandbox) has no sock_diag."""
    entries: list[SocketEntry] = []
    size = 4 if family == socket.AF_INET else 16
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(2.0)
        nl.sendto(_diag_request(family, conn), (0, 0))
        while True:
            data = nl.recv(1 << 20)
            off, multi = 0, False
            while off + 16 <= len(data):
                length, kind, flags, _, _ = struct.unpack_from("=IHHII", data, off)
                if kind == _NLMSG_DONE:
                    return entries
                if kind == _NLMSG_ERROR:
                    code = struct.unpack_from("=i", data, off + 16)[0]
                    if code in (0, -2):  # done, or ENOENT: no such socket
                        return entries
                    raise OSError(-code, os.strerror(-code))
                multi = multi or bool(flags & _NLM_F_MULTI)
                _, code, _, _ = struct.unpack_from("=BBBB", data, off + 16)
                sport, dport, src, dst = struct.unpack_from("!HH16s16s", data, off + 20)
                rq, wq, _, inode = struct.unpack_from("=IIII", data, off + 16 + 4 + 48 + 4)
                state = "SYN_RECV" if code == 12 else TCP_STATES.get(code, f"UNKNOWN({code})")
                local = (socket.inet_ntop(family, src[:size]), sport)
                remote = (socket.inet_ntop(family, dst[:size]), dport)
                entries.append(SocketEntry("tcp", _addr(local), _addr(remote), state, wq, rq, inode))
                off += (length + 3) & ~3
            if not multi:
                return entries


_DIAG_WORKS: bool | None = None


def _lookup(conn: "Connection") -> str | None:
    """The state of the connection with this exact 4-tuple, None if the kernel has none."""
    global _DIAG_WORKS
    family = socket.AF_INET6 if ":" in conn[0][0] else socket.AF_INET
    if _DIAG_WORKS is not False:
        try:
            want = (_addr(conn[0]), _addr(conn[1]))
            found = [e for e in _diag(family, conn) if (e.local, e.remote) == want]  # not a listener that matched
            _DIAG_WORKS = True
            return found[0].state if found else None
        except OSError:
            _DIAG_WORKS = False
    e = _tables()[1].get((_addr(conn[0]), _addr(conn[1])))
    return e.state if e else None


def _on_port(port: int) -> list[SocketEntry]:
    """Every TCP socket whose local or remote port is `port` (sock_diag dump, else /proc)."""
    global _DIAG_WORKS
    if _DIAG_WORKS is not False:
        try:
            found = _diag(socket.AF_INET, None) + _diag(socket.AF_INET6, None)
            _DIAG_WORKS = True
            return [e for e in found if port in (e.local[1], e.remote[1])]
        except OSError:
            _DIAG_WORKS = False
    return [e for e in _tcp_entries() if port in (e.local[1], e.remote[1])]


def _own_state(sock: socket.socket) -> str | None:
    """The state of this socket itself, from TCP_INFO (None if it is closed or not TCP)."""
    try:
        return TCP_STATES.get(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0], "CLOSE")
    except (OSError, ValueError):
        return None


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


_ADDRESS_CACHE: dict[tuple[str, int], tuple[str, int]] = {}


def _tcp_entries() -> list[SocketEntry]:
    """all_sockets(('tcp',)), decoded faster (the fallback when sock_diag is not available)."""
    entries = []
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{table}") as f:
                lines = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        family = PROC_TABLES[table]
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            addrs = []
            for text in (fields[1], fields[2]):
                key = (text, family)
                a = _ADDRESS_CACHE.get(key)
                if a is None:
                    if len(_ADDRESS_CACHE) > 100_000:
                        _ADDRESS_CACHE.clear()
                    a = _ADDRESS_CACHE[key] = _decode_address(text, family)
                addrs.append(a)
            code = int(fields[3], 16)
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            entries.append(SocketEntry("tcp", addrs[0], addrs[1], TCP_STATES.get(code, f"UNKNOWN({code})"), tx, rx, int(fields[9])))
    return entries


def _tables() -> tuple[dict, dict]:
    entries = _tcp_entries()
    by_inode = {e.inode: e for e in entries if e.inode}
    by_conn: dict = {}
    for e in entries:
        # a live socket wins over a TIME_WAIT line with the same 4-tuple (inode 0)
        if (e.local, e.remote) not in by_conn or e.inode:
            by_conn[(e.local, e.remote)] = e
    return by_inode, by_conn


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
    from course.deadline import Deadline

    if state not in TCP_STATES.values():
        raise ValueError(f"{state!r} is not a TCP state name; use one of {sorted(TCP_STATES.values())}")
    follow = _Follow(target) if isinstance(target, socket.socket) else None
    deadline = Deadline(timeout)
    seen: object = None
    while True:
        if isinstance(target, int):
            seen = sorted({e.state for e in _on_port(target)})
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
        on_port = sorted((e.local, e.remote, e.state) for e in _on_port(self.port)) if self.port is not None else []
        with self._lock:
            for name, state in states:
                if read_at < self._noted_at.get(name, 0.0):
                    continue  # read before a state noted since: stale for this socket
                self._change(name, state)
            for local, remote, state in on_port:
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


_TIMER = _re.compile(r"^([0-9A-Fa-f]{2}):([0-9A-Fa-f]{8})$")


def time_wait_remaining(conn: Connection) -> float | None:
    """Seconds this TIME_WAIT connection still has to live, from the timer column of
    /proc/net/tcp (`tr:tm->when`, in USER_HZ ticks); None if the connection is not in TIME_WAIT."""
    local, remote = _addr(conn[0]), _addr(conn[1])
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{table}") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        family = PROC_TABLES[table]
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or int(fields[3], 16) != 6:
                continue
            if _decode_address(fields[1], family) == local and _decode_address(fields[2], family) == remote:
                m = _TIMER.match(fields[5])
                return int(m.group(2), 16) / USER_HZ if m else None
    return None


def ss(port: int) -> str:
    """What `ss -tan` prints for the sockets on `port` (with timers), or a note if ss is missing."""
    try:
        out = _subprocess.run(
            ["ss", "-tano", f"( sport = :{port} or dport = :{port} )"],
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, _subprocess.TimeoutExpired) as exc:
        return f"(ss is not available here: {exc}; the same lines come from /proc/net/tcp)"
    return out.stdout.rstrip()


def interface_mtu(name: str = "lo") -> int:
    """The MTU of a network interface, from the SIOCGIFMTU ioctl (works where /sys is absent)."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16si20x", name.encode()[:15], 0)
        reply = fcntl.ioctl(s.fileno(), 0x8921, request)  # SIOCGIFMTU, linux/sockios.h
    return struct.unpack("16si20x", reply)[1]


# ----------------------------------------------------------------------------------------------
# What a thread of this process is waiting for
# ----------------------------------------------------------------------------------------------
# futex(2) is how a Python thread waits for the GIL, a Lock or an Event; any other wait of a
# sleeping thread is I/O or a timed wait (recv, accept, poll, select, sleep). Numbers per machine.
_FUTEX = {"x86_64": 202, "aarch64": 98}.get(__import__("platform").machine())


def thread_waits_on_io(thread: threading.Thread) -> bool | None:
    """True when `thread` (of this process) sleeps in the kernel on something other than a lock
    (blocked in recv/accept, or in poll/select with a timeout), False when it runs or waits for a
    lock or the GIL, None when Linux does not say (no /proc, or the thread has ended).

    The checks use it to set a server's stop event only once its threads have gone back to waiting
    on their sockets, so that a thread blocked in recv() without a timeout is caught every time,
    not only when it happened to look at stop.is_set() a moment later."""
    tid = getattr(thread, "native_id", None)
    if tid is None or not thread.is_alive():
        return None
    try:
        with open(f"/proc/self/task/{tid}/stat") as f:
            state = f.read().rsplit(") ", 1)[1].split()[0]
        with open(f"/proc/self/task/{tid}/syscall") as f:
            call = f.read().split()[0]
    except (OSError, IndexError):
        return None
    if state != "S" or call == "running" or not call.lstrip("-").isdigit():
        return False
    return None if _FUTEX is None else int(call) != _FUTEX
