"""course.connections: the idle-timeout server and the measurements; course.checks.connections: the
checks of assignment 07; over real loopback sockets. Timing is asserted only as relations (long
beats short), never as absolute times; waits use wait_for, never sleeps."""
import socket
import statistics
import threading
import time

import matplotlib
import nbformat
import pytest

matplotlib.use("Agg")

from course import checks, connections as cx, kernel, sumproto
from course.checks import connections as check
from course.cli import load_peers
from course.deadline import wait_for
from course.errors import SetupError, YourCodeError
from course.serving import TcpServer
from notebook_cases import solution_of
from autograder.samples.cases import load_cases
from registry_cases import case_replace

ASSIGNMENT = "07-long-short-connections"
REGISTRY = {c.name: c for c in load_cases(assignment=ASSIGNMENT)}


def registry_source(name: str) -> str:
    """The whole cell a registry case (autograder/samples/07-long-short-connections/) puts in place."""
    case = REGISTRY[name]
    return case_replace(case)[case.cell]


LONG_CONNECTION_PER_REQUEST = registry_source("long-client-connection-per-request")
LONG_NEVER_RECONNECTS = registry_source("long-client-never-reconnects")
MEASUREMENT_SWAPPED = registry_source("measurement-swapped")
SERVER_DEADLINE_SET_ONCE = registry_source("server-deadline-set-once")
SERVER_GLOBAL_CAP = registry_source("server-cap-global")
SERVER_NEVER_FREES = registry_source("server-never-frees")
SERVER_NO_IDLE_TIMEOUT = registry_source("server-without-idle-timeout")

SOLUTION_CELLS = ("short-client-code", "long-client-code", "limited-server-code", "measure-latencies-code")


@pytest.fixture(autouse=True)
def no_evidence_display(monkeypatch):
    monkeypatch.setenv("COURSE_EVIDENCE", "0")


def learner_namespace(**replace: str) -> dict:
    """The instructor's solution cells of the notebook, run as a learner's kernel would run them;
    `replace` puts another source in a cell (keyed by grade_id with '-' as '_')."""
    nb = nbformat.read(solution_of("07-long-short-connections"), as_version=4)
    sources = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    ns = {"socket": socket, "threading": threading, "time": time, "TcpServer": TcpServer, "cx": cx}
    for grade_id in SOLUTION_CELLS:
        exec(replace.get(grade_id.replace("-", "_"), sources[grade_id]), ns)
    return ns


@pytest.fixture(scope="module")
def solution():
    return learner_namespace()


def line_client(address, source="127.0.0.1"):
    return cx.connect_from(source, address)


# ------------------------------------------------------------------------------------------------
# The reference server
# ------------------------------------------------------------------------------------------------
def test_server_echoes_lines_and_answers_seed_002_sums():
    with cx.IdleTimeoutServer() as echo, cx.IdleTimeoutServer(protocol="sum") as adder:
        with line_client(echo.address) as a, line_client(adder.address) as b:
            assert cx.exchange(a, b"hello") == b"hello"
            assert cx.exchange(a, b"") == b""
            assert cx.exchange(b, b'{"A":7,"B":4}') == b'{"Sum":11}'
            assert cx.exchange(b, b'{"id":1,"A":-2,"B":4}') == b'{"Sum":2}'  # 04's TCP lines: no id copied
            # a bad request gets course.sumproto's compact error object, the same as sumproto.answer gives
            bad = cx.exchange(b, b"not json")
            assert bad.startswith(b'{"Error":"the request is not JSON: ') and bad == sumproto.answer(b"not json")
            assert cx.exchange(b, b'{"A":"7","B":4}') == b'{"Error":"A must be an integer, got \\"7\\" (a string)"}'
            assert cx.exchange(b, b'{"A":7}') == b'{"Error":"the request has no \\"B\\"; a request is {\\"A\\":7,\\"B\\":4}"}'
        assert echo.events_of("recv")[0][2] == b"hello"


def test_two_requests_in_one_segment_get_two_replies():
    with cx.IdleTimeoutServer() as server, line_client(server.address) as sock:
        sock.sendall(b"one\ntwo\n")
        assert cx.recv_line(sock) == b"one"
        assert cx.recv_line(sock) == b"two"


