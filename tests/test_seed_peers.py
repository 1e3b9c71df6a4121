"""Peers that behave as the seeds' own Go servers do: clients here send exactly the seeds' bytes
(seed 002's unframed {"A":7,"B":4}, seed 004's unframed chat line) and get the seeds' answers."""
import socket
import threading
import time

import pytest

from course import sumproto
from course.deadline import Deadline, wait_for
from course.seed_peers import SeedChatServer, SeedTcpSumServer, SeedUdpSumServer
from course.cli import peer_class
from course.tcp import TcpSumServer

SEED_REQUEST = b'{"A":7,"B":4}'  # json.Marshal(socket.Request{A: 7, B: 4}): no newline
SEED_REPLY = b'{"Sum":11}'


def read_replies(sock: socket.socket, expected: bytes, timeout: float = 5.0) -> bytes:
    """Read until `expected` bytes in all arrived (replies may come in one read or several)."""
    deadline, got = Deadline(timeout), b""
    while len(got) < len(expected) and not deadline.expired():
        sock.settimeout(max(0.01, deadline.remaining()))
        chunk = sock.recv(256)
        if not chunk:
            break
        got += chunk
    return got


def test_the_seed_peers_are_cli_peers():
    assert peer_class("tcp-sum-seed002") is SeedTcpSumServer
    assert peer_class("udp-sum-seed002") is SeedUdpSumServer
    assert peer_class("tcp-chat-seed004") is SeedChatServer


# ----------------------------------------------------------------------------------------------
# seed 002, TCP
# ----------------------------------------------------------------------------------------------
def test_seed_client_gets_the_seed_answer_round_after_round():
    """tcp_client.go: one connection, Write the request, one Read of 256 bytes, again and again."""
    with SeedTcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        for _ in range(5):
            c.sendall(SEED_REQUEST)
            assert c.recv(256) == SEED_REPLY  # one Read: the whole reply, and no newline after it
        assert server.events_of("recv")[0][2] == SEED_REQUEST
        assert server.events_of("send")[0][2] == SEED_REPLY


def test_the_line_framed_course_peer_never_answers_the_seed_client():
    """The issue: tcp-sum waits for a newline that the seed's client never sends."""
    with TcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(SEED_REQUEST)
        c.shutdown(socket.SHUT_WR)  # EOF instead of the newline: the server closes, unanswered
        assert c.recv(256) == b""
    with SeedTcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(SEED_REQUEST)
        c.shutdown(socket.SHUT_WR)
        assert read_replies(c, SEED_REPLY) == SEED_REPLY


@pytest.mark.parametrize("request_bytes, reply", [
    (SEED_REQUEST + b"\n", SEED_REPLY),  # what nc sends: Go takes the newline as whitespace
    (b'{"A":"7","B":4}', b'{"Sum":4}'),  # Unmarshal fills what it can and the error is ignored
    (b"hello", b'{"Sum":0}'),
    (b'{"a":1,"b":2}', b'{"Sum":3}'),
    (b'{"id":9,"A":1,"B":2}', b'{"Sum":3}'),  # no id in the seed's Response
])
def test_seed_server_answers_as_the_go_server(request_bytes, reply):
    with SeedTcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(request_bytes)
        assert c.recv(256) == reply


def test_flaw_two_requests_in_one_write_get_one_zero_answer():
    with SeedTcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(SEED_REQUEST + b'{"A":1,"B":2}')  # one send: one read on the server
        assert c.recv(256) == b'{"Sum":0}'
        c.sendall(b'{"A":1,"B":2}')
        assert c.recv(256) == b'{"Sum":3}'  # the next reply: the glued pair got exactly one answer
        sent = wait_for(lambda: [e[2] for e in server.events_of("send")][1:] and server.events_of("send"), 5, "no 2nd send")
        assert [e[2] for e in sent] == [b'{"Sum":0}', b'{"Sum":3}']


def test_flaw_a_request_split_over_two_reads_gets_two_zero_answers():
    with SeedTcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(b'{"A":7,')
        assert c.recv(256) == b'{"Sum":0}'
        c.sendall(b'"B":4}')
        assert c.recv(256) == b'{"Sum":0}'
        assert [e[2] for e in server.events_of("recv")] == [b'{"A":7,', b'"B":4}']


def test_flaw_a_request_over_256_bytes_is_cut():
    long_request = b'{"A":7,"B":4,"pad":"' + b"x" * 300 + b'"}'
    with SeedTcpSumServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(long_request)
        assert read_replies(c, b'{"Sum":0}' * 2) == b'{"Sum":0}{"Sum":0}'
        assert [len(e[2]) for e in server.events_of("recv")] == [256, len(long_request) - 256]


