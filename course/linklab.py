"""Short and long connections on a slow link: assignment 07's lab demos (course.netlab).

On loopback a handshake costs tens of microseconds of CPU, and nothing else. Here the course's
small lab network (course.netlab.home_network: home 192.168.1.2 -- router (NAT) -- server
198.51.100.10, MTU 1500) has every link limited to 128 kbit/s by tc's token bucket filter (tbf):
the bucket lets a burst of 3,028 bytes (two full frames) through at once, then 16,000 bytes a
second, counted as whole frames with their 14-byte Ethernet header. A segment then waits until
the bucket has earned its bytes, so a request costs, once the burst is spent, the bytes it puts
on the wire in its busier direction, divided by the rate. The server is a line echo on a lab
socket in this process; the client is the functions of section 1, `course.connections.
time_short_connections` and `time_long_connection`, run inside home with `Host.run` (every
socket they make is home's).

- `wire()`: one request on a short connection, then three on one long connection, captured on
  home's eth0, each segment labelled as assignment 05 labels them (course.capture.label_segments)
  with its size on the wire: a short connection puts 10 segments, 686 bytes, on the wire for one
  request; a long one, from its 2nd request on, 2 segments of 71 bytes.
- `times()`: 30 requests on 30 short connections, then 30 on one long connection: the time of
  each, and the bytes each request made the client send (from the capture), whose quotient by
  the rate is what the link allows (409 bytes: 25.6 ms; 71 bytes: 4.4 ms).

Each returns a `LinkRun` (course.netlab.lesson's LabRun, the same for every lab lesson): `evidence`
(what neither timing nor port numbers change: the segments of each connection and their sizes,
without the pure ACKs whose number depends on delayed-ACK timers; the same in a live run and in
the recording, which the tests compare), `measured` (this run's times and byte counts), and
whether it ran live. Where no lab can be built (SetupError: user namespaces refused, as on Binder
and in the grading sandbox) or the live run fails, it returns the recording of the same demo
(course/data/lab-long-short.json, made by `record()`), and `print()` first says why in one line.
A refusal is remembered for the rest of the process.

`python -m course.linklab` runs both demos and prints them; `python -m course.linklab record`
rewrites the recording (maintainers).
"""
from __future__ import annotations

import json
import socket
import statistics
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course.capture import Segment, label_segments
from course.deadline import wait_for
from course.errors import PeerError
from course.netlab import lesson
from course.netlab.demo import HOME, SERVER, home_network
from course.netlab.pcap import tcp_connections
from course.netlab.rules import tbf_command

__all__ = [
    "RATE",
    "RATE_BPS",
    "BURST",
    "MTU",
    "ETHERNET_HEADER",
    "REQUEST",
    "TIMING_LABELS",
    "RECORDING",
    "WireSegment",
    "LinkRun",
    "LabLineEcho",
    "conversations",
    "live",
    "load_recording",
    "wire",
    "times",
    "record",
    "forget_refusal",
    "main",
]

RATE = "128kbit"  # tc's spelling: 128,000 bits/s, as much as an ISDN line with both its channels
RATE_BPS = 128_000
# the bucket's size as course.netlab sets it: two full-sized frames (3,028 bytes; tc shows it as 3027b)
BURST = int((lambda cmd: cmd[cmd.index("burst") + 1])(tbf_command("eth0", RATE_BPS, 1500)))
MTU = 1500
ETHERNET_HEADER = 14  # bytes before the IP header in every frame; tbf counts them too
REQUEST = b"ping"  # each request line (5 bytes with its b"\n"), as section 1's measurement sends
WIRE_LONG_REQUESTS = 3
TIMES_REQUESTS = 30
# Pure ACKs whose presence depends on timers, not on the protocol: an ACK of data is sent at once
# or delayed (up to 40 ms) and then often carried by the next data or FIN instead, and the ACK of
# the first FIN travels alone or rides on the second FIN. Every other segment is always there.
TIMING_LABELS = ("ACK", "teardown 2: ACK")
TIMEOUT = 10.0  # seconds: the deadline of every blocking step of the server and of the lab itself
RUN_TIMEOUT = 25.0  # seconds the client may take inside home (about 1 s on an idle machine)
RECORDING = lesson.DATA / "lab-long-short.json"

_fallback = lesson.Fallback(remember_refusal=True, failed_runs=True)


