"""course.sockets: the references of notebook 02, its peers, the measured method catalogue, and
the checks' verdicts (pinned messages) on right and wrong learner functions."""
import errno
import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import sockets
from course.checks import sockets as check
from course.checks import no_leaked_sockets, recorded
from course.checks.sockets import without_ports
from course.cli import load_peers
from course.deadline import wait_for
from course.errors import SetupError, YourCodeError
from course.kernel import window
from course.serving import family_of
from course.sockets import (
    FullBacklogListener,
    LineSender,
    chunked,
    closed_port,
    describe_socket,
    probe,
    read_lines,
    tcp_pair,
)


@pytest.fixture(autouse=True)
def quiet_evidence(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")


# ----------------------------------------------------------------------------------------------
# describe_socket
# ----------------------------------------------------------------------------------------------
def test_describe_fresh_tcp_socket():
    with socket.socket() as s:
        assert describe_socket(s) == {
            "family": "AF_INET", "type": "SOCK_STREAM", "local": ("0.0.0.0", 0),
            "peer": None, "timeout": None, "blocking": True,
        }


def test_describe_connected_pair_sees_both_ends():
    with tcp_pair() as (client, conn):
        c, s = describe_socket(client), describe_socket(conn)
    assert c["peer"] == s["local"] and s["peer"] == c["local"]
    assert c["timeout"] == 2.0 and c["blocking"] is True


def test_describe_non_blocking_and_ipv6_and_unix():
    with tcp_pair("::1") as (client, _):
        client.setblocking(False)
        d = describe_socket(client)
    assert d["family"] == "AF_INET6" and len(d["local"]) == 4 and d["local"][0] == "::1"
    assert (d["timeout"], d["blocking"]) == (0.0, False)
    a, b = socket.socketpair()
    with a, b:
        assert describe_socket(a)["family"] == "AF_UNIX"


def test_describe_unconnected_udp_has_no_peer_and_connected_udp_has_one():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as v:
        v.bind(("127.0.0.1", 0))
        assert describe_socket(u)["peer"] is None
        u.connect(v.getsockname())
        assert describe_socket(u)["peer"] == v.getsockname()
        assert describe_socket(u)["type"] == "SOCK_DGRAM"


def test_without_ports_hides_ephemeral_ports_only():
    assert without_ports({"local": ("127.0.0.1", 40312), "peer": None}) == {"local": ["127.0.0.1", "port"], "peer": None}
    assert without_ports(("0.0.0.0", 0)) == ["0.0.0.0", 0]
    assert without_ports(("::1", 5, 0, 0)) == ["::1", "port", 0, 0]
    assert without_ports("") == ""


# ----------------------------------------------------------------------------------------------
# probe, closed_port, FullBacklogListener
# ----------------------------------------------------------------------------------------------
def test_probe_three_answers_and_no_leak():
    with sockets.listening_socket() as listener, FullBacklogListener() as full:
        with no_leaked_sockets("probe"):
            assert probe(listener.getsockname(), 1.0) == "open"
            with closed_port() as port:
                assert probe(("127.0.0.1", port), 1.0) == "refused"
            assert probe(full.address, 0.2) == "timeout"
            with closed_port() as port:
                assert probe((sockets.UNREACHABLE_HOST, port), 1.0) == "ENETUNREACH"  # Linux: no TCP to a broadcast address


def test_probe_over_ipv6():
    with sockets.listening_socket("::1") as listener:
        assert probe(listener.getsockname()[:2], 1.0) == "open"
    with closed_port("::1") as port:
        assert probe(("::1", port), 1.0) == "refused"


def test_closed_port_refuses_connect_and_is_held_until_the_end_of_the_block():
    with closed_port() as port, socket.socket() as s:
        s.settimeout(2.0)
        with pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", port))
        with socket.socket() as other, pytest.raises(OSError) as exc:
            other.bind(("127.0.0.1", port))  # nobody can take it meanwhile: no free-port race
        assert exc.value.errno == errno.EADDRINUSE


def test_full_backlog_listener_makes_connect_time_out_not_refused():
    with FullBacklogListener() as full, socket.socket() as s:
        s.settimeout(0.2)
        with pytest.raises(TimeoutError):
            s.connect(full.address)
    assert "FullBacklogListener 127.0.0.1:" in repr(full)


def test_full_backlog_listener_queue_is_over_its_limit():
    with FullBacklogListener() as full:
        waiting, limit = full.queued()
        assert full.full() and (waiting, limit) == (1, 0)  # backlog 0 holds one connection on Linux


def test_full_backlog_listener_closes_everything():
    with no_leaked_sockets("FullBacklogListener"):
        with FullBacklogListener() as full:
            assert full.address[1] > 0
    with pytest.raises(SetupError, match="10.0.0.1 is not a loopback address"):
        FullBacklogListener("10.0.0.1")


# ----------------------------------------------------------------------------------------------
# chunked, LineSender, read_lines
# ----------------------------------------------------------------------------------------------
def test_chunked_cycles_sizes():
    assert chunked(b"abcdef", [1, 2]) == [b"a", b"bc", b"d", b"ef"]
    assert chunked(b"", [3]) == []
    with pytest.raises(ValueError, match="chunk sizes must be positive"):
        chunked(b"abc", [0])


@given(st.binary(max_size=200), st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_chunked_pieces_join_back(payload, sizes):
    pieces = chunked(payload, sizes)
    assert b"".join(pieces) == payload
    assert all(1 <= len(p) <= max(sizes) for p in pieces)


def raw_reads(server: LineSender, reader: bool) -> list[bytes]:
    with socket.socket() as s:
        if reader:
            server.reader = s
        s.settimeout(2.0)
        s.connect(server.address)
        reads = []
        while data := s.recv(4096):
            reads.append(data)
        return reads


@pytest.mark.parametrize("reader, kernel_window", [(True, None), (False, "current"), (False, "proc")],
                         ids=["ioctl", "kernel", "proc"])
def test_line_sender_delivers_one_chunk_per_read(reader, kernel_window, monkeypatch):
    """With the client's socket, the sender asks its descriptor; without it, the kernel's list of
    sockets: sock_diag where allowed, /proc/net/tcp (course.kernel.proc) where it is not."""
    if kernel_window == "proc":
        monkeypatch.setattr(window, "_CHOSEN", window.ProcWindow())
    with LineSender(chunks=(1, 2, 3)) as server:
        reads = raw_reads(server, reader)
    assert reads == chunked(sockets.DEFAULT_LINES, (1, 2, 3))


def test_line_sender_waits_for_a_slow_reader_whatever_the_delay():
    """A reader that starts late (a loaded machine) still gets one chunk per read: the server waits
    until each chunk has arrived and been read, not for a fixed time."""
    with socket.socket() as s, LineSender(payload=b"abcdef", chunks=(1,), reader=s) as server:
        s.settimeout(5.0)
        s.connect(server.address)
        wait_for(lambda: server.events_of("send"), 2.0, "the server sent nothing")
        time.sleep(1.5)  # not synchronisation: the reader is late on purpose (longer than the 1 s the server once waited)
        reads = []
        while data := s.recv(4096):
            reads.append(data)
    assert reads == [b"a", b"b", b"c", b"d", b"e", b"f"]


def test_line_sender_records_what_it_sent_and_its_eof():
    with LineSender(payload=b"a\nb\n", chunks=(2,)) as server:
        raw_reads(server, reader=True)
        wait_for(lambda: server.events_of("eof"), 2.0, "no eof event")
    assert [e[2] for e in server.events_of("send")] == [b"a\n", b"b\n"]


def test_line_sender_is_the_cli_peer_tcp_lines():
    assert load_peers()["tcp-lines"] is LineSender


def test_the_old_names_still_work_but_warn_and_are_not_exported():
    """LineServer (course.tcp.LineServer answers lines; this one sends them) and family_for
    (serving.family_of is the one) of earlier releases."""
    with pytest.warns(DeprecationWarning, match="course.sockets.LineServer is now LineSender"):
        from course.sockets import LineServer
    assert LineServer is LineSender
    with pytest.warns(DeprecationWarning, match="family_for is now course.serving.family_of"):
        family_for = sockets.family_for
    assert family_for is family_of
    assert family_for("::1") == socket.AF_INET6 and family_for("127.0.0.2") == socket.AF_INET
    assert "LineServer" not in sockets.__all__ and "family_for" not in sockets.__all__
    assert sockets.check_read_lines is check.check_read_lines  # the forwarding of moved checks still works
    with pytest.raises(AttributeError, match="has no attribute 'LineServe'"):
        sockets.LineServe


def test_read_lines_reference_on_default_lines():
    with socket.socket() as s, LineSender(chunks=(1, 2), reader=s) as server:
        s.settimeout(2.0)
        s.connect(server.address)
        assert read_lines(s) == ["hello", "你好，世界", "", "  two spaces each side  ", "last line, no newline"]


lines_text = st.lists(st.text(alphabet="ab 你好\t€", max_size=6), min_size=1, max_size=4)


@settings(max_examples=12, deadline=None)
@given(lines_text, st.booleans(), st.lists(st.integers(1, 7), min_size=1, max_size=3))
def test_read_lines_reference_any_lines_any_chunks(lines, final_newline, sizes):
    payload = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    with socket.socket() as s, LineSender(payload=payload, chunks=sizes, reader=s) as server:
        s.settimeout(2.0)
        s.connect(server.address)
        got = read_lines(s)
    expected = list(lines)
    if final_newline is False and lines[-1] == "":
        expected.pop()  # no bytes after the last '\n': there is no last line
    assert got == expected


# ----------------------------------------------------------------------------------------------
# The method catalogue
# ----------------------------------------------------------------------------------------------
SEED_001_TABLE = ["bind", "listen", "accept", "connect", "connect_ex", "recv", "send", "sendall", "recvfrom",
                  "sendto", "close", "getpeername", "getsockname", "setsockopt", "getsockopt", "settimeout",
                  "gettimeout", "fileno", "setblocking", "makefile"]

EXPECTED_OUTCOMES = {
    "bind": ("OSError", "EADDRINUSE"),
    "listen": ("OSError", errno.errorcode[errno.EOPNOTSUPP]),
    "accept": ("TimeoutError", ""),
    "connect": ("ConnectionRefusedError", "ECONNREFUSED"),
    "recv": ("BlockingIOError", "EAGAIN"),
    "send": ("BrokenPipeError", "EPIPE"),
    "sendall": ("TimeoutError", ""),
    "recvfrom": ("TimeoutError", ""),
    "sendto": ("OSError", "EMSGSIZE"),
    "close": ("OSError", "EBADF"),
    "getpeername": ("OSError", "ENOTCONN"),
    "setsockopt": ("OSError", "ENOPROTOOPT"),
    "settimeout": ("ValueError", ""),
    "setblocking": ("BlockingIOError", "EAGAIN"),
    "makefile": ("TimeoutError", ""),
}
EXPECTED_RETURNS = {
    "connect_ex": f"{errno.ECONNREFUSED} (ECONNREFUSED)",
    "getsockname": ("0.0.0.0", 0),
    "getsockopt": 8192,  # Linux doubles SO_RCVBUF (socket(7))
    "gettimeout": 0.0,
    "fileno": -1,
}


def test_catalogue_is_seed_001_table_in_order():
    assert [m.name for m in sockets.METHODS] == SEED_001_TABLE
    assert set(EXPECTED_OUTCOMES) | set(EXPECTED_RETURNS) == set(SEED_001_TABLE)


@pytest.mark.parametrize("name", SEED_001_TABLE)
def test_each_demo_does_what_the_catalogue_says(name):
    with no_leaked_sockets(f"the {name} demo"):
        outcome = sockets.provoke(name)
    if name in EXPECTED_RETURNS:
        assert (outcome.raised, outcome.returned) == ("", EXPECTED_RETURNS[name])
    else:
        assert (outcome.raised, outcome.errno_name) == EXPECTED_OUTCOMES[name]
        assert outcome.raised.split("Error")[0] in sockets.method(name).raises + "OSError"


def test_tables_have_a_row_per_method_and_per_correction():
    table = sockets.methods_table(measure=False)
    assert len(table.splitlines()) == 2 + len(SEED_001_TABLE)
    corrections = sockets.corrections_table().splitlines()
    assert len(corrections) == 2 + sum(1 for m in sockets.METHODS if m.exactly)
    assert any("`recv`" in row and "bytes" in row for row in corrections)
    with pytest.raises(KeyError, match="no method 'shutdown'"):
        sockets.method("shutdown")


def test_measured_table_shows_the_outcome():
    table = sockets.methods_table()
    assert "ConnectionRefusedError (ECONNREFUSED)" in table
    assert "returned -1" in table


# ----------------------------------------------------------------------------------------------
# The checks, on right and wrong learner functions
# ----------------------------------------------------------------------------------------------
def test_checks_pass_the_references_and_record_plain_evidence():
    recorded.clear()
    check.check_describe_socket(describe_socket, check.DESCRIBE_CASES)
    check.check_probe(probe, check.PROBE_CASES)
    check.check_probe(probe, check.PROBE_CASES, leaks=True)
    for case in check.READ_LINES_CASES:
        check.check_read_lines(read_lines, case)
    text = repr(recorded)
    assert "'port'" in text and "40312" not in text
    probe_evidence, leak_evidence = [e for e in recorded if e["check"] == "probe"]
    assert [c["returned"] for c in probe_evidence["cases"]] == ["open", "refused", "timeout", "open", "refused", "ENETUNREACH"]
    # the leak cell's evidence is what it judges, never the answers (judged by other cells)
    assert all("returned" not in c and c["left_no_socket"] for c in leak_evidence["cases"])


def test_evidence_is_the_same_on_two_runs():
    runs = []
    for _ in range(2):
        recorded.clear()
        check.check_describe_socket(describe_socket, check.DESCRIBE_CASES)
        check.check_read_lines(read_lines, "utf8-split")
        runs.append(list(recorded))
    assert runs[0] == runs[1]


def describe_type_via_str(sock):
    d = describe_socket(sock)
    d["type"] = str(sock.type)
    return d


def describe_blocking_from_timeout(sock):
    d = describe_socket(sock)
    d["blocking"] = sock.gettimeout() is None
    return d


def test_describe_check_names_the_wrong_key():
    with pytest.raises(YourCodeError, match=r"gave type='1', expected 'SOCK_STREAM'; sock.type is an enum"):
        check.check_describe_socket(describe_type_via_str)
    check.check_describe_socket(describe_blocking_from_timeout)  # the visible cases cannot tell
    with pytest.raises(YourCodeError, match=r"<with-timeout socket>\) gave blocking=False, expected True"):
        check.check_describe_socket(describe_blocking_from_timeout, check.DESCRIBE_CASES)


def test_describe_check_wants_exact_keys_and_a_dict():
    with pytest.raises(YourCodeError, match=r"returned the keys \['family'\]; it should return exactly"):
        check.check_describe_socket(lambda s: {"family": s.family.name})
    with pytest.raises(YourCodeError, match=r"returned None \(a NoneType\); it should return a dict"):
        check.check_describe_socket(lambda s: None)


def test_describe_check_explains_an_uncaught_getpeername_error():
    def no_try(sock):
        d = describe_socket(sock)
        d["peer"] = sock.getpeername()
        return d

    with pytest.raises(YourCodeError, match=r"<fresh-tcp socket>\) raised OSError: .*; getpeername\(\) raises OSError on a socket without a peer"):
        check.check_describe_socket(no_try)


def test_describe_check_lets_not_implemented_through():
    def blank(sock):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):
        check.check_describe_socket(blank)


def probe_with_connect(address, timeout=1.0):
    with socket.socket() as s:
        s.settimeout(timeout)
        s.connect(address)
    return "open"


def probe_keeping_sockets(address, timeout=1.0):
    s = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    s.settimeout(timeout)
    code = s.connect_ex(address)
    kept.append(s)  # keep it alive: a leak no garbage collector cleans up
    return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")


kept: list[socket.socket] = []


def probe_without_close(address, timeout=1.0):
    s = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    s.settimeout(timeout)
    code = s.connect_ex(address)
    return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")  # s is collected unclosed


def probe_without_timeout(address, timeout=1.0):
    with socket.socket() as s:
        code = s.connect_ex(address)  # waits for the kernel's SYN retries, not for `timeout`
    return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")


def probe_with_default_timeout(address, timeout=1.0):
    socket.setdefaulttimeout(timeout)
    return probe(address, timeout)


def test_probe_check_catches_raising():
    with pytest.raises(YourCodeError, match=r"raised ConnectionRefusedError: .*; probe must return 'refused' instead of raising: use connect_ex"):
        check.check_probe(probe_with_connect)


def test_probe_check_catches_sockets_kept_open():
    try:
        check.check_probe(probe_keeping_sockets, ("open", "refused"))  # without leaks=True: passes
        with pytest.raises(YourCodeError, match=r"left 1 socket\(s\) open \(tcp 127.0.0.1:\d+ -> 127.0.0.1:\d+ ESTABLISHED\)"):
            check.check_probe(probe_keeping_sockets, ("open",), leaks=True)
        with pytest.raises(YourCodeError, match=r"left 1 socket\(s\) open \(a socket that is neither bound nor connected\)"):
            check.check_probe(probe_keeping_sockets, ("refused",), leaks=True)
    finally:
        while kept:
            kept.pop().close()


def test_probe_check_catches_a_socket_left_to_the_garbage_collector():
    check.check_probe(probe_without_close, ("open", "refused"))
    with pytest.raises(YourCodeError, match=r"did not close its socket \(Python closed it when it was garbage-collected: unclosed <socket"):
        check.check_probe(probe_without_close, ("refused",), leaks=True)


def test_probe_check_catches_ignoring_the_timeout():
    with pytest.raises(YourCodeError, match=r"did not return within 10 s; call s.settimeout\(timeout\) before connect_ex"):
        check.check_probe(probe_without_timeout, ("timeout",))
    # the leaks check judges leaks only: with its default timeout the same probe returns, leaving nothing open
    check.check_probe(probe_without_timeout, ("open", "refused", "timeout"), leaks=True)


def test_probe_check_catches_changing_the_default_timeout():
    try:
        with pytest.raises(YourCodeError, match=r"changed socket.getdefaulttimeout\(\) from 1.2345 to 0.3"):
            check.check_probe(probe_with_default_timeout, ("open",), leaks=True)
        assert socket.getdefaulttimeout() is None  # the check put it back
        # earlier cells already set the default to what this probe sets: still seen
        socket.setdefaulttimeout(0.3)
        check.check_probe(probe_with_default_timeout, ("open",))  # answers are right
        with pytest.raises(YourCodeError, match=r"changed socket.getdefaulttimeout\(\) from 1.2345 to 0.3"):
            check.check_probe(probe_with_default_timeout, ("open",), leaks=True)
        assert socket.getdefaulttimeout() == 0.3
    finally:
        socket.setdefaulttimeout(None)


def test_probe_check_pins_the_default_timeout_when_judging_answers():
    """A default timeout set by an earlier cell does not rescue a probe without settimeout."""
    try:
        socket.setdefaulttimeout(0.3)
        with pytest.raises(YourCodeError, match=r"did not return within 10 s"):
            check.check_probe(probe_without_timeout, ("timeout",))
        assert socket.getdefaulttimeout() == 0.3
    finally:
        socket.setdefaulttimeout(None)


def test_probe_check_leaks_mode_does_not_judge_answers():
    check.check_probe(probe_with_connect, ("open", "refused"), leaks=True)  # raises, but leaves nothing open
    with pytest.raises(YourCodeError, match=r"raised ConnectionRefusedError"):
        check.check_probe(probe_with_connect, ("refused",))


def probe_other_errors_as_timeout(address, timeout=1.0):
    answer = probe(address, timeout)
    return answer if answer in ("open", "refused") else "timeout"


def test_probe_check_wants_the_errno_name_of_another_error():
    check.check_probe(probe_other_errors_as_timeout, ("open", "refused", "timeout"))
    with pytest.raises(YourCodeError, match=r"returned 'timeout', expected 'ENETUNREACH'; for any other error number, return its name"):
        check.check_probe(probe_other_errors_as_timeout, ("other-error",))


def test_probe_check_on_ipv6_says_af_inet6():
    def ipv4_only(address, timeout=1.0):
        try:
            with socket.socket() as s:
                s.settimeout(timeout)
                code = s.connect_ex(address)
        except OSError:
            return "EAFNOSUPPORT"
        return {0: "open", errno.ECONNREFUSED: "refused"}.get(code, "timeout")

    check.check_probe(ipv4_only, ("open", "refused", "timeout"))
    with pytest.raises(YourCodeError, match=r"needs an AF_INET6 socket"):
        check.check_probe(ipv4_only, ("ipv6-open",))


def read_lines_one_recv(sock):
    return sock.recv(65536).decode("utf-8").splitlines()


def read_lines_bytes(sock):
    with sock.makefile("rb") as f:
        return [line.rstrip(b"\n") for line in f]


def read_lines_decoding_each_recv(sock):
    text = ""
    while data := sock.recv(4096):
        text += data.decode("utf-8")
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")


def read_lines_strip(sock):
    with sock.makefile("r", encoding="utf-8") as f:
        return [line.strip() for line in f]


def read_lines_split(sock):
    with sock.makefile("r", encoding="utf-8") as f:
        return f.read().split("\n")


def test_read_lines_check_catches_one_recv():
    check.check_read_lines(read_lines_one_recv, "whole")  # one piece: a single recv gets away with it
    with pytest.raises(YourCodeError, match=r"returned line 0 as 'a', expected 'alpha'; the server sent 45 chunks"):
        check.check_read_lines(read_lines_one_recv, "one-byte-chunks")


def test_read_lines_check_catches_bytes():
    with pytest.raises(YourCodeError, match=r"holding b'one' \(bytes\); each line must be a str: decode"):
        check.check_read_lines(read_lines_bytes, "whole")


def test_read_lines_check_catches_decoding_each_piece():
    check.check_read_lines(read_lines_decoding_each_recv, "one-byte-chunks")
    with pytest.raises(YourCodeError, match=r"raised UnicodeDecodeError: .*; a character's UTF-8 bytes were split"):
        check.check_read_lines(read_lines_decoding_each_recv, "utf8-split")


def read_lines_universal_newlines(sock):
    with sock.makefile("r", encoding="utf-8") as f:  # newline=None: '\r\n' and '\r' become '\n'
        return [line.removesuffix("\n") for line in f]


kept_files = []


def read_lines_keeping_the_file(sock):
    f = sock.makefile("r", encoding="utf-8", newline="\n")
    kept_files.append(f)  # one reader per socket, kept for later: never closed
    return [line.removesuffix("\n") for line in f]


def test_read_lines_check_keeps_carriage_returns():
    for case in ("whole", "one-byte-chunks", "utf8-split", "odd-chunks"):
        check.check_read_lines(read_lines_universal_newlines, case)
    with pytest.raises(YourCodeError, match=r"returned line 0 as 'dos line', expected 'dos line\\r'; keep every '\\r'.*newline='\\n'"):
        check.check_read_lines(read_lines_universal_newlines, "carriage-returns")


def test_read_lines_check_wants_the_file_closed():
    try:
        check.check_read_lines(read_lines_keeping_the_file, "one-byte-chunks")
        with pytest.raises(YourCodeError, match=r"the caller closed the socket but its descriptor \d+ stayed open: a file object from sock.makefile\(\) is still open"):
            check.check_read_lines(read_lines_keeping_the_file, "whole")
    finally:
        while kept_files:
            kept_files.pop().close()


def read_lines_not_closing_a_garbage_file(sock):
    return [line.removesuffix("\n") for line in sock.makefile("r", encoding="utf-8", newline="\n")]


def test_read_lines_check_file_left_to_the_garbage_collector_is_closed():
    check.check_read_lines(read_lines_not_closing_a_garbage_file, "whole")  # nothing refers to it: closed on return


def test_read_lines_check_catches_strip_and_split():
    check.check_read_lines(read_lines_strip, "whole")
    with pytest.raises(YourCodeError, match=r"remove only the '\\n', not other whitespace"):
        check.check_read_lines(read_lines_strip, "utf8-split")
    with pytest.raises(YourCodeError, match=r"ending with an empty one"):
        check.check_read_lines(read_lines_split, "whole")


# ----------------------------------------------------------------------------------------------
# Where the checks live
# ----------------------------------------------------------------------------------------------
def test_check_names_of_earlier_releases_reach_the_checks_module():
    """Notebooks of earlier releases call sockets.check_probe(...): it is course.checks.sockets' own."""
    assert sockets.check_probe is check.check_probe
    assert sockets.check_describe_socket is check.check_describe_socket
    assert sockets.check_read_lines is check.check_read_lines
    with pytest.raises(AttributeError, match="module 'course.sockets' has no attribute 'PROBE_CASES'"):
        sockets.PROBE_CASES  # only check_* names are forwarded


def test_the_lesson_does_not_import_its_checks():
    code = "import sys, course.sockets; print('course.checks.sockets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
