"""The base of every reference peer: loopback only, port 0, real address, clean exit."""
import socket
import threading

import pytest

from course import SetupError
from course.deadline import wait_for
from course.serving import format_address, loopback_host
from course.tcp import TcpEchoServer
from course.udp import UdpEchoServer


def test_tcp_server_binds_port_zero_and_reports_the_real_address():
    with TcpEchoServer() as server:
        host, port = server.address
        assert host == "127.0.0.1" and 0 < port < 65536
        with socket.create_connection(server.address, timeout=2) as c:
            c.sendall(b"hello")
            assert c.recv(100) == b"hello"


def test_udp_server_echoes_to_the_sender():
    with UdpEchoServer() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(2)
        c.sendto(b"ping", server.address)
        data, addr = c.recvfrom(100)
        assert (data, addr) == (b"ping", server.address)
        assert server.events_of("recv")[0][2] == b"ping"


def test_other_loopback_addresses_and_ipv6_work():
    with TcpEchoServer(host="127.0.0.2") as a, TcpEchoServer(host="::1") as b:
        assert a.address[0] == "127.0.0.2"
        assert b.address[0] == "::1"
        assert b.where.startswith("[::1]:")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "192.168.1.2", "::", "localhost-ish"])
def test_non_loopback_addresses_are_refused(host):
    with pytest.raises(SetupError):
        loopback_host(host)


def test_rerunning_a_cell_leaves_no_socket_and_no_thread():
    # A notebook cell that is run again: same server, new port each time, nothing left behind.
    before = set(threading.enumerate())
    for _ in range(3):
        with TcpEchoServer() as server, socket.create_connection(server.address, timeout=2) as c:
            c.sendall(b"x")
            assert c.recv(1) == b"x"
        with pytest.raises(OSError):
            socket.create_connection(server.address, timeout=0.5)
    wait_for(lambda: set(threading.enumerate()) <= before, 2.0, "threads were left behind")


def test_close_while_a_client_is_still_connected_returns_promptly():
    server = TcpEchoServer().start()
    c = socket.create_connection(server.address, timeout=2)
    wait_for(lambda: server.events_of("accept"), 2.0, "the server never accepted")
    server.close()  # must not wait for the client
    assert c.recv(10) == b""  # the server shut the connection down
    c.close()
    server.close()  # twice is fine


def test_fixed_port_in_use_says_what_to_do():
    with TcpEchoServer() as first:
        with pytest.raises(SetupError, match=r"cannot bind 127\.0\.0\.1 port \d+: Address already in use; use port 0"):
            TcpEchoServer(port=first.port).start()


def test_two_servers_never_share_a_port():
    with TcpEchoServer() as a, TcpEchoServer() as b, UdpEchoServer() as c:
        assert a.port != b.port
        assert c.port > 0


def test_format_address():
    assert format_address(("127.0.0.1", 80)) == "127.0.0.1:80"
    assert format_address(("::1", 80, 0, 0)) == "[::1]:80"


def test_settle_returns_once_every_queued_datagram_is_handled():
    """A datagram is queued when sendto() returns and handled a moment later: settle() waits for
    exactly what was queued before it, and its own marker is neither recorded nor handled."""
    import threading

    from course.serving import UdpServer

    class Slow(UdpServer):
        def __init__(self):
            super().__init__()
            self.handled = []
            self.go = threading.Event()

        def handle_datagram(self, data, addr):
            self.go.wait(5)  # the first datagram waits, so the rest queue up behind it
            self.handled.append(data)

    with Slow() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for i in range(20):
            client.sendto(b"d%d" % i, server.address)
        threading.Timer(0.2, server.go.set).start()
        server.settle()
        assert server.handled == [b"d%d" % i for i in range(20)]
        assert len(server.events_of("recv")) == 20


