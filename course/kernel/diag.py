"""The sock_diag client: ask the kernel about TCP sockets over NETLINK_SOCK_DIAG, as `ss` does
(linux/inet_diag.h), here and nowhere else.

Reading /proc/net/tcp costs tens of milliseconds once a machine holds a few thousand sockets (every
TIME_WAIT of a test suite counts); a request for one exact 4-tuple costs about 0.1 ms. A kernel or
sandbox without sock_diag raises OSError, and `course.kernel.window` falls back to /proc.
"""
from __future__ import annotations

import os
import socket
import struct

from course.kernel.proc import TCP_STATES, SocketEntry, normal_address

__all__ = ["query", "lookup"]

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP, _NLM_F_MULTI = 0x1, 0x300, 0x2
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_ALL_STATES = 0xFFF

Connection = tuple  # ((local host, port), (remote host, port))


def _request(family: int, conn: Connection | None) -> bytes:
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


def query(family: int, conn: Connection | None = None) -> list[SocketEntry]:
    """TCP sockets the kernel reports: the one with this exact 4-tuple (a listener may answer a
    4-tuple whose remote is unspecified), or every one of `family` (conn None). OSError if this
    kernel (or sandbox) has no sock_diag."""
    entries: list[SocketEntry] = []
    size = 4 if family == socket.AF_INET else 16
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(2.0)
        nl.sendto(_request(family, conn), (0, 0))
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
                entries.append(SocketEntry("tcp", normal_address(local), normal_address(remote), state, wq, rq, inode))
                off += (length + 3) & ~3
            if not multi:
                return entries


def lookup(conn: Connection) -> SocketEntry | None:
    """The socket with exactly this 4-tuple (not a listener that matched it), or None."""
    family = socket.AF_INET6 if ":" in conn[0][0] else socket.AF_INET
    want = (normal_address(conn[0]), normal_address(conn[1]))
    found = [e for e in query(family, conn) if (e.local, e.remote) == want]
    return found[0] if found else None
