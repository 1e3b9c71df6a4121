"""Live capture inside a lab host, without root, and pcap files for Wireshark or `tcpdump -r`.

The agent opens a packet socket in the host's namespace (it is root there: CAP_NET_RAW over that
namespace, and over nothing else) and passes it to the owner, which needs no privilege to use it:
it sets up a TPACKET_V2 ring (PACKET_RX_RING, mmap), then binds the socket to one interface. The
kernel copies each frame into the ring at the moment the interface sends or receives it, with its
time in nanoseconds. A copy matters: a plain recv() hands back the kernel's own buffer, which a
router further on may still rewrite (a fragment forwarded through NAT was seen on the sender's
side with the router's address in it), and the ring is not limited by net.core.rmem_max.

A thread of the owner empties the ring while the capture runs; `stop()` (the end of the `with`
block) stops it and takes what is left. A frame is in the ring before the program that sent or
received it goes on (the tap runs in the send and receive paths), so when an exchange is over,
all its frames are there: the capture never depends on timing. PACKET_STATISTICS says whether the
kernel dropped any (a full ring): then `stop()` raises rather than show an incomplete capture.

A veth interface shows each frame once: outgoing (sent by this host) or incoming.
"""
from __future__ import annotations

import mmap
import os
import select
import socket
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from course.errors import PeerError, SetupError

__all__ = [
    "ETH_P_ALL",
    "ETH_P_IP",
    "PACKET_OUTGOING",
    "LINKTYPE_ETHERNET",
    "Frame",
    "Packet",
    "Datagram",
    "IcmpMessage",
    "Capture",
    "parse_packet",
    "write_pcap",
    "read_pcap",
    "tcp_connections",
    "tcp_segments",
    "retransmissions",
    "datagrams",
    "datagram_fragments",
    "icmp_messages",
    "ETH_P_IPV6",
    "ETH_P_ARP",
    "TcpPacket",
    "NeighbourMessage",
    "tcp_packets",
    "neighbour_messages",
]

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION = 5, 6, 10
TPACKET_V2 = 1
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
# struct tpacket2_hdr is 32 bytes; struct sockaddr_ll (20) follows it; for SOCK_RAW the kernel puts
# the frame at TPACKET_ALIGN(32 + 20 + 16) - 14 = 66 bytes into the slot (af_packet.c, tpacket_rcv)
RING_SLL_OFFSET = 32
RING_MAC_OFFSET = 66
LINKTYPE_ETHERNET = 1
PCAP_MAGIC_NS = 0xA1B23C4D  # pcap with nanosecond timestamps (Wireshark and tcpdump read it)
SNAPLEN = 262144


@dataclass(frozen=True)
class Frame:
    """One Ethernet frame as the interface saw it."""

    t_ns: int  # when the kernel saw it, nanoseconds since the epoch
    outgoing: bool  # sent by this host (False: received)
    data: bytes

    @property
    def ethertype(self) -> int:
        return struct.unpack("!H", self.data[12:14])[0] if len(self.data) >= 14 else 0


@dataclass(frozen=True)
class Packet:
    """The IPv4 header of a frame, and what follows it."""

    t_ns: int
    outgoing: bool
    src: str
    dst: str
    proto: int  # 6 TCP, 17 UDP, 1 ICMP
    ident: int  # the IP identification: every fragment of one datagram has the same
    more_fragments: bool
    offset: int  # in bytes, from the start of the datagram's payload
    total_length: int
    header: bytes  # the IP header
    payload: bytes

    @property
    def fragment(self) -> bool:
        """True for a piece of a larger datagram (MF set, or an offset)."""
        return self.more_fragments or self.offset > 0

    @property
    def dont_fragment(self) -> bool:
        """DF: no router may cut this packet (it drops it and says so in ICMP instead)."""
        return bool(self.header[6] & 0x40)

    @property
    def ttl(self) -> int:
        """Time to live: each router that forwards the packet takes one off."""
        return self.header[8]


