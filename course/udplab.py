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
print one line, the SetupError's sentence, and return the recording of a live run (at the end of
this file; `python -m course.udplab record` remakes it), marked "capture": "recording".
`fragments_evidence` and `lost_fragment_evidence` give what depends neither on timing nor on port
numbers: a live run and the recording give the same.

What could move into course.netlab: a host's /proc/net/snmp counters (`snmp`), DF and TTL of a
captured Packet, ICMP in a capture, and `_live_or_recorded` (course.natlab has the same).
"""
from __future__ import annotations

import copy
import errno
import math
import platform
import pprint
import socket
import struct
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from course.deadline import wait_for
from course.errors import PeerError, SetupError
from course.netlab import Lab, Loss
from course.netlab.pcap import Frame, parse_packet

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
    "snmp",
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


def snmp(host) -> dict[str, dict[str, int]]:
    """A lab host's own /proc/net/snmp (as `nstat -az` shows it): {"Ip": {"FragCreates": 6, ...}, "Udp": {...}}."""
    lines = [line.split() for line in host.cmd("cat", "/proc/net/snmp").splitlines()]
    table: dict[str, dict[str, int]] = {}
    for names, values in zip(lines[::2], lines[1::2]):
        table[names[0].rstrip(":")] = {n: int(v) for n, v in zip(names[1:], values[1:])}
    return table


def _moved(before: dict, after: dict, group: str, names: tuple[str, ...]) -> dict[str, int]:
    return {n: after[group][n] - before[group][n] for n in names}


def _tagged(tag: str, size: int) -> bytes:
    head = tag.encode()
    return head + b"." * (size - len(head))


def fragments_of(frames: list[Frame], src: str, dst: str) -> list[dict]:
    """The UDP datagrams from `src` to `dst` in a capture, in the order their first packet was
    seen: for each, its tag (the first bytes of its data, up to a '.'), its size (data bytes, from
    the UDP header of the first fragment) and its IP packets sorted by offset: [offset, IP payload
    bytes, MF, DF, TTL]. A datagram whose first fragment is missing has tag and size None."""
    by_id: dict[int, list] = {}
    for p in map(parse_packet, frames):
        if p is None or p.proto != socket.IPPROTO_UDP or (p.src, p.dst) != (src, dst):
            continue
        dont_fragment = bool(p.header[6] & 0x40)
        by_id.setdefault(p.ident, []).append((p, [p.offset, len(p.payload), p.more_fragments, dont_fragment, p.header[8]]))
    found = []
    for pieces in by_id.values():
        first = next((p for p, _ in pieces if p.offset == 0), None)
        tag = size = None
        if first is not None and len(first.payload) >= UDP_HEADER:
            size = struct.unpack("!H", first.payload[4:6])[0] - UDP_HEADER
            tag = first.payload[UDP_HEADER:UDP_HEADER + 32].split(b".", 1)[0].decode(errors="replace")
        found.append({"tag": tag, "size": size, "ident": pieces[0][0].ident,
                      "packets": sorted((row for _, row in pieces), key=lambda row: row[0])})
    return found


