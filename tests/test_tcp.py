"""course.tcp and course.checks.tcp: the reference peers behave as the notebook says, on real loopback
sockets, and the checks pass correct learner code, fail wrong code with a useful sentence, and fail
fast on a blank."""
from __future__ import annotations

import json
import selectors
import socket
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import checks, tcp
from course.checks import tcp as tcp_checks
from course.cli import load_peers
from course.deadline import wait_for
from course.errors import YourCodeError
from course.kernel import tcp_state
from autograder.samples.cases import load_cases
from registry_cases import case_replace

ASSIGNMENT = "04-tcp-client-server"
REGISTRY = {case.name: case for case in load_cases(assignment=ASSIGNMENT)}


# ----------------------------------------------------------------------------------------------
# Learner-style implementations: correct ones, and the classic wrong ones. The wrong ones that the
# notebook is graded on are the registry's cases (autograder/samples/04-tcp-client-server/*.diff),
# run here as the notebook would run them.
# ----------------------------------------------------------------------------------------------
def learned(source: str, name: str, called: str, **names):
    """What a solution cell's `source` defines as `name`, run in a namespace like the notebook's
    (plus `names`), renamed `called` so that test ids and the checks' messages name it."""
    namespace = {"json": json, "socket": socket, "threading": threading, "sum_answer": tcp.sum_answer, **names}
    exec(source, namespace)
    namespace[name].__name__ = namespace[name].__qualname__ = called
    return namespace[name]


def registered(case_name: str, called: str, **names):
    """The function a registry case's cell defines (the cell's name), as the notebook runs it."""
    case = REGISTRY[case_name]
    return learned(case_replace(case)[case.cell], case.cell, called, **names)


THREAD_PER_CLIENT = '''
def serve(listener, stop):
    listener.settimeout(0.05)
    threads = []
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        thread = threading.Thread(target=serve_one, args=(conn, stop))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
'''


def threaded(handle):
    """serve(listener, stop) that runs handle(conn, stop) in a thread per client and joins them:
    a right accept loop around `handle`."""
    return learned(THREAD_PER_CLIENT, "serve", "serve", serve_one=handle)


def fetch(address, request, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(request.encode("utf-8"))
        chunks = []
        while data := sock.recv(4096):
            chunks.append(data)
    return b"".join(chunks).decode("utf-8")


fetch_one_recv = registered("client-with-a-single-recv", "fetch_one_recv")
fetch_forgetting_to_decode = registered("client-forgetting-to-decode", "fetch_forgetting_to_decode")


def fetch_decoding_each_chunk(address, request, timeout=2.0):
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(request.encode("utf-8"))
        text = ""
        while data := sock.recv(4096):
            text += data.decode("utf-8")
    return text


KEPT = []


def fetch_keeping_its_socket(address, request, timeout=2.0):
    sock = socket.create_connection(address, timeout=timeout)
    KEPT.append(sock)  # still referenced after a TimeoutError: never closed
    sock.sendall(request.encode("utf-8"))
    chunks = []
    while data := sock.recv(4096):
        chunks.append(data)
    sock.close()
    return b"".join(chunks).decode("utf-8")


def echo_one(conn, stop):
    with conn:
        conn.settimeout(0.05)
        while not stop.is_set():
            try:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)
            except TimeoutError:
                continue
            except OSError:
                return


serve_echo_iterative = registered("iterative-echo-server", "serve_echo_iterative")


def echo_one_careless(conn, stop):
    with conn:
        conn.settimeout(0.05)
        while not stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                return
            conn.sendall(data)


def serve_echo_selectors(listener, stop):
    with selectors.DefaultSelector() as sel:
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ)
                    continue
                try:
                    data = key.fileobj.recv(4096)
                except OSError:
                    data = b""
                if data:
                    key.fileobj.sendall(data)
                else:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        for key in list(sel.get_map().values()):
            if key.fileobj is not listener:
                key.fileobj.close()


def sum_one(conn, stop):
    with conn:
        conn.settimeout(0.05)
        buffer = b""
        while not stop.is_set():
            try:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    conn.sendall(json.dumps(tcp.sum_answer(line)).encode() + b"\n")
            except TimeoutError:
                continue
            except OSError:
                return