def test_recv_line_leaves_the_next_line_in_the_kernel():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"first\nsecond\npartial")
        assert cx.recv_line(b) == b"first"
        assert b.recv(100, socket.MSG_PEEK).startswith(b"second\n")
        assert cx.recv_line(b) == b"second"
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(ConnectionError):
            cx.recv_line(b)


def test_recv_line_refuses_endless_lines():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x" * 200)
        with pytest.raises(ValueError):
            cx.recv_line(b, limit=100)


def test_idle_connection_is_closed_and_recorded():
    with cx.IdleTimeoutServer(idle_timeout=0.2) as server, line_client(server.address) as sock:
        assert cx.exchange(sock, b"hi") == b"hi"
        wait_for(lambda: server.idle_closes == 1, 2.0, "no idle close")
        sock.settimeout(2.0)
        assert sock.recv(10) == b""
        assert server.events_of("idle-close")[0][2] == 0.2


def test_reset_on_idle_sends_rst():
    with cx.IdleTimeoutServer(idle_timeout=0.2, reset_on_idle=True) as server, line_client(server.address) as sock:
        cx.exchange(sock, b"hi")
        wait_for(lambda: server.idle_closes == 1, 2.0, "no idle close")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_active_connection_outlives_the_idle_timeout():
    with cx.IdleTimeoutServer(idle_timeout=0.3) as server, line_client(server.address) as sock:
        start = time.monotonic()
        count = 0
        while time.monotonic() - start < 0.9:  # three idle timeouts, a request every ~0.05 s
            assert cx.exchange(sock, b"%d" % count) == b"%d" % count
            count += 1
            threading.Event().wait(0.05)  # pacing the client: the behaviour under test
        assert server.idle_closes == 0


def test_cap_is_per_client_ip_and_frees_up():
    with cx.IdleTimeoutServer(max_per_client=2) as server:
        first = [line_client(server.address, "127.0.0.2") for _ in range(2)]
        for sock in first:
            assert cx.exchange(sock, b"in") == b"in"
        extra = line_client(server.address, "127.0.0.2")
        assert cx.recv_line(extra) == b"ERROR too many connections from 127.0.0.2 (limit 2)"
        extra.close()
        other = line_client(server.address, "127.0.0.3")
        assert cx.exchange(other, b"me too") == b"me too"
        assert server.events_of("refuse") == [("refuse", "127.0.0.2", 2)]
        first.pop().close()
        wait_for(lambda: server.active.get("127.0.0.2") == 1, 2.0, "the slot was not freed")
        again = line_client(server.address, "127.0.0.2")
        assert cx.exchange(again, b"back") == b"back"
        for sock in first + [other, again]:
            sock.close()


def test_max_requests_closes_after_that_many_replies():
    with cx.IdleTimeoutServer(max_requests=2) as server, line_client(server.address) as sock:
        assert [cx.exchange(sock, b"a"), cx.exchange(sock, b"b")] == [b"a", b"b"]
        sock.settimeout(2.0)
        assert sock.recv(10) == b""
    with cx.IdleTimeoutServer(max_requests=0) as server, line_client(server.address) as sock:
        with pytest.raises(ConnectionError):
            cx.recv_line(sock)


def test_reply_in_pieces_is_the_same_reply():
    with cx.IdleTimeoutServer(reply_chunk=3) as server, line_client(server.address) as sock:
        assert cx.exchange(sock, b"a longer line in pieces") == b"a longer line in pieces"


def test_bad_settings_are_setup_errors():
    with pytest.raises(SetupError):
        cx.IdleTimeoutServer(idle_timeout=0)
    with pytest.raises(SetupError):
        cx.IdleTimeoutServer(protocol="smtp")


def test_registered_for_the_cli():
    assert load_peers()["idle-echo"] is cx.IdleTimeoutServer


# ------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------
def test_compare_short_long_returns_plain_data_and_long_beats_short():
    with cx.IdleTimeoutServer(record_lines=False) as server:
        result = cx.compare_short_long(server.address, 60)
        assert server.accepts == 61
    assert len(result["short"]) == len(result["long"]) == result["n"] == 60
    assert result["short_median"] == statistics.median(result["short"])
    assert result["ratio"] == pytest.approx(result["short_median"] / result["long_median"])
    assert result["long_median"] < result["short_median"]
    assert all(isinstance(v, float) and v > 0 for v in result["short"] + result["long"])


