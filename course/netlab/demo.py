"""The small lab of the course and its demo: NAT, the MSS of a handshake, one retransmission, and
IP fragments, each read from a live capture.

    home 192.168.1.2 --eth0--lan0-- router 192.168.1.1 | 203.0.113.1 --wan0--eth0-- server 198.51.100.10
          (the home LAN, 192.168.1.0/24)          (NAT: masquerade on wan0)       ("the Internet": one wire)

The router masquerades what leaves through wan0, so the server sees the router's public address.
With nat=False the server sees 192.168.1.2, and this lab's "Internet" routes 192.168.1.0/24 back
through the router, as a provider routes a customer's own public network; the real Internet
carries no private addresses, which is why a home router translates them. Every link has the
same MTU.

`run(mtu)` builds the lab, runs the three demos with a capture on home's eth0, and returns
{"capture": "live", "nat": {...}, "mss": M, "handshake": [...], "retransmissions": N,
"fragments": K}. Where no lab can be built, `demo(mtu)` returns the recording of the same run
(course/netlab/recording.json), marked "capture": "recording", with the reason.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import threading
import time
from pathlib import Path

from course.deadline import Deadline
from course.errors import PeerError, SetupError
from course.netlab.lab import Lab
from course.netlab.rules import Loss

__all__ = [
    "HOME",
    "ROUTER_LAN",
    "ROUTER_WAN",
    "SERVER",
    "PRIVATE_PORT",
    "RECORDING",
    "home_network",
    "run",
    "demo",
    "load_recording",
    "record",
    "table",
]

HOME, ROUTER_LAN, ROUTER_WAN, SERVER = "192.168.1.2", "192.168.1.1", "203.0.113.1", "198.51.100.10"
# The NAT example's private port, as 01 writes it. A fixed port is safe here, and only here: it is
# bound inside the lab host's own network namespace, where nothing else runs.
PRIVATE_PORT = 6789
UDP_PAYLOAD = 4000  # bytes: more than one 1500-byte MTU can carry, less than one 9000-byte MTU
SEGMENTS = 10  # full-sized segments in the TCP transfer: enough after the lost 3rd for a fast retransmit
RECEIVE_BUFFER = 1 << 20  # asked for by the server (the kernel caps it at net.core.rmem_max): room for the whole transfer
RECORDING = Path(__file__).with_name("recording.py")  # a module, so that every install ships it


def home_network(*, mtu: int = 1500, nat: bool = True, rate: int | str | None = None, loss: Loss | None = None,
                 tail_loss_probes: bool = False, timeout: float = 10.0) -> Lab:
    """The course's small lab (see the module docstring), built on `with`:

        with home_network(mtu=1500) as net:
            s = net.host("home").socket(socket.AF_INET, socket.SOCK_DGRAM)

    `rate` limits both links, `loss` is lost on the way from home to the router. TCP's tail loss
    probes (a retransmission sent when an ACK is a few milliseconds late, RFC 8985) are off unless
    `tail_loss_probes`: on a busy machine they would make the number of retransmissions depend on
    timing; a lost segment is still retransmitted (fast retransmit, or the RTO)."""

    def build(net: Lab) -> None:
        home, router, server = net.add_host("home"), net.add_host("router"), net.add_host("server")
        net.link(home, router, f"{HOME}/24", f"{ROUTER_LAN}/24", names=("eth0", "lan0"), mtu=mtu, rate=rate, loss=loss)
        net.link(router, server, f"{ROUTER_WAN}/24", f"{SERVER}/24", names=("wan0", "eth0"), mtu=mtu, rate=rate)
        home.route("default", via=ROUTER_LAN)
        router.route("default", dev="wan0")  # the Internet is the wire behind wan0
        server.route("203.0.113.0/24", dev="eth0")  # the way back to public addresses, none to private ones
        router.forwarding(True)
        if nat:
            router.masquerade("wan0")
        else:
            server.route("192.168.1.0/24", via=ROUTER_WAN)
        if not tail_loss_probes:
            for host in (home, server):
                host.sysctl("net.ipv4.tcp_early_retrans", 0)

    return Lab(build, timeout=timeout)


class _OneCpu:
    """Run the calling thread on one CPU until the block ends. Both ends of the demo's transfer run
    on the same CPU, and with them every softirq that carries their packets through the lab: the
    path stays first in, first out, so a retransmission never overtakes or is overtaken (a segment
    enqueued on another CPU's backlog could be, and would count as reordering)."""

    def __init__(self, cpu: int):
        self.cpu = cpu
        self.before: set[int] | None = None

    def __enter__(self):
        try:
            self.before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})
        except OSError:
            self.before = None
        return self

    def __exit__(self, *exc_info):
        if self.before is not None:
            os.sched_setaffinity(0, self.before)


