"""Retransmission, congestion control and flow control on a real link: assignment 05's lab demos.

Loopback never loses a segment and has an MTU of 65,536, so TCP's repairs never show there. Each
demo here builds the course's small lab network (course.netlab.home_network: home 192.168.1.2 --
router (NAT) -- server 198.51.100.10, every link with an MTU of 1500), captures on home's eth0,
makes the link from home lose *chosen* packets (the 3rd TCP segment with data, never "10 %"), and
reads TCP_INFO of home's socket. home_network turns off Linux's tail loss probe
(net.ipv4.tcp_early_retrans = 0, RFC 8985), which would resend a lost last segment a few
milliseconds later, before the RTO, and on a busy machine make the count of retransmissions depend
on timing:

- `handshake()`: the SYN and SYN+ACK each announce MSS 1460 (1500 - 20 IP - 20 TCP); with the
  12-byte timestamp option in every segment, a full segment carries 1448 bytes;
- `lost_segment()`: the initial RTO of 1 s (TCP_INFO of a socket whose SYN is unanswered), then
  the 3rd of three data segments lost, resent when the RTO (200 ms + the RTT) runs out;
- `backoff()`: the same segment lost every time, with tcp_retries2 = 1 in home: the RTO doubles
  after each expiry, and the connection gives up (ETIMEDOUT) when Linux's rule says;
- `congestion()`: the 3rd of ten segments lost: the duplicate ACKs repair it without a timeout,
  and CUBIC lowers ssthresh and cwnd (congestion control: the sender's estimate of the network);
- `zero_window()`: a receiver that does not read closes its window (flow control: the receiver's
  own buffer), and the sender probes it with backed-off zero-window probes.

Each returns a `LabRun` (course.netlab.lesson's, the same for every lab lesson): `evidence` (what
neither timing nor port numbers change: the same in a live run and in the recording, which the
tests compare), `measured` (times and TCP_INFO figures of this run), the captured segments with
relative numbers, and whether it ran live. Where no lab can be built (SetupError: user namespaces
refused, as on Binder and in the grading sandbox), or the live run fails, it returns the recording
of the same demo (course/data/lab-retransmission.json, made by `record()`: `python -m
course.retransmission record`), and `print()` first says why in one line. A refusal is remembered
for the rest of the process, so later demos do not try again.

`linux_timers()` needs no lab: it reads the retransmission sysctls and applies the kernel's rule
(net/ipv4/tcp_timer.c: tcp_model_timeout and retransmits_timed_out): tcp_retries2 = 15 is a time
budget of 924.6 s, tcp_syn_retries = 6 one of 127 s, and TCP gives up at the first expiry of its
retransmission timer past that budget.

The link loses packets by course.netlab.Loss (`Loss.packets_from(n)`: the nth and every one after
it); TCP_INFO is course.kernel.tcp_info (ca_state, backoff, probes, unacked, snd_ssthresh, snd_cwnd).
"""
from __future__ import annotations

import errno
import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from course.capture import Segment, relative
from course.deadline import Deadline, wait_for
from course.errors import PeerError
from course.kernel import TcpInfo, tcp_info
from course.kernel.tcpinfo import TCP_INFINITE_SSTHRESH
from course.netlab import lesson
from course.netlab.demo import HOME, SERVER, home_network
from course.netlab.rules import Loss

__all__ = [
    "RECORDING",
    "MTU",
    "IP_HEADER",
    "TCP_HEADER",
    "TIMESTAMP_OPTION",
    "TCP_RTO_MIN_MS",
    "TCP_RTO_MAX_MS",
    "TCP_TIMEOUT_INIT_MS",
    "INFINITE_SSTHRESH",
    "CONGESTION_CONTROL",
    "model_timeout_ms",
    "give_up_schedule",
    "linux_timers",
    "LabRun",
    "DEMOS",
    "handshake",
    "lost_segment",
    "backoff",
    "congestion",
    "zero_window",
    "live",
    "load_recording",
    "record",
    "forget_refusal",
    "main",
]

