"""course.retransmission: the lab demos of assignment 05 (issue #11, phase 2).

Without namespaces: Linux's give-up rule against the times a lab measured (noted beside each case),
the TCP_INFO fields the demos read (on loopback), the recording (it shows what the notebook's prose
says), and the fallback (a refused lab, or a live run that fails, gives the recording with one line
saying why; a refusal is not tried again). With labs: every demo's evidence equals the recording's
when this process runs it (root in CI); the notebook's lab cells themselves, run by an ordinary user
(an unused uid: tests/lab_support.py), run live with the recorded evidence, and inside the
sandboxes that refuse user namespaces each prints the refusal's one line, then the recording,
within seconds. (tests/test_notebooks.py runs them in a kernel, solution and blank release, and
tests/test_autograder_samples.py in the grading sandbox.)
Where no lab can be built the lab tests are skipped, except under CI, where that is a failure.
"""
from __future__ import annotations

import errno
import socket
import time
from contextlib import contextmanager

import pytest

from course import retransmission as rt
from course.errors import PeerError, SetupError
from course.netlab import Loss
from course.netlab.pcap import tcp_segments
from lab_support import cells_where_labs_are_refused

RECORDED = {name: rt.load_recording(name) for name in rt.DEMOS}


@pytest.fixture(autouse=True)
def _no_remembered_refusal():
    rt.forget_refusal()
    yield
    rt.forget_refusal()


# ----------------------------------------------------------------------------------------------
# Without namespaces
# ----------------------------------------------------------------------------------------------
def test_the_budget_is_linuxs_model_timeout():
    assert rt.model_timeout_ms(15, 200) == 924_600  # ip-sysctl: "a hypothetical timeout of 924.6 seconds"
    assert rt.model_timeout_ms(6, 1000) == 127_000  # tcp_syn_retries: 1 + 2 + ... + 64 s
    assert rt.model_timeout_ms(3, 200) == 3_000 and rt.model_timeout_ms(1, 200) == 600
    assert rt.model_timeout_ms(8, 200) == 102_200  # ip-sysctl: RFC 1122's 100 s needs tcp_retries2 >= 8
    assert rt.model_timeout_ms(7, 200) < 100_000


@pytest.mark.parametrize("retries, first, syn, linear, sent, gives_up", [
    (1, 204, False, 0, [204, 612], 1428),  # lab: sent at 0, 207, 627 ms; ETIMEDOUT at 1.46 s
    (2, 204, False, 0, [204, 612, 1428], 3060),  # lab: 0, 207, 627, 1459 ms; ETIMEDOUT at 3.12 s
    (1, 1000, True, 4, [1000, 2000], 3000),  # lab: SYNs at 0, 1.03, 2.06 s; ETIMEDOUT at 3.08 s
    (2, 1000, True, 4, [1000, 2000, 3000, 4000, 5000], 7000),  # lab: SYNs at 0, 1.03 ... 5.12 s; 7.14 s
    (2, 1000, True, 0, [1000, 3000], 7000),  # lab: SYNs at 0, 1.02, 3.04 s; 7.11 s
    (6, 1000, True, 0, [1000, 3000, 7000, 15000, 31000, 63000], 127000),  # the classic 127 s
    (6, 1000, True, 4, [1000, 2000, 3000, 4000, 5000, 7000, 11000, 19000, 35000, 67000], 131000),  # Linux >= 6.5
])  # fmt: skip
def test_when_linux_retransmits_and_gives_up(retries, first, syn, linear, sent, gives_up):
    got = rt.give_up_schedule(retries, first, syn=syn, linear=linear)
    assert (got["retransmissions_ms"], got["gives_up_ms"]) == (sent, gives_up)


def test_tcp_retries2_15_gives_up_after_15_retransmissions_and_about_15_and_a_half_minutes():
    got = rt.give_up_schedule(15, 204)
    assert len(got["retransmissions_ms"]) == 15 and got["budget_ms"] == 924_600
    assert got["gives_up_ms"] == 928_692 and got["retransmissions_ms"][-1] == 808_692  # the RTO stays at 120 s


