"""course.namelab: assignment 08's lab demos (a name from a hosts file, both families, a refusing and
a silent IPv6 address on a real link).

Without namespaces: the capture's rows, the hosts file, the recording (what the notebook says), and
the fallback (one line saying why, then the recording). With a lab: a live run gives the recorded
evidence; the notebook's lab cells run live as an ordinary user (tests/lab_support.py: as root, an
unused uid with setpriv and /usr/bin/python3) and, inside sandboxes that refuse user namespaces
(bwrap --disable-userns, the grading sandbox's seccomp filter), print one line and the recording.
Where no lab can be built the live tests are skipped, except under CI (the variable CI set), where
that is a failure. No test asserts a time: the times are measured and printed, never judged.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import nbformat
import pytest

from course import namelab
from course.netlab.pcap import Frame, neighbour_messages, tcp_packets
from lab_support import KEPT_RUNS, assert_refused_cells_show_each_recording, keeping_runs, assert_a_failed_live_run_shows_the_recording, assert_a_refusal_is_one_line_then_each_recording, IN_CI, tcp, tcp6
from notebook_cases import release_of, solution_of

ASSIGNMENT = "08-names-http-backpressure"
LAB_CELLS = ("lab-names-refused", "lab-names-silent")
V6, V4 = namelab.WWW["ipv6"], namelab.WWW["ipv4"]
ANSWERS = [["AF_INET6", V6], ["AF_INET", V4]]
HANDSHAKE = ["home SYN", "www SYN,ACK", "home ACK"]


def sources_by_grade_id(path: Path) -> dict[str, str]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}


def demo_of(gid: str) -> str:
    return gid[len("lab-names-"):]


# ----------------------------------------------------------------------------------------------
# Without namespaces
# ----------------------------------------------------------------------------------------------
def test_the_capture_rows_stop_at_each_attempts_answer():
    home6, home4 = (namelab.HOME["ipv6"], 40000), (namelab.HOME["ipv4"], 40001)
    www6, www4 = (V6, 8080), (V4, 8080)
    frames = [
        Frame(1_000_000, True, tcp6(home6, www6, "SYN", 7)),
        Frame(2_000_000, False, tcp6(www6, home6, "RST,ACK", 0, 8)),
        Frame(3_000_000, True, tcp(home4, www4, "SYN", 100, mss=1460)),
        Frame(4_000_000, False, tcp(www4, home4, "SYN,ACK", 900, 101, mss=1460)),
        Frame(5_000_000, True, tcp(home4, www4, "ACK", 101, 901)),
        Frame(6_000_000, True, tcp(home4, www4, "FIN,ACK", 101, 901)),  # the connection's end: not shown
    ]
    rows = namelab._rows(tcp_packets(frames, 8080), neighbour_messages(frames), 1_000_000)
    assert [(r["t_ms"], r["outgoing"], r["what"], r["to"]) for r in rows] == [
        (0.0, True, "SYN", "[2001:db8:1::80]:8080"), (1.0, False, "RST,ACK", "[2001:db8:1::80]:8080"),
        (2.0, True, "SYN", "192.168.1.80:8080"), (3.0, False, "SYN,ACK", "192.168.1.80:8080"),
        (4.0, True, "ACK", "192.168.1.80:8080")]


def test_homes_hosts_file_lists_ipv4_first_and_only_lab_addresses():
    files = namelab.etc_files()
    assert files["hosts"] == namelab.HOSTS and "hosts: files" in files.get("nsswitch.conf", "hosts: files")
    lines = [line.split() for line in namelab.HOSTS.splitlines() if not line.startswith("#")]
    assert lines == [["127.0.0.1", "localhost"], ["::1", "localhost"], [V4, namelab.NAME], [V6, namelab.NAME]]
    assert set(files) <= {"hosts", "nsswitch.conf", "resolv.conf", "gai.conf"}


def test_the_recording_holds_what_the_notebook_says():
    refused, silent = namelab.load_recording("refused"), namelab.load_recording("silent")
    for run in (refused, silent):
        e = run.evidence
        assert not run.live and run.recorded.startswith("on ")
        assert e["answers"] == ANSWERS  # IPv6 first, although the file lists IPv4 first
        assert e["hosts"][2:] == [f"{V4}\t{namelab.NAME}", f"{V6}\t{namelab.NAME}"]
        assert e["missing"] == "socket.gaierror: [Errno -2] Name or service not known" and e["dns_packets"] == 0
        assert e["listening"] == ["AF_INET", V4] and e["ipv4_handshake"] == HANDSHAKE
        assert e["attempts"][1] == ["AF_INET", V4, "connected", None] and e["accepted_from"] == namelab.HOME["ipv4"]
        lines = run.lines()
        assert lines[0].startswith("RECORDING of this demo, run live on ") and all("\n" not in x for x in lines)
        port = run.measured["port"]
        assert f"  2. {V4}:{port}" in "\n".join(lines)
    assert refused.evidence["attempts"][0] == ["AF_INET6", V6, "ConnectionRefusedError", "ECONNREFUSED"]
    assert refused.evidence["ipv6_segments"] == ["home SYN", "www RST,ACK"] and not refused.evidence["dropped_ipv6"]
    assert silent.evidence["attempts"][0] == ["AF_INET6", V6, "TimeoutError", None]
    assert silent.evidence["ipv6_segments"] == ["home SYN"] and silent.evidence["dropped_ipv6"]  # never an answer
    m = silent.measured
    assert m["attempt_timeout_s"] == namelab.ATTEMPT_TIMEOUT and m["dropped_by_www"] == m["ipv6_syns"] >= 1
    assert m["rule"] == f"ip6 daddr {V6} tcp dport {m['port']}"
    text = "\n".join(refused.lines())
    assert f"home -> SYN      to [{V6}]:{refused.measured['port']}" in text
    assert f"home <- RST,ACK  from [{V6}]:{refused.measured['port']}" in text
    assert "home -> IPv6 neighbour solicitation: who has 2001:db8:1::80?" in text
    assert f"its deadline being {namelab.ATTEMPT_TIMEOUT * 1000:.0f} ms" in "\n".join(silent.lines())


def test_where_no_lab_can_be_built_each_demo_says_why_in_one_line_and_shows_the_recording(monkeypatch, capsys):
    assert_a_refusal_is_one_line_then_each_recording(namelab, ['refused', 'silent'], monkeypatch, capsys)


def test_a_live_run_that_fails_shows_the_recording_and_says_so(monkeypatch, capsys):
    assert_a_failed_live_run_shows_the_recording(namelab, 'silent', monkeypatch, capsys)


def test_the_lab_cells_are_locked_the_same_in_the_release_and_use_no_learner_code():
    solution, release = sources_by_grade_id(solution_of(ASSIGNMENT)), sources_by_grade_id(release_of(solution_of(ASSIGNMENT)))
    nb = nbformat.read(release_of(solution_of(ASSIGNMENT)), as_version=4)
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in nb.cells if c.metadata.get("nbgrader")}
    order = list(meta)
    learner = ("connect_any", "http_get", "serve_echo_buffered")
    module = Path(namelab.__file__).read_text()
    for gid in ("lab-names-text", *LAB_CELLS, "lab-names-silent-text", "lab-names-explained"):
        assert release[gid] == solution[gid] and meta[gid]["locked"] and not meta[gid]["grade"] and not meta[gid]["solution"]
    for gid in LAB_CELLS:
        assert not any(f"{name}(" in release[gid] or f"{name}(" in module for name in learner)
    # after exercise 1's graded cells, before exercise 2
    assert order.index("connect-any-tries-every-address") < order.index("lab-names-text") < order.index("ex2-text")


# ----------------------------------------------------------------------------------------------
# A live lab, in this process
# ----------------------------------------------------------------------------------------------
def test_a_live_run_gives_the_recorded_evidence(lab_here):
    before = {t.ident for t in threading.enumerate()}
    with open("/etc/hosts") as f:
        machine_hosts = f.read()
    for name in ("refused", "silent"):
        run = namelab.live(name)
        assert run.live and run.evidence == namelab.load_recording(name).evidence, name
        assert run.capture and all("\n" not in line for line in run.lines())
    with open("/etc/hosts") as f:
        assert f.read() == machine_hosts  # the hosts file was home's process's own
    left = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not left, f"threads left running after the demos: {left}"


# ----------------------------------------------------------------------------------------------
# The notebook's lab cells, run as an ordinary user, live or refused
# ----------------------------------------------------------------------------------------------
SETUP = keeping_runs('namelab', ("refused", "silent"))


def test_the_notebook_lab_cells_run_live_as_an_ordinary_user(as_user, lab_here):
    sources = {gid: sources_by_grade_id(solution_of(ASSIGNMENT))[gid] for gid in LAB_CELLS}
    _, result, stderr = as_user.run_cells(sources, SETUP, extra=KEPT_RUNS)
    assert [c["error"] for c in result["cells"].values()] == [None, None] and not stderr.strip(), (result["cells"], stderr[-2000:])
    printed = {gid: c["lines"] for gid, c in result["cells"].items()}
    for gid, run in zip(LAB_CELLS, result["extra"]):
        assert run["live"] and not run["why"], (gid, run["why"])
        assert printed[gid][0].startswith("live: a lab network built just now (home 192.168.1.2 2001:db8:1::2 -- one link -- www ")
        assert run["evidence"] == namelab.load_recording(demo_of(gid)).evidence, gid
    assert printed["lab-names-refused"][7:9] == ["  AF_INET6  2001:db8:1::80", "  AF_INET   192.168.1.80"]
    assert result["seconds"] < 30


def test_where_the_lab_is_refused_each_cell_prints_one_line_and_the_recording(ordinary_user):
    sources = {gid: sources_by_grade_id(solution_of(ASSIGNMENT))[gid] for gid in LAB_CELLS}
    assert_refused_cells_show_each_recording(ordinary_user, namelab, sources, demo_of)


@pytest.mark.notebooks
def test_the_blank_release_runs_its_lab_cells_without_an_error():
    from autograder.execute import cell_seconds, execute

    started = time.monotonic()
    nb, _ = execute(release_of(solution_of(ASSIGNMENT)), timeout=60)
    shown = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in LAB_CELLS}
    assert set(shown) == set(LAB_CELLS)
    for gid, cell in shown.items():
        assert not [o for o in cell.outputs if o.get("output_type") == "error"], gid
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        first = text.splitlines()[0]
        assert first.startswith("live: ") or (first.startswith("no lab network here:") and not IN_CI), (gid, first)
        assert cell_seconds(cell) < 15, f"{gid} took {cell_seconds(cell):.1f} s"
    print(f"blank release of {ASSIGNMENT}: {time.monotonic() - started:.1f} s")
