"""Reference peers for a byte stream (assignment 06): what its demos use and its checks run against.

A TCP receiver must cope with whatever cut of the stream recv() hands it. These peers make the
awkward cuts happen on purpose, on real loopback connections:

- `ChunkedSender` ("stream-chunks"): sends its payload in chunks, one send() per chunk with
  TCP_NODELAY (so Nagle's algorithm does not glue them back together), and after each chunk waits
  until the TCP flow has moved it: until the reader's kernel acknowledged it (SIOCOUTQ == 0), or,
  when the check gave it the reader's socket, until the reader has recv()'d it (FIONREAD == 0).
  `OneByteSender` ("stream-one-byte") and `RandomChunkSender` ("stream-random-chunks", seeded)
  are its two adversarial settings; `close_after` makes it close in the middle of a message.
- `CoalescingSender` ("stream-coalesce"): many framed messages in a single write.
- `MidMessageCloser` ("stream-close-mid-message"): half a message, then close.
- `NeverReader` ("stream-never-reads"): accepts and never reads, so the buffers fill up.
- `SlowReader` ("stream-slow-reader"): reads a few bytes at a time, once its gate opens.
- `MessageCollector` ("stream-framed-echo"): decodes length-prefixed messages, records them and
  sends each back framed.

`connect(peer)` gives a client socket with a timeout on every operation, which a ChunkedSender
paces by; `plot_cuts` draws where send() and recv() cut the same bytes.

No peer waits a fixed time for something to happen: a sender paces itself by its reader's queue,
with a deadline far beyond the normal time. The checks of assignment 06 (`check_recv_exactly`,
`check_messages`, `check_line_splitter`, `check_sendall_nonblocking`) live in
`course.checks.stream_peers`, which imports this module, never the reverse (the old names,
`stream_peers.check_*`, are forwarded there).
"""
from __future__ import annotations

import random
import socket
import threading
import time
from typing import Callable

from course import buffers, framing
from course.checks import forward_moved_checks
from course.deadline import Deadline
from course.framing import IncompleteMessage
from course.serving import Address, TcpServer

__all__ = [
    "PACE_LIMIT",
    "PACE_POLL",
    "DEFAULT_LINES",
    "chunk_sizes",
    "seeded_bytes",
    "ChunkedSender",
    "OneByteSender",
    "RandomChunkSender",
    "CoalescingSender",
    "MidMessageCloser",
    "NeverReader",
    "SlowReader",
    "MessageCollector",
    "CLIENT_TIMEOUT",
    "connect",
    "plot_cuts",
]

PACE_LIMIT = 30.0  # a deadline far beyond any check's: a sender waits for its chunk to be read or acknowledged
PACE_POLL = 0.0005

DEFAULT_LINES = b"three sends\nmay arrive\nas one recv\n"


def chunk_sizes(mode: str, length: int, seed: int = 0, max_chunk: int = 7) -> list[int]:
    """The chunk sizes a sender uses: 'whole', 'one-byte', or 'random' (1..max_chunk, seeded)."""
    if mode == "whole":
        return [length] if length else []
    if mode == "one-byte":
        return [1] * length
    if mode == "random":
        rng = random.Random(seed)
        sizes, total = [], 0
        while total < length:
            size = min(rng.randint(1, max_chunk), length - total)
            sizes.append(size)
            total += size
        return sizes
    raise ValueError(f"chunking must be 'whole', 'one-byte' or 'random', not {mode!r}")


def seeded_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# ----------------------------------------------------------------------------------------------
# Senders
# ----------------------------------------------------------------------------------------------
class ChunkedSender(TcpServer):
    """Sends its payload in chunks, one send() per chunk, paced by the TCP flow, then closes."""

    chunking = "whole"

    def __init__(
        self,
        payload: bytes = DEFAULT_LINES,
        chunking: str | None = None,
        seed: int = 0,
        max_chunk: int = 7,
        close_after: int | None = None,
        keep_open: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host, port)
        self.payload = bytes(payload)
        self.chunking = chunking or self.chunking
        self.seed, self.max_chunk = seed, max_chunk
        self.close_after = close_after  # close after this many bytes (mid-message), None: send all
        self.keep_open = keep_open  # after the payload, keep the connection open until closed
        self.reader: socket.socket | None = None  # the reading end, when the check holds it
        self.reader_done = threading.Event()  # set by a check when the learner's call returned
        self.chunks_sent: list[int] = []

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = self.payload if self.close_after is None else self.payload[: self.close_after]
        for size in self.sizes(len(data)):
            chunk, data = data[:size], data[size:]
            conn.sendall(chunk)
            self.chunks_sent.append(size)
            self.record("send", chunk)
            self.pace(conn)
        if self.keep_open and self.close_after is None:
            while not self.stop_event.wait(0.05):
                pass
        self.record("closing", len(self.payload) if self.close_after is None else self.close_after)

    def sizes(self, length: int) -> list[int]:
        return chunk_sizes(self.chunking, length, self.seed, self.max_chunk)

    def pace(self, conn: socket.socket) -> None:
        """Wait until the chunk has been read by the reader the check gave us (or the check says
        the learner's call is over), or else acknowledged by the peer's kernel; PACE_LIMIT is only
        a guard. Never a fixed grace period: on a busy machine the next chunk waits longer, so the
        cuts the reader sees do not change."""
        deadline = Deadline(PACE_LIMIT)
        while not deadline.expired() and not self.stopping:
            try:
                reader = self.reader
                if reader is not None:
                    if self.reader_done.is_set() or buffers.recv_queue(reader) == 0:
                        return
                elif buffers.send_queue(conn) == 0:
                    return
            except OSError as exc:
                if exc.errno == 22 and reader is not None and reader.fileno() != -1:
                    pass  # the reader is not connected yet: wait for it
                else:
                    return  # a socket was closed: nobody is waiting for us any more
            except ValueError:
                return
            time.sleep(PACE_POLL)