RECORDING = lesson.DATA / "lab-retransmission.json"
MTU = 1500
IP_HEADER, TCP_HEADER = 20, 20  # bytes, without options
TIMESTAMP_OPTION = 12  # the 10-byte timestamp option and two NOPs, in every segment once agreed in the SYNs
# include/net/tcp.h: the RTO's floor and ceiling, and the RTO of a SYN before any RTT is measured
TCP_RTO_MIN_MS, TCP_RTO_MAX_MS, TCP_TIMEOUT_INIT_MS = 200, 120_000, 1_000
INFINITE_SSTHRESH = TCP_INFINITE_SSTHRESH  # no loss yet: slow start has no ceiling
CONGESTION_CONTROL = "cubic"  # Linux's default on most distributions; this machine's may differ
TIMEOUT = 10.0  # seconds: the deadline of every blocking step of a demo
TRANSFER_SEGMENTS = {"lost_segment": 3, "backoff": 3, "congestion": 10}
ZERO_WINDOW_RCVBUF = 4096  # asked for by the receiver; Linux doubles it (socket(7))
ZERO_WINDOW_BYTES = 32 * 1024
ZERO_WINDOW_PROBES = 2
BACKOFF_RETRIES2 = 1  # tcp_retries2 in the lab's home host: a budget of 0.6 s instead of 924.6 s

_fallback = lesson.Fallback(remember_refusal=True, failed_runs=True)


