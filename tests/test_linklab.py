"""course.linklab: assignment 07's lab demos (short and long connections on a 128 kbit/s link).

Without namespaces: a capture cut into labelled connections, the recording's own arithmetic, and the
fallback (one line saying why, then the recording). With a lab: a live run gives the recorded
evidence and times that the link's rate bounds from below; the notebook's lab cells themselves run
live as an ordinary user (tests/lab_support.py: as root, an unused uid with setpriv and
/usr/bin/python3) and, inside sandboxes that refuse user namespaces (bwrap --disable-userns, the
grading sandbox's seccomp filter), print one line and the recording. Where no lab can be built the
live tests are skipped, except under CI (the variable CI set), where that is a failure.
"""
from __future__ import annotations

import socket
import statistics
import threading
import time
from pathlib import Path

import nbformat
import pytest

from course import linklab
from course.netlab.pcap import Frame
from lab_support import KEPT_RUNS, assert_refused_cells_show_each_recording, keeping_runs, assert_a_failed_live_run_shows_the_recording, assert_a_refusal_is_one_line_then_each_recording, IN_CI, tcp
from notebook_cases import release_of, solution_of

ASSIGNMENT = "07-long-short-connections"
LAB_CELLS = ("lab-wire", "lab-times")
# The segments of one request on a short connection that timing never changes: (sender, label, bytes)
SHORT_FIXED = [
    ["client", "handshake 1: SYN", 74], ["server", "handshake 2: SYN-ACK", 74], ["client", "handshake 3: ACK", 66],
    ["client", "data", 71], ["server", "data", 71],
    ["client", "teardown 1: FIN", 66], ["server", "teardown 3: FIN", 66], ["client", "teardown 4: ACK", 66],
]  # fmt: skip


def sources_by_grade_id(path: Path) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}


# ----------------------------------------------------------------------------------------------
# Without namespaces
# ----------------------------------------------------------------------------------------------
def frame(src, dst, flags, seq, ack=0, payload=b"") -> bytes:
    """An Ethernet frame with IPv4 and TCP (12 bytes of options, as with timestamps; 20 in a SYN)."""
    if "SYN" in flags:
        return tcp(src, dst, flags, seq, ack, payload, mss=1460, options=b"\x01" * 16, window=502)
    return tcp(src, dst, flags, seq, ack, payload, options=b"\x01" * 12, window=502)


def short_connection(client, server, t0: int) -> list[Frame]:
    c, s = client, server
    talk = [(c, s, "SYN", 100, 0, b""), (s, c, "SYN,ACK", 900, 101, b""), (c, s, "ACK", 101, 901, b""),
            (c, s, "PSH,ACK", 101, 901, b"ping\n"), (s, c, "ACK", 901, 106, b""), (s, c, "PSH,ACK", 901, 106, b"ping\n"),
            (c, s, "ACK", 106, 906, b""), (c, s, "FIN,ACK", 106, 906, b""), (s, c, "FIN,ACK", 906, 107, b""),
            (c, s, "ACK", 107, 907, b"")]
    return [Frame(t0 + i * 1000, a == c, frame(a, b, f, seq, ack, p)) for i, (a, b, f, seq, ack, p) in enumerate(talk)]


def test_a_capture_is_cut_into_its_connections_each_labelled_with_its_size_on_the_wire():
    server = ("198.51.100.10", 5000)
    first, second = ("192.168.1.2", 40000), ("192.168.1.2", 40001)
    stray = Frame(0, False, frame(server, ("192.168.1.2", 39999), "FIN,ACK", 5, 6))  # a connection begun before
    other = Frame(1, True, frame(first, ("198.51.100.10", 6000), "SYN", 1))  # another server
    frames = [stray, other] + short_connection(first, server, 10_000) + short_connection(second, server, 50_000)
    conns = linklab.conversations(frames, server)
    assert len(conns) == 2
    for conn in conns:
        assert [s.size for s in conn] == [74, 74, 66, 71, 66, 71, 66, 66, 66, 66]
        assert linklab._fixed(conn) == SHORT_FIXED  # the two pure ACKs of data ('ACK') are left out
        assert [s.label for s in conn].count("ACK") == 2 and conn[4].sender == "server"
        assert linklab._bytes(conn, "client") == 409 and linklab._bytes(conn, "server") == 277
        assert linklab._per_request(conn, "client") == [409]
    assert [conns[0][0].t_ms, conns[0][-1].t_ms, conns[1][0].t_ms] == [0.0, 0.009, 0.04]  # from the first SYN, in ms


