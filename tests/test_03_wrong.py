"""Notebook 03 (UDP): classic wrong answers lose points when put in the instructor notebook.

The same sources are run directly against the checks in tests/test_udp.py, which is faster and
says which sentence the learner gets.
"""
import pytest

from notebook_cases import assert_loses_points

pytestmark = pytest.mark.notebooks

ASSIGNMENT = "03-udp"

REQUEST_HEADER = '''
import random


def request_sum(server, a, b, *, timeout=0.3, attempts=3):
'''

ONE_RECVFROM_WITHOUT_RETRY = REQUEST_HEADER + '''
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(json.dumps({"id": 1, "A": a, "B": b}).encode(), server)
        data, _ = sock.recvfrom(1024)
        return json.loads(data)["Sum"]
'''

NO_TIMEOUT = REQUEST_HEADER + '''
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(attempts):
            sock.sendto(json.dumps({"id": 1, "A": a, "B": b}).encode(), server)
            data, _ = sock.recvfrom(1024)  # blocks forever when the datagram was dropped
            return json.loads(data)["Sum"]
'''

RETRY_FOREVER = REQUEST_HEADER + '''
    request_id = random.randrange(1 << 31)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        while True:  # matches replies correctly, but never gives up
            sock.sendto(json.dumps({"id": request_id, "A": a, "B": b}).encode(), server)
            try:
                while True:
                    data, sender = sock.recvfrom(1024)
                    reply = json.loads(data)
                    if sender == server and reply.get("id") == request_id:
                        return reply["Sum"]
            except TimeoutError:
                pass
'''

TAKES_ANY_REPLY = REQUEST_HEADER + '''
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        for _ in range(attempts):
            sock.sendto(json.dumps({"id": 1, "A": a, "B": b}).encode(), server)
            try:
                return json.loads(sock.recvfrom(1024)[0])["Sum"]  # no check of sender or id
            except TimeoutError:
                pass
        raise TimeoutError("no reply")
'''

SERVE_HEADER = '''
def sum_answer(data):  # correct: the bugs below are in serve_sums only
    try:
        request = json.loads(data.decode("utf-8"))
    except ValueError:
        return json.dumps({"Error": "not JSON"}).encode("utf-8")
    if not isinstance(request, dict) or type(request.get("A")) is not int or type(request.get("B")) is not int:
        reply = {"Error": "A and B must be integers"}
    else:
        reply = {"Sum": request["A"] + request["B"]}
    if isinstance(request, dict) and "id" in request:
        reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def serve_sums(sock, n, timeout=2.0):
'''

REPLIES_TO_THE_FIRST_CLIENT = SERVE_HEADER + '''
    with sock:
        sock.settimeout(timeout)
        first = None
        for _ in range(n):
            data, client = sock.recvfrom(65535)
            first = first or client  # remembers one client, answers everybody there
            sock.sendto(sum_answer(data), first)
'''

FORGETS_TO_ENCODE = SERVE_HEADER + '''
    with sock:
        sock.settimeout(timeout)
        for _ in range(n):
            data, client = sock.recvfrom(65535)
            sock.sendto(sum_answer(data).decode(), client)  # a str, not bytes
'''

SERVES_FOREVER = SERVE_HEADER + '''
    while True:  # seed 000's loop, unchanged: never returns, never closes
        data, client = sock.recvfrom(65535)
        sock.sendto(sum_answer(data), client)
'''

CHAT_PEER = '''
class ChatPeer:
    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.address = self.sock.getsockname()

    def send(self, text, to):
        self.sock.sendto({send}, to)

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data, sender = self.sock.recvfrom(65535)
        except TimeoutError:
            return None
        return {text}, sender

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
'''

FORGETS_TO_DECODE = CHAT_PEER.format(send='text.encode("utf-8")', text="data")
ENCODES_AS_LATIN1 = CHAT_PEER.format(send='text.encode("latin-1", "replace")', text='data.decode("latin-1")')

REQUEST_CELLS = ["request-sum-retries", "request-sum-lossy-server"]
SERVER_CELLS = ["serve-sums-two-clients", "serve-sums-many-clients"]
CHAT_CELLS = ["chat-peer-hello", "chat-peer-lines"]


@pytest.mark.parametrize(
    "solution_id, wrong, failing",
    [
        ("request_sum", ONE_RECVFROM_WITHOUT_RETRY, REQUEST_CELLS),
        ("request_sum", NO_TIMEOUT, REQUEST_CELLS),
        ("request_sum", RETRY_FOREVER, ["request-sum-lossy-server"]),
        ("request_sum", TAKES_ANY_REPLY, ["request-sum-lossy-server"]),
        ("serve_sums", REPLIES_TO_THE_FIRST_CLIENT, SERVER_CELLS),
        ("serve_sums", FORGETS_TO_ENCODE, SERVER_CELLS),
        ("serve_sums", SERVES_FOREVER, SERVER_CELLS),
        ("ChatPeer", FORGETS_TO_DECODE, CHAT_CELLS),
        ("ChatPeer", ENCODES_AS_LATIN1, ["chat-peer-lines"]),
    ],
    ids=[
        "one-recvfrom-without-retry",
        "no-timeout",
        "retry-loop-never-gives-up",
        "takes-any-reply",
        "replies-to-the-first-client",
        "forgets-to-encode",
        "serves-forever-never-closes",
        "forgets-to-decode",
        "wrong-encoding",
    ],
)
def test_wrong_implementation_loses_points(solution_id, wrong, failing):
    assert_loses_points(ASSIGNMENT, solution_id, wrong, failing=failing)
