"""course.udp: the reference peers on real loopback sockets, speaking course.sumproto; course.checks.udp:
the checks of notebook 03 (a correct learner solution passes with deterministic evidence; classic bugs fail
with the message that names them)."""
import json
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from course import checks, sumproto
from course import udp as udp_module
from course.checks import udp as udp_checks
from course.checks.runner import LearnerCall
from course.checks.udp import (
    HIDDEN_CHAT_CASES,
    HIDDEN_REQUEST_CASES,
    HIDDEN_SERVER_CASES,
    MALFORMED_SERVER_CASES,
    check_chat_peer,
    check_request_sum,
    check_sum_server,
)
from course.deadline import wait_for
from course.errors import YourCodeError
from course.cli import peer_class
from course.serving import format_address
from course.udp import (
    LossyUdpServer,
    UdpChatPeer,
    UdpEchoServer,
    UdpSumServer,
    drops,
    nobody_listening,
    recv_truncated,
)
from course.sumproto import answer as sum_reply
from course.sumproto import request as sum_request
from autograder.samples.cases import load_cases, strip_solution_markers
from registry_cases import case_replace, solution_cell_source

CASES = {c.name: c for c in load_cases(assignment="03-udp")}


def stray_learner_threads(before):
    """Learner threads this test started and left running (other tests' threads do not count)."""
    return [t for t in set(threading.enumerate()) - before if t.name.startswith("learner-") and t.is_alive()]