def test_bytes_per_request_of_a_long_connection_split_at_each_request():
    c, s = ("192.168.1.2", 40000), ("198.51.100.10", 5000)
    talk = [(c, s, "SYN", 0), (s, c, "SYN,ACK", 0), (c, s, "ACK", 0), (c, s, "PSH,ACK", 5), (s, c, "PSH,ACK", 5),
            (c, s, "PSH,ACK", 5), (s, c, "PSH,ACK", 5), (c, s, "FIN,ACK", 0), (s, c, "FIN,ACK", 0), (c, s, "ACK", 0)]
    frames = [Frame(i, a == c, frame(a, b, f, 1, 1, b"x" * n)) for i, (a, b, f, n) in enumerate(talk)]
    (conn,) = linklab.conversations(frames, s)
    assert linklab._per_request(conn, "client") == [74 + 66 + 71, 71 + 66 + 66]
    assert linklab._per_request(conn, "server") == [74 + 71, 71 + 66]


def test_the_recording_holds_what_the_notebook_says():
    wire, times = linklab.load_recording("wire"), linklab.load_recording("times")
    assert not wire.live and not times.live and wire.recorded.startswith("on ")
    assert wire.evidence["short"] == SHORT_FIXED
    assert wire.evidence["long"] == SHORT_FIXED[:3] + [["client", "data", 71], ["server", "data", 71]] * 3 + SHORT_FIXED[5:]
    b = wire.measured["bytes"]["short"]
    assert (b["segments"], b["client"], b["server"]) == (10, 409, 277)  # the figures the notebook quotes
    e = times.evidence
    assert e["short_connections_alike"] and e["short_connection"] == SHORT_FIXED and e["connections"] == {"short": 30, "long": 1}
    assert dict(e["long_connection"])["data"] == 60
    per = times.measured["bytes_per_request"]
    assert statistics.median(per["short"]["client"]) == 409 and statistics.median(per["long"]["client"]) == 71
    assert round(linklab._link_ms(409), 1) == 25.6 and round(linklab._link_ms(71), 1) == 4.4
    ms = times.measured["ms"]
    assert len(ms["short"]) == len(ms["long"]) == 30
    # recorded on an idle machine: the medians are what the link allows
    assert abs(statistics.median(ms["short"]) - linklab._link_ms(409)) < 1
    assert abs(statistics.median(ms["long"]) - linklab._link_ms(71)) < 0.5
    assert_the_link_kept_its_rate(times.measured["short_phase"])
    assert linklab.BURST == 3028
    assert "burst 3027b" in times.measured["qdisc"]
    for run in (wire, times):
        lines = run.lines()
        assert lines[0].startswith("RECORDING of this demo, run live on ") and all("\n" not in x for x in lines)


def assert_the_link_kept_its_rate(phase: dict) -> None:
    """The client's frames of the short phase left home's eth0 no faster than the token bucket allows:
    at most the burst, plus the rate times the time, plus the one frame that left at the end."""
    allowed = linklab.BURST + linklab.RATE_BPS / 8 * phase["seconds"] + 1514
    assert phase["client_bytes"] <= allowed, f"{phase['client_bytes']} bytes left in {phase['seconds']} s: faster than the link"
    assert phase["client_bytes"] == 30 * 409


def test_where_no_lab_can_be_built_each_demo_says_why_in_one_line_and_shows_the_recording(monkeypatch, capsys):
    assert_a_refusal_is_one_line_then_each_recording(linklab, ['wire', 'times'], monkeypatch, capsys)


def test_a_live_run_that_fails_shows_the_recording_and_says_so(monkeypatch, capsys):
    assert_a_failed_live_run_shows_the_recording(linklab, 'times', monkeypatch, capsys)