def closing_done(port):
    """Wait until no connection on `port` is still half-way through its close (the server closes
    its side in its own thread, a moment after the client): only then is the TIME_WAIT count final."""
    cx.wait_until_closed(port)
    assert not [s for _, _, s in kernel.states_on_port(port) if s in cx.CLOSING_STATES]


def test_short_connections_leave_time_wait_on_the_client_side():
    with cx.IdleTimeoutServer(record_lines=False) as server:
        cx.time_short_connections(server.address, 20)
        closing_done(server.port)
        after_short = cx.count_time_wait(server.port)
        table = cx.time_wait_table(server.port)
        remaining = cx.time_wait_timers(server.port)
        cx.time_long_connection(server.address, 20)
        closing_done(server.port)
        after_long = cx.count_time_wait(server.port)
    # About one per short connection (net.ipv4.tcp_tw_reuse may let a new connection take over an
    # old four-tuple), one for the long connection: a relation, not an exact count.
    assert after_short >= 10
    assert after_long - after_short <= 1
    holders = [local for local, remote, _ in table if remote.endswith(f":{server.port}")]
    assert len(holders) >= 10, "the client closed first: the client's side holds TIME_WAIT"
    # Linux's TIME_WAIT is a fixed 60 s (TCP_TIMEWAIT_LEN), far below RFC 793's 240 s.
    assert 30 < max(remaining) <= cx.TIME_WAIT_SECONDS_LINUX < cx.TIME_WAIT_SECONDS_RFC793


def test_server_that_closes_first_holds_time_wait():
    with cx.IdleTimeoutServer(idle_timeout=0.2) as server:
        with line_client(server.address) as sock:
            cx.exchange(sock, b"hi")
            wait_for(lambda: server.idle_closes, 2.0, "no idle close")
            sock.settimeout(2.0)
            assert sock.recv(10) == b""
            client_port = sock.getsockname()[1]
        table = cx.time_wait_table(server.port)
    assert (f"127.0.0.1:{server.port}", f"127.0.0.1:{client_port}", "TIME_WAIT") in table


def test_keepalive_defaults_settings_and_timer():
    defaults = cx.keepalive_defaults()
    with cx.IdleTimeoutServer() as server, line_client(server.address) as sock:
        fresh = cx.keepalive_settings(sock)
        assert fresh == {"SO_KEEPALIVE": 0, **defaults}
        assert cx.kernel_timer(sock)[0] != "keepalive"
        settings = cx.set_keepalive(sock, idle=7, interval=3, count=2)
        assert settings == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 3, "TCP_KEEPCNT": 2}
        kind, seconds = cx.kernel_timer(sock)
        assert kind == "keepalive" and 0 < seconds <= 7
    assert cx.dead_peer_detection_seconds(settings) == 13
    assert cx.dead_peer_detection_seconds({"TCP_KEEPIDLE": 7200, "TCP_KEEPINTVL": 75, "TCP_KEEPCNT": 9}) == 7875


def test_reusing_a_connection_the_server_closed():
    with cx.IdleTimeoutServer(idle_timeout=0.2) as server:
        outcome = cx.reuse_after_server_close(server)
    assert outcome["first request"] == "returned b'first'"
    assert outcome["sendall after the server closed"] == "ok"
    assert outcome["recv"] in ("returned b''", "ConnectionResetError")
    assert outcome["sendall again"] in ("BrokenPipeError", "ConnectionResetError")


def test_compare_tcp_udp_rows():
    rows = cx.compare_tcp_udp(sizes=(64, 100_000), n=10)
    small, large = rows
    assert small["udp_ms"] > 0 and large["udp_ms"] is None and large["long_over_udp"] is None
    assert large["runs"] == 3
    assert small["short_over_long"] > 1  # a new connection per exchange costs more than reusing one
    assert small["tcp_long_MBps"] == pytest.approx(64 / (small["tcp_long_ms"] / 1000) / 1e6)


def test_plots_return_axes():
    result = cx.summarize([0.002, 0.003], [0.001, 0.0015])
    assert cx.plot_latencies(result).get_ylabel().startswith("latency")
    rows = [{"size": 64, "udp_MBps": 1.0, "tcp_long_MBps": 0.9, "tcp_short_MBps": 0.1},
            {"size": 1_000_000, "udp_MBps": None, "tcp_long_MBps": 900.0, "tcp_short_MBps": 500.0}]
    assert cx.plot_tcp_udp(rows).get_xscale() == "log"