serve_echo = threaded(echo_one)
serve_sum = threaded(sum_one)
serve_sum_closing_after_one_request = registered("sum-server-closing-after-one-request", "serve_sum_closing_after_one_request")
serve_sum_one_recv_is_one_message = registered("sum-server-assuming-one-recv-is-one-message", "serve_sum_one_recv_is_one_message")
serve_echo_threads_ignoring_stop = registered("echo-threads-ignore-stop", "serve_echo_threads_ignoring_stop")
serve_echo_spinning_after_close = registered("echo-spins-after-client-closes", "serve_echo_spinning_after_close")
serve_sum_threads_ignoring_stop = registered("sum-threads-ignore-stop", "serve_sum_threads_ignoring_stop")
serve_sum_thread_dying_on_reset = registered("sum-thread-dies-on-reset", "serve_sum_thread_dying_on_reset")
sum_answer_accepting_booleans = registered("sum-answer-accepting-booleans", "sum_answer_accepting_booleans")


def blank(*args):
    raise NotImplementedError()


# ----------------------------------------------------------------------------------------------
# The sum protocol, without sockets
# ----------------------------------------------------------------------------------------------
@given(st.integers(), st.integers())
@settings(max_examples=50, deadline=None)
def test_sum_answer_adds_any_integers(a, b):
    assert tcp.sum_answer(json.dumps({"A": a, "B": b}).encode()) == {"Sum": a + b}


@pytest.mark.parametrize("line", tcp_checks.MALFORMED_REQUESTS + [b'{"A": true, "B": 1}', b"null", b'"7+4"'])
def test_sum_answer_reports_malformed_lines_as_errors(line):
    answer = tcp.sum_answer(line)
    assert list(answer) == ["Error"] and isinstance(answer["Error"], str)


def test_sum_answer_is_sumproto_without_ids():
    assert tcp.sum_answer(b'{"id":42,"A":1,"B":2}') == {"Sum": 3}  # 04's lines carry no id
    assert tcp.sum_answer(b"hello") == {"Error": "the request is not JSON: Expecting value: line 1 column 1 (char 0)"}
    assert tcp.sum_answer(b'{"A":NaN,"B":1}') == {"Error": "the request is not JSON: NaN is not JSON"}
    assert tcp.sum_answer(b'{"A": 1.5, "B": 2}') == {"Error": "A must be an integer, got 1.5 (a number with a fraction or exponent)"}


def test_sum_server_writes_one_compact_json_line_per_request():
    with tcp.TcpSumServer() as server, tcp.ReferenceClient(server.address) as client:
        client.send(b'{"A": 7, "B": 4}\n{"id":1,"A":"x","B":2}\n')
        assert client.read_line("") == b'{"Sum":11}'
        assert client.read_line("") == b'{"Error":"A must be an integer, got \\"x\\" (a string)"}'
    assert [e[2] for e in server.events_of("send")] == [b'{"Sum":11}\n', b'{"Error":"A must be an integer, got \\"x\\" (a string)"}\n']


# ----------------------------------------------------------------------------------------------
# Reference servers
# ----------------------------------------------------------------------------------------------
def read_lines(sock, n):
    with sock.makefile("rb") as f:
        return [json.loads(f.readline()) for _ in range(n)]


def test_sum_server_answers_many_requests_on_one_connection_coalesced_or_split():
    with tcp.TcpSumServer() as server, tcp.ReferenceClient(server.address) as client:
        client.send(b'{"A":7,"B":4}\n{"A":1,"B":2}\nhello\n')
        assert [json.loads(client.read_line("")) for _ in range(3)][:2] == [{"Sum": 11}, {"Sum": 3}]
        client.send_in_pieces(b'{"A": 40, "B": 2}\n', [3, 9])
        assert json.loads(client.read_line("")) == {"Sum": 42}
    recv = [e[2] for e in server.events_of("recv")]
    assert recv == [b'{"A":7,"B":4}', b'{"A":1,"B":2}', b"hello", b'{"A": 40, "B": 2}']