# ----------------------------------------------------------------------------------------------
# Linux's rule for giving up (no lab)
# ----------------------------------------------------------------------------------------------
def model_timeout_ms(retries: int, rto_base_ms: int, rto_max_ms: int = TCP_RTO_MAX_MS) -> int:
    """tcp_model_timeout (net/ipv4/tcp_timer.c): how long `retries` retransmissions take when the
    timer starts at `rto_base_ms` and doubles up to `rto_max_ms`. tcp_retries2 = 15 with 200 ms:
    0.2 + 0.4 + ... + 102.4 s (ten doublings) + 6 x 120 s = 924.6 s."""
    thresh = (rto_max_ms // rto_base_ms).bit_length() - 1  # ilog2
    if retries <= thresh:
        return ((2 << retries) - 1) * rto_base_ms
    return ((2 << thresh) - 1) * rto_base_ms + (retries - thresh) * rto_max_ms


def give_up_schedule(retries: int, first_rto_ms: int, *, syn: bool = False, linear: int = 0,
                     rto_max_ms: int = TCP_RTO_MAX_MS) -> dict:
    """When Linux retransmits an unanswered segment and when it gives up, by its own rule: each time
    the timer expires, TCP gives up if the time since the start is at least the budget
    (model_timeout_ms of `retries`, from 200 ms for data, from 1 s for a SYN), else it retransmits
    and doubles the timer (a SYN keeps 1 s for its first `linear` + 1 expiries: Linux >= 6.5's
    tcp_syn_linear_timeouts). The start is the first SYN, or a data segment's first
    retransmission. Times in ms from the first transmission."""
    budget = model_timeout_ms(retries, TCP_TIMEOUT_INIT_MS if syn else TCP_RTO_MIN_MS, rto_max_ms)
    t, rto, sent, expiries = 0, first_rto_ms, [], 0
    while True:
        t += rto
        expiries += 1
        start = 0 if syn else (sent[0] if sent else None)
        if start is not None and sent and t - start >= budget:
            return {"retries": retries, "budget_ms": budget, "retransmissions_ms": sent, "gives_up_ms": t}
        sent.append(t)
        if not (syn and expiries <= linear):
            rto = min(2 * rto, rto_max_ms)


def _sysctl(name: str) -> int | None:
    try:
        with open(f"/proc/sys/net/ipv4/{name}") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def linux_timers(first_rto_ms: int = TCP_RTO_MIN_MS + 4) -> list[str]:
    """Lines for the notebook: this machine's retransmission sysctls and what Linux's rule makes of
    them. `first_rto_ms`: the first RTO of a data segment (200 ms plus the smoothed RTT, rounded up
    to a clock tick; the lab measures it)."""
    found = {n: _sysctl(n) for n in ("tcp_retries1", "tcp_retries2", "tcp_syn_retries", "tcp_syn_linear_timeouts")}
    defaults = {"tcp_retries1": 3, "tcp_retries2": 15, "tcp_syn_retries": 6, "tcp_syn_linear_timeouts": 0}
    value = {n: found[n] if found[n] is not None else defaults[n] for n in found}
    shown = {n: f"{value[n]}" + ("" if found[n] is not None else " (not readable here: Linux's default)") for n in found}
    r1 = model_timeout_ms(value["tcp_retries1"], TCP_RTO_MIN_MS)
    data = give_up_schedule(value["tcp_retries2"], first_rto_ms)
    syn = give_up_schedule(value["tcp_syn_retries"], TCP_TIMEOUT_INIT_MS, syn=True, linear=value["tcp_syn_linear_timeouts"])
    classic = give_up_schedule(value["tcp_syn_retries"], TCP_TIMEOUT_INIT_MS, syn=True)
    lines = [
        f"net.ipv4.tcp_retries1 = {shown['tcp_retries1']}: after {r1 / 1000:g} s of retransmissions (the time "
        f"{value['tcp_retries1']} take from 200 ms) Linux asks IP to check the route again; it goes on retransmitting",
        f"net.ipv4.tcp_retries2 = {shown['tcp_retries2']}: a budget of {data['budget_ms'] / 1000:g} s from the first "
        f"retransmission; with a first RTO of {first_rto_ms} ms, {len(data['retransmissions_ms'])} retransmissions, "
        f"then ETIMEDOUT {data['gives_up_ms'] / 1000:.1f} s after the segment was first sent",
        f"net.ipv4.tcp_syn_retries = {shown['tcp_syn_retries']}: a budget of {syn['budget_ms'] / 1000:g} s from the first SYN; "
        f"{len(syn['retransmissions_ms'])} SYN retransmissions at "
        f"{', '.join(f'{x / 1000:g}' for x in syn['retransmissions_ms'])} s, connect() fails at {syn['gives_up_ms'] / 1000:g} s",
    ]
    if value["tcp_syn_linear_timeouts"]:
        lines.append(f"net.ipv4.tcp_syn_linear_timeouts = {shown['tcp_syn_linear_timeouts']} (Linux >= 6.5): the first SYNs "
                     f"are resent every second; with plain doubling (0) it would be {len(classic['retransmissions_ms'])} "
                     f"SYN retransmissions and connect() failing at {classic['gives_up_ms'] / 1000:g} s")
    return lines


# ----------------------------------------------------------------------------------------------
# What the demos show
# ----------------------------------------------------------------------------------------------
def _segment_rows(segments: list[Segment], notes: dict[int, str] | None = None, t0: float = 0.0) -> list[str]:
    notes = notes or {}
    return [f"{(s.t - t0) * 1000:9.1f} ms  {s}" + (f"   <- {notes[i]}" if i in notes else "") for i, s in enumerate(segments)]


def _data(segments: list[Segment], sender: str = "client") -> list[tuple[int, Segment]]:
    return [(i, s) for i, s in enumerate(segments) if s.sender == sender and s.length > 0]


def _copies(segments: list[Segment], seq: int) -> list[int]:
    """Indexes of the client's segments that carry data from relative sequence number `seq`."""
    return [i for i, s in _data(segments) if s.seq == seq]


# ----------------------------------------------------------------------------------------------
# The lab, the sockets, the capture
# ----------------------------------------------------------------------------------------------
def _sender(host) -> tuple[socket.socket, str]:
    """A TCP socket of `host` with CUBIC when this kernel lets us choose it (the owner of the lab's
    user namespace may), else the kernel's default; its name."""
    sock = host.socket()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, CONGESTION_CONTROL.encode())
    except OSError:
        pass
    return sock, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()


def _connect(net, rcvbuf: int | None = None):
    """A listener on the server (port 0), home's socket connected to it, the accepted socket."""
    listener = net.host("server").socket()
    if rcvbuf is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    listener.bind((SERVER, 0))
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    client, cc = _sender(net.host("home"))
    client.settimeout(TIMEOUT)
    try:
        client.connect(listener.getsockname())
        conn, _ = listener.accept()
    except TimeoutError:
        raise PeerError(f"home could not connect to the lab server {listener.getsockname()} within {TIMEOUT} s") from None
    conn.settimeout(TIMEOUT)
    return listener, client, conn, cc


def _read_exactly(conn: socket.socket, size: int) -> None:
    got = 0
    while got < size:
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise PeerError(f"the lab server received {got} of the {size} bytes home sent, then the end of the stream")
        got += len(chunk)


