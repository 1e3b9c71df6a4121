"""course.stream_peers: the peers cut the stream as they say, and the checks of assignment 06 pass
the reference implementations and fail the classic wrong ones with a sentence to act on."""
import selectors
import socket
import struct
import time

import pytest

from course import checks, framing, stream_peers
from course.buffers import recv_queue
from course.cli import load_peers
from course.deadline import wait_for
from course.errors import YourCodeError
from course.framing import IncompleteMessage, LineTooLong
from course.stream_peers import (
    ChunkedSender,
    CoalescingSender,
    CountingSocket,
    MessageCollector,
    MidMessageCloser,
    NeverReader,
    OneByteSender,
    RandomChunkSender,
    SlowReader,
    connect,
)
import test_06_wrong as wrong


@pytest.fixture(autouse=True)
def no_evidence_publishing(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")


def learner(source: str) -> dict:
    """Run a solution cell's source in a namespace like the notebook's."""
    namespace = {
        "socket": socket,
        "struct": struct,
        "time": time,
        "selectors": selectors,
        "IncompleteMessage": IncompleteMessage,
        "LineTooLong": LineTooLong,
        "recv_exactly": framing.recv_exactly,
    }
    exec(source, namespace)
    return namespace


def reference_sendall(sock, data, timeout):
    deadline = time.monotonic() + timeout
    view, sent = memoryview(data), 0
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while sent < len(view):
            try:
                sent += sock.send(view[sent:])
                continue
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError(f"sent {sent} of {len(view)}")


def read_all(sock) -> list[bytes]:
    pieces = []
    while piece := sock.recv(1024):
        pieces.append(piece)
    return pieces


# ----------------------------------------------------------------------------------------------
# Peers
# ----------------------------------------------------------------------------------------------
def test_peers_are_registered_for_the_cli():
    peers = load_peers()
    for name in ["stream-chunks", "stream-one-byte", "stream-random-chunks", "stream-coalesce",
                 "stream-close-mid-message", "stream-never-reads", "stream-slow-reader", "stream-framed-echo"]:
        assert name in peers


def test_one_byte_sender_paced_by_its_reader_gives_one_byte_per_recv():
    with OneByteSender(b"hello, world\n") as peer, connect(peer) as sock:
        pieces = read_all(sock)
    assert pieces == [bytes([b]) for b in b"hello, world\n"]
    assert peer.chunks_sent == [1] * 13


def test_one_byte_sender_without_a_reader_paces_by_acknowledgements():
    with OneByteSender(b"abcdef") as peer:
        with socket.create_connection(peer.address, timeout=2) as sock:  # not registered as reader
            wait_for(lambda: recv_queue(sock) == 6, 2.0, "6 bytes did not arrive")
            assert sock.recv(100) == b"abcdef"
    assert peer.chunks_sent == [1] * 6


def test_random_chunks_are_seeded_and_cover_the_payload():
    sizes = stream_peers.chunk_sizes("random", 100, seed=3)
    assert sizes == stream_peers.chunk_sizes("random", 100, seed=3)
    assert sum(sizes) == 100 and max(sizes) <= 7 and min(sizes) >= 1
    payload = stream_peers.seeded_bytes(200, 1)
    with RandomChunkSender(payload, seed=5) as peer, connect(peer) as sock:
        assert b"".join(read_all(sock)) == payload
    assert peer.chunks_sent == stream_peers.chunk_sizes("random", 200, seed=5)


def test_coalescing_sender_puts_many_messages_in_one_write():
    messages = [b"m%d" % i for i in range(50)]
    with CoalescingSender(messages) as peer, connect(peer) as sock:
        received = [framing.recv_message(sock) for _ in range(51)]
    assert received == messages + [None]
    assert len(peer.chunks_sent) == 1


def test_mid_message_closer_makes_the_reference_raise_incomplete_message():
    with MidMessageCloser(b"0123456789") as peer, connect(peer) as sock:
        with pytest.raises(IncompleteMessage) as info:
            framing.recv_message(sock)
    assert info.value.expected == 14 and info.value.partial == framing.encode_message(b"0123456789")[:7]


def test_chunked_sender_close_after_zero_sends_nothing():
    with ChunkedSender(b"xyz", close_after=0) as peer, connect(peer) as sock:
        assert sock.recv(10) == b""


def test_never_reader_fills_the_buffers_until_send_would_block():
    with NeverReader(rcvbuf=4096) as peer, connect(peer, sndbuf=4096) as sock:
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            for _ in range(10_000):
                sock.send(b"x" * 4096)
        wait_for(lambda: peer.queued() > 0, 2.0, "the never-reading peer's queue stayed empty")


def test_slow_reader_waits_for_its_gate_then_reads_everything():
    gate = {"open": False}
    data = stream_peers.seeded_bytes(50_000, 2)
    with SlowReader(chunk=1000, pause=0, gate=lambda: gate["open"]) as peer, connect(peer) as sock:
        sock.sendall(data[:1000])
        wait_for(lambda: peer.events_of("accept"), 2.0, "no accept")
        assert len(peer.received) == 0
        gate["open"] = True
        sock.sendall(data[1000:])
        sock.shutdown(socket.SHUT_WR)
        wait_for(peer.eof.is_set, 3.0, "no EOF")
    assert bytes(peer.received) == data and max(peer.recv_sizes) <= 1000


def test_message_collector_decodes_and_echoes():
    with MessageCollector() as peer, connect(peer) as sock:
        framing.send_message(sock, b"ping")
        framing.send_message(sock, b"")
        assert framing.recv_message(sock) == b"ping"
        assert framing.recv_message(sock) == b""
    assert peer.messages == [b"ping", b""]


def test_message_collector_reports_a_bad_prefix():
    with MessageCollector(echo=False) as peer, connect(peer) as sock:
        sock.sendall(struct.pack("<I", 5) + b"hello")
        wait_for(lambda: peer.errors, 2.0, "no error recorded")
    assert "big-endian" in peer.errors[0]


def test_counting_socket_counts_short_sends_and_refuses_sendall():
    with NeverReader(rcvbuf=4096) as peer:
        sock = CountingSocket.wrap(connect(peer, sndbuf=4096))
        with sock:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                while True:
                    sock.send(b"x" * 100_000)
            assert sock.saw_full_buffer and sock.would_block == 1 and sock.accepted > 0
            with pytest.raises(YourCodeError, match="sendall"):
                sock.sendall(b"x")


def test_plot_cuts_draws_both_rows():
    import matplotlib

    matplotlib.use("Agg")
    ax = stream_peers.plot_cuts([3, 3, 5], [11])
    assert len(ax.patches) == 4


# ----------------------------------------------------------------------------------------------
# Checks pass the reference implementations, with deterministic evidence
# ----------------------------------------------------------------------------------------------
def evidence_of(run) -> list:
    start = len(checks.recorded)
    run()
    return checks.recorded[start:]


REFERENCE_RUNS = {
    "recv_exactly": lambda hard: stream_peers.check_recv_exactly(framing.recv_exactly, hard=hard),
    "messages": lambda hard: stream_peers.check_messages(framing.send_message, framing.recv_message, hard=hard),
    "lines": lambda hard: stream_peers.check_line_splitter(framing.LineSplitter, hard=hard, examples=100),
    "sendall": lambda hard: stream_peers.check_sendall_nonblocking(reference_sendall, hard=hard),
}


@pytest.mark.parametrize("hard", [False, True], ids=["self-check", "hidden"])
@pytest.mark.parametrize("name", sorted(REFERENCE_RUNS))
def test_reference_passes_and_evidence_is_deterministic(name, hard):
    first = evidence_of(lambda: REFERENCE_RUNS[name](hard))
    second = evidence_of(lambda: REFERENCE_RUNS[name](hard))
    assert first and first == second
    text = repr(first)
    assert "127.0.0.1" not in text


# ----------------------------------------------------------------------------------------------
# Checks fail the wrong implementations with a useful sentence
# ----------------------------------------------------------------------------------------------
def test_single_recv_is_told_to_loop():
    fn = learner(wrong.RECV_EXACTLY_SINGLE_RECV)["recv_exactly"]
    with pytest.raises(YourCodeError, match="loop until you have n bytes"):
        stream_peers.check_recv_exactly(fn)


def test_partial_data_on_eof_is_told_to_raise_incomplete_message():
    fn = learner(wrong.RECV_EXACTLY_PARTIAL_ON_EOF)["recv_exactly"]
    with pytest.raises(YourCodeError, match="IncompleteMessage"):
        stream_peers.check_recv_exactly(fn)
    with pytest.raises(YourCodeError, match="IncompleteMessage"):
        stream_peers.check_recv_exactly(fn, hard=True)


def test_looping_on_eof_fails_fast_through_the_deadline():
    fn = learner(wrong.RECV_EXACTLY_LOOPS_ON_EOF)["recv_exactly"]
    started = time.monotonic()
    with pytest.raises(YourCodeError, match="did not return within"):
        stream_peers.check_recv_exactly(fn, timeout=0.5)
    assert time.monotonic() - started < 5


def test_recv_exactly_reading_past_n_is_caught():
    def greedy(sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise IncompleteMessage(n, data)
            data += chunk
        return data[:n]

    with pytest.raises(YourCodeError, match="were lost"):
        stream_peers.check_recv_exactly(greedy)


def test_little_endian_prefix_is_caught_both_ways():
    ns = learner(wrong.MESSAGES_LITTLE_ENDIAN)
    with pytest.raises(YourCodeError, match="could not decode"):
        stream_peers.check_messages(ns["send_message"], framing.recv_message)
    with pytest.raises(YourCodeError, match="'!I'"):
        stream_peers.check_messages(framing.send_message, ns["recv_message"])


def test_send_instead_of_sendall_is_caught_by_the_large_message():
    def send_once(sock, payload):
        sock.send(struct.pack("!I", len(payload)) + payload)

    stream_peers.check_messages(send_once, framing.recv_message)  # small messages: luck
    with pytest.raises(YourCodeError, match="sendall"):
        stream_peers.check_messages(send_once, framing.recv_message, hard=True)


def test_recv_message_returning_partial_or_raising_at_clean_close_is_caught():
    def never_none(sock):
        header = framing.recv_exactly(sock, 4)
        return framing.recv_exactly(sock, struct.unpack("!I", header)[0])

    with pytest.raises(YourCodeError, match="return None"):
        stream_peers.check_messages(framing.send_message, never_none)

    def partial(sock):
        data = b""
        while len(data) < 4:
            chunk = sock.recv(4 - len(data))
            if not chunk:
                return None
            data += chunk
        length = struct.unpack("!I", data)[0]
        body = b""
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                return body
            body += chunk
        return body

    with pytest.raises(YourCodeError, match="IncompleteMessage"):
        stream_peers.check_messages(framing.send_message, partial, hard=True)


def test_line_splitter_dropping_the_tail_is_caught():
    cls = learner(wrong.LINE_SPLITTER_DROPS_TAIL)["LineSplitter"]
    with pytest.raises(YourCodeError, match="pending"):
        stream_peers.check_line_splitter(cls)
    with pytest.raises(YourCodeError, match="pending"):
        stream_peers.check_line_splitter(cls, hard=True, examples=100)


def test_line_splitter_without_a_length_guard_is_caught():
    class Unbounded(framing.LineSplitter):
        def feed(self, chunk):
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            return lines

    with pytest.raises(YourCodeError, match="LineTooLong"):
        stream_peers.check_line_splitter(Unbounded)


def test_line_splitter_checking_only_the_tail_is_caught_by_the_property():
    class TailOnly(framing.LineSplitter):
        def feed(self, chunk):
            *lines, tail = (self.pending + chunk).split(b"\n")
            if len(tail) > self.max_line:
                raise LineTooLong("tail")
            self.pending = tail
            return lines

    with pytest.raises(YourCodeError):
        stream_peers.check_line_splitter(TailOnly, hard=True, examples=100)


def test_sendall_ignoring_send_return_value_is_caught():
    fn = learner(wrong.SENDALL_IGNORES_RETURN_VALUE)["sendall_nonblocking"]
    with pytest.raises(YourCodeError, match="never the start again|data\\[sent:\\]"):
        stream_peers.check_sendall_nonblocking(fn)


def test_sendall_spinning_is_caught_at_the_deadline():
    fn = learner(wrong.SENDALL_SPINS)["sendall_nonblocking"]
    with pytest.raises(YourCodeError, match="instead of retrying in a loop"):
        stream_peers.check_sendall_nonblocking(fn, hard=True)


def test_sendall_without_deadline_is_caught():
    def no_deadline(sock, data, timeout):
        view, sent = memoryview(data), 0
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_WRITE)
            while sent < len(view):
                selector.select()
                try:
                    sent += sock.send(view[sent:])
                except BlockingIOError:
                    pass

    started = time.monotonic()
    with pytest.raises(YourCodeError, match="did not return within"):
        stream_peers.check_sendall_nonblocking(no_deadline, hard=True)
    assert time.monotonic() - started < 6


def test_sendall_switching_to_blocking_mode_is_caught():
    def blocking(sock, data, timeout):
        sock.settimeout(timeout)
        view, sent = memoryview(data), 0
        while sent < len(view):
            sent += sock.send(view[sent:])

    with pytest.raises(YourCodeError, match="blocking mode"):
        stream_peers.check_sendall_nonblocking(blocking)


def test_sendall_calling_sendall_is_told_to_use_send():
    with pytest.raises(YourCodeError, match="sock.send()"):
        stream_peers.check_sendall_nonblocking(lambda sock, data, timeout: sock.sendall(data))


def test_blank_stub_fails_fast_with_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    class Stub:
        def __init__(self, max_line=1024):
            raise NotImplementedError()

    started = time.monotonic()
    for run in [
        lambda: stream_peers.check_recv_exactly(stub),
        lambda: stream_peers.check_messages(stub, stub),
        lambda: stream_peers.check_line_splitter(Stub),
        lambda: stream_peers.check_line_splitter(Stub, hard=True),
        lambda: stream_peers.check_sendall_nonblocking(stub),
        lambda: stream_peers.check_sendall_nonblocking(stub, hard=True),
    ]:
        with pytest.raises(NotImplementedError):
            run()
    assert time.monotonic() - started < 5