@dataclass(frozen=True)
class Datagram:
    """One IP datagram as a capture saw it: its packets, one if it went whole, else the fragments
    that came (those with its source, destination, protocol and identification), sorted by offset."""

    src: str
    dst: str
    proto: int
    ident: int
    packets: tuple[Packet, ...]

    @property
    def first(self) -> Packet | None:
        """The packet at offset 0, the one with the UDP or TCP header (None when it is missing)."""
        return next((p for p in self.packets if p.offset == 0), None)

    @property
    def ports(self) -> tuple[int, int] | None:
        """(source port, destination port) from the first packet, None without it."""
        first = self.first
        if first is None or len(first.payload) < 4:
            return None
        return struct.unpack("!HH", first.payload[:4])

    @property
    def udp_size(self) -> int | None:
        """Bytes of UDP data in the whole datagram, from the first packet's UDP header (None without it)."""
        first = self.first
        if self.proto != socket.IPPROTO_UDP or first is None or len(first.payload) < 8:
            return None
        return struct.unpack("!H", first.payload[4:6])[0] - 8

    @property
    def udp_data(self) -> bytes | None:
        """The UDP data the first packet carries (all of it for a whole datagram), None without it."""
        first = self.first
        return first.payload[8:] if self.udp_size is not None and first is not None else None


@dataclass(frozen=True)
class IcmpMessage:
    """An ICMP message in a capture; `quoted`, for an error, the packet it is about: (source,
    destination, protocol, identification) of the IP header it quotes."""

    t_ns: int
    outgoing: bool
    src: str
    dst: str
    type: int  # 3 destination unreachable, 11 time exceeded, 0/8 echo reply/request...
    code: int  # for type 11: 0 TTL exceeded in transit, 1 fragment reassembly time exceeded
    quoted: tuple[str, str, int, int] | None


def parse_packet(frame: Frame) -> Packet | None:
    """The IPv4 packet in an Ethernet frame; None for ARP and anything else."""
    if frame.ethertype != ETH_P_IP or len(frame.data) < 34:
        return None
    ip = frame.data[14:]
    if ip[0] >> 4 != 4:
        return None
    ihl = (ip[0] & 0x0F) * 4
    total, ident, flags_offset = struct.unpack("!HHH", ip[2:8])
    return Packet(
        t_ns=frame.t_ns, outgoing=frame.outgoing,
        src=socket.inet_ntoa(ip[12:16]), dst=socket.inet_ntoa(ip[16:20]), proto=ip[9], ident=ident,
        more_fragments=bool(flags_offset & 0x2000), offset=(flags_offset & 0x1FFF) * 8,
        total_length=total, header=bytes(ip[:ihl]), payload=bytes(ip[ihl:total]),
    )