def test_the_lab_cells_are_locked_the_same_in_the_release_and_use_no_learner_code():
    solution, release = sources_by_grade_id(solution_of(ASSIGNMENT)), sources_by_grade_id(release_of(solution_of(ASSIGNMENT)))
    nb = nbformat.read(release_of(solution_of(ASSIGNMENT)), as_version=4)
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader")}
    learner = ("ShortClient", "LongClient", "LimitedEchoServer", "measure_latencies")
    module = Path(linklab.__file__).read_text()
    for gid in LAB_CELLS:
        assert release[gid] == solution[gid] and meta[gid]["locked"] and not meta[gid]["grade"]
        assert not any(name in release[gid] or name in module for name in learner)


# ----------------------------------------------------------------------------------------------
# A live lab, in this process
# ----------------------------------------------------------------------------------------------
def test_a_live_run_gives_the_recorded_evidence_and_times_the_rate_bounds(lab_here):
    before = {t.ident for t in threading.enumerate()}
    for name in ("wire", "times"):
        run = linklab.live(name)
        assert run.live and run.evidence == linklab.load_recording(name).evidence, name
    # the times per request depend on this machine's load (a slow client lets the bucket refill between
    # requests); what the link sent does not: never faster than its rate
    assert_the_link_kept_its_rate(run.measured["short_phase"])
    assert len(run.measured["ms"]["short"]) == len(run.measured["ms"]["long"]) == 30
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not left, f"threads left running after the demos: {left}"


def test_the_echo_server_stops_when_its_block_ends_and_reports_a_failure():
    with socket.socket() as listener:  # any listening socket: a lab's, or here one on loopback
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with linklab.LabLineEcho(listener, timeout=2.0) as echo:
            with socket.create_connection(listener.getsockname(), timeout=2.0) as client:
                client.sendall(b"one\ntwo")
                client.sendall(b"\n")
                got = b""
                while got.count(b"\n") < 2:
                    got += client.recv(100)
        assert got == b"one\ntwo\n" and echo.connections == 1
        assert not echo._thread.is_alive()


# ----------------------------------------------------------------------------------------------
# The notebook's lab cells, run as an ordinary user, live or refused
# ----------------------------------------------------------------------------------------------
SETUP = keeping_runs('linklab', ("wire", "times"))


def test_the_notebook_lab_cells_run_live_as_an_ordinary_user(as_user, lab_here):
    sources = {gid: sources_by_grade_id(solution_of(ASSIGNMENT))[gid] for gid in LAB_CELLS}
    _, result, stderr = as_user.run_cells(sources, SETUP, extra=KEPT_RUNS)
    assert [c["error"] for c in result["cells"].values()] == [None, None] and not stderr.strip(), (result["cells"], stderr[-2000:])
    printed = {gid: c["lines"] for gid, c in result["cells"].items()}
    for gid, run in zip(LAB_CELLS, result["extra"]):
        assert run["live"] and not run["why"], (gid, run["why"])
        assert printed[gid][0].startswith("live: a lab network built just now (home 192.168.1.2 -- router -- server ")
        assert run["evidence"] == linklab.load_recording(gid[4:]).evidence, gid
    assert "one request on a short connection: 10 segments, 686 bytes on the wire (409 from the client" in printed["lab-wire"][1]
    assert result["seconds"] < 30


def test_where_the_lab_is_refused_each_cell_prints_one_line_and_the_recording(ordinary_user):
    sources = {gid: sources_by_grade_id(solution_of(ASSIGNMENT))[gid] for gid in LAB_CELLS}
    assert_refused_cells_show_each_recording(ordinary_user, linklab, sources, lambda gid: gid[4:])


@pytest.mark.notebooks
def test_the_blank_release_runs_its_lab_cells_without_an_error():
    from autograder.execute import cell_seconds, execute

    started = time.monotonic()
    nb, _ = execute(release_of(solution_of(ASSIGNMENT)), timeout=60)
    shown = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in LAB_CELLS}
    for gid, cell in shown.items():
        assert not [o for o in cell.outputs if o.get("output_type") == "error"], gid
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        first = text.splitlines()[0]
        assert first.startswith("live: ") or (first.startswith("no lab network here:") and not IN_CI), (gid, first)
        assert cell_seconds(cell) < 15, f"{gid} took {cell_seconds(cell):.1f} s"
    print(f"blank release of {ASSIGNMENT}: {time.monotonic() - started:.1f} s")
