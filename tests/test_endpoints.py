"""course.endpoints (assignment 08's peers) and course.checks.endpoints' own plumbing, over real
loopback sockets."""
import selectors
import socket
import urllib.request

import pytest

from course import endpoints as ep
from course.checks import endpoints as checks
from course.deadline import wait_for
from course.tcp import wait_until_peer_read


def test_static_resolver_answers_like_getaddrinfo_and_asks_no_one():
    resolve = ep.StaticResolver({"dual.course.test": [("::1", 1111), ("127.0.0.1", 2222)]})
    answers = resolve("dual.course.test", 80, type=socket.SOCK_STREAM)
    assert [a[0] for a in answers] == [socket.AF_INET6, socket.AF_INET]
    assert answers[0][4] == ("::1", 1111, 0, 0) and answers[1][4] == ("127.0.0.1", 2222)
    assert resolve("dual.course.test", 80, socket.AF_INET)[0][4] == ("127.0.0.1", 2222)
    with pytest.raises(socket.gaierror):
        resolve("other.course.test", 80)
    assert resolve.calls == [("dual.course.test", 80)] * 2 + [("other.course.test", 80)]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_listening_refusing_and_silent_addresses(host):
    with ep.listening(host) as (listener, address):
        with socket.create_connection(address, timeout=2.0) as c:
            conn, peer = listener.accept()
            conn.close()
            assert peer[:2] == c.getsockname()[:2]
    with ep.refusing(host) as address, pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2.0)
    with ep.silent(host) as address, pytest.raises(TimeoutError):
        socket.create_connection(address, timeout=0.2)


def test_ipv6_listener_is_ipv6_only():
    with ep.listening("::1") as (listener, _):
        assert listener.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1


def test_connect_nonblocking_says_each_step():
    with ep.listening("127.0.0.1") as (_, address):
        sock, steps = ep.connect_nonblocking(address, 2.0)
        with sock:
            assert sock.getpeername()[:2] == address
        assert steps == ["connect_ex -> EINPROGRESS", "writable; SO_ERROR -> 0"]
    with ep.refusing("127.0.0.1") as address, pytest.raises(ConnectionRefusedError):
        ep.connect_nonblocking(address, 2.0)
    with ep.silent("127.0.0.1") as address, pytest.raises(TimeoutError):
        ep.connect_nonblocking(address, 0.2)


def test_http_reply_bytes():
    assert ep.http_reply(200, b"hi") == (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                         b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
    assert b"Content-Length" not in ep.http_reply(404, b"x", length=False)


def test_http_reply_server_sends_each_piece_to_its_own_recv():
    parts = [b"HTTP/1.1 200 OK\r\n", b"Content-Length: 3\r\n\r\n", b"abc"]
    with ep.HttpReplyServer(parts) as server, socket.create_connection(server.address, timeout=2.0) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        got = []
        while data := c.recv(4096):
            got.append(data)
    assert got == parts
    assert server.requests() == [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]


def test_http_reply_server_keep_open_holds_the_connection_after_the_body():
    with ep.HttpReplyServer([ep.http_reply(200, b"x")], keep_open=True) as server:
        with socket.create_connection(server.address, timeout=0.3) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(4096).endswith(b"\r\n\r\nx")
            with pytest.raises(TimeoutError):
                c.recv(4096)


def test_local_http_server_is_the_standard_librarys():
    with ep.LocalHttpServer({"a.txt": b"hello"}) as server:
        with urllib.request.urlopen(server.url + "/a.txt", timeout=2.0) as reply:
            assert reply.read() == b"hello"
        assert server.address[0] == "127.0.0.1" and any("a.txt" in line for line in server.log)


def test_write_write_read_runs_the_rounds_with_and_without_nodelay():
    with ep.RequestServer(size=200) as server:
        for nodelay in (False, True):
            times = ep.write_write_read(server.address, nodelay, rounds=3)
            assert len(times) == 3 and all(t >= 0 for t in times)


def test_one_to_many_demo_runs_only_in_a_private_namespace_or_shows_the_recording():
    out, where = ep.one_to_many_demo()
    assert out["interfaces"] == ["lo"]
    assert out["broadcast_without_SO_BROADCAST"].startswith("PermissionError")
    assert out["multicast_received"] == ["to the group"] * 3
    assert "namespace" in where or "recording" in where


def test_numeric_names_only_refuses_names_and_restores_getaddrinfo():
    real = socket.getaddrinfo
    with checks.numeric_names_only():
        assert socket.getaddrinfo("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)
        with pytest.raises(socket.gaierror, match="resolve no names"):
            socket.create_connection(("dual.course.test", 80), timeout=0.5)
    assert socket.getaddrinfo is real


def test_wait_until_peer_read_paces_pieces():
    # the HTTP server's pacing relies on it: a piece counts as read once the client's recv took it
    with ep.listening("127.0.0.1") as (listener, address), socket.create_connection(address, timeout=2.0) as c:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"piece")
            assert not wait_until_peer_read(conn, 0.05)
            assert c.recv(10) == b"piece"
            assert wait_until_peer_read(conn, 2.0)


def test_sockets_closed_by_the_code_reports_what_only_the_collector_closed():
    from course.errors import YourCodeError

    def leak():
        box = [socket.socket()]
        box.append(box)  # a cycle: only the collector frees it, so no_leaked_sockets would see it or not by chance

    with pytest.raises(YourCodeError, match="left 1 socket"):
        with checks.sockets_closed_by_the_code("leak()", "close it"):
            leak()
    with ep.listening("127.0.0.1") as (listener, address):
        with checks.sockets_closed_by_the_code("a server's own", "close it", ignore_port=address[1]):
            c = socket.create_connection(address, timeout=2.0)
            box = [listener.accept()[0]]  # the reference server's side, on the ignored port
            box.append(box)
            del box
        c.close()
    with checks.sockets_closed_by_the_code("closed", "close it"):
        socket.socket().close()


def _select_forever(listener, stop, limit=65536):
    """A server whose select() has no timeout: it looks at stop only when an event wakes it."""
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    conns = []
    try:
        while not stop.is_set():
            for key, _ in sel.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conns.append(conn)
                    sel.register(conn, selectors.EVENT_READ)
                else:
                    data = key.fileobj.recv(65536)
                    if data:
                        key.fileobj.sendall(data)
                    else:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
    finally:
        for conn in conns:
            conn.close()
        sel.close()


@pytest.mark.parametrize("attempt", range(3))
def test_stop_catches_a_select_without_timeout_every_time(attempt):
    # a client's last close used to wake it after stop was set, about one run in three
    from course.errors import YourCodeError

    with pytest.raises(YourCodeError, match="did not return within 1 s"):
        checks.check_echo_buffered(_select_forever)


def test_unread_counts_what_waits_without_reading_it():
    with ep.listening("127.0.0.1") as (listener, address), socket.create_connection(address, timeout=2.0) as c:
        conn, _ = listener.accept()
        with conn:
            assert checks._unread(c) == 0
            conn.sendall(b"x" * 1000)
            wait_for(lambda: checks._unread(c) == 1000, 2.0, "the 1000 bytes never showed as unread")
            assert c.recv(2000) == b"x" * 1000