# ------------------------------------------------------------------------------------------------
# Checks: the instructor's solution passes, classic mistakes fail with a sentence
# ------------------------------------------------------------------------------------------------
def test_solution_passes_every_check(solution):
    check.check_short_client(solution["ShortClient"])
    check.check_short_client(solution["ShortClient"], hard=True)
    check.check_long_client_reuses(solution["LongClient"])
    check.check_long_client_reconnects(solution["LongClient"])
    check.check_long_client_reconnects(solution["LongClient"], reset=True, rounds=2)
    check.check_long_client_hard(solution["LongClient"])
    check.check_connection_cap(solution["LimitedEchoServer"])
    check.check_cap_frees_slots(solution["LimitedEchoServer"])
    check.check_measurement(solution["measure_latencies"], n=20)


def test_solution_server_passes_the_idle_check(solution):
    check.check_idle_timeout(solution["LimitedEchoServer"], idle_timeout=0.3, idle_clients=2)


def test_evidence_is_the_same_on_every_run(solution):
    runs = []
    for _ in range(2):
        checks.recorded.clear()
        check.check_long_client_reconnects(solution["LongClient"])
        check.check_connection_cap(solution["LimitedEchoServer"])
        check.check_measurement(solution["measure_latencies"], n=10)
        runs.append(list(checks.recorded))
    assert runs[0] == runs[1]
    assert "port" not in repr(runs[0])


def test_long_client_that_never_reconnects_fails():
    ns = learner_namespace(long_client_code=LONG_NEVER_RECONNECTS)
    check.check_long_client_reuses(ns["LongClient"])  # it does reuse...
    with pytest.raises(YourCodeError, match="connect again and retry the request once"):
        check.check_long_client_reconnects(ns["LongClient"])
    with pytest.raises(YourCodeError, match="ConnectionResetError"):
        check.check_long_client_reconnects(ns["LongClient"], reset=True)


def test_long_client_with_a_connection_per_request_fails():
    ns = learner_namespace(long_client_code=LONG_CONNECTION_PER_REQUEST)
    with pytest.raises(YourCodeError, match="accepted 5 connections for 5 requests"):
        check.check_long_client_reuses(ns["LongClient"])
    with pytest.raises(YourCodeError, match="closed its connection right after a request"):
        check.check_long_client_reconnects(ns["LongClient"])
    with pytest.raises(YourCodeError, match="expected 21"):
        check.check_measurement(ns["measure_latencies"], n=20)


def test_long_client_that_retries_again_and_again_fails():
    ns = learner_namespace(long_client_code=registry_source("long-client-retries-until-served"))
    check.check_long_client_reconnects(ns["LongClient"])  # it does reconnect...
    with pytest.raises(YourCodeError, match=r"opened 5 connection\(s\) .* \(at most 2 expected\); after the reused"):
        check.check_long_client_hard(ns["LongClient"])  # ...but does not give up after one retry


def test_long_client_that_retries_a_fresh_connection_fails():
    ns = learner_namespace(long_client_code=registry_source("long-client-retries-fresh-connection"))
    check.check_long_client_reconnects(ns["LongClient"], reset=True, rounds=2)
    with pytest.raises(YourCodeError, match=r"opened 2 connection\(s\) .* \(at most 1 expected\); a request that fails"):
        check.check_long_client_hard(ns["LongClient"])


def test_short_client_that_accepts_newlines_fails():
    nb_ns = learner_namespace()
    lenient = type("Lenient", (nb_ns["ShortClient"],), {})
    original = nb_ns["ShortClient"].request

    def request(self, line):
        return b"".join(original(self, part) for part in line.split(b"\n"))

    lenient.request = request
    with pytest.raises(YourCodeError, match="raise ValueError before sending"):
        check.check_short_client(lenient, hard=True)


def test_server_without_idle_timeout_fails():
    ns = learner_namespace(limited_server_code=SERVER_NO_IDLE_TIMEOUT)
    check.check_connection_cap(ns["LimitedEchoServer"])
    with pytest.raises(YourCodeError, match="left an idle connection open"):
        check.check_idle_timeout(ns["LimitedEchoServer"], idle_timeout=0.2)


