"""The /proc reader: every line of /proc/net/{tcp,tcp6,udp,udp6} of this network namespace, decoded
once, here and nowhere else; and which sockets this process holds (/proc/self/fd).

Each line gives the local and remote address in hex (the kernel's byte order), the state as a hex
code (include/net/tcp_states.h), the send and receive queue sizes, the timer running
(`tr:tm->when`, in USER_HZ ticks) and the socket's inode, which links the line to a file descriptor
of a process: /proc/self/fd/N -> 'socket:[INODE]'.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
from dataclasses import dataclass, field

__all__ = [
    "TCP_STATES",
    "PROC_TABLES",
    "USER_HZ",
    "TIMERS",
    "SocketEntry",
    "decode_address",
    "normal_address",
    "parse_proc_net",
    "all_sockets",
    "sockets_on_port",
    "socket_inodes_of_this_process",
    "entry_of",
    "tcp_state",
    "states_on_port",
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
USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # /proc timers count these ticks
# the `tr` column of /proc/net/tcp (net/ipv4/tcp_ipv4.c, get_tcp4_sock): which timer runs
TIMERS = {0: None, 1: "retransmit", 2: "keepalive", 3: "time_wait", 4: "zero_window_probe"}
_TIMER = re.compile(r"^([0-9A-Fa-f]{2}):([0-9A-Fa-f]{8})$")


@dataclass(frozen=True)
class SocketEntry:
    """One socket as the kernel lists it (a /proc/net line, or a sock_diag answer)."""

    proto: str  # 'tcp' or 'udp'
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str  # a TCP state name; for UDP, 'UNCONN' or 'ESTABLISHED' (a connected UDP socket)
    tx_queue: int  # bytes in the send queue (TCP: sent but not yet acknowledged, plus unsent)
    rx_queue: int  # bytes in the receive queue, not yet read by the application
    inode: int
    # the timer running for it (TIMERS) and the seconds it has left; /proc only, not compared
    timer: str | None = field(default=None, compare=False)
    timer_seconds: float | None = field(default=None, compare=False)


_ADDRESS_CACHE: dict[tuple[str, int], tuple[str, int]] = {}


def normal_address(a) -> tuple[str, int]:
    """(host, port) of a socket address, an IPv4-mapped IPv6 host written as IPv4."""
    host = a[0]
    if host.startswith("::ffff:"):
        host = host[7:]
    return (host, a[1])


def decode_address(text: str, family: socket.AddressFamily) -> tuple[str, int]:
    """'0100007F:1F90' (an address of /proc/net/tcp: 32-bit words in host order) -> ('127.0.0.1', 8080)."""
    key = (text, family)
    found = _ADDRESS_CACHE.get(key)
    if found is not None:
        return found
    hex_ip, hex_port = text.split(":")
    raw = bytes.fromhex(hex_ip)
    if family == socket.AF_INET:
        packed = struct.pack("<I", struct.unpack(">I", raw)[0])  # one 32-bit word, host order
    else:
        packed = b"".join(struct.pack("<I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, 16, 4))
    ip = ipaddress.ip_address(packed)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if len(_ADDRESS_CACHE) > 100_000:
        _ADDRESS_CACHE.clear()
    found = _ADDRESS_CACHE[key] = (str(ip), int(hex_port, 16))
    return found


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
        m = _TIMER.match(fields[5])
        timer = TIMERS.get(int(m.group(1), 16), "other") if m else None
        entries.append(SocketEntry(proto, decode_address(fields[1], family), decode_address(fields[2], family), state,
                                   tx, rx, int(fields[9]), timer, int(m.group(2), 16) / USER_HZ if timer else None))
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
