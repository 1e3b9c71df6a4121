"""The checks of assignment 06: a learner's recv_exactly, send_message/recv_message, LineSplitter
and sendall_nonblocking, run against the reference peers of `course.stream_peers` on real loopback
connections (LineSplitter without sockets).

- `check_recv_exactly`: exactly n bytes whatever the chunking, nothing read past them, and
  IncompleteMessage(n, data) when the peer closes first (cases: `recv_cases`).
- `check_messages`: the learner's send_message decoded by the reference, the learner's
  recv_message decoding the reference peers whatever the chunking, IncompleteMessage on a cut
  message, MessageTooLong past max_size.
- `check_line_splitter`: feed after feed, the reference's lines and pending tail, LineTooLong at
  the same feed (fixed chunkings `LINE_CASES_BASIC`, then streams drawn by hypothesis).
- `check_sendall_nonblocking`: every byte through a slow reader on a non-blocking socket, and
  TimeoutError at its deadline without spinning (`CountingSocket` counts the send() calls).

Each raises YourCodeError with one sentence to act on and records its evidence (inputs and what
the peers saw, never ports or timings). Each has three levels (`LEVELS`): "self-check" (an
exercise's first graded cell), "adversarial" (the visible part of its second cell: one instance of
every case its first line names) and "hidden" (the same kinds of case with other sizes, seeds and
cuts).

No check waits a fixed time for something to happen: a sender paces itself by its reader's queue,
a check waits for a reference peer's end of stream, each with a deadline far beyond the normal
time. Only a learner's own call has a tight bound (it may hang), and a deadline in exercise 4 is
judged late only LATE_ALLOWANCE s after it passed.
"""
from __future__ import annotations

import hashlib
import random
import socket
from typing import Callable

from course import framing
from course.checks import record_evidence
from course.checks.runner import call_with_deadline, learner_errors
from course.deadline import wait_for
from course.errors import PeerError, YourCodeError
from course.framing import IncompleteMessage, LineTooLong
from course.serving import TcpServer
from course.stream_peers import CLIENT_TIMEOUT, ChunkedSender, MessageCollector, NeverReader, SlowReader, connect, seeded_bytes

__all__ = [
    "PEER_WAIT",
    "digest",
    "LEVELS",
    "recv_cases",
    "check_recv_exactly",
    "check_messages",
    "LINE_CASES_BASIC",
    "check_line_splitter",
    "CountingSocket",
    "SPIN_ALLOWANCE",
    "LATE_ALLOWANCE",
    "SPIN_ADVICE",
    "check_sendall_nonblocking",
]

PEER_WAIT = 15.0  # how long a check waits for a reference peer to finish reading (it returns as soon as it has)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# Running a learner's function with a deadline: what it returned or raised
# ----------------------------------------------------------------------------------------------
def _outcome(call: Callable[[], object], timeout: float, name: str) -> dict:
    """Run call() with a deadline; {'returned': value} or {'raised': ExceptionType}.
    NotImplementedError and YourCodeError propagate."""
    try:
        return {"returned": call_with_deadline(call, timeout=timeout, name=name)}
    except (NotImplementedError, YourCodeError):
        raise
    except Exception as exc:
        return {"raised": type(exc).__name__, "error": exc}


def _describe(outcome: dict) -> str:
    if "raised" in outcome:
        return f"raised {outcome['raised']}: {outcome['error']}"
    return f"returned {outcome['returned']!r}"


def _short(data: bytes, limit: int = 40) -> str:
    return repr(data) if len(data) <= limit else f"{data[:limit]!r}... ({len(data)} bytes)"


def _plain_outcome(outcome: dict) -> dict:
    return {k: v for k, v in outcome.items() if k != "error"}


# ----------------------------------------------------------------------------------------------
# Check levels
# ----------------------------------------------------------------------------------------------
LEVELS = ("self-check", "adversarial", "hidden")


