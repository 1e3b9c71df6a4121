"""Assignment 03's UDP on a real link (course.netlab, issue #11 phase 2): IP fragments, and a lossy
link that loses one of them.

    client 192.0.2.2 --eth0--lan0-- router 192.0.2.1 | 198.51.100.1 --wan0--eth0-- server 198.51.100.10
                      (MTU 1500)           (forwards, no NAT)          (MTU 1500)

Three network namespaces of one lab (built on `with`, ~0.2 s). The router only forwards: no NAT, so
no conntrack, so it passes each IP fragment on as it comes and only the server puts them back
together (a NAT router must reassemble first, to find the ports). The addresses are RFC 5737's
documentation networks; a lab has no way out of this machine.

- `fragments()`: the client sends datagrams of SIZES bytes of data to the server, one at a time,
  with a live capture on the client's eth0 and on the server's eth0; each datagram's IP packets
  (offset, length, MF, DF, TTL) on both wires, what the server's recvfrom returned, both kernels'
  fragmentation counters (/proc/net/snmp), and a socket with IP_PMTUDISC_DO refusing a datagram
  one byte too long for the link.
- `lost_fragment()`: the link from the client to the router loses LOSS, the 2nd UDP packet it
  carries: the 2nd of the 3 fragments of a 4000-byte datagram. The client sends that datagram,
  then the same again (a retry). The server's kernel holds the two pieces that came for
  net.ipv4.ipfrag_time (set to FRAGMENT_TIME on the server), drops them and tells the client in an
  ICMP "time exceeded (fragment reassembly)"; the cell waits for both (with a deadline).

Where no lab can be built (user namespaces refused: Binder, a container, the grading sandbox), both
print one line, the SetupError's sentence, and return the recording of a live run
(course/data/lab-udp.json; `python -m course.udplab record` remakes it), marked "capture":
"recording" (course.netlab.lesson: the same for every lab lesson). `fragments_evidence` and
`lost_fragment_evidence` give what depends neither on timing nor on port numbers: a live run and
the recording give the same. The kernels' counters are Host.snmp(); the capture is read with
course.netlab.pcap (datagrams, DF and TTL of each packet, ICMP messages).
"""
from __future__ import annotations

import errno
import math
import socket
import time
from contextlib import ExitStack
from pathlib import Path

from course.deadline import wait_for
from course.errors import PeerError
from course.netlab import Lab, Loss, lesson
from course.netlab.pcap import Frame, datagrams, icmp_messages

__all__ = [
    "CLIENT",
    "ROUTER_IN",
    "ROUTER_OUT",
    "SERVER",
    "HOSTS",
    "MTU",
    "SIZES",
    "REFUSED_SIZE",
    "LOST_SIZE",
    "LOSS",
    "FRAGMENT_TIME",
    "LOSS_RATE",
    "RECORDING",
    "udp_path",
    "fragments_of",
    "run_fragments",
    "run_lost_fragment",
    "fragments",
    "lost_fragment",
    "load_recording",
    "fragments_evidence",
    "lost_fragment_evidence",
    "arrival_odds",
    "show_fragments",
    "show_lost_fragment",
    "record",
    "main",
]

CLIENT, ROUTER_IN, ROUTER_OUT, SERVER = "192.0.2.2", "192.0.2.1", "198.51.100.1", "198.51.100.10"
HOSTS = ("client", "router", "server")
MTU = 1500  # bytes, both links: Ethernet's
IP_HEADER, UDP_HEADER = 20, 8  # bytes: an IPv4 header without options, the UDP header
# bytes of data: the most one 1500-byte packet holds (1472 + 8 + 20 = 1500), one more, the demo's
# 4000, and the largest datagram over IPv4 (65535 - 20 - 8, section 5 of the notebook)
SIZES = (1472, 1473, 4000, 65507)
REFUSED_SIZE = 1473  # sent from a socket with IP_PMTUDISC_DO: one byte more than the link carries whole
LOST_SIZE = 4000
LOSS = Loss.packet(2, of="udp")  # the 2nd UDP packet the link carries, fragments counted: chosen, not a probability
FRAGMENT_TIME = 1  # seconds: the server's net.ipv4.ipfrag_time in lost_fragment() (Linux's default is 30)
LOSS_RATE = 0.01  # the per-packet loss for which arrival_odds() is shown
LAB_TIMEOUT = 30.0  # seconds for each call to the lab's agent: generous, a busy machine is slow, never wrong
IO_TIMEOUT = 20.0  # seconds for each datagram to arrive, or each counter to move
# linux/in.h (Python 3.11's socket module lacks them)
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME = 11, 1
RECORDING = lesson.DATA / "lab-udp.json"
_fallback = lesson.Fallback(say="recording shown, {why}")