def _wait_info(sock: socket.socket, test, what: str, timeout: float = TIMEOUT) -> TcpInfo:
    return wait_for(lambda: (lambda i: i if test(i) else None)(tcp_info(sock)), timeout,
                    lambda: f"home's socket did not reach '{what}' within {timeout} s: TCP_INFO says {tcp_info(sock)}",
                    error=PeerError)


def _segments(cap) -> list[Segment]:
    from course.netlab.pcap import tcp_segments

    segments = relative(tcp_segments(cap.frames))
    if len(segments) < 3:
        raise PeerError(f"the capture on home's eth0 holds {len(segments)} segments of the connection, fewer than a handshake")
    return segments


# ----------------------------------------------------------------------------------------------
# The demos: each _run_X(net) returns (evidence, measured, segments); each _show_X(run) its lines
# ----------------------------------------------------------------------------------------------
def _run_handshake(net) -> tuple[dict, dict, list[Segment]]:
    size = 4000
    with net.host("home").capture("eth0") as cap:
        listener, client, conn, _ = _connect(net)
        with listener, client, conn:
            client.sendall(bytes(size))
            _read_exactly(conn, size)
            info = tcp_info(client)
    segments = _segments(cap)
    syn, synack, third = segments[:3]
    data = [s for _, s in _data(segments)]
    evidence = {
        "handshake": [s.flags.replace(",", "+") for s in (syn, synack, third)],
        "handshake_numbers": [[s.seq, s.ack] for s in (syn, synack, third)],
        "mtu": MTU,
        "mss_announced": {"client": syn.mss, "server": synack.mss},
        "header_bytes": {"SYN": syn.header_length, "SYN+ACK": synack.header_length, "data": data[0].header_length},
        "data_lengths": [s.length for s in data],
        "snd_mss": info.snd_mss,
        "advmss": info.advmss,
    }
    return evidence, {"rtt_us": info.rtt_us}, segments


def _show_handshake(run: LabRun) -> list[str]:
    e = run.evidence
    mss = e["mss_announced"]
    return _segment_rows(run.segments) + [
        f"MSS announced in the SYN (home): {mss['client']}, in the SYN+ACK (server): {mss['server']}; "
        f"MTU {e['mtu']} - {IP_HEADER} (IP header) - {TCP_HEADER} (TCP header) = {e['mtu'] - IP_HEADER - TCP_HEADER}",
        f"TCP header: SYN {e['header_bytes']['SYN']} bytes, SYN+ACK {e['header_bytes']['SYN+ACK']}, "
        f"data {e['header_bytes']['data']} (20 + the {TIMESTAMP_OPTION}-byte timestamp option)",
        f"{sum(e['data_lengths'])} bytes sent in segments of {e['data_lengths']} bytes; TCP_INFO: snd_mss {e['snd_mss']}, "
        f"advmss {e['advmss']} (= {mss['client']} - {TIMESTAMP_OPTION})",
    ]


def _transfer_lost(net, segments_to_send: int, loss: Loss, wait_acked: bool) -> dict:
    """home sends `segments_to_send` full segments to the server while the link loses `loss`."""
    link = net.links[0]
    link.set_loss(loss, toward="router")
    with net.host("home").capture("eth0") as cap:
        listener, client, conn, cc = _connect(net)
        with listener, client, conn:
            before = tcp_info(client)
            mss = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            client.sendall(bytes(segments_to_send * mss))
            _read_exactly(conn, segments_to_send * mss)
            after = _wait_info(client, lambda i: i.unacked == 0, "everything acknowledged") if wait_acked else tcp_info(client)
    return {"segments": _segments(cap), "before": before, "after": after, "cc": cc,
            "lost": link.dropped(toward="router"), "mss": mss}


