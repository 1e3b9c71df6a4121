"""UDP reference peers: the servers and peers a learner's UDP code is tested against.

All of them bind a loopback address on port 0 (see `course.serving`), serve from one thread, and
record every datagram they receive and send in `events` as plain data.
"""
from __future__ import annotations

from course.serving import Address, UdpServer, register


@register("udp-echo")
class UdpEchoServer(UdpServer):
    """Sends every datagram back to the address it came from."""

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        self.sendto(data, addr)