def test_server_with_seed_002_deadline_set_once_fails():
    ns = learner_namespace(limited_server_code=SERVER_DEADLINE_SET_ONCE)
    with pytest.raises(YourCodeError, match="closed the connection of a client sending every"):
        check.check_idle_timeout(ns["LimitedEchoServer"], idle_timeout=0.3)


def test_server_with_a_global_cap_fails():
    ns = learner_namespace(limited_server_code=SERVER_GLOBAL_CAP)
    with pytest.raises(YourCodeError, match="count connections per client IP, not in total"):
        check.check_connection_cap(ns["LimitedEchoServer"])


def test_server_that_never_frees_a_slot_fails():
    ns = learner_namespace(limited_server_code=SERVER_NEVER_FREES)
    check.check_connection_cap(ns["LimitedEchoServer"])
    with pytest.raises(YourCodeError, match="decrement the count when a connection ends"):
        check.check_cap_frees_slots(ns["LimitedEchoServer"])


def test_server_without_a_cap_fails():
    ns = learner_namespace(limited_server_code=registry_source("server-without-cap"))
    with pytest.raises(YourCodeError, match="kept connection 3 from 127.0.0.2 open"):
        check.check_connection_cap(ns["LimitedEchoServer"])


def test_swapped_measurement_fails():
    ns = learner_namespace(measure_latencies_code=MEASUREMENT_SWAPPED)
    with pytest.raises(YourCodeError, match=r"return \(short, long\) in that order"):
        check.check_measurement(ns["measure_latencies"], n=20)


def test_measurement_with_wrong_counts_fails(solution):
    def too_few(address, n):
        short, long = solution["measure_latencies"](address, n)
        return short[:-1], long

    with pytest.raises(YourCodeError, match="returned 19 short latencies; expected a list of 20"):
        check.check_measurement(too_few, n=20)


def test_the_checks_names_of_earlier_releases_still_reach_them():
    """Notebooks released before the checks moved call cx.check_*: the lesson module forwards them."""
    for name in check.__all__:
        if name.startswith("check_"):
            assert getattr(cx, name) is getattr(check, name)
            assert name not in cx.__all__
    with pytest.raises(AttributeError, match="has no attribute 'ACTIVE_PROOF'"):
        cx.ACTIVE_PROOF  # only check_* names are forwarded


def test_blank_stubs_fail_fast_with_not_implemented():
    class Blank:
        def __init__(self, address, timeout=2.0):
            self.address = address

        def request(self, line):
            raise NotImplementedError()

        def close(self):
            raise NotImplementedError()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    class BlankServer(TcpServer):
        def __init__(self, idle_timeout=30.0, max_per_client=4, host="127.0.0.1"):
            super().__init__(host)
            raise NotImplementedError()

    def blank_measure(address, n):
        raise NotImplementedError()

    start = time.monotonic()
    for check_fn, arg in [(check.check_short_client, Blank), (check.check_long_client_reuses, Blank),
                          (check.check_long_client_reconnects, Blank), (check.check_long_client_hard, Blank),
                          (check.check_idle_timeout, BlankServer), (check.check_connection_cap, BlankServer),
                          (check.check_cap_frees_slots, BlankServer), (check.check_measurement, blank_measure)]:
        with pytest.raises(NotImplementedError):
            check_fn(arg)
    assert time.monotonic() - start < 5.0


def test_server_that_refuses_without_a_full_line_fails():
    ns = learner_namespace(limited_server_code=registry_source("server-refusal-without-newline"))
    with pytest.raises(YourCodeError, match="without a full line"):
        check.check_connection_cap(ns["LimitedEchoServer"])


def test_measurement_that_stops_the_clock_early_fails():
    ns = learner_namespace(measure_latencies_code=registry_source("measurement-times-nothing"))
    with pytest.raises(YourCodeError, match="took less than the 30 ms"):
        check.check_measurement(ns["measure_latencies"], n=10)


def test_first_reply_delay_holds_only_the_first_reply_of_each_connection():
    with cx.IdleTimeoutServer(first_reply_delay=0.05) as server, line_client(server.address) as sock:
        start = time.perf_counter()
        cx.exchange(sock, b"one")
        first = time.perf_counter() - start
        start = time.perf_counter()
        cx.exchange(sock, b"two")
        assert first >= 0.05 * 0.95
        # the server counts a reply just after sending it: the client may read it before that
        expected = {f"127.0.0.1:{sock.getsockname()[1]}": 2}
        wait_for(lambda: server.replies == expected, 5.0, lambda: f"server.replies is {server.replies}, not {expected}")