def _run_lost_segment(net) -> tuple[dict, dict, list[Segment]]:
    home, link = net.host("home"), net.links[0]
    # a SYN the link loses: before any RTT is measured, the RTO is the initial one
    link.set_loss(Loss.packet(1, of="tcp"), toward="router")
    with net.host("server").socket() as listener, home.socket() as syn_sent:
        listener.bind((SERVER, 0))
        listener.listen(1)
        syn_sent.setblocking(False)
        code = syn_sent.connect_ex(listener.getsockname())
        if code != errno.EINPROGRESS:
            raise PeerError(f"a non-blocking connect in the lab returned {errno.errorcode.get(code, code)}, not EINPROGRESS")
        first = _wait_info(syn_sent, lambda i: i.unacked == 1, "its SYN sent")
        state = tcp_info(syn_sent).state
    r = _transfer_lost(net, TRANSFER_SEGMENTS["lost_segment"], Loss.packet(3, of="tcp-data"), wait_acked=True)
    segments, after = r["segments"], r["after"]
    data = _data(segments)
    lost_seq = data[2][1].seq
    copies = _copies(segments, lost_seq)
    acks_before = [s for s in segments[: copies[-1]] if s.sender == "server" and s.ack == lost_seq and s.length == 0]
    evidence = {
        "initial_rto_ms": first.rto_us // 1000,
        "state_while_the_syn_is_unanswered": state,
        "data_segments": [[s.seq, s.length] for _, s in data],
        "retransmitted_seq": [segments[i].seq for i in copies[1:]],
        "lost_by_the_link": r["lost"],
        "total_retrans": after.total_retrans,
        "duplicate_acks_before_the_retransmission": len(acks_before) - 1,  # the first of them acknowledged new data
        "congestion_control": r["cc"],
        "cwnd_ssthresh_before": [r["before"].snd_cwnd, r["before"].snd_ssthresh],
        "cwnd_ssthresh_after": [after.snd_cwnd, after.snd_ssthresh],
    }
    measured = {
        "rtt_us": r["before"].rtt_us,
        "rto_ms_before_the_loss": r["before"].rto_us / 1000,
        "retransmitted_after_ms": round((segments[copies[1]].t - segments[copies[0]].t) * 1000, 1),
    }
    return evidence, measured, segments


def _ssthresh(value: int) -> str:
    return "infinite (no loss yet)" if value == INFINITE_SSTHRESH else str(value)


def _show_lost_segment(run: LabRun) -> list[str]:
    e, m, segs = run.evidence, run.measured, run.segments
    copies = _copies(segs, e["retransmitted_seq"][0]) if e["retransmitted_seq"] else []
    notes = {copies[0]: "lost on the link (the router never got it)"} if copies else {}
    notes.update({i: "retransmission" for i in copies[1:]})
    (cw0, ss0), (cw1, ss1) = e["cwnd_ssthresh_before"], e["cwnd_ssthresh_after"]
    return [
        f"a SYN the link lost: home's socket in {e['state_while_the_syn_is_unanswered']}, TCP_INFO rto = "
        f"{e['initial_rto_ms']} ms (no RTT measured yet: the initial RTO)",
    ] + _segment_rows(segs, notes) + [
        f"the link lost {e['lost_by_the_link']} segment; home resent seq={e['retransmitted_seq']} "
        f"{m['retransmitted_after_ms']} ms after the original, with {e['duplicate_acks_before_the_retransmission']} "
        f"duplicate ACKs before it: the retransmission timer ran out",
        f"TCP_INFO before the loss: rtt {m['rtt_us']} us (smoothed), rto {m['rto_ms_before_the_loss']:g} ms; after: "
        f"total_retrans {e['total_retrans']}",
        f"{e['congestion_control']}: cwnd {cw0} segments, ssthresh {_ssthresh(ss0)} before; after the timeout "
        f"cwnd {cw1}, ssthresh {_ssthresh(ss1)}",
    ]