# ----------------------------------------------------------------------------------------------
# A capture, cut into connections
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WireSegment:
    """One captured TCP segment: who sent it, its flags, its role (assignment 05's labels), its size
    on the wire (the whole frame: 14 Ethernet + 20 IP + the TCP header + payload), its payload."""

    sender: str  # 'client' (home) or 'server'
    flags: str
    label: str
    size: int
    payload: int
    t_ms: float  # when the capture saw it, from the first segment of the first connection

    def row(self) -> str:
        arrow = "client -> server" if self.sender == "client" else "client <- server"
        return f"  {arrow}  {self.flags:<8} {self.size:>3} bytes  {self.label}"


def conversations(frames, server: tuple[str, int]) -> list[list[WireSegment]]:
    """The TCP connections to `server` in captured frames (course.netlab.pcap.tcp_connections), in
    the order of their SYNs, each as its labelled segments. The client is the side that sent the SYN."""
    connections = tcp_connections(frames, server)
    out = []
    t0 = min((rows[0][0].t_ns for rows in connections), default=0)
    for rows in connections:
        client = rows[0][1]["src"]
        plain = [Segment(t=(fr.t_ns - t0) / 1e9, sender="client" if s["src"] == client else "server", flags=s["flags"],
                         seq=s["seq"], ack=s["ack"], length=s["length"], window=s["window"], mss=s["mss"],
                         header_length=s["header_length"]) for fr, s in rows]
        labels = label_segments(plain)
        out.append([WireSegment(p.sender, p.flags, label, len(fr.data), p.length, round(p.t * 1000, 3))
                    for p, label, (fr, _) in zip(plain, labels, rows)])
    return out


def _fixed(conn: list[WireSegment]) -> list[list]:
    """The segments of a connection that timing never changes: (sender, label, size)."""
    return [[s.sender, s.label, s.size] for s in conn if s.label not in TIMING_LABELS]


def _bytes(conn: list[WireSegment], sender: str) -> int:
    return sum(s.size for s in conn if s.sender == sender)


def _per_request(conn: list[WireSegment], sender: str) -> list[int]:
    """Bytes `sender` put on the wire for each request of a connection: from one request segment
    (the client's data) up to the next; the handshake counts with the first request, the
    teardown with the last."""
    starts = [i for i, s in enumerate(conn) if s.sender == "client" and s.payload]
    if not starts:
        return []
    bounds = [0] + starts[1:] + [len(conn)]
    return [sum(s.size for s in conn[a:b] if s.sender == sender) for a, b in zip(bounds, bounds[1:])]


# ----------------------------------------------------------------------------------------------
# The server (a lab socket in this process) and the client (inside home)
# ----------------------------------------------------------------------------------------------
class LabLineEcho:
    """Echoes every line (ending in b"\\n") on a listening lab socket, one connection after the
    other, in a thread of this process: `with LabLineEcho(listener) as echo:`. Leaving the block
    stops the thread (a PeerError if it does not stop within `timeout`, or if serving failed)."""

    def __init__(self, listener: socket.socket, timeout: float = TIMEOUT):
        self.listener, self.timeout = listener, timeout
        self.connections = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="linklab-echo", daemon=True)

    def __enter__(self) -> "LabLineEcho":
        self.listener.settimeout(0.05)  # how often the accept loop looks at the stop flag
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(self.timeout)
        if self._thread.is_alive():
            raise PeerError(f"the lab's echo server did not stop within {self.timeout} s")
        if self.error is not None and exc_info[0] is None:
            raise PeerError(f"the lab's echo server failed after {self.connections} connection(s): {self.error!r}")

    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                self.connections += 1
                with conn:
                    conn.settimeout(self.timeout)
                    buffer = b""
                    while chunk := conn.recv(65536):
                        buffer += chunk
                        *lines, buffer = buffer.split(b"\n")
                        for line in lines:
                            conn.sendall(line + b"\n")
        except OSError as exc:
            if not self._stop.is_set():
                self.error = exc


def _client(address: tuple[str, int], short: int, long: int) -> dict:
    """Runs inside home: section 1's two measurements, short connections first (they empty the
    link's bucket, so the long connection finds the link at its steady rate)."""
    from course import connections as cx

    return {"short": cx.time_short_connections(address, short, REQUEST),
            "long": cx.time_long_connection(address, long, REQUEST)}