def test_flaw_the_connection_ends_its_deadline_after_accept_however_busy():
    deadline = 0.6
    with SeedTcpSumServer(deadline=deadline) as server, socket.create_connection(server.address, timeout=5) as c:
        started, answered = time.monotonic(), 0
        while True:  # a busy client: a request as soon as the previous answer came back
            try:
                c.sendall(SEED_REQUEST)
                reply = c.recv(256)
            except (BrokenPipeError, ConnectionResetError):
                break
            if not reply:
                break
            assert reply == SEED_REPLY
            answered += 1
            assert time.monotonic() - started < deadline + 5, "the seed's deadline never closed the connection"
        assert time.monotonic() - started >= deadline and answered > 0
        wait_for(lambda: server.events_of("deadline"), 5, "the server recorded no deadline")


def test_deadline_zero_means_none_and_negative_is_refused():
    assert SeedTcpSumServer(deadline=0).deadline == 0
    with pytest.raises(ValueError, match="deadline must be 0"):
        SeedTcpSumServer(deadline=-1)


# ----------------------------------------------------------------------------------------------
# seed 002, UDP
# ----------------------------------------------------------------------------------------------
def test_seed_udp_client_ten_requests_on_one_socket():
    """udp_client.go: ten goroutines share one connected socket, each Write then Read."""
    with SeedUdpSumServer() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.connect(server.address)
        for _ in range(10):
            c.send(SEED_REQUEST)
        assert [c.recv(256) for _ in range(10)] == [SEED_REPLY] * 10


@pytest.mark.parametrize("datagram, reply", [
    (sumproto.request(1, 2, id=7), b'{"Sum":3}'),  # the course's request with an id: no id back
    (b'{"A":"7","B":4}', b'{"Sum":4}'),
    (b"seven plus four", b'{"Sum":0}'),
    (b'{"A":7,"B":4,"pad":"' + b"x" * 300 + b'"}', b'{"Sum":0}'),  # cut at 256 bytes: not JSON any more
    (SEED_REQUEST + b" " * 300, SEED_REPLY),  # cut too, but what is left is still the request
])
def test_seed_udp_server_answers_as_the_go_server(datagram, reply):
    with SeedUdpSumServer() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.sendto(datagram, server.address)
        data, addr = c.recvfrom(1024)
        assert (data, addr) == (reply, server.address)
        assert len(server.events_of("recv")[0][2]) == min(len(datagram), 256)


def test_flaw_the_udp_server_stops_for_everyone_at_its_deadline():
    with SeedUdpSumServer(deadline=0.5) as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(5)
        c.connect(server.address)
        c.send(SEED_REQUEST)
        assert c.recv(256) == SEED_REPLY
        wait_for(server.expired.is_set, 5, "the seed's UDP server never reached its deadline")
        c.send(SEED_REQUEST)  # nobody listens any more: the kernel answers with ICMP port unreachable
        with pytest.raises(ConnectionRefusedError):
            c.recv(256)
        assert server.events_of("deadline") == [("deadline",)]


# ----------------------------------------------------------------------------------------------
# seed 004, the chat
# ----------------------------------------------------------------------------------------------
def test_seed_chat_client_gets_unframed_answers():
    """The seed's client writes the trimmed line with no newline and prints what one Read returns."""
    with SeedChatServer() as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(b"hello")
        assert c.recv(1024) == b"got: hello"
        c.sendall("你好".encode())
        assert c.recv(1024) == "got: 你好".encode()
        assert [e[2] for e in server.events_of("recv")] == [b"hello", "你好".encode()]


def test_seed_chat_operator_script_empty_answer_and_exit():
    with SeedChatServer(script=["  hi there \n", "", "exit"]) as server, \
            socket.create_connection(server.address, timeout=5) as c:
        c.sendall(b"hello")
        assert c.recv(1024) == b"hi there"  # trimmed, as strings.TrimSpace does
        c.sendall(b"are you there?")
        wait_for(lambda: len(server.events_of("send")) == 2, 5, "the operator never answered the 2nd message")
        assert server.events_of("send")[1][2] == b""  # Write of zero bytes: nothing goes out
        c.sendall(b"hello?")
        assert c.recv(1024) == b""  # the operator's exit closed the chat; nothing came before it
        assert server.events_of("exit")


def test_seed_chat_reply_function_and_client_exit():
    with SeedChatServer(reply=str.upper) as server, socket.create_connection(server.address, timeout=5) as c:
        c.sendall(b"abc")
        assert c.recv(1024) == b"ABC"
    # the client's "exit" never travels: it closes, and the server sees the end of the stream
    wait_for(lambda: server.events_of("close"), 5, "the server never saw the client close")


def test_seed_peers_close_promptly_with_a_client_connected():
    for cls in (SeedTcpSumServer, SeedChatServer):
        server = cls().start()
        c = socket.create_connection(server.address, timeout=5)
        wait_for(lambda: server.events_of("accept"), 5, "no accept")
        before = time.monotonic()
        server.close()
        assert time.monotonic() - before < 1.0
        assert c.recv(10) == b""
        c.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(("SeedTcpSumServer", "SeedChatServer"))]