def _run_backoff(net) -> tuple[dict, dict, list[Segment]]:
    home, link = net.host("home"), net.links[0]
    home.sysctl("net.ipv4.tcp_retries2", BACKOFF_RETRIES2)
    link.set_loss(Loss.packets_from(3, of="tcp-data"), toward="router")
    n = TRANSFER_SEGMENTS["backoff"]
    with home.capture("eth0") as cap:
        listener, client, conn, _ = _connect(net)
        with listener, client, conn:
            mss = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            started = time.monotonic()
            client.sendall(bytes(n * mss))
            rtos = [_wait_info(client, lambda i: i.unacked == 1, "the first two segments acknowledged").rto_us]
            expired = []
            for k in (1, 2):
                expired.append(_wait_info(client, lambda i, k=k: i.total_retrans >= k, f"{k} retransmission(s)"))
                rtos.append(expired[-1].rto_us)
            try:
                client.recv(16)
                raise PeerError("the lab server answered although the link lost every data segment after the 2nd")
            except TimeoutError as exc:
                if exc.errno != errno.ETIMEDOUT:
                    raise PeerError(f"home's connection did not give up within {TIMEOUT} s although tcp_retries2 is "
                                    f"{BACKOFF_RETRIES2} in home") from None
                error = errno.errorcode[exc.errno]
            waited = time.monotonic() - started
    segments = _segments(cap)
    data = _data(segments)
    copies = _copies(segments, data[2][1].seq)
    times = [round((segments[i].t - segments[copies[0]].t) * 1000, 1) for i in copies]
    predicted = give_up_schedule(BACKOFF_RETRIES2, round(rtos[0] / 1000))
    evidence = {
        "tcp_retries2": BACKOFF_RETRIES2,
        "budget_ms": predicted["budget_ms"],
        "retransmissions": len(copies) - 1,
        "predicted_retransmissions": len(predicted["retransmissions_ms"]),
        "rto_doubles": [rtos[k + 1] / rtos[k] for k in range(len(rtos) - 1)],
        "cwnd_after_each_expiry": [i.snd_cwnd for i in expired],
        "state_after_each_expiry": [i.ca_state for i in expired],
        "error": error,
    }
    measured = {"rto_ms": [r / 1000 for r in rtos], "sent_at_ms": times, "gave_up_after_s": round(waited, 3),
                "predicted_ms": predicted["retransmissions_ms"] + [predicted["gives_up_ms"]]}
    return evidence, measured, segments


def _show_backoff(run: LabRun) -> list[str]:
    e, m = run.evidence, run.measured
    sent = m["sent_at_ms"]
    gaps = [round(b - a, 1) for a, b in zip(sent, sent[1:])]
    pred = m["predicted_ms"]
    return [
        f"tcp_retries2 = {e['tcp_retries2']} in home only: a budget of {e['budget_ms']} ms from the first retransmission",
        f"the lost segment was sent at {', '.join(f'{t:g}' for t in sent)} ms: gaps of {', '.join(f'{g:g}' for g in gaps)} ms",
        f"TCP_INFO rto: {' -> '.join(f'{r:g}' for r in m['rto_ms'])} ms (each expiry doubles it: x{e['rto_doubles']}); "
        f"cwnd after each expiry: {', '.join(map(str, e['cwnd_after_each_expiry']))} "
        f"(state {', '.join(e['state_after_each_expiry'])})",
        f"after {e['retransmissions']} retransmissions the connection gave up: recv() raised {e['error']} "
        f"({os.strerror(getattr(errno, e['error']))}) {m['gave_up_after_s']:g} s after sendall()",
        f"Linux's rule, from the first RTO of {m['rto_ms'][0]:g} ms: retransmissions at {', '.join(f'{t:g}' for t in pred[:-1])} ms, "
        f"gives up at {pred[-1]:g} ms ({e['predicted_retransmissions']} retransmissions)",
    ]


def _run_congestion(net) -> tuple[dict, dict, list[Segment]]:
    r = _transfer_lost(net, TRANSFER_SEGMENTS["congestion"], Loss.packet(3, of="tcp-data"), wait_acked=True)
    segments, before, after = r["segments"], r["before"], r["after"]
    data = _data(segments)
    lost_seq = data[2][1].seq
    copies = _copies(segments, lost_seq)
    dupacks = [s for s in segments[: copies[-1]] if s.sender == "server" and s.ack == lost_seq and s.length == 0][1:]
    evidence = {
        "congestion_control": r["cc"],
        "data_segments": len({s.seq for _, s in data}),
        "retransmitted_seq": [segments[i].seq for i in copies[1:]],
        "lost_by_the_link": r["lost"],
        "at_least_3_duplicate_acks": len(dupacks) >= 3,
        "repaired_before_the_rto": after.backoff == 0 and (segments[copies[-1]].t - segments[copies[0]].t) * 1e6 < before.rto_us,
        "cwnd_ssthresh_before": [before.snd_cwnd, before.snd_ssthresh],
        "cwnd_ssthresh_after": [after.snd_cwnd, after.snd_ssthresh],
        "ca_state_after": after.ca_state,
    }
    measured = {"duplicate_acks": len(dupacks), "repaired_after_ms": round((segments[copies[-1]].t - segments[copies[0]].t) * 1000, 2),
                "rto_ms": before.rto_us / 1000}
    return evidence, measured, segments