# ----------------------------------------------------------------------------------------------
# The lab, and what its kernels count
# ----------------------------------------------------------------------------------------------
def udp_path(*, loss: Loss | None = None, timeout: float = LAB_TIMEOUT) -> Lab:
    """The lab of the module docstring, built on `with udp_path() as net:`; `loss` is lost on the
    way from the client to the router."""

    def build(net: Lab) -> None:
        client, router, server = (net.add_host(name) for name in HOSTS)
        net.link(client, router, f"{CLIENT}/24", f"{ROUTER_IN}/24", names=("eth0", "lan0"), mtu=MTU, loss=loss)
        net.link(router, server, f"{ROUTER_OUT}/24", f"{SERVER}/24", names=("wan0", "eth0"), mtu=MTU)
        client.route("default", via=ROUTER_IN)
        server.route("default", via=ROUTER_OUT)
        router.forwarding(True)

    return Lab(build, timeout=timeout)


def _moved(before: dict, after: dict, group: str, names: tuple[str, ...]) -> dict[str, int]:
    return {n: after[group][n] - before[group][n] for n in names}


def _tagged(tag: str, size: int) -> bytes:
    head = tag.encode()
    return head + b"." * (size - len(head))


def fragments_of(frames: list[Frame], src: str, dst: str) -> list[dict]:
    """The UDP datagrams from `src` to `dst` in a capture (course.netlab.pcap.datagrams), in the
    order their first packet was seen: for each, its tag (the first bytes of its data, up to a
    '.'), its size (data bytes, from the UDP header of the first fragment) and its IP packets sorted
    by offset: [offset, IP payload bytes, MF, DF, TTL]. A datagram whose first fragment is missing
    has tag and size None."""
    found = []
    for d in datagrams(frames, socket.IPPROTO_UDP, src, dst):
        data = d.udp_data
        tag = data[:32].split(b".", 1)[0].decode(errors="replace") if data is not None else None
        found.append({"tag": tag, "size": d.udp_size, "ident": d.ident,
                      "packets": [[p.offset, len(p.payload), p.more_fragments, p.dont_fragment, p.ttl] for p in d.packets]})
    return found


def _icmp(frames: list[Frame], to: str, sent: list[dict]) -> list[dict]:
    """The ICMP errors to `to` in a capture: type, code, and the tag of the datagram (of `sent`,
    fragments_of's) whose IP header the message quotes (its identification)."""
    tags = {d["ident"]: d["tag"] for d in sent}
    return [{"type": m.type, "code": m.code, "from": m.src, "about": tags.get(m.quoted[3])}
            for m in icmp_messages(frames, to) if m.quoted is not None]


def _receive(sock, timeout: float, what: str) -> bytes:
    sock.settimeout(timeout)
    try:
        return sock.recv(1 << 17)
    except TimeoutError:
        raise PeerError(f"{what} within {timeout} s") from None


def _nothing_waiting(sock) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(1 << 17)
    except BlockingIOError:
        return True
    return False


def _sockets(net: Lab, stack: ExitStack) -> tuple:
    server = stack.enter_context(net.host("server").socket(socket.AF_INET, socket.SOCK_DGRAM))
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # room for a 65507-byte datagram's 45 fragments
    server.bind((SERVER, 0))
    client = stack.enter_context(net.host("client").socket(socket.AF_INET, socket.SOCK_DGRAM))
    client.bind((CLIENT, 0))
    return client, server


