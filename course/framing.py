"""Framing: how to find the messages in a TCP byte stream.

TCP delivers bytes, in order, without gaps, and nothing else: it keeps no trace of how the sender
cut them into send() calls. Three sends can arrive as one recv(), one send as several (seed 003:
"不存在数据边界", there are no data boundaries; seed 002: "一次Read到的数据可能包含了多个报文，也可能只包含了
半个报文", the data one Read returns may hold several messages, or only half of one). The two protocols agree on where a message ends, in one of two classic ways:

- a delimiter: every message ends with a byte (or bytes) that cannot occur inside it; here
  b"\\n". SMTP (RFC 5321), HTTP/1.1 headers (RFC 9112) and Redis commands and replies (RESP) end
  their lines with b"\\r\\n"; `LineSplitter` splits on b"\\n" by default and on any delimiter
  given (delimiter=b"\\r\\n").
- a length prefix: every message starts with its length, here a 4-byte unsigned big-endian
  integer, struct format "!I" (network byte order, as in every header of RFC 791/9293);
  `encode_message` and `MessageDecoder`. Redis mixes both: a bulk string is a line b"$5\\r\\n"
  giving the length in decimal, then that many bytes and b"\\r\\n".

The splitter and the decoder are pure (the h11 habit): they are fed whatever bytes recv() happened
to return and hand back the complete messages, holding on to a partial one until the rest comes.
They never touch a socket, so they are tested alone with arbitrary chunking.

Over a socket, the reference functions are `recv_exactly`, `send_message` and `recv_message`.
When the peer closes the connection in the middle of a message they raise `IncompleteMessage`,
never return half a message: half a message is not a message.

Errors:
- `IncompleteMessage(ConnectionError)`: the stream ended (EOF, recv() returned b"") before the
  message was complete; `.expected` says how many bytes were wanted, `.partial` holds what came.
- `MessageTooLong(FramingError)`: a length prefix announces more than `max_size` bytes.
- `LineTooLong(FramingError)`: a line grows past `max_line` bytes without its delimiter.
`FramingError` is a ValueError: the bytes break the framing rules.
"""
from __future__ import annotations

import socket
import struct

__all__ = [
    "HEADER",
    "HEADER_SIZE",
    "MAX_MESSAGE",
    "MAX_LINE",
    "IncompleteMessage",
    "FramingError",
    "MessageTooLong",
    "LineTooLong",
    "encode_message",
    "encode_messages",
    "MessageDecoder",
    "LineSplitter",
    "recv_exactly",
    "send_message",
    "recv_message",
    "split_into_chunks",
]

HEADER = struct.Struct("!I")  # 4 bytes, unsigned, big-endian ("network byte order")
HEADER_SIZE = HEADER.size
MAX_MESSAGE = 16 * 1024 * 1024  # refuse to buffer more than 16 MiB for one message by default
MAX_LINE = 65536


class IncompleteMessage(ConnectionError):
    """The peer closed the connection in the middle of a message.

    `expected`: how many bytes the reader was waiting for; `partial`: the bytes that did arrive
    (fewer than `expected`, possibly none).
    """

    def __init__(self, expected: int, partial: bytes, what: str = "message"):
        self.expected = expected
        self.partial = bytes(partial)
        super().__init__(
            f"the peer closed the connection after {len(self.partial)} of the {expected} bytes of a {what}"
        )


class FramingError(ValueError):
    """The bytes on the stream break the framing rules."""


class MessageTooLong(FramingError):
    """A length prefix announces a message longer than the reader accepts."""


class LineTooLong(FramingError):
    """A line is longer than the splitter accepts (the delimiter never came in time)."""


# ----------------------------------------------------------------------------------------------
# Length prefix
# ----------------------------------------------------------------------------------------------
def encode_message(payload: bytes, max_size: int = MAX_MESSAGE) -> bytes:
    """The frame of one message: its length as 4 bytes big-endian ("!I"), then the payload."""
    payload = bytes(payload)
    if len(payload) > max_size:
        raise MessageTooLong(f"a message of {len(payload)} bytes is longer than max_size={max_size}")
    return HEADER.pack(len(payload)) + payload


def encode_messages(payloads) -> bytes:
    """Several frames back to back, as one write would carry them."""
    return b"".join(encode_message(p) for p in payloads)