def test_sum_server_serves_connections_at_once():
    with tcp.TcpSumServer() as server, socket.create_connection(server.address, timeout=2) as a, socket.create_connection(server.address, timeout=2) as b:
        a.sendall(b'{"A":1,"B":1}\n')
        b.sendall(b'{"A":2,"B":2}\n')
        assert read_lines(b, 1) == [{"Sum": 4}]
        assert read_lines(a, 1) == [{"Sum": 2}]


def test_silent_server_accepts_and_never_answers():
    with tcp.SilentServer() as server, socket.create_connection(server.address, timeout=2) as s:
        s.sendall(b"hello?\n")
        wait_for(lambda: server.events_of("recv"), 2.0, "the silent server never received the line")
        s.settimeout(0.2)
        with pytest.raises(TimeoutError):
            s.recv(1)


def test_reply_then_close_server_sends_parts_separately_then_closes():
    with tcp.ReplyThenCloseServer(parts=[b"one ", b"two ", b"three"]) as server:
        with socket.create_connection(server.address, timeout=2) as s:
            s.sendall(b"GET\n")
            assert s.recv(1024) == b"one "  # the second part waits until the client has read the first
            rest = b""
            while data := s.recv(1024):
                rest += data
            assert rest == b"two three"
        assert [e[2] for e in server.events_of("send")] == [b"one ", b"two ", b"three"]
        assert server.events_of("recv")[0][2] == b"GET\n"


def test_reply_then_close_server_quotes_the_request_by_default():
    with tcp.ReplyThenCloseServer() as server:
        assert fetch(server.address, "hello\n") == "you sent: hello\ngoodbye\n"


def test_peer_has_read_follows_the_receive_queue():
    with tcp.accepted_connection() as (listener, conn, client):
        client.sendall(b"12345")
        assert tcp.wait_until_delivered(client)
        assert not tcp.peer_has_read(client)
        assert conn.recv(5) == b"12345"
        assert tcp.wait_until_peer_read(client, 2.0)


def test_chat_ends_on_exit_from_either_side():
    with tcp.TcpChatServer(script=["hi there", "exit"]) as server:
        transcript = tcp.chat(server.address, ["hello", "and?", "unsent"])
    assert transcript == [("client", "hello"), ("server", "hi there"), ("client", "and?"), ("server", "closed the connection: recv() returned b''")]
    with tcp.TcpChatServer() as server:
        transcript = tcp.chat(server.address, ["你好", "exit", "unsent"])
        wait_for(lambda: server.events_of("close"), 2.0, "the chat server did not see the client close")
    assert transcript == [("client", "你好"), ("server", "got: 你好"), ("client", "exit: closes the connection")]
    assert [e[2] for e in server.events_of("recv")] == ["你好".encode()]  # "exit" never travels


def test_chat_connection_for_the_window():
    with tcp.TcpChatServer(script=["pong", "exit"]) as server:
        connection = tcp.TcpChatConnection(server.address)
        connection.send("ping")
        assert connection.receive(2.0) == ("pong", "server")
        connection.send("again")
        assert connection.receive(2.0)[0].startswith("closed the connection")
        with pytest.raises(OSError):
            connection.receive(0.1)
        connection.close()