# ----------------------------------------------------------------------------------------------
# The two runs, live
# ----------------------------------------------------------------------------------------------
def run_fragments(timeout: float = IO_TIMEOUT) -> dict:
    """SIZES through a live lab (see the module docstring); SetupError where no lab can be built."""
    started = time.monotonic()
    with udp_path() as net, ExitStack() as stack:
        client_host, server_host = net.host("client"), net.host("server")
        client, server = _sockets(net, stack)
        before = {"client": client_host.snmp(), "server": server_host.snmp()}
        received = []
        with client_host.capture("eth0") as at_client, server_host.capture("eth0") as at_server:
            for size in SIZES:
                sent = client.sendto(_tagged(f"{size} bytes", size), server.getsockname())
                if sent != size:
                    raise PeerError(f"sendto of {size} bytes in the lab sent {sent}")
                data = _receive(server, timeout, f"the server got no {size}-byte datagram from the client")
                received.append(len(data))
            careful = stack.enter_context(client_host.socket(socket.AF_INET, socket.SOCK_DGRAM))
            careful.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            try:
                careful.sendto(_tagged("refused", REFUSED_SIZE), server.getsockname())
                refused = None
            except OSError as exc:
                refused = {"errno": errno.errorcode.get(exc.errno, str(exc.errno)), "strerror": exc.strerror}
        after = {"client": client_host.snmp(), "server": server_host.snmp()}
        leftover = not _nothing_waiting(server)
    if leftover:
        raise PeerError("the server received a datagram after the ones the client sent (the refused one was sent?)")
    sent = fragments_of(at_client.frames, CLIENT, SERVER)
    arrived = fragments_of(at_server.frames, CLIENT, SERVER)
    tags = [f"{size} bytes" for size in SIZES]
    if [d["tag"] for d in sent] != tags or [d["tag"] for d in arrived] != tags:
        raise PeerError(f"the captures show the datagrams {[d['tag'] for d in sent]} leaving the client and "
                        f"{[d['tag'] for d in arrived]} arriving at the server, not {tags}")
    datagrams = [{"size": size, "sent": s["packets"], "arrived": a["packets"], "received": n}
                 for size, s, a, n in zip(SIZES, sent, arrived, received)]
    return {
        "capture": "live", "mtu": MTU, "datagrams": datagrams, "refused": {"size": REFUSED_SIZE, "error": refused},
        "client": _moved(before["client"], after["client"], "Ip", ("FragOKs", "FragCreates", "FragFails")),
        "server": {**_moved(before["server"], after["server"], "Ip", ("ReasmReqds", "ReasmOKs", "ReasmFails")),
                   **_moved(before["server"], after["server"], "Udp", ("InDatagrams",))},
        "seconds": round(time.monotonic() - started, 3),
    }


def run_lost_fragment(timeout: float = IO_TIMEOUT) -> dict:
    """LOST_SIZE bytes twice through a live lab whose first link loses LOSS; SetupError where no
    lab can be built."""
    started = time.monotonic()
    with udp_path(loss=LOSS) as net, ExitStack() as stack:
        client_host, server_host = net.host("client"), net.host("server")
        default_time = int(server_host.read_sysctl("net.ipv4.ipfrag_time"))
        server_host.sysctl("net.ipv4.ipfrag_time", FRAGMENT_TIME)
        client, server = _sockets(net, stack)
        before = server_host.snmp()
        with client_host.capture("eth0") as at_client, server_host.capture("eth0") as at_server:
            for attempt in (1, 2):
                client.sendto(_tagged(f"attempt {attempt}", LOST_SIZE), server.getsockname())
            data = _receive(server, timeout, f"the server got neither {LOST_SIZE}-byte datagram from the client")
            received = [data.split(b".", 1)[0].decode(errors="replace")]
            gave_up = time.monotonic()
            wait_for(lambda: server_host.snmp()["Ip"]["ReasmTimeout"] > before["Ip"]["ReasmTimeout"], timeout,
                     f"the server's kernel did not give up on attempt 1's fragments within {timeout} s "
                     f"(net.ipv4.ipfrag_time is {FRAGMENT_TIME} s there)", error=PeerError)
            waited = time.monotonic() - gave_up

            def told():
                at_client.poll()
                return _icmp(at_client.frames, CLIENT, [])

            wait_for(told, timeout, f"no ICMP message reached the client within {timeout} s of the server's kernel dropping "
                                    f"attempt 1's fragments", error=PeerError)
            if not _nothing_waiting(server):
                raise PeerError("the server received a second datagram: the lost fragment's datagram was put together after all?")
        after = server_host.snmp()
        so_error = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        client_heard = not _nothing_waiting(client)
        dropped = net.links[0].dropped(toward="router")
    sent = fragments_of(at_client.frames, CLIENT, SERVER)
    arrived = {d["ident"]: d for d in fragments_of(at_server.frames, CLIENT, SERVER)}
    attempts = [{"tag": d["tag"], "size": d["size"], "sent": d["packets"],
                 "arrived": arrived[d["ident"]]["packets"] if d["ident"] in arrived else []} for d in sent]
    if [a["tag"] for a in attempts] != ["attempt 1", "attempt 2"]:
        raise PeerError(f"the client's capture shows the datagrams {[a['tag'] for a in attempts]}, not attempts 1 and 2")
    return {
        "capture": "live", "mtu": MTU, "loss": str(LOSS), "attempts": attempts, "received": received,
        "lost_by_the_link": dropped,
        "server": {**_moved(before, after, "Ip", ("ReasmReqds", "ReasmOKs", "ReasmTimeout", "ReasmFails")),
                   **_moved(before, after, "Udp", ("InDatagrams",))},
        "ipfrag_time": {"default": default_time, "set": FRAGMENT_TIME},
        "icmp": _icmp(at_client.frames, CLIENT, sent),
        "client_so_error": so_error, "client_heard": client_heard,
        "seconds": round(time.monotonic() - started, 3), "waited_for_the_reassembly_timeout": round(waited, 3),
    }