class OneByteSender(ChunkedSender):
    """Sends its payload one byte per send(), each after the previous one was read or acknowledged."""

    chunking = "one-byte"


class RandomChunkSender(ChunkedSender):
    """Sends its payload in seeded random chunks of 1 to 7 bytes, one send() each."""

    chunking = "random"


class CoalescingSender(ChunkedSender):
    """Sends many length-prefixed messages in one single write, then closes."""

    def __init__(self, messages: list[bytes] | None = None, host: str = "127.0.0.1", port: int = 0, **kw):
        self.messages = [b"message %d" % i for i in range(20)] if messages is None else list(messages)
        super().__init__(framing.encode_messages(self.messages), chunking="whole", host=host, port=port, **kw)


class MidMessageCloser(ChunkedSender):
    """Sends the first half of a length-prefixed message, then closes the connection."""

    def __init__(self, message: bytes = b"this message is cut in the middle", host: str = "127.0.0.1", port: int = 0, **kw):
        frame = framing.encode_message(message)
        kw.setdefault("close_after", len(frame) // 2)
        super().__init__(frame, host=host, port=port, **kw)


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------
class NeverReader(TcpServer):
    """Accepts connections and never reads from them, so the sender's buffers fill up."""

    def __init__(self, rcvbuf: int | None = None, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.rcvbuf = rcvbuf
        self.connections: list[socket.socket] = []

    def setup(self, sock: socket.socket) -> None:
        if self.rcvbuf is not None:  # before listen: accepted sockets inherit it
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        super().setup(sock)

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        self.connections.append(conn)
        while not self.stop_event.wait(0.05):
            pass

    def queued(self) -> int:
        """Bytes waiting, unread, in the receive queues of its connections."""
        total = 0
        for c in list(self.connections):
            try:
                total += buffers.recv_queue(c)
            except (OSError, ValueError):
                pass
        return total


class SlowReader(TcpServer):
    """Reads `chunk` bytes per recv(), pausing `pause` s between reads, once its gate opens."""

    def __init__(
        self,
        chunk: int = 1024,
        pause: float = 0.01,
        rcvbuf: int | None = 4096,
        gate: Callable[[], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host, port)
        self.chunk, self.pause, self.rcvbuf, self.gate = chunk, pause, rcvbuf, gate
        self.received = bytearray()
        self.recv_sizes: list[int] = []
        self.eof = threading.Event()

    def setup(self, sock: socket.socket) -> None:
        if self.rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        super().setup(sock)

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        if self.gate is not None:
            deadline = Deadline(self.io_timeout)
            while not self.gate() and not deadline.expired() and not self.stopping:
                time.sleep(PACE_POLL)
        while True:
            data = self.recv_or_stop(conn, self.chunk)
            if not data:
                self.eof.set()
                return
            self.received += data
            self.recv_sizes.append(len(data))
            if self.pause:
                self.stop_event.wait(self.pause)


class MessageCollector(TcpServer):
    """Decodes length-prefixed messages ('!I' header), records each one and sends it back framed."""

    def __init__(self, echo: bool = True, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.echo = echo
        self.messages: list[bytes] = []
        self.errors: list[str] = []
        self.eof = threading.Event()

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        decoder = framing.MessageDecoder()
        try:
            while True:
                data = self.recv_or_stop(conn)
                if not data:
                    decoder.end_of_stream()
                    return
                for message in decoder.feed(data):
                    self.messages.append(message)
                    self.record("message", message)
                    if self.echo:
                        conn.sendall(framing.encode_message(message))
        except (framing.FramingError, IncompleteMessage) as exc:
            self.errors.append(str(exc))
            self.record("error", str(exc))
        finally:
            self.eof.set()


# ----------------------------------------------------------------------------------------------
# A client of a peer
# ----------------------------------------------------------------------------------------------
CLIENT_TIMEOUT = 2.0  # the timeout of the sockets the checks hand to a learner's function


def connect(peer: TcpServer, timeout: float = CLIENT_TIMEOUT, sndbuf: int | None = None) -> socket.socket:
    """A client socket connected to `peer`, with a timeout on every operation. A ChunkedSender is
    told, before the connection exists, that this socket is its reader (so it paces by it)."""
    sock = socket.socket(socket.AF_INET6 if ":" in peer.host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if isinstance(peer, ChunkedSender):
            peer.reader = sock
        if sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.settimeout(timeout)
        sock.connect(peer.address)
    except OSError:
        sock.close()
        raise
    return sock


# ----------------------------------------------------------------------------------------------
# A picture of the cuts
# ----------------------------------------------------------------------------------------------
def plot_cuts(sent: list[int], received: list[int], ax=None, title: str = "the same bytes, cut differently"):
    """Two rows over the byte stream: where the sender's send() calls cut it, and where the
    receiver's recv() calls did. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.8))
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for row, (label, sizes) in enumerate([("recv()", received), ("send()", sent)]):
        start = 0
        for i, size in enumerate(sizes):
            ax.barh(row, size, left=start, color=colors[i % len(colors)], edgecolor="white")
            ax.text(start + size / 2, row, str(size), ha="center", va="center", fontsize=8, color="white")
            start += size
    ax.set_yticks([0, 1], ["recv()", "send()"])
    ax.set_xlabel("byte offset in the stream")
    ax.set_title(title)
    return ax


# stream_peers.check_* of earlier releases: the checks live in course.checks.stream_peers
__getattr__ = forward_moved_checks(__name__, "course.checks.stream_peers")