def _level(level: str | None, hard: bool) -> str:
    """The level of a check: 'self-check' (the exercise's first graded cell), 'adversarial' (the
    visible part of its second graded cell: one instance of each case its first line names) or
    'hidden' (the same kinds of case again, other sizes, seeds and cuts). hard=True is 'hidden'."""
    level = level or ("hidden" if hard else "self-check")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    return level


# ----------------------------------------------------------------------------------------------
# Check: recv_exactly
# ----------------------------------------------------------------------------------------------
def recv_cases(level: str) -> list[tuple]:
    """(name, payload, n, chunking, close_after) of each case of a level."""
    if level == "self-check":
        return [
            ("whole", b"hello, world!NEXT", 13, "whole", None),
            ("one-byte", b"abcdefghijNEXT", 10, "one-byte", None),
            ("closes-mid-message", b"12345678", 8, "one-byte", 3),
        ]
    if level == "adversarial":
        return [
            ("one-byte", b"the quick brown fox jumps over the lazy dog" + b"NEXT", 43, "one-byte", None),
            ("random-chunks", seeded_bytes(3000, 6) + b"NEXT", 3000, "random", None),
            ("large-whole", seeded_bytes(300_000, 7) + b"NEXT", 300_000, "whole", None),
            ("zero-bytes", b"NEXT", 0, "whole", None),
            ("closes-before-any-byte", b"0123456789", 10, "whole", 0),
            ("closes-mid-message", seeded_bytes(500, 8), 500, "random", 321),
        ]
    return [
        ("one-byte", "数据边界 · framing".encode() + b"NEXT", len("数据边界 · framing".encode()), "one-byte", None),
        ("random-chunks", seeded_bytes(5000, 16) + b"NEXT", 5000, "random", None),
        ("large-whole", seeded_bytes(400_000, 17) + b"NEXT", 400_000, "whole", None),
        ("zero-bytes-quiet-peer", b"", 0, "whole", None),
        ("closes-before-any-byte", b"abc", 3, "one-byte", 0),
        ("closes-one-byte-short", b"0123456789", 10, "one-byte", 9),
        ("closes-mid-message", seeded_bytes(2000, 18), 2000, "random", 1999),
    ]


def check_recv_exactly(recv_exactly: Callable, hard: bool = False, timeout: float = 3.0, level: str | None = None) -> None:
    """The learner's recv_exactly(sock, n) must return exactly n bytes whatever the chunking, not
    read past them, and raise IncompleteMessage(n, data) when the peer closes first."""
    level = _level(level, hard)
    cases = recv_cases(level)
    evidence = []
    try:
        for name, payload, n, chunking, close_after in cases:
            evidence.append(_one_recv_exactly_case(recv_exactly, name, payload, n, chunking, close_after, timeout))
    finally:
        record_evidence(f"recv_exactly-{level}", cases=evidence)