# ----------------------------------------------------------------------------------------------
# Live, or the recording
# ----------------------------------------------------------------------------------------------
def load_recording(kind: str) -> dict:
    """A copy of the recorded run of `kind` ("fragments" or "lost_fragment"), marked "capture": "recording"."""
    return lesson.recorded_result(RECORDING, kind)


def fragments(timeout: float = IO_TIMEOUT) -> dict:
    """run_fragments() where a lab can be built; else one printed line saying why, and the recording."""
    return _fallback.run(lambda: run_fragments(timeout), lambda why: {**load_recording("fragments"), "why": why})


def lost_fragment(timeout: float = IO_TIMEOUT) -> dict:
    """run_lost_fragment() where a lab can be built; else one printed line saying why, and the recording."""
    return _fallback.run(lambda: run_lost_fragment(timeout), lambda why: {**load_recording("lost_fragment"), "why": why})


# ----------------------------------------------------------------------------------------------
# Evidence: what depends neither on timing nor on port numbers
# ----------------------------------------------------------------------------------------------
def fragments_evidence(result: dict) -> dict:
    return {
        "mtu": result["mtu"],
        "datagrams": [{k: d[k] for k in ("size", "sent", "arrived", "received")} for d in result["datagrams"]],
        "refused": result["refused"],
        "client": result["client"],
        "server": result["server"],
    }


def lost_fragment_evidence(result: dict) -> dict:
    return {k: result[k] for k in ("mtu", "loss", "attempts", "received", "lost_by_the_link", "server", "ipfrag_time",
                                   "icmp", "client_so_error", "client_heard")}


def arrival_odds(p: float = LOSS_RATE, sizes: tuple[int, ...] = SIZES, mtu: int = MTU) -> list[tuple[int, int, float]]:
    """(data bytes, IP packets, probability that all arrive) for each size, on a link that loses each
    packet independently with probability p: (1 - p) ** packets."""
    per_fragment = (mtu - IP_HEADER) // 8 * 8
    rows = []
    for size in sizes:
        packets = 1 if size + UDP_HEADER + IP_HEADER <= mtu else math.ceil((size + UDP_HEADER) / per_fragment)
        rows.append((size, packets, (1 - p) ** packets))
    return rows


# ----------------------------------------------------------------------------------------------
# What a cell shows
# ----------------------------------------------------------------------------------------------
def _source(result: dict) -> str:
    return lesson.source(result, HOSTS, f"links of MTU {result['mtu']}")


def _pieces(packets: list) -> str:
    """IP packets as 'bytes at offset', runs of equal middle fragments folded."""
    parts, i = [], 0
    while i < len(packets):
        offset, length, more, dont, _ = packets[i]
        j = i
        while j + 1 < len(packets) and packets[j + 1][1:4] == packets[i][1:4]:
            j += 1
        flags = (" MF" if more else "") + (" DF" if dont else "")
        if j - i >= 2:
            parts.append(f"{j - i + 1} x {length}{flags} at {offset} to {packets[j][0]}")
            i = j + 1
            continue
        parts.append(f"{length}{flags} at {offset}")
        i += 1
    return ", ".join(parts)


def _ttls(datagrams: list[dict], key: str) -> str:
    return "/".join(str(t) for t in sorted({row[4] for d in datagrams for row in d[key]}))


def _same(a: list, b: list) -> bool:
    """The same IP packets (offset, length, MF, DF), whatever their TTL."""
    return [row[:4] for row in a] == [row[:4] for row in b]


