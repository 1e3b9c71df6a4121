"""TCP reference peers: the servers and clients a learner's TCP code is tested against.

All of them bind a loopback address on port 0 (see `course.serving`), serve each connection in its
own thread, and record what they saw in `events` as plain data.
"""
from __future__ import annotations

import socket

from course.serving import Address, TcpServer, register


@register("tcp-echo")
class TcpEchoServer(TcpServer):
    """Sends back every byte it receives, on each connection, until the client closes."""

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        while True:
            data = self.recv_or_stop(conn)
            if not data:
                return
            self.record("recv", f"{addr[0]}:{addr[1]}", data)
            conn.sendall(data)