def _one_recv_exactly_case(recv_exactly, name, payload, n, chunking, close_after, timeout) -> dict:
    rest = payload[n:]
    with ChunkedSender(payload, chunking=chunking, seed=n, close_after=close_after, keep_open=close_after is None) as peer:
        with connect(peer) as sock:
            try:
                outcome = _outcome(lambda: recv_exactly(sock, n), timeout, "recv_exactly")
            finally:
                peer.reader_done.set()
            call = f"recv_exactly(sock, {n}) against a peer sending {len(payload)} bytes in {chunking} chunks"
            case = {"case": name, "n": n, **_plain_outcome(outcome)}
            if sock.gettimeout() != CLIENT_TIMEOUT:
                raise YourCodeError(
                    f"{call} changed the socket's timeout from {CLIENT_TIMEOUT} s to {sock.gettimeout()!r}; "
                    f"leave timeouts to the socket: the caller chose one"
                )
            if close_after is not None:
                call += f" that closes after {close_after} bytes"
                if outcome.get("raised") != "IncompleteMessage":
                    raise YourCodeError(
                        f"{call} {_describe(outcome)}; when recv() returns b'' before n bytes came, raise "
                        f"IncompleteMessage(n, data) (from course.framing), never return part of the message"
                    )
                error = outcome["error"]
                got = (getattr(error, "expected", None), getattr(error, "partial", None))
                if got != (n, payload[:close_after]):
                    raise YourCodeError(
                        f"{call} raised IncompleteMessage with expected={got[0]!r} and partial={got[1]!r}; "
                        f"expected expected={n} and partial={payload[:close_after]!r}: raise IncompleteMessage(n, data) "
                        f"with the bytes you got"
                    )
                return case
            if "raised" in outcome:
                raise YourCodeError(f"{call} {_describe(outcome)}; keep calling recv() until you have n bytes")
            got = outcome["returned"]
            if not isinstance(got, (bytes, bytearray)):
                raise YourCodeError(f"{call} returned {got!r} (a {type(got).__name__}); it should return bytes")
            if bytes(got) != payload[:n]:
                raise YourCodeError(
                    f"{call} returned {_short(bytes(got))} ({len(got)} bytes); expected {_short(payload[:n])} "
                    f"({n} bytes): one recv() returns only what has arrived so far, so loop until you have n bytes"
                )
            if rest:
                sock.settimeout(timeout)
                try:
                    after = framing.recv_exactly(sock, len(rest))
                except (IncompleteMessage, OSError):
                    after = None
                if after != rest:
                    raise YourCodeError(
                        f"{call} returned the right {n} bytes but the next {len(rest)} bytes on the stream were lost; "
                        f"ask recv() for at most the bytes still missing (n - len(data))"
                    )
                case["next_bytes_intact"] = True
            case["returned"] = digest(bytes(got)) if n > 64 else bytes(got)
            return case


# ----------------------------------------------------------------------------------------------
# Check: send_message / recv_message
# ----------------------------------------------------------------------------------------------
def check_messages(send_message: Callable, recv_message: Callable, hard: bool = False, timeout: float = 2.0,
                   level: str | None = None) -> None:
    """Length-prefixed messages both ways: the learner's send_message must be decoded by the
    reference, the learner's recv_message must decode the reference peers whatever the chunking,
    raise IncompleteMessage on a cut message and MessageTooLong past max_size."""
    level = _level(level, hard)
    evidence: list[dict] = []
    try:
        if level == "self-check":
            _check_sending(send_message, [b"hello", b"", "é".encode() * 100], evidence, timeout)
            _check_receiving(recv_message, "whole", [b"one", b"two", b"three"], evidence, timeout)
        elif level == "adversarial":
            rng = random.Random(606)
            many = [rng.randbytes(rng.choice([0, 1, 3, 17, 200])) for _ in range(200)]
            _check_sending(send_message, [seeded_bytes(1_000_000, 9), b"", b"end"], evidence, timeout, sndbuf=4096)
            _check_receiving(recv_message, "coalesced", many, evidence, timeout)
            _check_receiving(recv_message, "one-byte", [b"ab", b"", b"cd" * 5], evidence, timeout)
            _check_receiving(recv_message, "random", [seeded_bytes(300_000, 10), b"x"], evidence, timeout, max_chunk=40_000)
            _check_receiving(recv_message, "one-byte", [b"complete", b"cut short"], evidence, timeout, close_after=12 + 4 + 2)
            _check_receiving(recv_message, "one-byte", [b"complete", b"cut in its header"], evidence, timeout, close_after=12 + 2)
            _check_too_long(recv_message, evidence, timeout, max_size=1000, announced=1001)
        else:
            rng = random.Random(707)
            many = [rng.randbytes(rng.choice([0, 2, 5, 64, 1000])) for _ in range(500)]
            _check_sending(send_message, [b"", seeded_bytes(600_000, 19), "数据".encode()], evidence, timeout, sndbuf=8192)
            _check_receiving(recv_message, "coalesced", many, evidence, timeout)
            _check_receiving(recv_message, "one-byte", [b"", b"", b"\x00\x00\x00\x01"], evidence, timeout)
            _check_receiving(recv_message, "random", [seeded_bytes(50_000, 20), b"", seeded_bytes(70_000, 21)], evidence, timeout, max_chunk=9_000)
            _check_receiving(recv_message, "random", [b"first", seeded_bytes(3000, 22)], evidence, timeout, close_after=9 + 4 + 1500)
            _check_receiving(recv_message, "one-byte", [b"first", b"second"], evidence, timeout, close_after=9 + 1)
            _check_too_long(recv_message, evidence, timeout, max_size=None, announced=0xFFFFFFFF)
            _check_too_long(recv_message, evidence, timeout, max_size=1000, announced=1000)
    finally:
        record_evidence(f"messages-{level}", cases=evidence)


