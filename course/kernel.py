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
import struct
from dataclasses import dataclass

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
