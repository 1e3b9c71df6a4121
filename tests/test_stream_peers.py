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
from course.checks import stream_peers as stream_check
from course.checks.stream_peers import CountingSocket
from course.stream_peers import (
    ChunkedSender,
    CoalescingSender,
    MessageCollector,
    MidMessageCloser,
    NeverReader,
    OneByteSender,
    RandomChunkSender,
    SlowReader,
    connect,
)
from autograder.samples.cases import load_cases
from registry_cases import case_replace

CASES = {c.name: c for c in load_cases(assignment="06-buffers-framing")}


@pytest.fixture(autouse=True)
def no_evidence_publishing(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")


def learner(name: str) -> dict:
    """Run the cell of registry case `name` (autograder/samples/06-buffers-framing) in a namespace
    like the notebook's, with the reference recv_exactly."""
    case = CASES[name]
    namespace = {
        "socket": socket,
        "struct": struct,
        "time": time,
        "selectors": selectors,
        "IncompleteMessage": IncompleteMessage,
        "LineTooLong": LineTooLong,
        "MessageTooLong": framing.MessageTooLong,
        "MAX_MESSAGE": framing.MAX_MESSAGE,
        "recv_exactly": framing.recv_exactly,
    }
    exec(case_replace(case)[case.cell], namespace)
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
    "recv_exactly": lambda level: stream_check.check_recv_exactly(framing.recv_exactly, level=level),
    "messages": lambda level: stream_check.check_messages(framing.send_message, framing.recv_message, level=level),
    "lines": lambda level: stream_check.check_line_splitter(framing.LineSplitter, level=level, examples=100),
    "sendall": lambda level: stream_check.check_sendall_nonblocking(reference_sendall, level=level),
}


@pytest.mark.parametrize("level", stream_check.LEVELS)
@pytest.mark.parametrize("name", sorted(REFERENCE_RUNS))
def test_reference_passes_and_evidence_is_deterministic(name, level):
    first = evidence_of(lambda: REFERENCE_RUNS[name](level))
    second = evidence_of(lambda: REFERENCE_RUNS[name](level))
    assert first and first == second
    text = repr(first)
    assert "127.0.0.1" not in text


def test_hard_is_the_hidden_level_and_levels_are_checked():
    assert stream_check._level(None, True) == "hidden" and stream_check._level(None, False) == "self-check"
    with pytest.raises(ValueError):
        stream_check.check_recv_exactly(framing.recv_exactly, level="easy")


@pytest.mark.parametrize("level", ["adversarial", "hidden"])
def test_the_property_run_draws_lines_ending_in_cr_and_too_long_lines(level):
    (evidence,) = evidence_of(lambda: stream_check.check_line_splitter(framing.LineSplitter, level=level))
    assert evidence["examples"] == (100 if level == "adversarial" else 300)
    assert evidence["lines_ending_in_cr"] > 20 and evidence["raised"] > 10


def test_fixed_chunkings_end_lines_in_cr_and_raise_line_too_long():
    traces = [stream_check._run_splitter(framing.LineSplitter, m, c) for m, c in stream_check.LINE_CASES_BASIC]
    assert any(line.endswith(b"\r") for t in traces for step in t if isinstance(step[0], list) for line in step[0])
    assert [t[-1] for t in traces if t[-1][0] == "LineTooLong"] == [("LineTooLong", b"")] * 3


# ----------------------------------------------------------------------------------------------
# Checks fail the wrong implementations of the registry with a sentence to act on
# ----------------------------------------------------------------------------------------------
FUNCTION = {"recv_exactly": "recv_exactly", "line-splitter": "LineSplitter", "sendall-nonblocking": "sendall_nonblocking"}


def run_check(name: str, level: str) -> None:
    """The check of case `name`'s exercise at `level`, on the case's code (the reference for the rest)."""
    case = CASES[name]
    ns = learner(name)
    if case.cell == "recv_exactly":
        stream_check.check_recv_exactly(ns["recv_exactly"], level=level)
    elif case.cell == "messages":
        stream_check.check_messages(ns["send_message"], ns["recv_message"], level=level)
    elif case.cell == "line-splitter":
        stream_check.check_line_splitter(ns["LineSplitter"], level=level)
    else:
        stream_check.check_sendall_nonblocking(ns["sendall_nonblocking"], level=level)