def _check_sending(send_message, messages, evidence, timeout, sndbuf=None) -> None:
    with MessageCollector(echo=False) as peer:
        with connect(peer, sndbuf=sndbuf) as sock:
            for message in messages:
                outcome = _outcome(lambda: send_message(sock, message), timeout, "send_message")
                if "raised" in outcome:
                    if peer.errors:
                        break  # the peer gave up on our bytes and closed: its reason is the useful one
                    raise YourCodeError(f"send_message(sock, {_short(message)}) {_describe(outcome)}; send the 4-byte header, then the payload, with sendall()")
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the peer already closed (it could not decode us): reported below
            wait_for(
                lambda: peer.eof.is_set(),
                PEER_WAIT,
                lambda: f"the reference peer decoded {len(peer.messages)} of your {len(messages)} messages within {PEER_WAIT} s and is still waiting for more bytes; did send_message send the whole payload (sendall, not send)?",
            )
    if peer.errors:
        raise YourCodeError(
            f"the reference peer could not decode what send_message sent: {peer.errors[0]}; send struct.pack('!I', len(payload)) + payload, all of it (sendall)"
        )
    if peer.messages != messages:
        got = [_short(m, 20) for m in peer.messages[:4]]
        want = [_short(m, 20) for m in messages[:4]]
        raise YourCodeError(
            f"the reference peer decoded {len(peer.messages)} messages {got} from your send_message calls, expected {len(messages)}: {want}; "
            f"send struct.pack('!I', len(payload)) + payload"
        )
    evidence.append({"case": "send_message", "sizes": [len(m) for m in messages], "decoded": [digest(m) for m in peer.messages]})


def _check_receiving(recv_message, chunking, messages, evidence, timeout, close_after=None, max_chunk=7) -> None:
    stream = framing.encode_messages(messages)
    mode = "whole" if chunking == "coalesced" else chunking
    cut = close_after is not None
    expected_complete = len(framing.MessageDecoder().feed(stream[:close_after])) if cut else len(messages)
    how = "in one write" if chunking in ("whole", "coalesced") else f"in {chunking} chunks"
    peer_desc = f"a peer sending {len(messages)} messages ({len(stream)} bytes) {how}"
    if cut:
        peer_desc += f" and closing after {close_after} bytes"
    with ChunkedSender(stream, chunking=mode, seed=len(stream), max_chunk=max_chunk, close_after=close_after) as peer:
        with connect(peer) as sock:
            got = []
            try:
                for i in range(expected_complete + 1):
                    outcome = _outcome(lambda: recv_message(sock), timeout, "recv_message")
                    if i < expected_complete:
                        if "raised" in outcome:
                            raise YourCodeError(f"call {i + 1} of recv_message(sock) against {peer_desc} {_describe(outcome)}; expected message {i + 1}, {_short(messages[i])}: unpack the 4-byte header with '!I' (big-endian), then recv_exactly that many bytes")
                        value = outcome["returned"]
                        if not isinstance(value, (bytes, bytearray)) or bytes(value) != messages[i]:
                            raise YourCodeError(
                                f"call {i + 1} of recv_message(sock) against {peer_desc} returned {_short(value) if isinstance(value, bytes) else repr(value)}; "
                                f"expected {_short(messages[i])}: read the 4-byte header with recv_exactly, unpack it with '!I', then recv_exactly that many bytes"
                            )
                        got.append(digest(bytes(value)))
                    elif cut:
                        if outcome.get("raised") != "IncompleteMessage":
                            raise YourCodeError(
                                f"recv_message(sock) against {peer_desc} {_describe(outcome)} after the {expected_complete} complete message(s); "
                                f"a message cut short must raise IncompleteMessage, never be returned in part"
                            )
                        got.append("IncompleteMessage")
                    else:
                        if outcome.get("returned", "x") is not None:
                            raise YourCodeError(
                                f"recv_message(sock) against {peer_desc} {_describe(outcome)} after the last message, when the peer had closed cleanly; "
                                f"return None when the connection ends before the first byte of a header"
                            )
                        got.append(None)
            finally:
                peer.reader_done.set()
    evidence.append({"case": f"recv_message-{chunking}" + ("-cut" if cut else ""), "count": len(messages), "got": got})