def test_chat_window_starts_nothing_headless(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    before = threading.active_count()
    window = tcp.chat_window()
    assert window.headless and window.closed
    assert threading.active_count() == before


def test_accepted_connection_and_socket_table():
    with tcp.accepted_connection() as (listener, conn, client):
        table = tcp.socket_table(listener=listener, conn=conn, client=client).splitlines()
        assert tcp_state(listener) == "LISTEN" and tcp_state(conn) == "ESTABLISHED"
        assert "(no peer)" in table[0] and table[1].split()[2] == table[0].split()[2]
    assert listener.fileno() == conn.fileno() == client.fileno() == -1


def test_every_peer_is_registered_for_the_cli():
    peers = load_peers()
    for name, cls in [("tcp-echo", tcp.TcpEchoServer), ("tcp-sum", tcp.TcpSumServer), ("tcp-silent", tcp.SilentServer),
                      ("tcp-reply-close", tcp.ReplyThenCloseServer), ("tcp-chat", tcp.TcpChatServer)]:
        assert peers[name] is cls


# ----------------------------------------------------------------------------------------------
# Running a learner's server
# ----------------------------------------------------------------------------------------------
def test_race_tells_a_concurrent_server_from_an_iterative_one():
    with tcp.run_server(serve_echo_selectors) as server:
        assert tcp.race_slow_and_fast(server.address)["fast_done_before_slow"] is True
    with tcp.run_server(serve_echo_iterative) as server:
        result = tcp.race_slow_and_fast(server.address, timeout=0.3)
    assert result["fast_done_before_slow"] is False and result["slow_echo"] == result["slow_sent"]


def test_server_under_test_reports_a_server_that_does_not_stop():
    def ignores_stop(listener, stop):
        while True:
            conn, _ = listener.accept()
            conn.close()

    with pytest.raises(YourCodeError, match=r"did not return within 1.0 s after stop was set; give the listening socket and every connection a timeout"):
        with tcp.run_server(ignores_stop):
            pass


def test_server_under_test_reports_a_server_that_returns_early_or_raises():
    with pytest.raises(YourCodeError, match=r"returned while its clients were still connected"):
        tcp_checks.check_echo_stops_cleanly(lambda listener, stop: None)
    with pytest.raises(YourCodeError, match=r"raised ValueError: bad"):
        tcp_checks.check_echo_stops_cleanly(lambda listener, stop: (_ for _ in ()).throw(ValueError("bad")))


def test_server_under_test_reports_leftover_threads():
    def leaves_a_thread(listener, stop):
        threading.Thread(target=threading.Event().wait, args=(1.5,), name="forgotten").start()

    with pytest.raises(YourCodeError, match=r"thread\(s\) of your server were still running .* \(forgotten\)"):
        with tcp.run_server(leaves_a_thread) as server:
            server.stop_event.set()
            server.stop()


# ----------------------------------------------------------------------------------------------
# The checks: correct code passes with deterministic evidence, wrong code fails with a hint
# ----------------------------------------------------------------------------------------------
CORRECT = [
    (tcp_checks.check_fetch, fetch),
    (tcp_checks.check_fetch_empty_reply, fetch),
    (tcp_checks.check_fetch_hard, fetch),
    (tcp_checks.check_echo_slow_fast, serve_echo),
    (tcp_checks.check_echo_slow_fast, serve_echo_selectors),
    (tcp_checks.check_echo_stops_cleanly, serve_echo),
    (tcp_checks.check_echo_many_clients, serve_echo),
    (tcp_checks.check_echo_early_close, serve_echo),
    (tcp_checks.check_sum_answer, tcp.sum_answer),
    (tcp_checks.check_sum_server, serve_sum),
    (tcp_checks.check_sum_coalesced, serve_sum),
    (tcp_checks.check_sum_stream, serve_sum),
    (tcp_checks.check_sum_concurrent, serve_sum),
    (tcp_checks.check_sum_malformed_on_the_wire, serve_sum),
]


@pytest.mark.parametrize("check, implementation", CORRECT, ids=lambda x: getattr(x, "__name__", "?"))
def test_correct_code_passes_with_the_same_evidence_twice(check, implementation, monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")
    evidence = []
    for _ in range(2):
        start = len(checks.recorded)
        check(implementation)
        evidence.append(checks.recorded[start:])
    assert evidence[0] and evidence[0] == evidence[1]
    text = json.dumps(evidence[0])
    assert "127.0.0.1" not in text  # no addresses (ports) in evidence


def check_sum_answer_malformed(sum_answer_fn):
    tcp_checks.check_sum_answer(sum_answer_fn, tcp_checks.MALFORMED_REQUESTS)


WRONG = [
    (tcp_checks.check_fetch, fetch_one_recv, r"returned 'HTTP-ish reply, part one; ' \(26 characters\) but the server sent .* in 3 writes before closing; keep calling recv\(\) until it returns b''"),
    (tcp_checks.check_fetch_hard, fetch_one_recv, r"raised UnicodeDecodeError"),
    (tcp_checks.check_fetch_hard, fetch_decoding_each_chunk, r"raised UnicodeDecodeError: .*decode everything at once"),
    (tcp_checks.check_fetch, fetch_forgetting_to_decode, r"it should return a str"),
    (tcp_checks.check_echo_slow_fast, serve_echo_iterative, r"the fast client got b'' back .* while the slow client was still connected to 127.0.0.1:\d+; serve each accepted connection in its own thread"),
    (tcp_checks.check_echo_many_clients, serve_echo_iterative, r"client 2 of 5 got 0 of the 20000 bytes"),
    (tcp_checks.check_echo_early_close, threaded(echo_one_careless), r"died of ConnectionResetError: .*catch what one client can cause \(OSError such as ConnectionResetError"),
    (tcp_checks.check_sum_server, serve_sum_closing_after_one_request, r"then the server closed the connection; .*keep the connection open"),
    (tcp_checks.check_sum_coalesced, serve_sum_one_recv_is_one_message, r"your server answered b'\{\"A\":7,\"B\":4\}' with b'\{\"Error\""),
    (tcp_checks.check_sum_stream, serve_sum_one_recv_is_one_message, r"your server answered"),
    (tcp_checks.check_sum_concurrent, serve_sum_closing_after_one_request, r"closed the connection"),
    (tcp_checks.check_sum_answer, lambda line: {"Sum": 0}, r"expected \{\"Sum\":11\}"),
    # stop while a client is still connected and silent: threads without timeouts never end
    (tcp_checks.check_echo_stops_cleanly, serve_echo_threads_ignoring_stop,
     r"1 thread\(s\) of your server were still running 1.0 s after serve_echo_threads_ignoring_stop\(listener, stop\) returned "
     r"\(while a client was still connected and had sent nothing since its last answer\)"),
    (tcp_checks.check_sum_server, serve_sum_threads_ignoring_stop, r"thread\(s\) of your server were still running .*\(while a client was still connected"),
    (tcp_checks.check_echo_early_close, serve_echo_spinning_after_close, r"closed its side \(your recv\(\) returned b''\), but your server kept the connection open"),
    (tcp_checks.check_sum_malformed_on_the_wire, serve_sum_thread_dying_on_reset, r"died of ConnectionResetError"),
    (check_sum_answer_malformed, sum_answer_accepting_booleans, r"sum_answer\(b'\{\"A\": true, \"B\": 1\}'\) returned \{'Sum': 2\}; expected \{\"Error\""),
]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@pytest.mark.parametrize("check, implementation, message", WRONG, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(WRONG)])
def test_wrong_code_fails_with_a_hint(check, implementation, message, monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")
    with pytest.raises(YourCodeError, match=message):
        check(implementation)


def test_fetch_that_leaks_its_socket_on_timeout_is_caught(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")
    try:
        with pytest.raises(YourCodeError, match=r"fetch, when the server never answers left 1 socket\(s\) open"):
            tcp_checks.check_fetch_hard(fetch_keeping_its_socket)
    finally:
        for sock in KEPT:
            sock.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_check_malformed_catches_a_server_thread_that_dies(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")

    def sum_crashing(conn, stop):
        with conn:
            conn.settimeout(1.0)
            for line in conn.makefile("rb"):
                answer = json.loads(line)  # no error handling: the thread dies on "hello"
                conn.sendall(json.dumps({"Sum": answer["A"] + answer["B"]}).encode() + b"\n")

    with pytest.raises(YourCodeError, match=r"died of JSONDecodeError: .*ValueError from a bad request"):
        tcp_checks.check_sum_malformed_on_the_wire(threaded(sum_crashing))


CHECKS = sorted({c for c, _ in CORRECT}, key=lambda c: c.__name__)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_blank_exercise_fails_fast_with_not_implemented(check, monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")
    start = time.monotonic()
    with pytest.raises(NotImplementedError):
        check(blank)
    assert time.monotonic() - start < checks.DEFAULT_TIMEOUT  # never waits out a deadline
    assert not [t for t in threading.enumerate() if t.name.startswith("learner-") and t.is_alive() and not t.daemon]


def test_unacked_and_unread_without_netlink_read_proc(monkeypatch):
    """Where sock_diag is refused (a sandbox), the answer comes from course.kernel's /proc reader."""
    def no_netlink(*args):
        raise PermissionError(1, "no netlink in this sandbox")

    monkeypatch.setattr(tcp, "_diag_lookup", no_netlink)
    with tcp.accepted_connection() as (listener, conn, client):
        client.sendall(b"abc")
        assert tcp.wait_until_delivered(client)
        assert tcp.unacked_and_unread(client) == (0, 3)
        assert tcp.unacked_and_unread(conn) == (0, 0)
        conn.recv(3)
        assert tcp.wait_until_peer_read(client, 2.0)


def test_unacked_and_unread_ask_the_kernel_about_one_connection():
    with tcp.accepted_connection() as (listener, conn, client):
        client.sendall(b"abcd")
        assert tcp.wait_until_delivered(client)
        assert tcp.unacked_and_unread(client) == (0, 4) and tcp.unacked_and_unread(conn) == (0, 0)
        assert tcp._diag_lookup(client.getsockname(), client.getpeername()) == (0, 0)
        assert tcp._diag_lookup(conn.getsockname(), conn.getpeername()) == (4, 0)
    assert tcp._diag_lookup(("127.0.0.1", 1), ("127.0.0.1", 2)) is None


def test_the_old_name_queues_still_works_but_warns_and_is_not_exported():
    """course.tcp.queues of earlier releases; course.buffers.queues (one socket's own queues) keeps its name."""
    with pytest.warns(DeprecationWarning, match="course.tcp.queues is now course.tcp.unacked_and_unread"):
        old = tcp.queues
    assert old is tcp.unacked_and_unread and "queues" not in tcp.__all__
    with tcp.accepted_connection() as (listener, conn, client):
        client.sendall(b"ab")
        assert tcp.wait_until_delivered(client)
        assert old(client) == (0, 2)


def test_state_of_agrees_with_the_proc_table():
    with tcp.accepted_connection() as (listener, conn, client):
        for sock in (listener, conn, client):
            assert tcp.state_of(sock) == tcp_state(sock)
        client.close()
        wait_for(lambda: tcp.state_of(conn) == "CLOSE_WAIT", 2.0, "the server side never saw the FIN")
        assert tcp_state(conn) == "CLOSE_WAIT"
    with socket.socket() as fresh:
        assert tcp.state_of(fresh) == "CLOSE"


def test_port_where_nothing_listens_refuses_and_cannot_be_taken_meanwhile():
    with tcp_checks._port_where_nothing_listens() as address:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2.0).close()
        with socket.socket() as other:  # another test's listener cannot take the port while it is held
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError):
                other.bind(address)


def test_names_of_earlier_releases_reach_the_moved_checks():
    """Notebooks of earlier releases call tcp.check_* (and read its tables): they reach course.checks.tcp."""
    assert tcp.check_fetch is tcp_checks.check_fetch and tcp.check_sum_malformed_on_the_wire is tcp_checks.check_sum_malformed_on_the_wire
    assert tcp.VALID_REQUESTS is tcp_checks.VALID_REQUESTS and tcp.MALFORMED_REQUESTS is tcp_checks.MALFORMED_REQUESTS
    assert tcp.ServerUnderTest is tcp_checks.ServerUnderTest
    assert not [n for n in tcp.__all__ if n.startswith("check_") or n in tcp_checks.__all__]
    with pytest.raises(AttributeError):
        tcp.check_nothing_of_that_name
    with pytest.raises(AttributeError):
        tcp.NOT_A_NAME


@pytest.mark.parametrize("line", tcp_checks.VALID_REQUESTS)
def test_every_valid_request_is_summed(line):
    request = json.loads(line)
    assert tcp.sum_answer(line) == {"Sum": request["A"] + request["B"]}


def test_every_malformed_kind_is_an_error_and_booleans_are_covered():
    assert {b'{"A": true, "B": 1}', b'{"A": 7, "B": false}'} <= set(tcp_checks.MALFORMED_REQUESTS)
    for kind, lines in tcp_checks.MALFORMED_BY_KIND.items():
        for line in lines:
            assert list(tcp.sum_answer(line)) == ["Error"], (kind, line)