def _show_congestion(run: LabRun) -> list[str]:
    e, m, segs = run.evidence, run.measured, run.segments
    copies = _copies(segs, e["retransmitted_seq"][0])
    notes = {copies[0]: "lost on the link", copies[-1]: "fast retransmission"}
    notes.update({i: "duplicate ACK" for i, s in enumerate(segs[: copies[-1]])
                  if s.sender == "server" and s.ack == e["retransmitted_seq"][0] and s.length == 0})
    notes.pop(min((i for i in notes if notes[i] == "duplicate ACK"), default=-1), None)  # the first one acknowledged new data
    (cw0, ss0), (cw1, ss1) = e["cwnd_ssthresh_before"], e["cwnd_ssthresh_after"]
    return _segment_rows(segs, notes) + [
        f"{m['duplicate_acks']} duplicate ACKs; the lost segment was resent {m['repaired_after_ms']:g} ms after the original, "
        f"long before the RTO of {m['rto_ms']:g} ms",
        f"{e['congestion_control']}: before, cwnd {cw0} segments and ssthresh {_ssthresh(ss0)}; after the loss, "
        f"cwnd {cw1} and ssthresh {_ssthresh(ss1)} (state {e['ca_state_after']})",
    ]


def _run_zero_window(net) -> tuple[dict, dict, list[Segment]]:
    with net.host("home").capture("eth0") as cap:
        listener, client, conn, _ = _connect(net, rcvbuf=ZERO_WINDOW_RCVBUF)
        with listener, client, conn:
            rcvbuf = conn.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            data = memoryview(bytes(ZERO_WINDOW_BYTES))
            client.setblocking(False)
            sent = _push(client, data, 0)
            # the receiver reads nothing: its window closes, and home probes it
            _wait_info(client, lambda i: i.backoff >= ZERO_WINDOW_PROBES, f"{ZERO_WINDOW_PROBES} zero-window probes")
            got = 0
            deadline = Deadline(TIMEOUT)
            while got < len(data):
                readable, writable, _ = select.select([conn], [client] if sent < len(data) else [], [], deadline.remaining())
                if not readable and not writable:
                    raise PeerError(f"the lab server read {got} of {len(data)} bytes within {TIMEOUT} s after its window reopened")
                if writable:
                    sent = _push(client, data, sent)
                if readable:
                    chunk = conn.recv(1 << 16)
                    if not chunk:
                        raise PeerError(f"the lab server got the end of the stream after {got} bytes")
                    got += len(chunk)
            done = tcp_info(client)
    segments = _segments(cap)
    zero, reopened, probes = _zero_window_segments(segments)
    expected = segments[zero].ack
    evidence = {
        "rcvbuf_asked": ZERO_WINDOW_RCVBUF,
        "rcvbuf_got": rcvbuf,
        "probes": len(probes),
        "probe_length": sorted({segments[i].length for i in probes}),
        "delivered": got,
        "total_retrans": done.total_retrans,
    }
    t0 = segments[zero].t
    measured = {"accepted_before_the_window_closed": expected - 1, "probes_ms_after_the_zero_window":
                [round((segments[i].t - t0) * 1000, 1) for i in probes]}
    return evidence, measured, segments


def _zero_window_segments(segments: list[Segment]) -> tuple[int, int, list[int]]:
    """Where the server's window closed, where it reopened, and the client's probes in between:
    segments without payload one below the next byte the server expects (how Linux probes)."""
    zero = next((i for i, s in enumerate(segments) if s.sender == "server" and s.window == 0 and s.has("ACK")), None)
    if zero is None:
        raise PeerError("the lab server never announced a zero window although it read nothing")
    reopened = next((i for i, s in enumerate(segments) if i > zero and s.sender == "server" and s.window > 0), None)
    if reopened is None:
        raise PeerError("the lab server's window never reopened after it read")
    probe_seq = (segments[zero].ack - 1) % 2**32
    probes = [i for i in range(zero + 1, reopened) if segments[i].sender == "client" and segments[i].length == 0
              and segments[i].seq == probe_seq and not segments[i].has("FIN")]
    return zero, reopened, probes


def _push(sock: socket.socket, data: memoryview, sent: int) -> int:
    try:
        while sent < len(data):
            sent += sock.send(data[sent:])
    except BlockingIOError:
        pass
    return sent