class _Peer:
    """A thread that runs one function with a deadline and keeps its result or exception."""

    def __init__(self, fn, timeout: float):
        self.fn, self.timeout = fn, timeout
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._main, name="netlab-demo-peer", daemon=True)

    def _main(self):
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - given back in join()
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.thread.join(self.timeout)
        if self.thread.is_alive():
            raise PeerError(f"the demo's server thread did not finish within {self.timeout} s")

    def value(self):
        if self.error is not None:
            raise self.error
        return self.result


def _nat_demo(net: Lab, timeout: float, nat: bool) -> dict:
    home, router, server = net.host("home"), net.host("router"), net.host("server")
    with server.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, home.socket(socket.AF_INET, socket.SOCK_DGRAM) as cli:
        srv.bind((SERVER, 0))
        srv.settimeout(timeout)
        cli.bind((HOME, PRIVATE_PORT))
        cli.sendto(b"hello from the home LAN", srv.getsockname())
        try:
            data, seen = srv.recvfrom(2048)
        except TimeoutError:
            raise PeerError(f"the server {SERVER} got nothing from {HOME}:{PRIVATE_PORT} within {timeout} s") from None
        try:
            table = router.conntrack()
        except SetupError:  # neither the conntrack tool nor /proc/net/nf_conntrack: the NAT is shown all the same
            table = None
        entries = [e for e in table or () if e.proto == "udp" and e.original[0] == (HOME, PRIVATE_PORT)]
    result = {"private": f"{HOME}:{PRIVATE_PORT}", "seen_by_server": f"{seen[0]}:{seen[1]}"}
    if nat and table is not None and not entries:
        raise PeerError(f"the router translated {HOME}:{PRIVATE_PORT} to {seen[0]}:{seen[1]}, but its conntrack table has no "
                        f"entry for it: {table}")
    if entries:
        (rsrc, rdst) = entries[0].reply
        result["conntrack"] = str(entries[0])
        result["conntrack_reply_to"] = f"{rdst[0]}:{rdst[1]}"
        if rdst != seen:
            raise PeerError(f"the server saw {seen[0]}:{seen[1]} but the router's conntrack expects replies to {rdst[0]}:{rdst[1]}")
    else:
        result["conntrack"] = None
    return result


def _tcp_demo(net: Lab, timeout: float) -> dict:
    from course.kernel import tcp_info

    home, server = net.host("home"), net.host("server")
    cpu = min(os.sched_getaffinity(0))
    with server.socket() as listener, home.socket() as cli, _OneCpu(cpu):
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        listener.bind((SERVER, 0))
        listener.listen(1)
        listener.settimeout(timeout)
        deadline = Deadline(timeout)

        def serve() -> int:
            conn, _ = listener.accept()
            with conn, _OneCpu(cpu):
                conn.settimeout(deadline.remaining() or 0.001)
                got = 0
                while chunk := conn.recv(1 << 16):
                    got += len(chunk)
                conn.sendall(got.to_bytes(8, "big"))
            return got

        with _Peer(serve, timeout) as peer:
            cli.settimeout(timeout)
            try:
                cli.connect(listener.getsockname())
            except TimeoutError:
                raise PeerError(f"home could not connect to {listener.getsockname()} within {timeout} s") from None
            mss = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            size = SEGMENTS * mss
            cli.sendall(bytes(size))
            cli.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := cli.recv(16):
                reply += chunk
            retrans = tcp_info(cli).total_retrans
        if peer.value() != size or int.from_bytes(reply, "big") != size:
            raise PeerError(f"the demo's TCP transfer sent {size} bytes, the server counted {peer.value()} and said {reply!r}")
        return {"server": listener.getsockname(), "bytes": size, "kernel_retransmissions": retrans}


def _udp_demo(net: Lab, timeout: float) -> dict:
    home, server = net.host("home"), net.host("server")
    with server.socket(socket.AF_INET, socket.SOCK_DGRAM) as srv, home.socket(socket.AF_INET, socket.SOCK_DGRAM) as cli:
        srv.bind((SERVER, 0))
        srv.settimeout(timeout)
        cli.bind((HOME, 0))
        cli.sendto(bytes(UDP_PAYLOAD), srv.getsockname())
        try:
            data, _ = srv.recvfrom(65535)
        except TimeoutError:
            raise PeerError(f"the {UDP_PAYLOAD}-byte datagram did not reach the server within {timeout} s") from None
        if len(data) != UDP_PAYLOAD:
            raise PeerError(f"the server received {len(data)} bytes of a {UDP_PAYLOAD}-byte datagram")
        return {"src": cli.getsockname(), "dst": srv.getsockname()}