def test_linux_timers_say_what_this_machines_sysctls_mean(monkeypatch):
    values = {"tcp_retries1": 3, "tcp_retries2": 15, "tcp_syn_retries": 6, "tcp_syn_linear_timeouts": 4}
    monkeypatch.setattr(rt, "_sysctl", values.get)
    lines = rt.linux_timers(first_rto_ms=204)
    assert len(lines) == 4
    assert "after 3 s of retransmissions" in lines[0]
    assert "a budget of 924.6 s" in lines[1] and "15 retransmissions" in lines[1] and "928.7 s" in lines[1]
    assert "a budget of 127 s" in lines[2] and "10 SYN retransmissions" in lines[2] and "fails at 131 s" in lines[2]
    assert "6 SYN retransmissions and connect() failing at 127 s" in lines[3]
    monkeypatch.setattr(rt, "_sysctl", {**values, "tcp_syn_linear_timeouts": 0}.get)
    lines = rt.linux_timers(first_rto_ms=204)
    assert len(lines) == 3 and "6 SYN retransmissions" in lines[2] and "fails at 127 s" in lines[2]
    monkeypatch.setattr(rt, "_sysctl", lambda name: None)
    assert all("(not readable here: Linux's default)" in line for line in rt.linux_timers())


def test_tcp_info_reads_the_fields_the_demos_follow():
    """On loopback: before any loss, congestion control is Open and ssthresh infinite; a receiver
    that does not read closes its window, and the sender's persist timer probes it and backs off."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            conn, _ = listener.accept()
            with conn:
                client.sendall(b"x")
                assert conn.recv(1) == b"x"
                info = rt._wait_info(client, lambda i: i.unacked == 0, "everything acknowledged")
                assert (info.ca_state, info.snd_ssthresh, info.backoff, info.probes) == ("Open", rt.INFINITE_SSTHRESH, 0, 0)
                client.setblocking(False)
                try:
                    while True:
                        client.send(bytes(65536))
                except BlockingIOError:
                    pass  # the receiver's buffer and the sender's are full
                zero = rt._wait_info(client, lambda i: i.backoff >= 1, "a zero-window probe backed off")
                assert zero.ca_state == "Open" and zero.total_retrans == 0  # a probe is not a retransmission
                assert zero.unacked == 0 and zero.snd_ssthresh == rt.INFINITE_SSTHRESH


def test_the_recording_shows_what_the_notebook_says():
    h, lost, back, cong, zero = (RECORDED[n].evidence for n in ("handshake", "lost_segment", "backoff", "congestion", "zero_window"))
    assert h["mss_announced"] == {"client": 1460, "server": 1460} and h["mtu"] - 20 - 20 == 1460
    assert h["header_bytes"] == {"SYN": 40, "SYN+ACK": 40, "data": 32} and h["data_lengths"] == [1448, 1448, 1104]
    assert h["snd_mss"] == h["advmss"] == 1448 and h["handshake"] == ["SYN", "SYN+ACK", "ACK"]
    assert lost["initial_rto_ms"] == 1000 and lost["state_while_the_syn_is_unanswered"] == "SYN_SENT"
    assert lost["retransmitted_seq"] == [2897] and lost["duplicate_acks_before_the_retransmission"] == 0
    assert lost["lost_by_the_link"] == lost["total_retrans"] == 1 and lost["congestion_control"] == "cubic"
    assert lost["cwnd_ssthresh_before"] == [10, rt.INFINITE_SSTHRESH] and lost["cwnd_ssthresh_after"] == [2, 7]
    assert RECORDED["lost_segment"].measured["retransmitted_after_ms"] >= 200
    assert back["retransmissions"] == back["predicted_retransmissions"] == 2 and back["budget_ms"] == 600
    assert back["rto_doubles"] == [2.0, 2.0] and back["error"] == "ETIMEDOUT"
    assert back["cwnd_after_each_expiry"] == [1, 1] and back["state_after_each_expiry"] == ["Loss", "Loss"]
    assert cong["at_least_3_duplicate_acks"] and cong["repaired_before_the_rto"] and cong["retransmitted_seq"] == [2897]
    assert cong["cwnd_ssthresh_before"] == [10, rt.INFINITE_SSTHRESH] and cong["cwnd_ssthresh_after"] == [8, 8]
    assert zero["rcvbuf_got"] == 2 * zero["rcvbuf_asked"] == 8192 and zero["probes"] == 2 and zero["probe_length"] == [0]
    assert zero["delivered"] == rt.ZERO_WINDOW_BYTES and zero["total_retrans"] == 0
    for name, run in RECORDED.items():
        lines = run.lines()
        assert lines[0].startswith("RECORDING of this demo, run live on ") and len(lines) > 3, name


def test_a_refused_lab_shows_the_recording_after_one_line_and_is_not_tried_again(monkeypatch, capsys):
    calls = []
    sentence = "no lab network here: unshare(CLONE_NEWUSER | CLONE_NEWNET): Operation not permitted: refused (a test)"

    def refused(**kwargs):
        calls.append(kwargs)
        raise SetupError(sentence)

    monkeypatch.setattr(rt, "home_network", refused)
    for name in rt.DEMOS:
        run = getattr(rt, name)()
        assert not run.live and run.why == sentence and run.evidence == RECORDED[name].evidence
        run.print()
        shown = capsys.readouterr().out.splitlines()
        assert shown[0] == sentence and shown[1].startswith("RECORDING") and not any("Traceback" in x for x in shown)
    assert len(calls) == 1, "a refusal is remembered: later demos do not try to build a lab again"


def test_a_live_run_that_fails_shows_the_recording_and_says_why(monkeypatch):
    @contextmanager
    def fake_lab(**kwargs):
        yield None

    def broken(net):
        raise PeerError("the lab's agent (pid 1) did not answer 'exec' within 10.0 s; the lab is closed")

    monkeypatch.setattr(rt, "home_network", fake_lab)
    monkeypatch.setitem(rt.DEMOS, "backoff", (broken, rt.DEMOS["backoff"][1]))
    run = rt.backoff()
    assert not run.live and run.why == ("the live run failed, so this is the recording: the lab's agent (pid 1) did not "
                                        "answer 'exec' within 10.0 s; the lab is closed")
    assert run.lines()[0] == run.why and run.evidence == RECORDED["backoff"].evidence
    # a failed run is not a refusal: the next demo tries a lab again
    monkeypatch.setitem(rt.DEMOS, "congestion", (broken, rt.DEMOS["congestion"][1]))
    assert rt.congestion().why.startswith("the live run failed")


# ----------------------------------------------------------------------------------------------
# Real labs: this process, then an ordinary user, then sandboxes that refuse them
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(rt.DEMOS))
def test_a_live_demo_gives_the_recorded_evidence(lab_here, name):
    run = rt.live(name)
    assert run.live and not run.why
    assert run.evidence == RECORDED[name].evidence, run.measured
    assert run.lines()[0].startswith("live: a lab network built just now")
    m = run.measured
    if name == "lost_segment":  # the timer never fires early (2 ms: it was armed at the last ACK, just before the send)
        assert m["retransmitted_after_ms"] >= m["rto_ms_before_the_loss"] - 2
    if name == "backoff":  # each copy waits at least the RTO in force, which doubles
        sent, rto = m["sent_at_ms"], m["rto_ms"]
        assert all(b - a >= r - 2 for a, b, r in zip(sent, sent[1:], rto)), (sent, rto)
        assert m["gave_up_after_s"] * 1000 >= m["predicted_ms"][-1] - 2
    if name == "zero_window":  # the persist timer backs off too: the second wait is twice an RTO of at least 200 ms
        first, second = m["probes_ms_after_the_zero_window"]
        assert first >= 200 - 2 and second - first >= 400 - 2, m


def test_a_syn_is_resent_and_given_up_as_linuxs_rule_says(lab_here):
    """tcp_syn_retries = 1 in the lab's home: every SYN lost, connect() fails when
    give_up_schedule says (this kernel's tcp_syn_linear_timeouts included)."""
    with rt.home_network() as net:
        home = net.host("home")
        home.sysctl("net.ipv4.tcp_syn_retries", 1)
        try:
            linear = int(home.read_sysctl("net.ipv4.tcp_syn_linear_timeouts"))
        except PeerError:  # before Linux 6.5
            linear = 0
        net.links[0].set_loss(Loss.packets_from(1, of="tcp"), toward="router")
        with net.host("server").socket() as listener, home.socket() as client, home.capture("eth0") as cap:
            listener.bind((rt.SERVER, 0))
            listener.listen(1)
            client.settimeout(20)
            started = time.monotonic()
            with pytest.raises(TimeoutError) as failed:
                client.connect(listener.getsockname())
            seconds = time.monotonic() - started
    assert failed.value.errno == errno.ETIMEDOUT
    syns = [s.t for s in tcp_segments(cap.frames)]
    expect = rt.give_up_schedule(1, rt.TCP_TIMEOUT_INIT_MS, syn=True, linear=linear)
    assert len(syns) == 1 + len(expect["retransmissions_ms"]), syns
    assert all(t * 1000 >= e - 2 for t, e in zip(syns[1:], expect["retransmissions_ms"])), (syns, expect)
    assert expect["gives_up_ms"] - 2 <= seconds * 1000 < expect["gives_up_ms"] + 1000, (seconds, expect)


def lab_cells() -> dict[str, str]:
    """{cell id: source} of the solution's lab cells (section 11), as the notebook runs them."""
    import nbformat

    from notebook_cases import solution_of

    nb = nbformat.read(solution_of("05-connection-life"), as_version=4)
    cells = {c.id: c.source for c in nb.cells if c.cell_type == "code" and c.id.startswith("c05-lab")}
    assert len(cells) == 6 and "from course import" in nb.cells[1].source and "retransmission" in nb.cells[1].source
    return cells


# The lab cells' own source, run by the lab user with a plain interpreter (no Jupyter there): what
# each printed, and the LabRun each demo returned (its evidence against the recording's).
SETUP = """
    from course import retransmission
    runs = {}
    for name in retransmission.DEMOS:
        setattr(retransmission, name, (lambda f, name: lambda: runs.setdefault(name, f()))(getattr(retransmission, name), name))
"""
RUNS = ("{n: {'live': r.live, 'why': r.why, 'same': r.evidence == retransmission.load_recording(n).evidence} "
        "for n, r in runs.items()}")


def test_every_lab_cell_runs_live_as_an_ordinary_user(as_user, lab_here):
    identity, r, _ = as_user.run_cells(lab_cells(), SETUP, extra=RUNS)
    assert {cid: c["error"] for cid, c in r["cells"].items()} == dict.fromkeys(lab_cells()), r["cells"]
    assert sorted(r["extra"]) == sorted(rt.DEMOS), "every demo ran once, from its cell"
    if as_user.root_mode:
        assert identity["uid"] == as_user.uid != 0
    not_live = {n: d["why"] for n, d in r["extra"].items() if not d["live"]}
    assert not not_live, f"as uid {identity['uid']}, these demos showed the recording: {not_live}"
    assert all(d["same"] for d in r["extra"].values()), r["extra"]
    for cell in r["cells"].values():
        first = cell["lines"][0]
        assert first.startswith("live: a lab network built just now") or first.startswith("net.ipv4.tcp_retries1 = "), cell


def test_where_user_namespaces_are_refused_every_lab_cell_shows_its_recording_after_one_line(ordinary_user):
    for sandbox, (reason, r) in cells_where_labs_are_refused(ordinary_user, lab_cells(), SETUP, extra=RUNS).items():
        assert sorted(r["extra"]) == sorted(rt.DEMOS), "every demo ran once, from its cell"
        assert r["seconds"] < 5, f"{sandbox}: the lab cells took {r['seconds']:.1f} s to fall back"
        assert all(not d["live"] and d["same"] for d in r["extra"].values()), (sandbox, r["extra"])
        whys = {d["why"] for d in r["extra"].values()}
        assert len(whys) == 1, (sandbox, whys)
        why = whys.pop()
        assert why.startswith("no lab network here:") and reason in why and "\n" not in why, (sandbox, why)
        for cell_id, cell in r["cells"].items():
            if cell_id == "c05-lab-06":  # Linux's rule: no lab needed, the recorded first RTO
                assert any("924.6 s" in line for line in cell["lines"]), cell
                continue
            assert cell["lines"][0] == why and cell["lines"][1].startswith("RECORDING of this demo"), (sandbox, cell["lines"][:2])