def test_reply_pieces_wait_until_the_client_read_the_last_one():
    """A single recv gets exactly one piece, however long the client waits before calling it."""
    with cx.IdleTimeoutServer(reply_chunk=4) as server, line_client(server.address) as sock:
        sock.sendall(b"abcdefghij\n")
        wait_for(lambda: kernel.entry_of(sock) and kernel.entry_of(sock).rx_queue == 4, 2.0, "the first piece did not arrive")
        assert sock.recv(100) == b"abcd"
        assert cx.recv_line(sock) == b"efghij"


def test_serve_connections_closes_later_connections_at_once():
    with cx.IdleTimeoutServer(serve_connections=1) as server:
        with line_client(server.address) as first, line_client(server.address) as second:
            assert cx.exchange(first, b"in") == b"in"
            with pytest.raises(ConnectionError):
                cx.exchange(second, b"out")
        assert server.connections == 2


# ------------------------------------------------------------------------------------------------
# no_leaked_sockets under load: only the code under test's sockets count, and nothing is timed
# ------------------------------------------------------------------------------------------------
def test_a_jupyter_heartbeat_reconnecting_during_a_check_is_not_a_leak(tmp_path):
    """On a busy machine a Jupyter client whose heartbeat got no answer within 1 s reconnects to
    the kernel (jupyter_client's HBChannel): a new unix socket (ipc transport) or TCP connection on
    a port the kernel listened on before (tcp transport) appears in the kernel's process during a
    check. Another process connects here to a unix and a TCP listener made before the block."""
    import subprocess
    import sys

    path = str(tmp_path / "hb")
    with socket.socket(socket.AF_UNIX) as unix_listener, socket.create_server(("127.0.0.1", 0)) as tcp_listener:
        unix_listener.bind(path)
        unix_listener.listen()
        peer = f"""import socket, sys
u = socket.socket(socket.AF_UNIX); u.connect({path!r})
t = socket.create_connection({tcp_listener.getsockname()!r})
print("connected", flush=True); sys.stdin.read()"""
        accepted = []
        with checks.no_leaked_sockets("LongClient", grace=0.5):
            proc = subprocess.Popen([sys.executable, "-c", peer], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert proc.stdout.readline() == "connected\n"
            accepted = [unix_listener.accept()[0], tcp_listener.accept()[0]]
        proc.stdin.close()
        proc.wait(5)
        for s in accepted:
            s.close()


def test_a_reference_servers_connection_reset_by_its_client_is_not_a_leak():
    """The server's end of a connection its client reset is in no /proc/net/tcp line (state CLOSE)
    until the server's thread closes it: recognised by its own address, the server's port."""
    import struct

    server = socket.create_server(("127.0.0.1", 0))
    with server:
        port = server.getsockname()[1]
        with checks.no_leaked_sockets("ShortClient", ignore_ports=[port], grace=0.5):
            client = socket.create_connection(("127.0.0.1", port))
            conn, _ = server.accept()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # RST: conn is now CLOSE, in no table, and still open
            wait_for(lambda: kernel.entry_of(conn) is None, 2.0, "the RST did not arrive")
        conn.close()


def test_a_learners_socket_reset_by_the_server_is_a_leak():
    import struct

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with pytest.raises(YourCodeError, match=r"left 1 socket\(s\) open \(tcp 127.0.0.1:\d+ CLOSE"):
            with checks.no_leaked_sockets("LongClient", ignore_ports=[port], grace=0.5):
                client = socket.create_connection(("127.0.0.1", port))
                conn, _ = server.accept()
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                wait_for(lambda: kernel.entry_of(client) is None, 2.0, "the RST did not arrive")
        client.close()


def test_a_socket_closed_by_a_thread_the_block_started_is_waited_for_not_timed():
    """The check waits for the threads the block started (here one that closes its socket after an
    event), never for a fixed time: a busy machine makes it slower, never a leak."""
    release = threading.Event()

    def closer(sock):
        release.wait(5)
        sock.close()

    with checks.no_leaked_sockets("a server", grace=5.0):
        threading.Thread(target=closer, args=(socket.socket(),), daemon=True).start()
        threading.Timer(1.5, release.set).start()  # later than the 1 s grace the old check allowed