def _check_too_long(recv_message, evidence, timeout, max_size, announced) -> None:
    """A header announcing `announced` bytes, then up to 2000 of them, and the connection stays open:
    past max_size (None: the default, MAX_MESSAGE) recv_message must raise MessageTooLong, without
    waiting for a payload that may never come; at max_size exactly it returns the message."""
    body = seeded_bytes(min(announced, 2000), announced % 997)
    refuse = announced > (framing.MAX_MESSAGE if max_size is None else max_size)
    call = "recv_message(sock)" if max_size is None else f"recv_message(sock, max_size={max_size})"
    what = f"{call} against a peer whose header announces {announced} bytes"

    def run():
        return recv_message(sock) if max_size is None else recv_message(sock, max_size=max_size)

    with ChunkedSender(framing.HEADER.pack(announced) + body, chunking="whole", keep_open=True) as peer:
        with connect(peer, timeout=timeout) as sock:
            try:
                outcome = _outcome(run, timeout + 1.0, "recv_message")
            finally:
                peer.reader_done.set()
    if refuse:
        if outcome.get("raised") != "MessageTooLong":
            raise YourCodeError(
                f"{what} {_describe(outcome)}; when the header announces more than max_size bytes (by default "
                f"MAX_MESSAGE = {framing.MAX_MESSAGE:,}), raise MessageTooLong (from course.framing) before reading the payload"
            )
        evidence.append({"case": "too-long", "max_size": max_size, "announced": announced, "raised": "MessageTooLong"})
        return
    if outcome.get("returned") != body:
        raise YourCodeError(
            f"{what} {_describe(outcome) if 'raised' in outcome else 'returned ' + _short(outcome['returned'])}; "
            f"a message of exactly max_size bytes is allowed: refuse only a length greater than max_size"
        )
    evidence.append({"case": "at-max-size", "max_size": max_size, "announced": announced, "returned": digest(body)})


# ----------------------------------------------------------------------------------------------
# Check: LineSplitter (no sockets)
# ----------------------------------------------------------------------------------------------
LINE_CASES_BASIC = [
    # (max_line, chunks)
    (1024, [b"hel", b"lo\nwor", b"ld\n\nx"]),
    (1024, [bytes([b]) for b in b"a\nbc\n\nd"]),
    (1024, [b"one\ntwo\nthree\n"]),
    (1024, [b"GET / HTTP/1.1\r\n", b"Host: a\r", b"\n\r\n"]),
    (5, [b"12345\n", b"123", b"45\n"]),
    (5, [b"ok\n123456"]),
    (5, [b"1234", b"56789\n"]),
    (5, [b"abc", b"de", b"f"]),
]


def _run_splitter(cls, max_line: int, chunks: list[bytes]) -> list:
    """What a splitter does with these chunks: after each feed, (lines, pending), or, when feed
    raised LineTooLong, ('LineTooLong', pending) and no further feed."""
    splitter = cls(max_line=max_line)
    trace = []
    for chunk in chunks:
        try:
            lines = splitter.feed(chunk)
        except LineTooLong:
            trace.append(("LineTooLong", splitter.pending))
            return trace
        trace.append((list(lines) if isinstance(lines, (list, tuple)) else lines, splitter.pending))
    return trace


