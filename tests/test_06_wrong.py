"""Assignment 06: classic wrong implementations lose points in the notebook's graded cells.

Each source below replaces one solution cell of solutions/06-buffers-framing; the notebook is run
with a real kernel and the named graded cells must fail (hidden tests included). The same sources
are run directly against the checks in tests/test_stream_peers.py, which is faster and says which
sentence the learner gets.
"""
import pytest

from notebook_cases import assert_loses_points

ASSIGNMENT = "06-buffers-framing"

RECV_EXACTLY_SINGLE_RECV = '''
def recv_exactly(sock, n):
    """One recv(): returns whatever has arrived, possibly fewer than n bytes."""
    return sock.recv(n)
'''

RECV_EXACTLY_PARTIAL_ON_EOF = '''
def recv_exactly(sock, n):
    """Loops, but returns the bytes it has when the peer closes: half a message."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
'''

RECV_EXACTLY_LOOPS_ON_EOF = '''
def recv_exactly(sock, n):
    """Loops, but never looks for b'': after the peer closes it spins forever."""
    data = b""
    while len(data) < n:
        data += sock.recv(n - len(data))
    return data
'''

MESSAGES_LITTLE_ENDIAN = '''
def send_message(sock, payload):
    """Length prefix in little-endian: the reference peers read '!I' (big-endian)."""
    sock.sendall(struct.pack("<I", len(payload)) + payload)


def recv_message(sock):
    try:
        header = recv_exactly(sock, 4)
    except IncompleteMessage as exc:
        if not exc.partial:
            return None
        raise
    (length,) = struct.unpack("<I", header)
    return recv_exactly(sock, length)
'''

LINE_SPLITTER_DROPS_TAIL = '''
class LineSplitter:
    """Splits each chunk alone: the tail of one chunk is never joined to the next."""

    def __init__(self, max_line=1024):
        self.max_line = max_line
        self.pending = b""

    def feed(self, chunk):
        *lines, tail = chunk.split(b"\\n")
        if any(len(line) > self.max_line for line in lines) or len(tail) > self.max_line:
            raise LineTooLong("too long")
        self.pending = tail
        return lines
'''

SENDALL_IGNORES_RETURN_VALUE = '''
def sendall_nonblocking(sock, data, timeout):
    """Waits with select, but assumes every send() took the whole 64 KiB slice."""
    deadline = time.monotonic() + timeout
    sent = 0
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while sent < len(data):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError("deadline")
            try:
                sock.send(data[sent:sent + 65536])
            except BlockingIOError:
                continue
            sent += 65536
'''

SENDALL_SPINS = '''
def sendall_nonblocking(sock, data, timeout):
    """Right bytes, right deadline, but retries send() in a loop instead of waiting with select."""
    deadline = time.monotonic() + timeout
    sent = 0
    while sent < len(data):
        if time.monotonic() > deadline:
            raise TimeoutError("deadline")
        try:
            sent += sock.send(data[sent:])
        except BlockingIOError:
            pass
'''

WRONG = [
    # (name, solution grade_id, source, graded cells that must fail)
    ("recv_exactly-single-recv", "recv_exactly", RECV_EXACTLY_SINGLE_RECV, ["recv_exactly-self-check", "recv_exactly-adversarial-peers"]),
    ("recv_exactly-partial-on-eof", "recv_exactly", RECV_EXACTLY_PARTIAL_ON_EOF, ["recv_exactly-self-check", "recv_exactly-adversarial-peers"]),
    ("recv_exactly-loops-on-eof", "recv_exactly", RECV_EXACTLY_LOOPS_ON_EOF, ["recv_exactly-self-check", "recv_exactly-adversarial-peers"]),
    ("messages-little-endian", "messages", MESSAGES_LITTLE_ENDIAN, ["messages-self-check", "messages-chunked-coalesced-cut"]),
    ("line-splitter-drops-tail", "line-splitter", LINE_SPLITTER_DROPS_TAIL, ["line-splitter-self-check", "line-splitter-property"]),
    ("sendall-ignores-return-value", "sendall-nonblocking", SENDALL_IGNORES_RETURN_VALUE, ["sendall-self-check", "sendall-slow-reader-and-deadline"]),
    ("sendall-spins", "sendall-nonblocking", SENDALL_SPINS, ["sendall-slow-reader-and-deadline"]),
]


@pytest.mark.notebooks
@pytest.mark.parametrize("name, solution_id, source, failing", WRONG, ids=[w[0] for w in WRONG])
def test_wrong_implementation_loses_points(name, solution_id, source, failing):
    assert_loses_points(ASSIGNMENT, solution_id, source, failing)
