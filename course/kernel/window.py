"""The one window on the kernel's TCP sockets: sock_diag where the kernel (or sandbox) allows it,
/proc/net/tcp where it does not. The choice is made once, at the first question, as
`selectors.DefaultSelector` picks epoll once; both windows answer the same questions with the same
`SocketEntry` values.
"""
from __future__ import annotations

import socket

from course.kernel import diag, proc
from course.kernel.proc import SocketEntry

__all__ = ["ProcWindow", "DiagWindow", "current", "use"]

Connection = tuple


class ProcWindow:
    """/proc/net/tcp and tcp6: every reader may use it; tens of ms with thousands of sockets."""

    name = "proc"

    def tcp_sockets(self) -> list[SocketEntry]:
        return proc.all_sockets(("tcp",))

    def lookup(self, conn: Connection) -> SocketEntry | None:
        want = (proc.normal_address(conn[0]), proc.normal_address(conn[1]))
        found = None
        for e in self.tcp_sockets():
            if (e.local, e.remote) == want and (found is None or e.inode):
                found = e  # a live socket wins over a TIME_WAIT line with the same 4-tuple (inode 0)
        return found


class DiagWindow:
    """NETLINK_SOCK_DIAG: one exact 4-tuple in about 0.1 ms (what `ss` asks)."""

    name = "sock_diag"

    def tcp_sockets(self) -> list[SocketEntry]:
        return diag.query(socket.AF_INET) + diag.query(socket.AF_INET6)

    def lookup(self, conn: Connection) -> SocketEntry | None:
        return diag.lookup(conn)


_CHOSEN: ProcWindow | DiagWindow | None = None


def current() -> ProcWindow | DiagWindow:
    """The window this process uses: sock_diag if a first query works, else /proc (chosen once)."""
    global _CHOSEN
    if _CHOSEN is None:
        try:
            diag.query(socket.AF_INET, (("127.0.0.1", 1), ("127.0.0.1", 1)))
            _CHOSEN = DiagWindow()
        except OSError:
            _CHOSEN = ProcWindow()
    return _CHOSEN


def use(window: ProcWindow | DiagWindow | None) -> None:
    """Use this window from now on (None: choose again at the next question)."""
    global _CHOSEN
    _CHOSEN = window
