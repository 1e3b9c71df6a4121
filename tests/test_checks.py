"""The learner-facing checks: each message is pinned, each failure comes in seconds."""
import socket
import threading
import time

import pytest

from course import YourCodeError
from course import checks
from course.checks import call_with_deadline, check_calls, expect_type, no_leaked_sockets, plain, record_evidence
from course.tcp import TcpEchoServer


def test_call_with_deadline_returns_and_reraises():
    assert call_with_deadline(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(NotImplementedError):
        call_with_deadline(lambda: (_ for _ in ()).throw(NotImplementedError()))


def test_a_hanging_function_fails_in_time_with_a_pinned_message():
    release = threading.Event()

    def serve_forever(port):
        release.wait(10)

    start = time.monotonic()
    with pytest.raises(YourCodeError) as info:
        call_with_deadline(serve_forever, 5000, timeout=0.2)
    release.set()
    assert time.monotonic() - start < 5  # ended by the deadline, not by the function
    assert str(info.value) == (
        "serve_forever(5000) did not return within 0.2 s; does every recv/accept/recvfrom in it "
        "have a timeout, and does its loop end?"
    )


def test_expect_type_message():
    with pytest.raises(YourCodeError) as info:
        expect_type(3.0, int, "ip_to_int('0.0.0.3')")
    assert str(info.value) == "ip_to_int('0.0.0.3') returned 3.0 (a float); it should return a int"
    with pytest.raises(YourCodeError):
        expect_type(True, int, "f()")  # a bool is not an acceptable int answer
    expect_type(3, (int, float), "f()")


def reference_double(x):
    if x < 0:
        raise ValueError("negative")
    return 2 * x


def test_check_calls_accepts_a_correct_function_and_records_evidence():
    checks.recorded.clear()
    check_calls(lambda x: reference_double(x), reference_double, [(1,), (2,), (-1,)], name="double")
    assert checks.recorded[-1] == {
        "check": "double",
        "calls": [{"args": [1], "returned": 2}, {"args": [2], "returned": 4}, {"args": [-1], "raised": "ValueError"}],
    }


def test_check_calls_messages_are_pinned():
    with pytest.raises(YourCodeError) as info:
        check_calls(lambda x: x * 3, reference_double, [(1,), (2,)], name="double")
    assert str(info.value) == "double(1) returned 3; expected 2."

    with pytest.raises(YourCodeError) as info:
        check_calls(lambda x: 2 * x, reference_double, [(-1,)], name="double", hint="Check the sign first.")
    assert str(info.value) == "double(-1) returned -2; it should raise ValueError (the reference says: negative). Check the sign first."

    with pytest.raises(YourCodeError) as info:
        check_calls(lambda x: {}[x], reference_double, [(1,)], name="double")
    assert str(info.value) == "double(1) raised KeyError: 1; it should return 2."

    # Raising the same type of error as the reference is what the specification asks.
    check_calls(lambda x: int("x"), reference_double, [(-1,)], name="double")


def test_check_calls_lets_not_implemented_through():
    def blank(x):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check_calls(blank, reference_double, [(1,)])


def test_evidence_is_plain_data():
    assert plain((b"\x00\xff", [1, 2.5, None], {"a": ValueError("x")})) == [
        {"bytes": "AP8="},
        [1, 2.5, None],
        {"a": {"raised": "ValueError"}},
    ]
    assert plain(object())["repr"].startswith("<object object")
    item = record_evidence("demo", data=b"hi", n=3)
    assert item == {"check": "demo", "data": {"bytes": "aGk="}, "n": 3}


def test_a_leaked_socket_is_named():
    kept = []
    with TcpEchoServer() as server:
        with pytest.raises(YourCodeError) as info:
            with no_leaked_sockets("fetch()", ignore_ports=[server.port], grace=0.1):
                s = socket.create_connection(server.address, timeout=2)
                kept.append(s)
        kept[0].close()
    message = str(info.value)
    assert message.startswith("fetch() left 1 socket(s) open (tcp 127.0.0.1:")
    assert f"-> 127.0.0.1:{server.port} ESTABLISHED)" in message
    assert message.endswith("close every socket it creates, for example with `with socket.socket(...) as s:`")


def test_closed_sockets_and_the_servers_own_sockets_are_not_leaks():
    with TcpEchoServer() as server:
        with no_leaked_sockets("fetch()", ignore_ports=[server.port]):
            with socket.create_connection(server.address, timeout=2) as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x"


def test_a_socket_that_never_connected_is_a_leak_too():
    kept = []
    with pytest.raises(YourCodeError) as info:
        with no_leaked_sockets("probe()", grace=0.1):
            kept.append(socket.socket())
    kept[0].close()
    assert str(info.value).startswith("probe() left 1 socket(s) open (a socket that is neither bound nor connected)")