def _show_zero_window(run: LabRun) -> list[str]:
    e, m, segs = run.evidence, run.measured, run.segments
    zero, reopened, probes = _zero_window_segments(segs)
    notes = {zero: "window 0: the receiver's buffer is full", reopened: "window update: the receiver read"}
    notes.update({i: "zero-window probe" for i in probes})
    shown = range(max(0, zero - 3), min(len(segs), reopened + 3))
    rows = _segment_rows(segs, notes, t0=segs[zero].t)
    return [f"   ... {shown.start} segments before (the handshake and the first data)"] * bool(shown.start) + [
        rows[i] for i in shown
    ] + [f"   ... {len(segs) - shown.stop} more, until all {e['delivered']} bytes were delivered"] + [
        f"the receiver asked for SO_RCVBUF {e['rcvbuf_asked']} and got {e['rcvbuf_got']}; it read nothing until the sender had "
        f"sent {e['probes']} probes, each {'/'.join(map(str, e['probe_length']))} bytes long and one below the next byte expected, at "
        f"{', '.join(f'{t:g}' for t in m['probes_ms_after_the_zero_window'])} ms after the window closed",
        f"{m['accepted_before_the_window_closed']} bytes were accepted before the window closed; retransmissions: "
        f"{e['total_retrans']} (a probe is not one)",
    ]


DEMOS = {
    "handshake": (_run_handshake, _show_handshake),
    "lost_segment": (_run_lost_segment, _show_lost_segment),
    "backoff": (_run_backoff, _show_backoff),
    "congestion": (_run_congestion, _show_congestion),
    "zero_window": (_run_zero_window, _show_zero_window),
}


# ----------------------------------------------------------------------------------------------
# A demo's result; live, or else the recording
# ----------------------------------------------------------------------------------------------
@dataclass
class LabRun(lesson.LabRun):
    """One demo's result (course.netlab.lesson.LabRun), with the captured segments (relative numbers)."""

    segments: list[Segment] = field(default_factory=list)

    DEMOS = DEMOS
    DETAIL = "segments"
    LAB = f"home {HOME} -- router -- server {SERVER}, MTU {MTU}"
    MADE_BY = "course.retransmission.record"

    def __post_init__(self):
        self.segments = [s if isinstance(s, Segment) else Segment(**s) for s in self.segments]


def live(name: str) -> LabRun:
    """Run one demo now in a new lab; SetupError where no lab can be built."""
    return LabRun.run_live(name, home_network(mtu=MTU, timeout=TIMEOUT))


def load_recording(name: str, why: str = "") -> LabRun:
    """The recorded run of one demo (made live by record())."""
    return LabRun.from_recording(RECORDING, name, why)


def _demo(name: str) -> LabRun:
    return _fallback.run(lambda: live(name), lambda why: load_recording(name, why))


def forget_refusal() -> None:
    """Try a live lab again at the next demo (after the machine was fixed, say)."""
    _fallback.forget()


def handshake() -> LabRun:
    """A handshake in the lab: MSS 1460 announced by each side, 1448 bytes of payload per segment."""
    return _demo("handshake")


def lost_segment() -> LabRun:
    """The initial RTO of a SYN, then one data segment lost and resent when the RTO runs out."""
    return _demo("lost_segment")


def backoff() -> LabRun:
    """One segment lost every time: the RTO doubles, and the connection gives up (tcp_retries2 = 1)."""
    return _demo("backoff")


def congestion() -> LabRun:
    """The 3rd of ten segments lost: fast retransmit, and cwnd and ssthresh after it."""
    return _demo("congestion")


def zero_window() -> LabRun:
    """A receiver that does not read: window 0, then backed-off zero-window probes."""
    return _demo("zero_window")


def record(path: Path | None = None) -> Path:
    """Run every demo live and write the recording (maintainers)."""
    return lesson.write_recording(path or RECORDING, "course.retransmission.record(): each demo live in "
                                  "course.netlab.home_network, captured on home's eth0",
                                  {name: live(name).recorded_form() for name in DEMOS})


def main(argv: list[str] | None = None) -> int:
    return lesson.main("course.retransmission", record, argv)


if __name__ == "__main__":
    raise SystemExit(main())