class Capture:
    """Every frame on one interface of a lab host, from `with` (or start()) to the block's end.

        with net.host("home").capture("eth0") as cap:
            ...                      # talk
        cap.frames                   # [Frame, ...] in the order the kernel saw them
        cap.save("talk.pcap")        # for Wireshark or tcpdump -r
    """

    def __init__(self, host, iface: str, buffer: int = 16 << 20):
        self.host, self.iface = host, iface
        self.frames: list[Frame] = []
        self.dropped = 0
        self.truncated = 0
        self._sock: socket.socket | None = None
        self._ring: mmap.mmap | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next = 0
        mtu = 65535
        for link in host.lab.links:
            if (link.a is host and link.a_iface == iface) or (link.b is host and link.b_iface == iface):
                mtu = link.mtu
        # each slot holds the ring's header, the address, and a whole frame of this link's MTU
        self.frame_size = _power_of_two(RING_MAC_OFFSET + 14 + mtu + 4)
        self.block_size = max(self.frame_size, 1 << 20)
        self.blocks = max(1, buffer // self.block_size)

    def __enter__(self) -> "Capture":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop(check=exc_info[0] is None)

    def start(self) -> None:
        if self.iface not in self.host.interfaces:
            raise SetupError(f"lab host {self.host.name!r} has no interface {self.iface!r} "
                             f"(it has {', '.join(self.host.interfaces) or 'none'})")
        # protocol 0: the socket sees nothing until bind() below, after the ring is in place
        reply, fds = self.host.lab._call("socket", nfds=1, host=self.host.name, family=int(socket.AF_PACKET),
                                         type=int(socket.SOCK_RAW), proto=0)
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0, fileno=fds[0])
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
            frames = self.blocks * (self.block_size // self.frame_size)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", self.block_size, self.blocks, self.frame_size, frames))
            self._ring = mmap.mmap(sock.fileno(), self.block_size * self.blocks, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            self._slots = frames
            sock.bind((self.iface, ETH_P_ALL))
        except OSError as exc:
            sock.close()
            if self._ring is not None:
                self._ring.close()
                self._ring = None
            raise SetupError(f"cannot capture on lab host {self.host.name!r}'s {self.iface}: {exc}") from None
        self._sock = sock
        self.host.lab._handed.add(self)
        self._thread = threading.Thread(target=self._follow, name=f"netlab-capture-{self.host.name}-{self.iface}", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                ready, _, _ = select.select([sock], [], [], 0.05)
            except (OSError, ValueError):
                return  # closed under us
            if ready:
                self.poll()

    def poll(self) -> list[Frame]:
        """Take the frames the ring holds now; returns the new ones (all of them are in .frames)."""
        with self._lock:
            return self._read()

    def _read(self) -> list[Frame]:
        ring = self._ring
        if ring is None:
            return []
        new = []
        per_block = self.block_size // self.frame_size
        while True:
            i = self._next
            at = (i // per_block) * self.block_size + (i % per_block) * self.frame_size
            status, wire_length, snaplen, mac, _net, sec, nsec = struct.unpack_from("IIIHHII", ring, at)
            if not status & TP_STATUS_USER:
                break
            pkttype = ring[at + RING_SLL_OFFSET + 10]
            data = bytes(ring[at + mac : at + mac + snaplen])
            if snaplen < wire_length:
                self.truncated += 1
            new.append(Frame(sec * 1_000_000_000 + nsec, pkttype == PACKET_OUTGOING, data))
            struct.pack_into("I", ring, at, TP_STATUS_KERNEL)  # the slot is the kernel's again
            self._next = (i + 1) % self._slots
        self.frames.extend(new)
        return new

    def stop(self, check: bool = True) -> list[Frame]:
        """Take what is left and close. With check, raise PeerError if the kernel dropped frames
        because the ring was full (the capture would be incomplete)."""
        if self._sock is None:
            return self.frames
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        with self._lock:
            self._read()
            _packets, drops = struct.unpack("II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            self.dropped += drops
        self.close()
        if check and self.dropped:
            raise PeerError(f"the capture on {self.host.name}:{self.iface} lost {self.dropped} frames of {len(self.frames) + self.dropped} "
                            f"(its ring was full: the reader fell behind): capture a shorter exchange, or give a larger buffer")
        return self.frames

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._ring is not None:
                self._ring.close()
                self._ring = None
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def packets(self) -> list[Packet]:
        """The IPv4 packets among the frames."""
        return [p for p in map(parse_packet, self.frames) if p is not None]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the frames as a pcap file (Ethernet, nanosecond timestamps)."""
        return write_pcap(path, self.frames)


def _power_of_two(n: int) -> int:
    size = 16
    while size < n:
        size *= 2
    return size


# ----------------------------------------------------------------------------------------------
# pcap files
# ----------------------------------------------------------------------------------------------
def write_pcap(path: str | os.PathLike, frames: list[Frame]) -> Path:
    path = Path(path)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        for fr in frames:
            sec, nsec = divmod(fr.t_ns, 1_000_000_000)
            data = fr.data[:SNAPLEN]
            f.write(struct.pack("<IIII", sec, nsec, len(data), len(fr.data)))
            f.write(data)
    return path


def read_pcap(path: str | os.PathLike) -> list[Frame]:
    """Frames of a pcap file (Ethernet; micro- or nanosecond timestamps). Direction is unknown
    in pcap: every frame reads as incoming."""
    raw = Path(path).read_bytes()
    if len(raw) < 24:
        raise ValueError(f"{path} is too short for a pcap file ({len(raw)} bytes)")
    magic = struct.unpack("<I", raw[:4])[0]
    if magic not in (PCAP_MAGIC_NS, 0xA1B2C3D4):
        raise ValueError(f"{path} is not a little-endian pcap file (magic {magic:#x})")
    scale = 1 if magic == PCAP_MAGIC_NS else 1000
    linktype = struct.unpack("<I", raw[20:24])[0]
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path} holds link type {linktype}, not Ethernet (1)")
    frames, i = [], 24
    while i + 16 <= len(raw):
        sec, sub, incl, _orig = struct.unpack("<IIII", raw[i : i + 16])
        frames.append(Frame(sec * 1_000_000_000 + sub * scale, False, raw[i + 16 : i + 16 + incl]))
        i += 16 + incl
    return frames


# ----------------------------------------------------------------------------------------------
# Reading a capture
# ----------------------------------------------------------------------------------------------
def tcp_connections(frames: list[Frame], server: tuple[str, int] | None = None) -> list[list[tuple[Frame, dict]]]:
    """The TCP connections in the frames (to `server`, if given), in the order of their SYNs: for
    each, its frames with the segment each carries (course.capture.parse_ipv4_tcp's dict). A
    connection is its two endpoints; its first segment is the client's SYN (the end of a
    connection begun before the capture is left out)."""
    from course.capture import parse_ipv4_tcp

    found: dict[tuple, list[tuple[Frame, dict]]] = {}
    for fr in frames:
        p = parse_packet(fr)
        if p is None or p.proto != socket.IPPROTO_TCP or p.fragment:
            continue
        try:
            seg = parse_ipv4_tcp(fr.data[14:])
        except ValueError:  # cut short (a frame longer than the ring's slot) or malformed
            continue
        key = (seg["src"], seg["dst"])
        if key not in found and key[::-1] not in found:
            if seg["flags"] != "SYN" or (server is not None and seg["dst"] != server):
                continue
            found[key] = []
        found[key if key in found else key[::-1]].append((fr, seg))
    return list(found.values())


def tcp_segments(frames: list[Frame], server: tuple[str, int] | None = None):
    """The TCP segments of the first connection in the frames (to `server`, if given), as
    course.capture's Segments: 'client' is the side that sent the SYN, t in seconds from the first."""
    from course.capture import Segment

    connections = tcp_connections(frames, server)
    if not connections:
        return []
    rows = connections[0]
    t0, client = rows[0][0].t_ns, rows[0][1]["src"]
    return [
        Segment(t=round((fr.t_ns - t0) / 1e9, 6), sender="client" if s["src"] == client else "server", flags=s["flags"],
                seq=s["seq"], ack=s["ack"], length=s["length"], window=s["window"], mss=s["mss"],
                header_length=s["header_length"])
        for fr, s in rows
    ]


def retransmissions(segments, sender: str = "client") -> int:
    """How many of `sender`'s segments carried payload it had sent before (relative sequence
    numbers below the highest byte already sent): what Wireshark flags as retransmissions."""
    from course.capture import relative

    sent_up_to, count = None, 0
    for s in relative(segments):
        if s.sender != sender or s.length == 0:
            continue
        if sent_up_to is not None and s.seq < sent_up_to:
            count += 1
        sent_up_to = max(sent_up_to or 0, s.seq + s.length)
    return count


def datagrams(frames: list[Frame], proto: int = socket.IPPROTO_UDP, src: str | None = None, dst: str | None = None,
              outgoing: bool | None = None) -> list[Datagram]:
    """The IP datagrams of protocol `proto` in a capture (from `src`, to `dst`, in that direction,
    where given), in the order their first packet was seen. Fragments belong together by source,
    destination, protocol and identification; a packet that went whole is a datagram of its own (a
    whole datagram may reuse an identification: Linux sends 0 in every unconnected one with DF)."""
    found: dict[tuple, list[Packet]] = {}
    for i, p in enumerate(map(parse_packet, frames)):
        if p is None or p.proto != proto or (outgoing is not None and p.outgoing != outgoing):
            continue
        if (src is not None and p.src != src) or (dst is not None and p.dst != dst):
            continue
        found.setdefault((p.src, p.dst, p.proto, p.ident) if p.fragment else i, []).append(p)
    return [Datagram(ps[0].src, ps[0].dst, ps[0].proto, ps[0].ident, tuple(sorted(ps, key=lambda p: p.offset)))
            for ps in found.values()]


def datagram_fragments(frames: list[Frame], src: tuple[str, int], dst: tuple[str, int], outgoing: bool | None = True) -> int:
    """How many IPv4 packets carried the first UDP datagram from `src` to `dst`: 1 when it went
    whole, else its fragments (0 when it is not in the capture)."""
    for d in datagrams(frames, socket.IPPROTO_UDP, src[0], dst[0], outgoing):
        if d.ports == (src[1], dst[1]):
            return len(d.packets)
    return 0


def icmp_messages(frames: list[Frame], to: str | None = None) -> list[IcmpMessage]:
    """The ICMP messages in a capture (to `to`, where given), in the order they were seen."""
    found = []
    for p in map(parse_packet, frames):
        if p is None or p.proto != socket.IPPROTO_ICMP or (to is not None and p.dst != to) or len(p.payload) < 8:
            continue
        inner = p.payload[8:]  # an error quotes the IP header (and 8 bytes) of the packet it is about
        quoted = None
        if p.payload[0] in (3, 4, 5, 11, 12) and len(inner) >= 20 and inner[0] >> 4 == 4:
            quoted = (socket.inet_ntoa(inner[12:16]), socket.inet_ntoa(inner[16:20]), inner[9],
                      struct.unpack("!H", inner[4:6])[0])
        found.append(IcmpMessage(p.t_ns, p.outgoing, p.src, p.dst, p.payload[0], p.payload[1], quoted))
    return found


# ----------------------------------------------------------------------------------------------
# Both families: TCP segments of IPv4 and IPv6, and how each finds its neighbour (ARP, ND)
# ----------------------------------------------------------------------------------------------
TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG")  # course.capture's names and order


@dataclass(frozen=True)
class TcpPacket:
    """A TCP segment of either family, as a capture saw it (IPv6: only a TCP header straight after
    the fixed 40-byte header, as Linux sends it; extension headers are not read)."""

    t_ns: int
    outgoing: bool
    version: int  # 4 or 6
    src: tuple[str, int]
    dst: tuple[str, int]
    flags: str  # 'SYN', 'SYN,ACK', 'RST,ACK'...
    seq: int
    ack: int
    length: int  # bytes of payload

    @staticmethod
    def where(address: tuple[str, int]) -> str:
        """'192.0.2.1:80', '[2001:db8::1]:80'."""
        return f"[{address[0]}]:{address[1]}" if ":" in address[0] else f"{address[0]}:{address[1]}"


def _tcp_packet(frame: Frame) -> TcpPacket | None:
    kind, data = frame.ethertype, frame.data[14:]
    if kind == ETH_P_IP and len(data) >= 20 and data[0] >> 4 == 4 and data[9] == socket.IPPROTO_TCP:
        ihl, total = (data[0] & 0x0F) * 4, struct.unpack("!H", data[2:4])[0]
        if struct.unpack("!H", data[6:8])[0] & 0x3FFF:  # a fragment
            return None
        version, src, dst, tcp = 4, socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]), data[ihl:total]
    elif kind == ETH_P_IPV6 and len(data) >= 40 and data[0] >> 4 == 6 and data[6] == socket.IPPROTO_TCP:
        length = struct.unpack("!H", data[4:6])[0]
        version, tcp = 6, data[40:40 + length]
        src, dst = socket.inet_ntop(socket.AF_INET6, data[8:24]), socket.inet_ntop(socket.AF_INET6, data[24:40])
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack, off_flags = struct.unpack("!HHIIH", tcp[:14])
    flags = ",".join(name for i, name in enumerate(TCP_FLAG_NAMES) if off_flags & (1 << i))
    return TcpPacket(frame.t_ns, frame.outgoing, version, (src, sport), (dst, dport), flags, seq, ack,
                     len(tcp) - (off_flags >> 12) * 4)


def tcp_packets(frames: list[Frame], port: int | None = None) -> list[TcpPacket]:
    """The TCP segments of both families in a capture (to or from `port`, where given), in order."""
    found = [p for p in map(_tcp_packet, frames) if p is not None]
    return [p for p in found if port is None or port in (p.src[1], p.dst[1])]


@dataclass(frozen=True)
class NeighbourMessage:
    """How a host finds the link-layer address of a neighbour: IPv4's ARP request and reply, or
    IPv6's neighbour solicitation and advertisement (ICMPv6 135 and 136, RFC 4861)."""

    t_ns: int
    outgoing: bool
    kind: str  # 'ARP request', 'ARP reply', 'neighbour solicitation', 'neighbour advertisement'
    about: str  # the IP address asked about (or answered for)
    src: str  # the IP address that asked or answered


def neighbour_messages(frames: list[Frame]) -> list[NeighbourMessage]:
    """The ARP and neighbour discovery messages in a capture, in order."""
    found = []
    for fr in frames:
        data = fr.data[14:]
        if fr.ethertype == ETH_P_ARP and len(data) >= 28:
            op = struct.unpack("!H", data[6:8])[0]
            if op in (1, 2):
                about = data[24:28] if op == 1 else data[14:18]
                found.append(NeighbourMessage(fr.t_ns, fr.outgoing, "ARP request" if op == 1 else "ARP reply",
                                              socket.inet_ntoa(about), socket.inet_ntoa(data[14:18])))
        elif fr.ethertype == ETH_P_IPV6 and len(data) >= 64 and data[6] == 58 and data[40] in (135, 136):
            found.append(NeighbourMessage(fr.t_ns, fr.outgoing,
                                          "neighbour solicitation" if data[40] == 135 else "neighbour advertisement",
                                          socket.inet_ntop(socket.AF_INET6, data[48:64]),
                                          socket.inet_ntop(socket.AF_INET6, data[8:24])))
    return found