def _exchange(net, short: int, long: int) -> tuple[dict, list[list[WireSegment]]]:
    home, server = net.host("home"), net.host("server")
    listener = server.socket()
    listener.bind((SERVER, 0))
    listener.listen(16)
    address = listener.getsockname()
    with home.capture("eth0") as cap, LabLineEcho(listener) as echo:
        seconds = home.run(_client, address, short, long, timeout=RUN_TIMEOUT)

        def closed() -> list[list[WireSegment]] | None:
            # the client returned when it had closed its side; the server's FIN and the client's last
            # ACK cross the slow link after that: wait until the capture holds every teardown
            cap.poll()
            conns = conversations(cap.frames, address)
            done = len(conns) == short + 1 and all(any(s.label == "teardown 4: ACK" for s in c) for c in conns)
            return conns if done else None

        conns = wait_for(closed, TIMEOUT, lambda: f"the capture on home's eth0 does not show {short + 1} connections to "
                                                  f"{address[0]}:{address[1]} closed within {TIMEOUT} s", error=PeerError)
    if echo.connections != short + 1:
        raise PeerError(f"the capture on home's eth0 holds {len(conns)} connection(s) to the server and the server accepted "
                        f"{echo.connections}, not {short + 1} ({short} short, 1 long)")
    return seconds, conns


# ----------------------------------------------------------------------------------------------
# The two demos
# ----------------------------------------------------------------------------------------------
def _run_wire(net) -> tuple[dict, dict, list]:
    _, conns = _exchange(net, 1, WIRE_LONG_REQUESTS)
    short, long = conns
    evidence = {"rate_bps": RATE_BPS, "requests": {"short": 1, "long": WIRE_LONG_REQUESTS},
                "short": _fixed(short), "long": _fixed(long)}
    measured = {"bytes": {name: {"client": _bytes(c, "client"), "server": _bytes(c, "server"), "segments": len(c)}
                          for name, c in (("short", short), ("long", long))},
                "long_per_request": {"client": _per_request(long, "client"), "server": _per_request(long, "server")}}
    return evidence, measured, [[asdict(s) for s in c] for c in conns]


def _run_times(net) -> tuple[dict, dict, list]:
    n = TIMES_REQUESTS
    qdisc = net.host("home").cmd("tc", "qdisc", "show", "dev", "eth0").strip()  # the bucket, as tc shows it
    seconds, conns = _exchange(net, n, n)
    shorts, long = conns[:-1], conns[-1]
    fixed_short = {json.dumps(_fixed(c)) for c in shorts}
    evidence = {"rate_bps": RATE_BPS, "requests": n, "connections": {"short": len(shorts), "long": 1},
                "short_connections_alike": len(fixed_short) == 1,
                "short_connection": _fixed(shorts[0]),
                "long_connection": [list(kv) for kv in sorted(Counter(s.label for s in long if s.label not in TIMING_LABELS).items())]}
    per_request = {"short": {who: [_bytes(c, who) for c in shorts] for who in ("client", "server")},
                   "long": {who: _per_request(long, who) for who in ("client", "server")}}
    # the short phase as the link saw it: the client's frames leave home's eth0 when the bucket lets them
    # (the capture taps them as the qdisc hands them to the interface), so these bytes, less the burst,
    # cannot have left faster than the rate, however busy the machine
    sent = [s for c in shorts for s in c if s.sender == "client"]
    phase = {"client_bytes": sum(s.size for s in sent), "seconds": round((sent[-1].t_ms - sent[0].t_ms) / 1000, 6)}
    measured = {"ms": {k: [round(s * 1000, 2) for s in v] for k, v in seconds.items()}, "bytes_per_request": per_request,
                "qdisc": qdisc, "short_phase": phase}
    return evidence, measured, []


def _median(values) -> float:
    return statistics.median(values) if values else float("nan")


def _link_ms(size: float) -> float:
    """Milliseconds the link needs for `size` bytes at its rate."""
    return size * 8 / RATE_BPS * 1000