def _icmp(frames: list[Frame], to: str, datagrams: list[dict]) -> list[dict]:
    """The ICMP messages to `to` in a capture: type, code, and the tag of the datagram (of
    `datagrams`) whose IP header the message quotes (its identification)."""
    tags = {d["ident"]: d["tag"] for d in datagrams}
    found = []
    for p in map(parse_packet, frames):
        if p is None or p.proto != socket.IPPROTO_ICMP or p.dst != to or len(p.payload) < 8 + IP_HEADER:
            continue
        quoted_ident = struct.unpack("!H", p.payload[8 + 4:8 + 6])[0]
        found.append({"type": p.payload[0], "code": p.payload[1], "from": p.src, "about": tags.get(quoted_ident)})
    return found


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
        before = {"client": snmp(client_host), "server": snmp(server_host)}
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
        after = {"client": snmp(client_host), "server": snmp(server_host)}
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
        default_time = int(server_host.cmd("cat", "/proc/sys/net/ipv4/ipfrag_time").strip())
        server_host.sysctl("net.ipv4.ipfrag_time", FRAGMENT_TIME)
        client, server = _sockets(net, stack)
        before = snmp(server_host)
        with client_host.capture("eth0") as at_client, server_host.capture("eth0") as at_server:
            for attempt in (1, 2):
                client.sendto(_tagged(f"attempt {attempt}", LOST_SIZE), server.getsockname())
            data = _receive(server, timeout, f"the server got neither {LOST_SIZE}-byte datagram from the client")
            received = [data.split(b".", 1)[0].decode(errors="replace")]
            gave_up = time.monotonic()
            wait_for(lambda: snmp(server_host)["Ip"]["ReasmTimeout"] > before["Ip"]["ReasmTimeout"], timeout,
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
        after = snmp(server_host)
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
    result = copy.deepcopy(RECORDING[kind])
    result["capture"] = "recording"
    result["recorded"] = f"{RECORDING['recorded']} on Linux {RECORDING['kernel']}"
    return result


def _live_or_recorded(kind: str, run: Callable[[float], dict], timeout: float) -> dict:
    try:
        return run(timeout)
    except SetupError as exc:
        result = load_recording(kind)
        result["why"] = str(exc)
        print(f"recording shown, {exc}")
        return result


def fragments(timeout: float = IO_TIMEOUT) -> dict:
    """run_fragments() where a lab can be built; else one printed line saying why, and the recording."""
    return _live_or_recorded("fragments", run_fragments, timeout)


def lost_fragment(timeout: float = IO_TIMEOUT) -> dict:
    """run_lost_fragment() where a lab can be built; else one printed line saying why, and the recording."""
    return _live_or_recorded("lost_fragment", run_lost_fragment, timeout)


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
    if result["capture"] == "live":
        return f"live in the lab ({len(HOSTS)} network namespaces: {', '.join(HOSTS)}; links of MTU {result['mtu']}; {result['seconds']} s)"
    return f"the recording, made live on {result['recorded']}"


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
_MARK = "# -- recording"  # the markers are built, so that this line is not one of them
_BEGIN, _END = _MARK + ": begin (python -m course.udplab record) --", _MARK + ": end --"
_UNRECORDED = ("capture", "seconds", "waited_for_the_reassembly_timeout")


def record(path: Path | None = None) -> Path:
    """Run both live and rewrite the recording at the end of this file."""
    data = {
        "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": platform.release(),
        "how": "python -m course.udplab record: run_fragments() and run_lost_fragment(), live, as an ordinary user",
        "fragments": {k: v for k, v in run_fragments().items() if k not in _UNRECORDED},
        "lost_fragment": {k: v for k, v in run_lost_fragment().items() if k not in _UNRECORDED},
    }
    path = path or Path(__file__)
    text = path.read_text()
    head, rest = text.rsplit(_BEGIN, 1)
    _, tail = rest.rsplit(_END, 1)
    block = f"{_BEGIN}\nRECORDING = {pprint.pformat(data, width=120, sort_dicts=True)}\n{_END}"
    path.write_text(head + block + tail)
    return path


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["record"]:
        print("usage: python -m course.udplab record   (runs the lab live and rewrites the recording in course/udplab.py)")
        sys.exit(2)
    print(f"recorded in {record()}")

# The recording of a live run: data, remade by record(), not edited by hand.
# -- recording: begin (python -m course.udplab record) --
RECORDING = {'fragments': {'client': {'FragCreates': 50, 'FragFails': 0, 'FragOKs': 3},
               'datagrams': [{'arrived': [[0, 1480, False, True, 63]],
                              'received': 1472,
                              'sent': [[0, 1480, False, True, 64]],
                              'size': 1472},
                             {'arrived': [[0, 1480, True, False, 63], [1480, 1, False, False, 63]],
                              'received': 1473,
                              'sent': [[0, 1480, True, False, 64], [1480, 1, False, False, 64]],
                              'size': 1473},
                             {'arrived': [[0, 1480, True, False, 63],
                                          [1480, 1480, True, False, 63],
                                          [2960, 1048, False, False, 63]],
                              'received': 4000,
                              'sent': [[0, 1480, True, False, 64],
                                       [1480, 1480, True, False, 64],
                                       [2960, 1048, False, False, 64]],
                              'size': 4000},
                             {'arrived': [[0, 1480, True, False, 63],
                                          [1480, 1480, True, False, 63],
                                          [2960, 1480, True, False, 63],
                                          [4440, 1480, True, False, 63],
                                          [5920, 1480, True, False, 63],
                                          [7400, 1480, True, False, 63],
                                          [8880, 1480, True, False, 63],
                                          [10360, 1480, True, False, 63],
                                          [11840, 1480, True, False, 63],
                                          [13320, 1480, True, False, 63],
                                          [14800, 1480, True, False, 63],
                                          [16280, 1480, True, False, 63],
                                          [17760, 1480, True, False, 63],
                                          [19240, 1480, True, False, 63],
                                          [20720, 1480, True, False, 63],
                                          [22200, 1480, True, False, 63],
                                          [23680, 1480, True, False, 63],
                                          [25160, 1480, True, False, 63],
                                          [26640, 1480, True, False, 63],
                                          [28120, 1480, True, False, 63],
                                          [29600, 1480, True, False, 63],
                                          [31080, 1480, True, False, 63],
                                          [32560, 1480, True, False, 63],
                                          [34040, 1480, True, False, 63],
                                          [35520, 1480, True, False, 63],
                                          [37000, 1480, True, False, 63],
                                          [38480, 1480, True, False, 63],
                                          [39960, 1480, True, False, 63],
                                          [41440, 1480, True, False, 63],
                                          [42920, 1480, True, False, 63],
                                          [44400, 1480, True, False, 63],
                                          [45880, 1480, True, False, 63],
                                          [47360, 1480, True, False, 63],
                                          [48840, 1480, True, False, 63],
                                          [50320, 1480, True, False, 63],
                                          [51800, 1480, True, False, 63],
                                          [53280, 1480, True, False, 63],
                                          [54760, 1480, True, False, 63],
                                          [56240, 1480, True, False, 63],
                                          [57720, 1480, True, False, 63],
                                          [59200, 1480, True, False, 63],
                                          [60680, 1480, True, False, 63],
                                          [62160, 1480, True, False, 63],
                                          [63640, 1480, True, False, 63],
                                          [65120, 395, False, False, 63]],
                              'received': 65507,
                              'sent': [[0, 1480, True, False, 64],
                                       [1480, 1480, True, False, 64],
                                       [2960, 1480, True, False, 64],
                                       [4440, 1480, True, False, 64],
                                       [5920, 1480, True, False, 64],
                                       [7400, 1480, True, False, 64],
                                       [8880, 1480, True, False, 64],
                                       [10360, 1480, True, False, 64],
                                       [11840, 1480, True, False, 64],
                                       [13320, 1480, True, False, 64],
                                       [14800, 1480, True, False, 64],
                                       [16280, 1480, True, False, 64],
                                       [17760, 1480, True, False, 64],
                                       [19240, 1480, True, False, 64],
                                       [20720, 1480, True, False, 64],
                                       [22200, 1480, True, False, 64],
                                       [23680, 1480, True, False, 64],
                                       [25160, 1480, True, False, 64],
                                       [26640, 1480, True, False, 64],
                                       [28120, 1480, True, False, 64],
                                       [29600, 1480, True, False, 64],
                                       [31080, 1480, True, False, 64],
                                       [32560, 1480, True, False, 64],
                                       [34040, 1480, True, False, 64],
                                       [35520, 1480, True, False, 64],
                                       [37000, 1480, True, False, 64],
                                       [38480, 1480, True, False, 64],
                                       [39960, 1480, True, False, 64],
                                       [41440, 1480, True, False, 64],
                                       [42920, 1480, True, False, 64],
                                       [44400, 1480, True, False, 64],
                                       [45880, 1480, True, False, 64],
                                       [47360, 1480, True, False, 64],
                                       [48840, 1480, True, False, 64],
                                       [50320, 1480, True, False, 64],
                                       [51800, 1480, True, False, 64],
                                       [53280, 1480, True, False, 64],
                                       [54760, 1480, True, False, 64],
                                       [56240, 1480, True, False, 64],
                                       [57720, 1480, True, False, 64],
                                       [59200, 1480, True, False, 64],
                                       [60680, 1480, True, False, 64],
                                       [62160, 1480, True, False, 64],
                                       [63640, 1480, True, False, 64],
                                       [65120, 395, False, False, 64]],
                              'size': 65507}],
               'mtu': 1500,
               'refused': {'error': {'errno': 'EMSGSIZE', 'strerror': 'Message too long'}, 'size': 1473},
               'server': {'InDatagrams': 4, 'ReasmFails': 0, 'ReasmOKs': 3, 'ReasmReqds': 50}},
 'how': 'python -m course.udplab record: run_fragments() and run_lost_fragment(), live, as an ordinary user',
 'kernel': '6.18.44-fc-v1045',
 'lost_fragment': {'attempts': [{'arrived': [[0, 1480, True, False, 63], [2960, 1048, False, False, 63]],
                                 'sent': [[0, 1480, True, False, 64],
                                          [1480, 1480, True, False, 64],
                                          [2960, 1048, False, False, 64]],
                                 'size': 4000,
                                 'tag': 'attempt 1'},
                                {'arrived': [[0, 1480, True, False, 63],
                                             [1480, 1480, True, False, 63],
                                             [2960, 1048, False, False, 63]],
                                 'sent': [[0, 1480, True, False, 64],
                                          [1480, 1480, True, False, 64],
                                          [2960, 1048, False, False, 64]],
                                 'size': 4000,
                                 'tag': 'attempt 2'}],
                   'client_heard': False,
                   'client_so_error': 0,
                   'icmp': [{'about': 'attempt 1', 'code': 1, 'from': '198.51.100.10', 'type': 11}],
                   'ipfrag_time': {'default': 30, 'set': 1},
                   'loss': 'the 2nd UDP packet',
                   'lost_by_the_link': 1,
                   'mtu': 1500,
                   'received': ['attempt 2'],
                   'server': {'InDatagrams': 1, 'ReasmFails': 1, 'ReasmOKs': 1, 'ReasmReqds': 5, 'ReasmTimeout': 1}},
 'recorded': '2026-12-01 13:41 UTC'}
# -- recording: end --