@pytest.fixture(autouse=True)
def quiet_evidence(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")


def udp_socket(host="127.0.0.1", timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((host, 0))
    s.settimeout(timeout)
    return s


# ----------------------------------------------------------------------------------------------
# A correct learner solution (the notebook's own), and the classic wrong ones: the registry's cases
# (autograder/samples/03-udp/), run here as the notebook would run them.
# ----------------------------------------------------------------------------------------------
def learned(source: str, name: str, called: str):
    """What a solution cell's `source` defines as `name`, run in a namespace like the notebook's,
    renamed `called` so that test ids tell the variants apart."""
    namespace = {"json": json, "socket": socket}
    exec(source, namespace)
    namespace[name].__name__ = namespace[name].__qualname__ = called
    return namespace[name]


def solution(cell: str, name: str):
    """`name` as the instructor notebook's solution cell `cell` defines it."""
    return learned(strip_solution_markers(solution_cell_source("03-udp", cell)), name, name)


def registry(case: str, name: str, called: str):
    """`name` as the registry case `case` (a wrong implementation of one cell) defines it."""
    c = CASES[case]
    return learned(case_replace(c)[c.cell], name, called)


request_sum = solution("request_sum", "request_sum")
request_once = registry("one-recvfrom-without-retry", "request_sum", "request_once")
request_without_timeout = registry("no-timeout", "request_sum", "request_without_timeout")
request_forever = registry("retry-loop-never-gives-up", "request_sum", "request_forever")
request_first_reply = registry("takes-any-reply", "request_sum", "request_first_reply")
request_restarting_wait = registry("restarts-timeout-on-stray", "request_sum", "request_restarting_wait")
request_from_new_sockets = registry("new-socket-per-attempt", "request_sum", "request_from_new_sockets")


KEPT = []  # a learner "caching" sockets: never closed, still referenced, so never collected


def request_leaking(server, a, b, *, timeout=0.3, attempts=3):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    KEPT.append(sock)
    sock.settimeout(timeout)
    for _ in range(attempts):
        sock.sendto(sum_request(a, b, 1), server)
        try:
            return json.loads(sock.recvfrom(1024)[0])["Sum"]
        except TimeoutError:
            pass
    raise TimeoutError("no reply")


serve_sums = solution("serve_sums", "serve_sums")
serve_first_client = registry("replies-to-the-first-client", "serve_sums", "serve_first_client")
serve_without_encode = registry("forgets-to-encode", "serve_sums", "serve_without_encode")
serve_forever = registry("serves-forever-never-closes", "serve_sums", "serve_forever")
serve_dying_on_arrays = registry("dies-on-a-json-array", "serve_sums", "serve_dying_on_arrays")
serve_accepting_floats = registry("accepts-floats", "serve_sums", "serve_accepting_floats")


def serve_without_close(sock, n, timeout=2.0):
    sock.settimeout(timeout)
    for _ in range(n):
        data, client = sock.recvfrom(65535)
        sock.sendto(sum_reply(data), client)


def serve_from_new_socket(sock, n, timeout=2.0):
    with sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
        sock.settimeout(timeout)
        for _ in range(n):
            data, client = sock.recvfrom(65535)
            out.sendto(sum_reply(data), client)


ChatPeer = solution("ChatPeer", "ChatPeer")
ChatPeerWithoutDecode = registry("forgets-to-decode", "ChatPeer", "ChatPeerWithoutDecode")


class ChatPeerWithoutTimeout(ChatPeer):
    def receive(self, timeout):
        data, sender = self.sock.recvfrom(65535)
        return data.decode("utf-8"), sender


class ChatPeerSendingFromNewSocket(ChatPeer):
    def send(self, text, to):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(text.encode("utf-8"), to)


class ChatPeerWithoutClose(ChatPeer):
    def close(self):
        pass


# ----------------------------------------------------------------------------------------------
# The sum protocol without sockets (course.sumproto, tested in test_sumproto.py), as 03 uses it
# ----------------------------------------------------------------------------------------------
def test_the_udp_protocol_is_sumproto_in_compact_json():
    assert sum_reply(b'{"A":7,"B":4}') == b'{"Sum":11}'
    assert sum_reply(sum_request(7, 4, id=9)) == b'{"Sum":11,"id":9}'
    assert sum_request(7, 4, 9) == b'{"id":9,"A":7,"B":4}'
    assert json.loads(sum_reply(b'{"id": "q1", "A": 1}')) == {"Error": 'the request has no "B"; a request is {"A":7,"B":4}', "id": "q1"}


@pytest.mark.parametrize(
    "data, says",
    [
        (b"seven plus four", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[7, 4]", "not a JSON object"),
        (b'{"A": 7}', "missing B"),
        (b'{"id": 3}', "missing A and B"),
        (b'{"A": "7", "B": 4}', "A must be integers"),
        (b'{"A": true, "B": 4}', "A must be integers"),
        (b'{"A": 1.5, "B": 2.5}', "A and B must be integers"),
    ],
)
def test_the_check_names_what_is_wrong_with_a_malformed_request_as_before(data, says):
    assert udp_checks._what_is_wrong(data) == says
    reply = json.loads(sum_reply(data))
    assert set(reply) <= {"Error", "id"} and isinstance(reply["Error"], str)


@given(st.integers(), st.integers(), st.one_of(st.none(), st.integers(), st.text(max_size=8)))
def test_sum_reply_adds_and_copies_the_id(a, b, rid):
    reply = json.loads(sum_reply(sum_request(a, b, rid)))
    assert reply == {"Sum": a + b, "id": rid}  # null is an id too
    assert json.loads(sum_reply(sum_request(a, b))) == {"Sum": a + b}


def test_drops_by_index_every_nth_and_seeded_fraction():
    assert [i for i in range(6) if drops(i, drop=[0, 2])] == [0, 2]
    assert [i for i in range(9) if drops(i, every=3)] == [2, 5, 8]
    assert all(drops(i, drop="all") for i in range(5))
    pattern = [drops(i, fraction=0.3, seed=1) for i in range(1000)]
    assert pattern == [drops(i, fraction=0.3, seed=1) for i in range(1000)]  # deterministic
    assert pattern != [drops(i, fraction=0.3, seed=2) for i in range(1000)]
    assert 200 < sum(pattern) < 400
    assert not any(drops(i) for i in range(50))


def test_the_seeded_case_of_the_check_drops_what_its_comment_says():
    assert [drops(i, fraction=0.5, seed=35) for i in range(3)] == [True, True, False]


# ----------------------------------------------------------------------------------------------
# Reference peers on real sockets
# ----------------------------------------------------------------------------------------------
def test_every_udp_peer_is_in_the_cli_table():
    for name, cls in {"udp-echo": UdpEchoServer, "udp-sum": UdpSumServer, "udp-lossy": LossyUdpServer, "udp-chat": UdpChatPeer}.items():
        assert peer_class(name) is cls


def test_sum_server_answers_each_client_at_its_address():
    with UdpSumServer() as server, udp_socket("127.0.0.2") as one, udp_socket("127.0.0.3") as two:
        one.sendto(b'{"A":7,"B":4}', server.address)
        two.sendto(b"nonsense", server.address)
        assert one.recvfrom(1024) == (b'{"Sum":11}', server.address)
        data, sender = two.recvfrom(1024)
        assert sender == server.address and "Error" in json.loads(data)
        assert [e[1] for e in server.events_of("recv")] == [format_address(one.getsockname()), format_address(two.getsockname())]


def send_and_wait(server, client, data, count):
    client.sendto(data, server.address)
    wait_for(lambda: len(server.received) >= count, 2.0, "the lossy server did not receive the datagram")


def test_lossy_server_drops_the_chosen_indices_and_answers_the_rest():
    with LossyUdpServer(drop=[0, 2]) as server, udp_socket() as client:
        for i in range(4):
            send_and_wait(server, client, sum_request(i, 10, id=i), i + 1)
        replies = [json.loads(client.recvfrom(1024)[0]) for _ in range(2)]
        client.settimeout(0.1)
        with pytest.raises(TimeoutError):
            client.recvfrom(1024)
    assert replies == [{"Sum": 11, "id": 1}, {"Sum": 13, "id": 3}]
    assert server.dropped == [0, 2] and len(server.received) == 4
    assert [e[2] for e in server.events_of("drop")] == [sum_request(0, 10, id=0), sum_request(2, 10, id=2)]


def test_lossy_server_without_settings_drops_every_third_and_can_echo():
    with LossyUdpServer(answer="echo") as server, udp_socket() as client:
        for i in range(6):
            send_and_wait(server, client, b"x%d" % i, i + 1)
        assert server.dropped == [2, 5]
        assert [client.recvfrom(64)[0] for _ in range(4)] == [b"x0", b"x1", b"x3", b"x4"]


def test_lossy_server_sends_a_stale_and_a_forged_reply_before_the_real_one():
    with LossyUdpServer(stray=True, drop=[]) as server, udp_socket() as client:
        client.sendto(sum_request(40, 2, id=5), server.address)
        got = [client.recvfrom(1024) for _ in range(3)]
    (stale, s1), (forged, s2), (real, s3) = got
    assert s1 == server.address and json.loads(stale) == {"Sum": 1042, "id": 6}
    assert s2[0] == "127.0.0.3" and s2 != server.address and json.loads(forged) == {"Sum": 43, "id": 5}
    assert s3 == server.address and json.loads(real) == {"Sum": 42, "id": 5}


def test_chat_peer_hears_answers_says_and_hands_lines_to_receive():
    with UdpChatPeer("127.0.0.2", reply=str.upper) as bot, udp_socket("127.0.0.3") as me:
        me.sendto("你好 udp".encode(), bot.address)
        assert me.recvfrom(1024) == ("你好 UDP".encode(), bot.address)
        assert bot.heard == [("你好 udp", format_address(me.getsockname()))]
        assert bot.receive(1.0) == ("你好 udp", me.getsockname())
        bot.say("one", me.getsockname())
        assert me.recvfrom(1024) == (b"one", bot.address)
        started = time.monotonic()
        assert bot.receive(0.1) is None
        assert time.monotonic() - started < 5.0  # returned after its own timeout, not hung


def test_chat_peer_refuses_to_say_anything_outside_loopback():
    with UdpChatPeer() as bot:
        with pytest.raises(Exception, match="not a loopback address"):
            bot.say("hi", ("192.0.2.1", 9))
        assert not bot.events_of("send")


def test_nobody_listening_gets_no_answer_and_a_connected_socket_is_refused():
    with nobody_listening() as nobody:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            assert s.sendto(b"?", nobody) == 1
            s.settimeout(0.1)
            with pytest.raises(TimeoutError):
                s.recvfrom(10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(nobody)
            s.send(b"?")
            s.settimeout(1.0)
            with pytest.raises(ConnectionRefusedError):
                s.recv(10)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
            with pytest.raises(OSError):  # the port is held: nobody else can take it meanwhile
                other.bind(nobody)


def test_an_unconnected_socket_hears_the_refusal_only_with_ip_recverr():
    with nobody_listening() as nobody, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVERR", 11), 1)
        s.sendto(b"?", nobody)
        s.settimeout(2.0)
        with pytest.raises(ConnectionRefusedError):
            s.recvfrom(10)


def test_chattering_server_sends_strays_from_the_decoy_until_it_stops():
    with LossyUdpServer(drop="all", chatter=0.01) as server, udp_socket() as client:
        client.sendto(sum_request(1, 2, id=7), server.address)
        got = [client.recvfrom(1024) for _ in range(3)]
        wait_for(lambda: server.chattered >= 3, 2.0, "the server chattered less than it said")
    assert {(data, sender[0]) for data, sender in got} == {(b'{"Sum":0,"id":"stray"}', "127.0.0.3")}
    assert server.dropped == [0]


def test_recv_truncated_reports_the_cut_and_the_rest_is_lost():
    with udp_socket() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"0123456789", rx.getsockname())
        tx.sendto(b"short", rx.getsockname())
        assert recv_truncated(rx, 4)[:2] == (b"0123", True)
        assert recv_truncated(rx, 100)[:2] == (b"short", False)


def test_learner_call_stuck_in_recvfrom_is_stopped():
    with udp_socket() as rx:
        rx.settimeout(None)
        run = LearnerCall(rx.recvfrom, 100, name="stuck")
        try:
            with pytest.raises(YourCodeError, match="still running"):
                run.result(0.1, "still running")

            def poke():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.sendto(b"wake", rx.getsockname())

            run.stop(poke)
            assert run.done
        finally:
            run.restore_hook()


def test_learner_call_spinning_forever_is_stopped():
    spin = threading.Event()

    def forever():
        while True:
            spin.set()
            time.sleep(0.01)

    run = LearnerCall(forever)
    try:
        spin.wait(2.0)
        run.stop()
        assert run.done
    finally:
        run.restore_hook()


def test_checks_moved_to_course_checks_udp_and_old_names_still_reach_them():
    import subprocess
    import sys

    assert udp_module.check_request_sum is check_request_sum
    assert udp_module.check_sum_server is check_sum_server and udp_module.check_chat_peer is check_chat_peer
    assert not hasattr(udp_module, "HIDDEN_REQUEST_CASES") and not hasattr(udp_module, "LearnerThread")
    assert not [n for n in udp_module.__all__ if n.startswith("check_") or n.endswith("_CASES")]
    # the checks import the lesson, never the reverse
    code = "import sys, course.udp; print('course.checks.udp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------------------------
# Check 1: request_sum
# ----------------------------------------------------------------------------------------------
def evidence_of(check, *args):
    before = len(checks.recorded)
    check(*args)
    return checks.recorded[before:]


def same_evidence_twice(check, implementation, cases):
    """Run `check` on a correct `implementation` twice; assert that it recorded the same evidence
    both times; return that evidence and its cases by name."""
    first = evidence_of(check, implementation, cases)
    second = evidence_of(check, implementation, cases)
    assert first and first == second
    return first, {c["case"]: c for c in first[0]["cases"]}


def assert_caught(check, buggy, *args, says):
    """`check(buggy, *args)` fails with a YourCodeError that says `says`, and leaves none of the
    learner threads it started running."""
    before = set(threading.enumerate())
    with pytest.raises(YourCodeError) as info:
        check(buggy, *args)
    assert says in str(info.value)
    assert not stray_learner_threads(before)


def test_correct_request_sum_passes_every_case_with_the_same_evidence_twice():
    first, cases = same_evidence_twice(check_request_sum, request_sum, ["drop first", "seeded random drops", *HIDDEN_REQUEST_CASES])
    assert cases["drop first 2 of 3"] == {"case": "drop first 2 of 3", "a": 123456789, "b": 987654321, "answered_request": 3, "result": 1111111110}
    assert cases["seeded random drops"]["answered_request"] == 3 and cases["stray replies"]["answered_request"] == 1
    assert cases["drop all"]["raised"] == "TimeoutError" and cases["drop all"]["requests_seen"] == 3
    assert cases["stray datagrams, none answered"] == {"case": "stray datagrams, none answered", "a": 3, "b": 4, "requests_seen": 3, "raised": "TimeoutError"}
    assert "port" not in json.dumps(first)


@pytest.mark.parametrize(
    "wrong, cases, message",
    [
        (request_once, ["drop first"], "raised TimeoutError after sending 1 request(s), but the server only dropped the 1st on purpose"),
        (request_without_timeout, ["drop first"], "did not return within 2.90 s; it must give up with TimeoutError after 3 attempts"),
        (request_forever, ["drop all"], "did not return within 2.45 s"),
        (request_first_reply, ["stray replies"], "returned 1042; expected 42"),
        (request_leaking, ["drop first"], "left 1 socket(s) open"),
        (request_restarting_wait, ["stray datagrams, none answered"], "give each attempt one deadline (0.3 s in all"),
        (request_from_new_sockets, ["drop first"], "sent its 2 requests from 2 different addresses"),
    ],
)
def test_classic_request_bugs_fail_with_their_message(wrong, cases, message):
    started = time.monotonic()
    try:
        assert_caught(check_request_sum, wrong, cases, says=message)
    finally:
        for kept in KEPT:
            kept.close()
    assert time.monotonic() - started < 15.0  # the check's deadline ended it; no hang


def test_request_forever_passes_the_visible_check_but_not_the_hidden_ones():
    check_request_sum(request_forever)  # drop first: it gets the second reply
    with pytest.raises(YourCodeError):
        check_request_sum(request_forever, HIDDEN_REQUEST_CASES)


def test_a_request_that_computes_the_sum_itself_is_caught():
    def local(server, a, b, *, timeout=0.3, attempts=3):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(sum_request(a, b, 1), server)
        return a + b

    with pytest.raises(YourCodeError, match="although the server answered none of its 1 request"):
        check_request_sum(local)


def test_a_request_that_gives_up_too_early_is_told_to_wait():
    def impatient(server, a, b, *, timeout=0.3, attempts=3):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.01)
            for _ in range(attempts):
                sock.sendto(sum_request(a, b, 1), server)
                try:
                    return json.loads(sock.recvfrom(1024)[0])["Sum"]
                except TimeoutError:
                    pass
            raise TimeoutError

    with pytest.raises(YourCodeError, match="gave up after"):
        check_request_sum(impatient, ["drop all"])


# ----------------------------------------------------------------------------------------------
# Check 2: serve_sums
# ----------------------------------------------------------------------------------------------
def test_correct_server_passes_every_case_with_the_same_evidence_twice():
    _, cases = same_evidence_twice(check_sum_server, serve_sums, ["two clients", *HIDDEN_SERVER_CASES])
    assert ["127.0.0.3", '{"A": 7, "B": 4}', {"Sum": 11}] in cases["three clients"]["served"]
    assert cases["fewer datagrams than n"]["raised_timeout"] is True
    assert ["127.0.0.2", "[1, 2]", "Error"] in cases["not an object"]["served"]
    assert ["127.0.0.3", "\\xff\\xfe{}", "Error"] in cases["not UTF-8"]["served"]


def test_every_malformed_kind_the_exercise_lists_has_a_case_followed_by_valid_requests():
    for case in MALFORMED_SERVER_CASES:
        _, plan, n, _ = udp_checks.SERVER_CASES[case]
        kinds = [sumproto.decode_object(sum_reply(p)) for _, p in plan]
        assert n == len(plan) and "Error" in kinds[0] and "Sum" in kinds[-1] and "Sum" in kinds[-2], case
    texts = [p for c in MALFORMED_SERVER_CASES for _, p in udp_checks.SERVER_CASES[c][1]]
    for kind in (b"[1, 2]", b"1.5", b'"7"', b"true", b"\xff", b"hello"):
        assert any(kind in t for t in texts), kind


def editing_error_replies(edit):
    """serve_sums that answers correctly, except that `edit(reply)` changes each error reply."""
    def serve(sock, n, timeout=2.0):
        with sock:
            sock.settimeout(timeout)
            for _ in range(n):
                data, client = sock.recvfrom(65535)
                reply = json.loads(sum_reply(data))
                if "Error" in reply:
                    edit(reply)
                sock.sendto(json.dumps(reply).encode(), client)

    return serve


def test_error_replies_with_or_without_the_id_are_both_accepted():
    check_sum_server(editing_error_replies(lambda reply: reply.pop("id", None)), MALFORMED_SERVER_CASES)
    check_sum_server(serve_sums, MALFORMED_SERVER_CASES)  # which keeps the id when it can


def test_an_error_reply_with_another_id_is_refused():
    with pytest.raises(YourCodeError, match="an error reply may also leave it out"):
        check_sum_server(editing_error_replies(lambda reply: reply.update(id="nonsense")), ["A or B missing"])


@pytest.mark.parametrize(
    "wrong, message",
    [
        (serve_first_client, "replies, but none to the client at 127.0.0.3:"),
        (serve_without_encode, "raised TypeError"),
        (serve_forever, "it answered all 4 datagrams, so its loop should end there"),
        (serve_without_close, "returned but left its socket open"),
        (serve_from_new_socket, "not from your server's address"),
    ],
)
def test_classic_server_bugs_fail_with_their_message(wrong, message):
    assert_caught(check_sum_server, wrong, says=message)


@pytest.mark.parametrize(
    "wrong, case, message",
    [
        (serve_dying_on_arrays, "not an object", "raised AttributeError"),
        (serve_accepting_floats, "not integers", "to the malformed request b'{\"id\":71,\"A\":1.5,\"B\":2}' (A must be integers)"),
    ],
)
def test_malformed_request_bugs_fail_with_their_message(wrong, case, message):
    assert_caught(check_sum_server, wrong, [case], says=message)


def test_wrong_address_message_names_the_client_that_got_too_much():
    with pytest.raises(YourCodeError) as info:
        check_sum_server(serve_first_client)
    text = str(info.value)
    assert text.startswith("your server at 127.0.0.1:") and "sent all its 4 replies, but none to the client at 127.0.0.3:" in text
    assert "did serve_sums call sendto with the address recvfrom returned" in text and "127.0.0.2 got 4 for its 2" in text


def test_a_server_that_answers_nobody_is_reported_after_the_deadline():
    def answers_nobody(sock, n, timeout=2.0):
        with sock:
            sock.settimeout(timeout)
            for _ in range(n):
                sock.recvfrom(65535)

    with pytest.raises(YourCodeError, match=r"^no reply from your server at 127\.0\.0\.1:\d+ within 0\.5 s to the client at 127\.0\.0\.2:"):
        check_sum_server(answers_nobody, reply_within=0.5)


def test_server_without_timeout_is_caught_when_fewer_datagrams_come():
    def no_timeout(sock, n, timeout=2.0):
        with sock:
            for _ in range(n):
                data, client = sock.recvfrom(65535)
                sock.sendto(sum_reply(data), client)

    with pytest.raises(YourCodeError, match="it got only 1 of 3 datagrams, so it should raise TimeoutError"):
        check_sum_server(no_timeout, ["fewer datagrams than n"])


def test_server_that_ignores_malformed_requests_is_caught():
    def crashes_on_bad_json(sock, n, timeout=2.0):
        with sock:
            sock.settimeout(timeout)
            for _ in range(n):
                data, client = sock.recvfrom(65535)
                request = json.loads(data)
                sock.sendto(json.dumps({"Sum": request["A"] + request["B"], "id": request.get("id")}).encode(), client)

    with pytest.raises(YourCodeError, match="raised JSONDecodeError"):
        check_sum_server(crashes_on_bad_json, ["not JSON"])


# ----------------------------------------------------------------------------------------------
# Check 3: ChatPeer
# ----------------------------------------------------------------------------------------------
def test_correct_chat_peer_passes_every_case_with_the_same_evidence_twice():
    _, cases = same_evidence_twice(check_chat_peer, ChatPeer, ["hello", *HIDDEN_CHAT_CASES])
    assert cases["unicode"]["received"] == [["收到：你好，UDP！", "reference peer"]]
    assert cases["three lines"]["received"] == [["one", "reference peer"], ["two", "reference peer"], ["three", "reference peer"]]


@pytest.mark.parametrize(
    "wrong, cases, message",
    [
        (ChatPeerWithoutDecode, ["hello"], "(bytes); decode the datagram"),
        (ChatPeerWithoutTimeout, ["nothing waiting"], "receive(0.2) did not return within 2.2 s"),
        (ChatPeerSendingFromNewSocket, ["hello"], "not from the peer's own address"),
        (ChatPeerWithoutClose, ["hello"], "after close() left 1 socket(s) open"),
    ],
)
def test_classic_chat_bugs_fail_with_their_message(wrong, cases, message):
    assert_caught(check_chat_peer, wrong, cases, says=message)


def test_blank_exercises_fail_fast_with_not_implemented():
    def blank(*args, **kwargs):
        raise NotImplementedError()

    started = time.monotonic()
    for check, cases in [(check_request_sum, HIDDEN_REQUEST_CASES), (check_sum_server, HIDDEN_SERVER_CASES), (check_chat_peer, HIDDEN_CHAT_CASES)]:
        with pytest.raises(NotImplementedError):
            check(blank, cases)
    assert time.monotonic() - started < 10.0  # no check waited out a deadline on a blank stub


def test_datagram_diagram_draws_what_the_server_saw():
    with LossyUdpServer(drop=[0]) as server, udp_socket() as client:
        send_and_wait(server, client, sum_request(7, 4, id=1), 1)
        send_and_wait(server, client, sum_request(7, 4, id=1), 2)
        client.recvfrom(1024)
    fig = udp_module.datagram_diagram(server)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts if t.get_text()]  # the arrows are empty annotations
    assert texts == ['{"id":1,"A":7,"B":4}  (dropped)', '{"id":1,"A":7,"B":4}', '{"Sum":11,"id":1}']
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "0.0 ms"
    assert ax.get_xticklabels()[1].get_text() == f"server {server.where}"