class MessageDecoder:
    """Incremental length-prefix decoder: feed() it any chunks, get back complete messages.

        decoder = MessageDecoder()
        decoder.feed(b"\\x00\\x00\\x00\\x05hel")   # -> []   (holds a partial message)
        decoder.feed(b"lo\\x00\\x00")              # -> [b'hello']
        decoder.has_partial                        # True: 2 bytes of the next header
    """

    def __init__(self, max_size: int = MAX_MESSAGE):
        self.max_size = max_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes from the stream; return every message they complete, in order."""
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER_SIZE:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self.max_size:
                raise MessageTooLong(
                    f"a length prefix announces {length} bytes, more than max_size={self.max_size}; "
                    f"is the peer sending the length big-endian ('!I')?"
                )
            end = HEADER_SIZE + length
            if len(self._buffer) < end:
                break
            messages.append(bytes(self._buffer[HEADER_SIZE:end]))
            del self._buffer[:end]
        return messages

    @property
    def buffered(self) -> int:
        """How many bytes of an unfinished message (header included) it holds."""
        return len(self._buffer)

    @property
    def has_partial(self) -> bool:
        """True when it holds part of a message: the stream must not end here."""
        return bool(self._buffer)

    def expected(self) -> int:
        """Bytes the partial message needs in all (header + payload), or the header size if unknown."""
        if len(self._buffer) < HEADER_SIZE:
            return HEADER_SIZE
        return HEADER_SIZE + HEADER.unpack_from(self._buffer)[0]

    def end_of_stream(self) -> None:
        """Call when recv() returned b'': raise IncompleteMessage if a message was cut short."""
        if self._buffer:
            raise IncompleteMessage(self.expected(), bytes(self._buffer))


# ----------------------------------------------------------------------------------------------
# Delimiter
# ----------------------------------------------------------------------------------------------
class LineSplitter:
    """Split a byte stream into lines ending with `delimiter`, fed arbitrary chunks.

    feed() returns the complete lines without their delimiter; the unfinished tail is kept in
    `pending` until the rest arrives (it can arrive one byte at a time). A line longer than
    `max_line` bytes (delimiter not counted) raises LineTooLong as soon as the bytes fed so far
    show it, complete or not: a peer that never sends the delimiter cannot make us buffer forever.
    The feed that raises returns no line (not even the ones completed before the long one) and
    leaves `pending` empty: after LineTooLong the stream is broken, the splitter lets go of what it
    held, and the caller closes the connection instead of feeding it again.
    b"a\\r\\n" split on b"\\n" gives b"a\\r": the splitter strips the delimiter and nothing else.
    """

    def __init__(self, max_line: int = MAX_LINE, delimiter: bytes = b"\n"):
        if not delimiter:
            raise ValueError("the delimiter must be at least one byte")
        self.max_line = max_line
        self.delimiter = bytes(delimiter)
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add bytes from the stream; return every line they complete, in order."""
        data = self.pending + bytes(chunk)
        parts = data.split(self.delimiter)
        lines, tail = parts[:-1], parts[-1]
        for line in lines:
            if len(line) > self.max_line:
                self.pending = b""
                raise LineTooLong(f"a line of {len(line)} bytes is longer than max_line={self.max_line}")
        # A tail ending with the start of a multi-byte delimiter (b"\r" of b"\r\n") may still be
        # a short line: those bytes do not count until we know.
        undecided = next((k for k in range(len(self.delimiter) - 1, 0, -1) if tail.endswith(self.delimiter[:k])), 0)
        if len(tail) - undecided > self.max_line:
            self.pending = b""
            raise LineTooLong(
                f"{len(tail)} bytes arrived without a {self.delimiter!r}, more than max_line={self.max_line}"
            )
        self.pending = tail
        return lines

    @property
    def has_partial(self) -> bool:
        return bool(self.pending)

    def end_of_stream(self) -> None:
        """Call when recv() returned b'': raise IncompleteMessage if a line was cut short."""
        if self.pending:
            raise IncompleteMessage(len(self.pending) + len(self.delimiter), self.pending, what="line")


# ----------------------------------------------------------------------------------------------
# Over a socket: the reference implementations of the exercises
# ----------------------------------------------------------------------------------------------
def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Receive exactly `n` bytes: loop on recv() until they are all there.

    Raises IncompleteMessage if the peer closes first (recv() returns b''), with the bytes that did
    come in `.partial`; a socket timeout propagates as TimeoutError.
    """
    if n < 0:
        raise ValueError(f"cannot receive {n} bytes")
    buffer = bytearray()
    while len(buffer) < n:
        chunk = sock.recv(n - len(buffer))
        if not chunk:
            raise IncompleteMessage(n, buffer)
        buffer += chunk
    return bytes(buffer)


def send_message(sock: socket.socket, payload: bytes) -> None:
    """Send one length-prefixed message: header and payload in one sendall."""
    sock.sendall(encode_message(payload))


def recv_message(sock: socket.socket, max_size: int = MAX_MESSAGE) -> bytes | None:
    """Receive one length-prefixed message.

    Returns None if the peer closed the connection cleanly between two messages (before the first
    byte of a header): that is the normal end of a conversation. Raises IncompleteMessage if it
    closed inside a message (in the header or in the payload), MessageTooLong if the header
    announces more than `max_size` bytes.
    """
    try:
        header = recv_exactly(sock, HEADER_SIZE)
    except IncompleteMessage as exc:
        if not exc.partial:
            return None
        raise
    (length,) = HEADER.unpack(header)
    if length > max_size:
        raise MessageTooLong(f"the header announces {length} bytes, more than max_size={max_size}")
    try:
        return recv_exactly(sock, length)
    except IncompleteMessage as exc:
        raise IncompleteMessage(HEADER_SIZE + length, header + exc.partial) from None


def split_into_chunks(data: bytes, sizes) -> list[bytes]:
    """Cut `data` at the given chunk sizes (cycled); the last chunk may be shorter."""
    sizes = list(sizes)
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"chunk sizes must be positive, got {sizes!r}")
    chunks, i, k = [], 0, 0
    while i < len(data):
        size = sizes[k % len(sizes)]
        chunks.append(data[i : i + size])
        i, k = i + size, k + 1
    return chunks