def show_fragments(result: dict) -> None:
    print(_source(result))
    print(f"{'UDP data':<12} {'IP packets':<11} {'what left the client: IP payload bytes (MF, DF) at offset':<58} recvfrom got")
    for d in result["datagrams"]:
        print(f"{str(d['size']) + ' bytes':<12} {len(d['sent']):<11} {_pieces(d['sent']):<58} {d['received']} bytes")
    data = result["datagrams"]
    same = all(_same(d["sent"], d["arrived"]) for d in data)
    print(f"at the server's eth0: {'the same packets' if same else 'OTHER packets'}, TTL {_ttls(data, 'sent')} -> "
          f"{_ttls(data, 'arrived')} (the router forwarded each fragment as it came)")
    c, s = result["client"], result["server"]
    print(f"the client's kernel (/proc/net/snmp): FragOKs {c['FragOKs']} datagrams cut into FragCreates {c['FragCreates']} "
          f"fragments")
    print(f"the server's kernel: ReasmReqds {s['ReasmReqds']} fragments in, ReasmOKs {s['ReasmOKs']} datagrams put back "
          f"together; UDP InDatagrams {s['InDatagrams']}")
    refused = result["refused"]
    error = refused["error"]
    shown = f"raised OSError {error['errno']} ({error['strerror']}), sent nothing" if error else "was sent (no error!)"
    print(f"with IP_MTU_DISCOVER = IP_PMTUDISC_DO, sendto of {refused['size']} bytes {shown}")
    try:
        from course.kernel import interface_mtu

        print(f"and loopback's MTU on this machine: {interface_mtu('lo')} (course.kernel.interface_mtu('lo'))")
    except OSError as exc:
        print(f"(loopback's MTU cannot be read here: {exc})")


def show_lost_fragment(result: dict) -> None:
    print(_source(result))
    print(f"the link from the client to the router loses {result['loss']} it carries; the client sends {LOST_SIZE} bytes, twice")
    print(f"{'datagram':<11} {'left the client: IP payload bytes (MF) at offset':<50} {'reached the server':<28} recvfrom got")
    for a in result["attempts"]:
        got = f"{a['size']} bytes" if a["tag"] in result["received"] else "nothing"
        arrived = "all of them" if _same(a["sent"], a["arrived"]) else _pieces(a["arrived"])
        print(f"{a['tag']:<11} {_pieces(a['sent']):<50} {arrived:<28} {got}")
    s, t = result["server"], result["ipfrag_time"]
    print(f"the link dropped {result['lost_by_the_link']} packet (its nftables counter); the server's kernel held the other "
          f"pieces for\nnet.ipv4.ipfrag_time = {t['set']} s (set by the lab; the default is {t['default']} s), then "
          f"dropped them: ReasmReqds {s['ReasmReqds']}, ReasmOKs {s['ReasmOKs']},\nReasmTimeout {s['ReasmTimeout']}, "
          f"ReasmFails {s['ReasmFails']}; UDP InDatagrams {s['InDatagrams']}")
    for m in result["icmp"]:
        what = ("time exceeded, fragment reassembly" if (m["type"], m["code"]) == (ICMP_TIME_EXCEEDED, ICMP_EXC_FRAGTIME)
                else "another message")
        print(f"ICMP type {m['type']} code {m['code']} ({what}) from {m['from']} to the client, about {m['about']}")
    heard = "a datagram to read" if result["client_heard"] else "nothing to read"
    print(f"the client's socket: SO_ERROR {result['client_so_error']}, {heard}")
    print(f"a link that loses each packet with probability {LOSS_RATE:g} delivers a datagram of k packets with probability "
          f"{1 - LOSS_RATE:g} ** k:")
    for size, k, q in arrival_odds():
        print(f"  {size:>5} bytes of data, {k:>2} packet{'s' if k > 1 else ' '}: {100 * q:.1f} %")


# ----------------------------------------------------------------------------------------------
# The recording (maintainers: python -m course.udplab record, as an ordinary user where a lab works)
# ----------------------------------------------------------------------------------------------
_UNRECORDED = ("capture", "seconds", "waited_for_the_reassembly_timeout")


def record(path: Path | None = None) -> Path:
    """Run both live and rewrite the recording (course/data/lab-udp.json)."""
    demos = {name: {k: v for k, v in run().items() if k not in _UNRECORDED}
             for name, run in (("fragments", run_fragments), ("lost_fragment", run_lost_fragment))}
    return lesson.write_recording(path or RECORDING, "python -m course.udplab record: run_fragments() and "
                                  "run_lost_fragment(), live, as an ordinary user", demos)


def main(argv: list[str] | None = None) -> int:
    return lesson.main("course.udplab", record, argv)


if __name__ == "__main__":
    raise SystemExit(main())