def _compare_splitter(cls, max_line: int, chunks: list[bytes]) -> list:
    expected = _run_splitter(framing.LineSplitter, max_line, chunks)
    with learner_errors(f"LineSplitter(max_line={max_line}) fed {chunks!r}", f"expected {expected!r}"):
        got = call_with_deadline(lambda: _run_splitter(cls, max_line, chunks), timeout=2.0, name="LineSplitter")
    if got != expected:
        step = next(i for i, (a, b) in enumerate(zip(got + [None] * len(expected), expected)) if a != b)
        raise YourCodeError(
            f"LineSplitter(max_line={max_line}) fed the chunks {chunks[: step + 1]!r}: after feed #{step + 1} it gave "
            f"{got[step] if step < len(got) else 'nothing'!r}, expected {expected[step]!r} (lines returned, then .pending); "
            f"return each line without its b'\\n' (a b'\\r' before it stays), keep the unfinished tail in .pending and put it "
            f"in front of the next chunk, and raise LineTooLong in the feed whose bytes make a line longer than max_line, "
            f"leaving .pending empty"
        )
    return expected


def _line_strategy(level: str):
    """Streams of lines cut at drawn places. Lines are drawn from any bytes and from a small alphabet
    with b'\\r' in it, and about half of them end in b'\\r' (so b'\\r\\n' endings are cut every way)."""
    from hypothesis import strategies as st

    longest, most = (12, 8) if level == "adversarial" else (30, 15)
    raw = st.one_of(
        st.binary(max_size=longest),
        st.lists(st.sampled_from([b"a", b"b", b" ", b"\r", b"\xff"]), max_size=longest).map(b"".join),
    ).map(lambda b: b.replace(b"\n", b""))
    line = st.tuples(raw, st.booleans()).map(lambda t: t[0] + b"\r" if t[1] else t[0])

    @st.composite
    def streams(draw):
        lines = draw(st.lists(line, max_size=most))
        data = b"".join(x + b"\n" for x in lines) + draw(raw)
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=2 * most)))
        bounds = [0, *cuts, len(data)]
        return [data[a:b] for a, b in zip(bounds, bounds[1:])]

    return st.integers(1, 20 if level == "adversarial" else 40), streams()


def check_line_splitter(cls: type, hard: bool = False, examples: int | None = None, level: str | None = None) -> None:
    """The learner's LineSplitter must give, feed after feed, the reference's lines and pending tail,
    and raise LineTooLong at the same feed as the reference, with .pending empty after it."""
    level = _level(level, hard)
    _compare_splitter(cls, 1024, [b"a\n"])  # fail fast (NotImplementedError, a crash) before anything else
    if level == "self-check":
        traces = [_compare_splitter(cls, m, chunks) for m, chunks in LINE_CASES_BASIC]
        record_evidence("line-splitter", cases=[{"max_line": m, "chunks": c, "trace": t} for (m, c), t in zip(LINE_CASES_BASIC, traces)])
        return
    from hypothesis import HealthCheck, given, settings

    examples = examples or (100 if level == "adversarial" else 300)
    checked = {"examples": 0, "raised": 0, "lines_ending_in_cr": 0}
    max_lines, streams = _line_strategy(level)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(max_line=max_lines, chunks=streams)
    def agrees(max_line, chunks):
        trace = _compare_splitter(cls, max_line, chunks)
        checked["examples"] += 1
        checked["raised"] += bool(trace) and trace[-1][0] == "LineTooLong"
        checked["lines_ending_in_cr"] += sum(line.endswith(b"\r") for lines, _ in trace if isinstance(lines, list) for line in lines)

    try:
        agrees()
    finally:
        record_evidence(f"line-splitter-{level}", derandomize=True, **checked)