def test_idle_limit_defaults_to_io_timeout_and_can_be_lifted_or_set():
    """Checks and notebooks keep io_timeout (5 s) as the silence recv_or_stop accepts; the command
    line lifts it (math.inf) or sets its own (--idle)."""
    import math
    import time

    assert TcpEchoServer().idle_seconds() == TcpEchoServer.io_timeout == 5.0
    server = TcpEchoServer()
    server.idle_limit = 0.3
    with server, socket.create_connection(server.address, timeout=5) as c:
        start = time.monotonic()
        assert c.recv(10) == b""  # closed after 0.3 s of silence
        assert 0.25 <= time.monotonic() - start < 4
    server = TcpEchoServer()
    server.idle_limit = math.inf
    with server, socket.create_connection(server.address, timeout=5) as c:
        wait_for(lambda: server.events_of("accept"), 2.0, "the server never accepted")
        c.settimeout(0.6)  # twice the limit above: still open, and still echoing after it
        with pytest.raises(TimeoutError):
            c.recv(10)
        c.sendall(b"still there")
        c.settimeout(5)
        assert c.recv(100) == b"still there"


# ----------------------------------------------------------------------------------------------
# The extension contract: what a subclass may override and what it may call
# ----------------------------------------------------------------------------------------------
def test_the_docstrings_state_the_contract_and_the_hooks_are_public():
    from course import serving

    for cls in (serving.LoopbackServer, serving.TcpServer, serving.UdpServer):
        assert "Methods that may be overridden" in cls.__doc__ and "Methods for subclasses" in cls.__doc__
    for name in ("setup", "serve_forever", "spawn", "track", "untrack", "record", "stopping", "stop_event"):
        assert name in serving.LoopbackServer.__doc__ and hasattr(serving.LoopbackServer, name)
    assert "handle_connection(conn, addr)" in serving.TcpServer.__doc__ and "recv_or_stop" in serving.TcpServer.__doc__
    assert "handle_datagram(data, addr)" in serving.UdpServer.__doc__ and "next_datagram()" in serving.UdpServer.__doc__
    for old in ("_serve_forever", "_spawn", "_track", "_untrack"):
        assert not hasattr(serving.LoopbackServer, old), old
    assert not hasattr(serving, "REGISTRY") and "register" not in serving.__all__


def test_a_loop_of_its_own_through_the_public_hooks_is_served_and_cleaned_up():
    """A LoopbackServer with its own serve_forever, a socket of its own (track) and a helper
    thread (spawn), pausing on stop_event: close() wakes the pause, closes the socket, joins both."""
    from course.serving import POLL, LoopbackServer

    class Ticker(LoopbackServer):
        sock_type = socket.SOCK_DGRAM

        def setup(self, sock):
            sock.settimeout(POLL)
            self.extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.track(self.extra)
            self.helper = self.spawn(self.tick, "ticker-helper")

        def tick(self):
            while not self.stop_event.wait(30):  # a long pause that close() cuts short
                pass
            self.record("helper-stopped")

        def serve_forever(self):
            self.record("serving")
            while not self.stopping:
                try:
                    data, addr = self.sock.recvfrom(100)
                except OSError:
                    continue
                self.record("got", data)

    before = set(threading.enumerate())
    with Ticker() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.sendto(b"hi", server.address)
        wait_for(lambda: server.events_of("got"), 5.0, "the loop of its own never received")
        assert server.events_of("serving") == [("serving",)]
    assert server.events_of("helper-stopped") == [("helper-stopped",)]
    assert server.extra.fileno() == -1 and server.sock.fileno() == -1
    wait_for(lambda: set(threading.enumerate()) <= before, 2.0, "threads were left behind")


def test_next_datagram_is_what_a_udp_loop_of_its_own_builds_on():
    from course.serving import UdpServer

    class Counting(UdpServer):
        def serve_forever(self):
            self.seen = 0
            while not self.stopping:
                got = self.next_datagram()
                if got is not None:
                    self.seen += 1
                    self.sendto(b"%d" % self.seen, got[1])

    with Counting() as server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        for i in (1, 2):
            client.sendto(b"x", server.address)
            assert client.recvfrom(10) == (b"%d" % i, server.address)
        server.settle()  # the settle() marker is not a datagram of the loop
        assert server.seen == 2 and [e[2] for e in server.events_of("recv")] == [b"x", b"x"]