def _show_wire(run: "LinkRun") -> list[str]:
    short, long = ([WireSegment(**s) for s in c] for c in run.connections)
    b = run.measured["bytes"]
    later = run.measured["long_per_request"]
    out = [f"one request on a short connection: {b['short']['segments']} segments, "
           f"{b['short']['client'] + b['short']['server']} bytes on the wire ({b['short']['client']} from the client, "
           f"{b['short']['server']} from the server)"]
    out += [s.row() for s in short]
    n = run.evidence["requests"]["long"]
    out.append(f"{n} requests on one long connection: {b['long']['segments']} segments, "
               f"{b['long']['client'] + b['long']['server']} bytes on the wire")
    out += [s.row() for s in long]
    out.append(f"bytes the client sent for each request of the long connection: {later['client']} "
               f"(the first with the handshake, the last with the teardown); the server: {later['server']}")
    return out


def _show_times(run: "LinkRun") -> list[str]:
    ms, per = run.measured["ms"], run.measured["bytes_per_request"]
    n = run.evidence["requests"]
    first = 12
    out = [f"home's eth0: {run.measured['qdisc']}",
           f"{n} requests on {n} short connections, then {n} on one long connection (section 1's "
           f"time_short_connections and time_long_connection, run inside home); ms per request:"]
    for key in ("short", "long"):
        out.append(f"  {key:<5} " + " ".join(f"{v:.1f}" for v in ms[key][:first]) + f" ... ({n - first} more)")
    sb, lb = _median(per["short"]["client"]), _median(per["long"]["client"])
    sm, lm = _median(ms["short"]), _median(ms["long"])
    out += [
        f"{'':32}{'short':>10}{'long':>10}",
        f"{'median time per request':32}{sm:>7.1f} ms{lm:>7.1f} ms",
        f"{'bytes from the client (median)':32}{sb:>10g}{lb:>10g}",
        f"{'those bytes x 8 / 128,000 bit/s':32}{_link_ms(sb):>7.1f} ms{_link_ms(lb):>7.1f} ms",
        f"short / long: {sm / lm:.1f}x (medians)",
    ]
    if sm < 0.9 * _link_ms(sb) or lm < 0.9 * _link_ms(lb):
        out.append("this machine was busy: its client took longer between requests than the link needed, so the bucket "
                   "refilled in between and requests went through on the burst; these times say more about the CPU than "
                   "about the link (run the cell again when the machine is idle)")
    return out


DEMOS = {"wire": (_run_wire, _show_wire), "times": (_run_times, _show_times)}


# ----------------------------------------------------------------------------------------------
# A demo's result; live, or else the recording
# ----------------------------------------------------------------------------------------------
@dataclass
class LinkRun(lesson.LabRun):
    """One demo's result (course.netlab.lesson.LabRun), with `connections` (the labelled segments,
    `wire` only)."""

    connections: list = field(default_factory=list)

    DEMOS = DEMOS
    DETAIL = "connections"
    LAB = MADE_BY = (f"home {HOME} -- router -- server {SERVER}, every link {RATE_BPS // 1000} kbit/s (tc tbf), "
                     f"MTU {MTU}")


def live(name: str) -> LinkRun:
    """Run one demo now in a new lab; SetupError where no lab can be built."""
    return LinkRun.run_live(name, home_network(mtu=MTU, rate=RATE, timeout=TIMEOUT))


def load_recording(name: str, why: str = "") -> LinkRun:
    """The recorded run of one demo (made live by record())."""
    return LinkRun.from_recording(RECORDING, name, why)


def _demo(name: str) -> LinkRun:
    return _fallback.run(lambda: live(name), lambda why: load_recording(name, why))


def forget_refusal() -> None:
    """Try a live lab again at the next demo (after the machine was fixed, say)."""
    _fallback.forget()


def wire() -> LinkRun:
    """One request on a short connection and three on a long one, segment by segment."""
    return _demo("wire")


def times() -> LinkRun:
    """30 requests on short connections and 30 on a long one over the 128 kbit/s link: times and bytes."""
    return _demo("times")


def record(path: Path | None = None) -> Path:
    """Run both demos live and write the recording (maintainers)."""
    return lesson.write_recording(path or RECORDING, "course.linklab.record(): each demo live in "
                                  "course.netlab.home_network(rate='128kbit'), captured on home's eth0",
                                  {name: live(name).recorded_form() for name in DEMOS})


def _print_all() -> None:
    for name in DEMOS:
        _demo(name).print()


def main(argv: list[str] | None = None) -> int:
    return lesson.main("course.linklab", record, argv, show=_print_all)


if __name__ == "__main__":
    raise SystemExit(main())