# ----------------------------------------------------------------------------------------------
# Check: sendall on a non-blocking socket
# ----------------------------------------------------------------------------------------------
class CountingSocket(socket.socket):
    """A real socket that counts what send() did; sendall() is refused (the exercise writes it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sends = self.short_sends = self.would_block = self.accepted = 0

    @classmethod
    def wrap(cls, sock: socket.socket) -> "CountingSocket":
        return cls(sock.family, sock.type, sock.proto, fileno=sock.detach())

    def send(self, data, flags: int = 0) -> int:
        self.sends += 1
        try:
            n = super().send(data, flags)
        except BlockingIOError:
            self.would_block += 1
            raise
        self.accepted += n
        self.short_sends += n < memoryview(data).nbytes
        return n

    def sendall(self, data, flags: int = 0) -> None:
        raise YourCodeError("sendall_nonblocking called sock.sendall(); write the loop yourself with sock.send(), which returns how many bytes it took")

    @property
    def saw_full_buffer(self) -> bool:
        return bool(self.short_sends or self.would_block)

    @property
    def spun(self) -> bool:
        """More send() calls on a full buffer than a loop waiting for writability can make."""
        return self.would_block > (self.sends - self.would_block) + SPIN_ALLOWANCE


def _nonblocking_client(peer: TcpServer, sndbuf: int | None) -> CountingSocket:
    sock = CountingSocket.wrap(connect(peer, sndbuf=sndbuf))
    sock.setblocking(False)
    return sock


SPIN_ALLOWANCE = 200  # send() calls that find the buffer full, beyond one per successful send
LATE_ALLOWANCE = 3.0  # seconds after its deadline that sendall_nonblocking may take to raise
SPIN_ADVICE = "wait with select/selectors until the socket is writable instead of retrying in a loop"


def check_sendall_nonblocking(sendall_nonblocking: Callable, hard: bool = False, level: str | None = None) -> None:
    """The learner's sendall_nonblocking(sock, data, timeout) must deliver every byte through a
    slow reader on a non-blocking socket and return None, and raise TimeoutError at its deadline,
    without spinning, against a peer that never reads and a peer that reads too slowly."""
    level = _level(level, hard)
    evidence: list[dict] = []
    try:
        if level == "self-check":
            _sendall_delivers(sendall_nonblocking, seeded_bytes(300_000, 11), evidence, sndbuf=4096)
        elif level == "adversarial":
            _sendall_delivers(sendall_nonblocking, seeded_bytes(1_500_000, 12), evidence, sndbuf=16384, chunk=512)
            _sendall_delivers(sendall_nonblocking, b"", evidence, sndbuf=4096)
            _sendall_times_out(sendall_nonblocking, evidence, "never-reads", deadline=0.5)
            _sendall_times_out(sendall_nonblocking, evidence, "trickle", deadline=1.0)
        else:
            _sendall_delivers(sendall_nonblocking, seeded_bytes(700_000, 14), evidence, sndbuf=8192, chunk=1024)
            _sendall_delivers(sendall_nonblocking, seeded_bytes(200_000, 15), evidence, sndbuf=4096, chunk=64)
            _sendall_times_out(sendall_nonblocking, evidence, "never-reads", deadline=0.3)
            _sendall_times_out(sendall_nonblocking, evidence, "trickle", deadline=0.8)
    finally:
        record_evidence(f"sendall-nonblocking-{level}", cases=evidence)


def _sendall_delivers(fn, data: bytes, evidence: list, sndbuf: int | None, chunk: int = 4096, timeout: float = 5.0) -> None:
    box: dict = {}
    with SlowReader(chunk=chunk, pause=0, rcvbuf=4096, gate=lambda: box.get("done") or ("sock" in box and box["sock"].saw_full_buffer)) as peer:
        sock = box["sock"] = _nonblocking_client(peer, sndbuf)
        with sock:
            call = f"sendall_nonblocking(sock, <{len(data)} bytes>, timeout={timeout}) to a slow reader"
            try:
                outcome = _outcome(lambda: fn(sock, data, timeout), timeout + 1.0, "sendall_nonblocking")
            finally:
                box["done"] = True
            if "raised" in outcome and sock.spun:  # a spinning loop starves the reader: say why it ran out of time
                raise YourCodeError(
                    f"{call} {_describe(outcome)} after calling send() {sock.sends} times, {sock.would_block} of them on a full buffer; {SPIN_ADVICE}"
                )
            if "raised" in outcome:
                raise YourCodeError(
                    f"{call} {_describe(outcome)} after send() took {sock.accepted} bytes; when send() raises BlockingIOError, "
                    f"wait with select/selectors until the socket is writable, then send the rest"
                )
            if sock.getblocking() or sock.gettimeout() != 0.0:
                raise YourCodeError(f"{call} left the socket in blocking mode (timeout {sock.gettimeout()}); the exercise is to do it without blocking: keep sock non-blocking")
            sock.shutdown(socket.SHUT_WR)
            wait_for(lambda: peer.eof.is_set(), PEER_WAIT, lambda: f"the slow reader got {len(peer.received)} of {len(data)} bytes and no end of stream within {PEER_WAIT} s")
    received = bytes(peer.received)
    if received != data:
        raise YourCodeError(
            f"{call} returned, but the reader received {len(received)} bytes (digest {digest(received)}) instead of the {len(data)} sent "
            f"(digest {digest(data)}); send() may take only part of the data: send the rest, data[sent:], never the start again"
        )
    if outcome["returned"] is not None:
        raise YourCodeError(f"{call} delivered every byte but returned {outcome['returned']!r}; return None, as sock.sendall() does")
    evidence.append(
        {"case": "delivers", "bytes": len(data), "received_digest": digest(received), "buffer_was_full": sock.saw_full_buffer if data else None}
    )
    if data and not sock.saw_full_buffer:
        raise PeerError(f"the slow reader let {len(data)} bytes through without ever filling the send buffer; the check cannot test partial sends")


def _sendall_times_out(fn, evidence: list, peer_kind: str, deadline: float) -> None:
    """8 MB to a peer that never reads, or to one that reads 1 KiB every 0.1 s (so that every wait
    ends well before the deadline: only a deadline computed once, with the time left given to each
    wait, fires): TimeoutError, at most LATE_ALLOWANCE s late, without spinning."""
    data = seeded_bytes(8_000_000, 13)
    if peer_kind == "never-reads":
        peer, who = NeverReader(rcvbuf=4096), "a peer that never reads"
    else:
        peer, who = SlowReader(chunk=1024, pause=0.1, rcvbuf=4096), "a peer reading 1 KiB every 0.1 s"
    with peer:
        with _nonblocking_client(peer, sndbuf=4096) as sock:
            call = f"sendall_nonblocking(sock, <{len(data)} bytes>, timeout={deadline}) to {who}"
            try:
                outcome = _outcome(lambda: fn(sock, data, deadline), deadline + LATE_ALLOWANCE, "sendall_nonblocking")
            except YourCodeError as exc:
                if "did not return within" not in str(exc):
                    raise
                raise YourCodeError(
                    f"{call} was still running {LATE_ALLOWANCE} s after its deadline, having sent {sock.accepted} bytes; "
                    f"compute the deadline once, give each wait only the time left, and raise TimeoutError when none is left"
                ) from None
            if "returned" in outcome:
                raise YourCodeError(f"{call} returned {outcome['returned']!r} although only {sock.accepted} bytes were taken; raise TimeoutError when the deadline passes")
            if not isinstance(outcome["error"], TimeoutError):
                raise YourCodeError(f"{call} {_describe(outcome)}; when the deadline passes before all is sent, raise TimeoutError")
            if sock.spun:
                raise YourCodeError(f"{call} called send() {sock.would_block} times on a full buffer before its deadline; {SPIN_ADVICE}")
    evidence.append({"case": "times-out", "peer": peer_kind, "deadline": deadline, "raised": "TimeoutError", "spun": False})