# case: (the first level that fails it, the sentence it gets); every later level fails it too
SENTENCES = {
    "recv-exactly-single-recv": ("self-check", "loop until you have n bytes"),
    "recv-exactly-reads-past-n": ("self-check", "at most the bytes still missing"),
    "recv-exactly-partial-on-eof": ("self-check", "never return part of the message"),
    "recv-exactly-incomplete-without-data": ("self-check", "with the bytes you got"),
    "recv-exactly-loops-on-eof": ("self-check", "did not return within"),
    "recv-exactly-zero-calls-recv": ("adversarial", r"recv_exactly\(sock, 0\).*IncompleteMessage"),
    "recv-exactly-sets-its-own-timeout": ("self-check", "leave timeouts to the socket"),
    "messages-refuses-exactly-max-size": ("hidden", "exactly max_size"),
    "line-splitter-reverses-lines": ("self-check", "expected"),
    "messages-little-endian": ("self-check", "could not decode"),
    "messages-send-instead-of-sendall": ("adversarial", "sendall"),
    "messages-payload-single-recv": ("adversarial", "recv_exactly that many bytes"),
    "messages-never-none": ("self-check", "return None"),
    "messages-none-on-cut-header": ("adversarial", "must raise IncompleteMessage"),
    "messages-no-max-size": ("adversarial", "raise MessageTooLong"),
    "line-splitter-drops-tail": ("self-check", "pending"),
    "line-splitter-keeps-newline": ("self-check", "without its"),
    "line-splitter-strips-cr": ("self-check", r"b'a\\r'|\\r"),
    "line-splitter-skips-empty-lines": ("self-check", "expected"),
    "line-splitter-pending-none": ("self-check", "None"),
    "line-splitter-counts-newline": ("self-check", "LineTooLong"),
    "line-splitter-checks-only-pending": ("self-check", "LineTooLong"),
    "line-splitter-raises-a-feed-late": ("self-check", "LineTooLong"),
    "line-splitter-keeps-pending-after-error": ("self-check", "leaving .pending empty"),
    "sendall-calls-sendall": ("self-check", r"sock\.send\(\)"),
    "sendall-ignores-return-value": ("self-check", r"never the start again"),
    "sendall-spins": ("adversarial", "instead of retrying in a loop"),
    "sendall-no-deadline": ("adversarial", "give each wait only the time left"),
    "sendall-full-timeout-each-wait": ("adversarial", "a peer reading 1 KiB every 0.1 s was still running"),
    "sendall-switches-to-blocking": ("self-check", "blocking mode"),
    "sendall-returns-count": ("self-check", "return None"),
}


def test_every_wrong_case_of_the_registry_has_a_sentence():
    # the learner helper's cases (learner-*) are judged by tests/test_registry.py and the grader's
    # sample class like every case; the sentence each one gets is pinned only for the cases written
    # for these checks
    wrong = {name for name, case in CASES.items() if case.fails and not name.startswith("learner-")}
    assert wrong == set(SENTENCES)


@pytest.mark.parametrize("name", sorted(SENTENCES))
def test_wrong_case_fails_from_its_level_on_with_its_sentence(name):
    first, sentence = SENTENCES[name]
    levels = stream_check.LEVELS
    for level in levels[: levels.index(first)]:
        run_check(name, level)  # passes the levels before: it breaks only what that level checks
    with pytest.raises(YourCodeError, match=sentence):
        run_check(name, first)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c.fails))
def test_alternatives_pass_every_level(name):
    for level in stream_check.LEVELS:
        run_check(name, level)


def test_strips_cr_is_caught_by_the_property_run_too():
    cls = learner("line-splitter-strips-cr")["LineSplitter"]
    with pytest.raises(YourCodeError, match="\\\\r"):
        stream_check.check_line_splitter(cls, level="adversarial")


def test_recv_message_without_a_max_size_parameter_is_told_so():
    def old_signature(sock):
        return framing.recv_message(sock)

    with pytest.raises(YourCodeError, match="max_size"):
        stream_check.check_messages(framing.send_message, old_signature, level="adversarial")


def test_recv_message_refusing_exactly_max_size_is_caught():
    def off_by_one(sock, max_size=framing.MAX_MESSAGE):
        return framing.recv_message(sock, max_size=max_size - 1)

    stream_check.check_messages(framing.send_message, off_by_one, level="adversarial")
    with pytest.raises(YourCodeError, match="exactly max_size"):
        stream_check.check_messages(framing.send_message, off_by_one, level="hidden")


def test_recv_message_returning_a_partial_payload_is_caught():
    def partial(sock, max_size=framing.MAX_MESSAGE):
        header = framing.recv_exactly(sock, 4) if True else b""
        length = struct.unpack("!I", header)[0]
        body = b""
        while len(body) < length:
            chunk = sock.recv(length - len(body))
            if not chunk:
                return body
            body += chunk
        return body

    with pytest.raises(YourCodeError, match="IncompleteMessage"):
        stream_check.check_messages(framing.send_message, partial, level="adversarial")


def test_line_splitter_without_a_length_guard_is_caught():
    class Unbounded(framing.LineSplitter):
        def feed(self, chunk):
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            return lines

    with pytest.raises(YourCodeError, match="LineTooLong"):
        stream_check.check_line_splitter(Unbounded)


def test_blank_stub_fails_with_not_implemented():
    def stub(*args, **kwargs):
        raise NotImplementedError()

    class Stub:
        def __init__(self, max_line=1024):
            raise NotImplementedError()

    for level in stream_check.LEVELS:
        for run in [
            lambda: stream_check.check_recv_exactly(stub, level=level),
            lambda: stream_check.check_messages(stub, stub, level=level),
            lambda: stream_check.check_line_splitter(Stub, level=level),
            lambda: stream_check.check_sendall_nonblocking(stub, level=level),
        ]:
            with pytest.raises(NotImplementedError):
                run()


def test_old_names_of_the_checks_still_work():
    # notebooks of earlier releases call stream_peers.check_*: they are forwarded to course.checks
    for name in ["check_recv_exactly", "check_messages", "check_line_splitter", "check_sendall_nonblocking"]:
        assert getattr(stream_peers, name) is getattr(stream_check, name)