def run(mtu: int = 1500, *, nat: bool = True, loss: bool = True, pcap: str | None = None, timeout: float = 10.0) -> dict:
    """Build the lab and run the three demos with a live capture on home's eth0; SetupError where
    no lab can be built. `loss`: the link from home to the router loses the 3rd TCP segment with
    data. `pcap`: where to save the capture."""
    from course.capture import LABELS, label_segments
    from course.netlab.pcap import datagram_fragments, retransmissions, tcp_segments

    started = time.monotonic()
    with home_network(mtu=mtu, nat=nat, timeout=timeout) as net:
        built = time.monotonic() - started
        with net.host("home").capture("eth0") as cap:
            nat_result = _nat_demo(net, timeout, nat)
            if loss:
                net.links[0].set_loss(Loss.packet(3, of="tcp-data"), toward="router")
            tcp = _tcp_demo(net, timeout)
            dropped = net.links[0].dropped(toward="router")
            net.links[0].set_loss(None, toward="router")
            udp = _udp_demo(net, timeout)
        if pcap:
            cap.save(pcap)
    segments = tcp_segments(cap.frames, server=tcp["server"])
    if len(segments) < 3:
        raise PeerError(f"the capture on home's eth0 holds {len(segments)} segments of the TCP transfer, fewer than a handshake")
    labels = label_segments(segments[:3])
    if labels != list(LABELS[:3]):
        raise PeerError(f"the first three captured segments are {labels}, not a three-way handshake")
    result = {
        "capture": "live",
        "nat": nat_result,
        "mss": segments[0].mss,
        "handshake": [s.flags.replace(",", "+") for s in segments[:3]],
        "retransmissions": retransmissions(segments, "client"),
        "fragments": datagram_fragments(cap.frames, udp["src"], udp["dst"]),
        "mtu": mtu,
        "lost_by_the_link": dropped,
        "kernel_retransmissions": tcp["kernel_retransmissions"],
        "frames_captured": len(cap.frames),
        "seconds": {"build": round(built, 3), "total": round(time.monotonic() - started, 3)},
    }
    return result


def load_recording(mtu: int = 1500) -> dict:
    """The recorded run for this MTU (SetupError if there is none)."""
    from course.netlab.recording import RECORDING as data

    runs = data["runs"]
    if str(mtu) not in runs:
        raise SetupError(f"no lab network here, and no recording of the demo with MTU {mtu}; recordings exist for MTU "
                         f"{', '.join(sorted(runs, key=int))}")
    result = json.loads(json.dumps(runs[str(mtu)]))  # a copy
    result["capture"] = "recording"
    result["recorded"] = f"{data['recorded']} on Linux {data['kernel']}"
    return result


def demo(mtu: int = 1500, *, nat: bool = True, loss: bool = True, pcap: str | None = None, timeout: float = 10.0) -> dict:
    """run() where a lab can be built, else the recording (for the default nat and loss) with the
    one-line reason in "why"."""
    try:
        return run(mtu, nat=nat, loss=loss, pcap=pcap, timeout=timeout)
    except SetupError as exc:
        if not (nat and loss):
            raise
        result = load_recording(mtu)
        result["why"] = str(exc)
        return result


def record(mtus: tuple[int, ...] = (1400, 1500, 9000)) -> Path:
    """Run the demo live for each MTU and rewrite course/netlab/recording.py (maintainers)."""
    import pprint

    runs = {}
    for mtu in mtus:
        r = run(mtu)
        runs[str(mtu)] = {k: v for k, v in r.items() if k not in ("capture", "seconds")}
    data = {
        "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": platform.release(),
        "how": "python -m course.netlab record: course.netlab.demo.run for each MTU, live, as an ordinary user",
        "runs": runs,
    }
    RECORDING.write_text(
        '"""The demo, recorded live (`python -m course.netlab record`): what demo() shows where no lab can be built."""\n\n'
        '__all__ = ["RECORDING"]\n\n'
        f"RECORDING = {pprint.pformat(data, width=120, sort_dicts=True)}\n"
    )
    return RECORDING


def table(result: dict) -> str:
    """The demo's result as a few readable lines."""
    nat = result["nat"]
    lines = [
        f"capture          {result['capture']}" + (f" ({result['recorded']})" if "recorded" in result else ""),
        f"NAT              {nat['private']} (home) arrived at the server as {nat['seen_by_server']}",
    ]
    if nat.get("conntrack"):
        lines.append(f"router conntrack {nat['conntrack']}")
    lines += [
        f"MTU {result.get('mtu', '?'):<12} MSS in the captured SYN: {result['mss']}",
        f"handshake        {' -> '.join(result['handshake'])}",
        f"retransmissions  {result['retransmissions']} (the link lost {result.get('lost_by_the_link', '?')} data segment(s))",
        f"fragments        {result['fragments']} IP packet(s) for one UDP datagram of {UDP_PAYLOAD} bytes",
    ]
    if "why" in result:
        lines.append(f"why a recording  {result['why']}")
    return "\n".join(lines)
