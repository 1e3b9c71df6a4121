"""Capture the real segments of one TCP connection on the loopback interface, as Wireshark would.

How: a packet socket, socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)) bound to 'lo', sees every
frame on the loopback interface. It needs root or CAP_NET_RAW (the course's CI and lab machine run
as root); without it the kernel raises PermissionError, and `conversation()` shows a recording
made with this same code instead, and says so. A classic BPF filter attached to the socket lets
through only IPv4 TCP frames to or from the port being watched, so that other programs' traffic
on lo costs nothing.

On lo every frame is seen twice: once leaving (packet type PACKET_OUTGOING) and once arriving
(PACKET_HOST). We keep the arriving copy only, so each segment is counted once.

Each frame is parsed by `parse_frame` (no sockets: testable on bytes) into a `Segment`: who sent
it ('client' is the side that sent the first SYN), flags as Wireshark writes them ('SYN,ACK'),
absolute seq and ack, payload length, window, the MSS option if present, the TCP header length.
`relative(segments)` gives Wireshark's relative numbers (each side's ISN counts as 0).
`label_segments` names each segment's role ('handshake 1: SYN', ..., 'teardown 4: ACK').
"""
from __future__ import annotations

import json
import os
import platform
import select
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from course.checks import forward_moved_checks
from course.errors import PeerError, SetupError

__all__ = [
    "ETH_P_ALL",
    "ETH_P_IP",
    "PACKET_OUTGOING",
    "SO_ATTACH_FILTER",
    "ETH_HEADER",
    "DATA_DIR",
    "RECORDINGS",
    "FLAG_NAMES",
    "CaptureNotAllowed",
    "Segment",
    "flag_string",
    "parse_tcp_options",
    "parse_ipv4_tcp",
    "parse_frame",
    "port_filter",
    "open_packet_socket",
    "allowed",
    "Capture",
    "Conversation",
    "capture_live",
    "load_recording",
    "conversation",
    "save_recording",
    "relative",
    "LABELS",
    "label_segments",
    "segments_from_conversation",
]

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sends (on lo it is seen again arriving)
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
ETH_HEADER = 14
DATA_DIR = Path(__file__).resolve().parent / "data"
RECORDINGS = {
    "client closes first": DATA_DIR / "capture-client-closes-first.json",
    "server closes first": DATA_DIR / "capture-server-closes-first.json",
    "connection refused": DATA_DIR / "capture-connection-refused.json",
}
FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")  # bit 0 upwards


class CaptureNotAllowed(SetupError):
    """This process may not open a packet socket (it needs root or CAP_NET_RAW)."""


@dataclass(frozen=True)
class Segment:
    """One TCP segment as seen on the wire."""

    t: float  # seconds since the first segment of the capture
    sender: str  # 'client' (the side that sent the first SYN) or 'server'
    flags: str  # e.g. 'SYN', 'SYN,ACK', 'PSH,ACK', 'FIN,ACK', 'RST,ACK'
    seq: int
    ack: int
    length: int  # payload bytes
    window: int  # the window field as sent (before scaling)
    mss: int | None = None  # the MSS option, in SYN segments
    header_length: int = 20  # TCP header bytes: 20 plus options, at most 60

    def has(self, flag: str) -> bool:
        return flag in self.flags.split(",")

    def __str__(self) -> str:
        arrow = "client -> server" if self.sender == "client" else "client <- server"
        mss = f" mss={self.mss}" if self.mss is not None else ""
        return f"{arrow}  {self.flags:<9} seq={self.seq:<10} ack={self.ack:<10} len={self.length:<5} win={self.window}{mss}"


# ----------------------------------------------------------------------------------------------
# Parsing bytes (no sockets)
# ----------------------------------------------------------------------------------------------
def flag_string(bits: int) -> str:
    return ",".join(name for i, name in enumerate(FLAG_NAMES) if bits & (1 << i))


def parse_tcp_options(options: bytes) -> dict[str, int]:
    """The options this course reads: {'mss': 65495} when an MSS option (kind 2) is present."""
    found: dict[str, int] = {}
    i = 0
    while i < len(options):
        kind = options[i]
        if kind == 0:  # end of option list
            break
        if kind == 1:  # no-operation (padding)
            i += 1
            continue
        if i + 1 >= len(options) or options[i + 1] < 2 or i + options[i + 1] > len(options):
            raise ValueError(f"malformed TCP option of kind {kind} at offset {i}")
        size = options[i + 1]
        if kind == 2 and size == 4:
            found["mss"] = struct.unpack("!H", options[i + 2 : i + 4])[0]
        i += size
    return found


def parse_ipv4_tcp(packet: bytes) -> dict:
    """Parse an IPv4 packet carrying TCP into a dict of plain values:
    src, dst (ip, port), flags, seq, ack, length, window, mss, header_length.
    ValueError if it is not IPv4/TCP or is cut short."""
    if len(packet) < 20:
        raise ValueError(f"{len(packet)} bytes is too short for an IPv4 header (20 bytes at least)")
    version, ihl = packet[0] >> 4, (packet[0] & 0x0F) * 4
    if version != 4:
        raise ValueError(f"not IPv4: the version field is {version}")
    total = struct.unpack("!H", packet[2:4])[0]
    if packet[9] != 6:
        raise ValueError(f"not TCP: the IP protocol field is {packet[9]}")
    if ihl < 20 or total < ihl + 20 or len(packet) < total:
        raise ValueError(f"IPv4 packet cut short or malformed: header {ihl} bytes, total length {total}, got {len(packet)} bytes")
    src_ip, dst_ip = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
    tcp = packet[ihl:total]
    sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", tcp[:16])
    header_length = (off_flags >> 12) * 4
    if header_length < 20 or header_length > len(tcp):
        raise ValueError(f"TCP data offset says {header_length} header bytes, but the segment has {len(tcp)}")
    options = parse_tcp_options(tcp[20:header_length])
    return {
        "src": (src_ip, sport),
        "dst": (dst_ip, dport),
        "flags": flag_string(off_flags & 0xFF),
        "seq": seq,
        "ack": ack,
        "length": len(tcp) - header_length,
        "window": window,
        "mss": options.get("mss"),
        "header_length": header_length,
    }


def parse_frame(frame: bytes) -> dict | None:
    """An Ethernet frame from lo (14-byte header, all-zero addresses): the parsed TCP segment,
    or None if it is not IPv4 TCP."""
    if len(frame) < ETH_HEADER or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    packet = frame[ETH_HEADER:]
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return None
    return parse_ipv4_tcp(packet)


def port_filter(port: int) -> bytes:
    """A classic BPF program (struct sock_fprog's instructions) passing IPv4 TCP frames from or
    to `port` and dropping the rest; tcpdump's `ip and tcp port PORT`, without fragments."""
    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)

    prog = [
        ins(0x28, 0, 0, 12),  # ldh [12]             ethertype
        ins(0x15, 0, 8, ETH_P_IP),  # jeq #0x800
        ins(0x30, 0, 0, 23),  # ldb [23]             IP protocol
        ins(0x15, 0, 6, 6),  # jeq #6 (TCP)
        ins(0x28, 0, 0, 20),  # ldh [20]             flags and fragment offset
        ins(0x45, 4, 0, 0x1FFF),  # jset #0x1fff   a fragment: drop
        ins(0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf)    IP header length
        ins(0x48, 0, 0, 14),  # ldh [x+14]           source port
        ins(0x15, 2, 0, port),  # jeq #port -> accept
        ins(0x48, 0, 0, 16),  # ldh [x+16]           destination port
        ins(0x15, 0, 1, port),  # jeq #port -> accept, else drop
        ins(0x06, 0, 0, 0x40000),  # accept: ret #262144
        ins(0x06, 0, 0, 0),  # drop: ret #0
    ]
    return b"".join(prog)


def _attach_filter(sock: socket.socket, port: int) -> None:
    import ctypes

    code = port_filter(port)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(code) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# ----------------------------------------------------------------------------------------------
# Live capture
# ----------------------------------------------------------------------------------------------
def open_packet_socket() -> socket.socket:
    """A raw packet socket on lo; CaptureNotAllowed without root or CAP_NET_RAW."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError as exc:
        raise CaptureNotAllowed(
            f"this process (uid {os.getuid()}) may not open a packet socket ({exc.strerror}); capturing needs root or CAP_NET_RAW"
        ) from None
    except (AttributeError, OSError) as exc:
        raise CaptureNotAllowed(f"packet sockets are not available here: {exc}") from None
    return sock


def allowed() -> bool:
    """True if this process may capture on lo."""
    try:
        open_packet_socket().close()
        return True
    except CaptureNotAllowed:
        return False


class Capture:
    """Capture the segments of the first connection to (or from) `port` made inside the block.

        with Capture(server_port, timeout=2.0) as cap:
            ...   # connect, talk, close
        cap.segments

    The thread reading frames stops when the block ends, once the connection is over (its last
    ACK or a RST seen), or at `timeout` seconds after the start, whichever comes first: leaving
    the block waits at most until that deadline for the teardown's last segments.
    """

    def __init__(self, port: int, timeout: float = 2.0):
        if not 0 < port < 65536:
            raise ValueError(f"a port is between 1 and 65535, got {port}")
        self.port = port
        self.timeout = timeout
        self.segments: list[Segment] = []
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int] | None = None
        self.live = True
        self._raw: list[tuple[float, dict]] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._end = 0.0

    def __enter__(self) -> "Capture":
        sock = open_packet_socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            _attach_filter(sock, self.port)
            sock.bind(("lo", 0))
        except OSError as exc:
            sock.close()
            raise CaptureNotAllowed(f"cannot capture on lo: {exc}") from None
        sock.setblocking(False)
        # frames that arrived before the filter was attached may be anything: drop them
        try:
            while True:
                sock.recv(65535)
        except BlockingIOError:
            pass
        self._sock = sock
        self._end = time.monotonic() + self.timeout
        self._thread = threading.Thread(target=self._read, name=f"Capture-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            left = self._end - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([sock], [], [], min(left, 0.05))
            if not ready:
                continue
            while True:
                try:
                    frame, addr = sock.recvfrom(65600)
                except (BlockingIOError, OSError):
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                try:
                    seg = parse_frame(frame)
                except ValueError:
                    continue
                if seg is not None and self._keep(seg):
                    self._raw.append((time.monotonic(), seg))
                    if self._finished():
                        self._done.set()

    def _keep(self, seg: dict) -> bool:
        if self.client is None:
            if seg["flags"] == "SYN" and seg["dst"][1] == self.port:
                self.client, self.server = seg["src"], seg["dst"]
                return True
            if seg["flags"] == "SYN" and seg["src"][1] == self.port:  # we watch a client's port
                self.client, self.server = seg["src"], seg["dst"]
                return True
            return False
        return {seg["src"], seg["dst"]} == {self.client, self.server}

    def _finished(self) -> bool:
        segs = [s for _, s in self._raw]
        if any("RST" in s["flags"].split(",") for s in segs):
            return True
        fins = [s for s in segs if "FIN" in s["flags"].split(",")]
        if len({s["src"] for s in fins}) < 2:
            return False
        last_fin = fins[-1]
        want = (last_fin["seq"] + last_fin["length"] + 1) % 2**32
        return any(s["src"] == last_fin["dst"] and "ACK" in s["flags"].split(",") and s["ack"] == want for s in segs)

    def __exit__(self, *exc_info) -> None:
        self._done.wait(max(0.0, self._end - time.monotonic()))
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()
        t0 = self._raw[0][0] if self._raw else 0.0
        self.segments = [
            Segment(
                t=round(t - t0, 6),
                sender="client" if s["src"] == self.client else "server",
                flags=s["flags"], seq=s["seq"], ack=s["ack"], length=s["length"],
                window=s["window"], mss=s["mss"], header_length=s["header_length"],
            )
            for t, s in self._raw
        ]

    @property
    def finished(self) -> bool:
        """True if the capture saw the connection end (both FINs and the last ACK, or a RST)."""
        return self._done.is_set()


# ----------------------------------------------------------------------------------------------
# A whole conversation, live or recorded
# ----------------------------------------------------------------------------------------------
@dataclass
class Conversation:
    """The segments of one connection, and whether they were captured now or read from a file."""

    segments: list[Segment]
    live: bool
    scenario: str
    note: str  # one sentence for the reader: live or recorded, where and when
    client: str = ""
    server: str = ""

    def print(self, relative_numbers: bool = True) -> None:
        print(self.note)
        segs = relative(self.segments) if relative_numbers else self.segments
        for i, s in enumerate(segs, 1):
            print(f"{i:>2}  {s}")


def _talk(scenario: str, listener: socket.socket) -> None:
    """The programs of each scenario: seed 000's conversation (20 bytes up, 10 bytes down)."""
    address = listener.getsockname()
    if scenario == "connection refused":
        # the "listener" is bound but never listened: the SYN gets a RST, and since the port stays
        # bound during the connect, no other program can start listening on it in between
        with socket.socket() as c:
            c.settimeout(2.0)
            try:
                c.connect(address)
            except ConnectionRefusedError:
                return
            raise PeerError(f"connect to {address[0]}:{address[1]} was not refused")
    with socket.create_connection(address, timeout=2.0) as c:
        s, _ = listener.accept()
        with s:
            s.settimeout(2.0)
            c.sendall(b"0123456789abcdefghij")  # 20 bytes, as in seed 000
            got = b""
            while len(got) < 20:
                chunk = s.recv(20 - len(got))
                if not chunk:
                    raise PeerError("the client closed before its 20 bytes arrived")
                got += chunk
            s.sendall(b"0123456789")  # 10 bytes back
            reply = b""
            while len(reply) < 10:
                reply += c.recv(10 - len(reply))
            first, second = (c, s) if scenario == "client closes first" else (s, c)
            first.shutdown(socket.SHUT_WR)
            if second.recv(1) != b"":
                raise PeerError("expected the end of the stream after the first FIN")
            if scenario == "client closes first":
                # let the kernel acknowledge the FIN on its own first (seed 000's four segments);
                # closing at once often puts that ACK in the second FIN (three segments)
                from course.kernel import wait_for_state

                wait_for_state(first, "FIN_WAIT2", 2.0)
            second.close()
            if first.recv(1) != b"":
                raise PeerError("expected the end of the stream after the second FIN")


def capture_live(scenario: str = "client closes first", timeout: float = 2.0) -> Conversation:
    """Capture one real conversation on lo now (CaptureNotAllowed without permission)."""
    if scenario not in RECORDINGS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(RECORDINGS)}")
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        if scenario != "connection refused":
            listener.listen(1)
        listener.settimeout(2.0)
        port = listener.getsockname()[1]
        with Capture(port, timeout=timeout) as cap:
            _talk(scenario, listener)
    finally:
        listener.close()
    if not cap.segments:
        raise PeerError(f"captured nothing on lo for port {port} within {timeout} s")
    return Conversation(
        segments=cap.segments, live=True, scenario=scenario,
        note=f"Captured live on lo just now: {len(cap.segments)} segments of one connection ({scenario}).",
        client=f"{cap.client[0]}:{cap.client[1]}", server=f"{cap.server[0]}:{cap.server[1]}",
    )


def load_recording(scenario: str = "client closes first", why: str = "") -> Conversation:
    """The recording of a scenario shipped in course/data (made with `capture_live`); `why`
    says, in the note, why no live capture was shown."""
    if scenario not in RECORDINGS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(RECORDINGS)}")
    data = json.loads(RECORDINGS[scenario].read_text())
    segments = [Segment(**s) for s in data["segments"]]
    note = (
        f"This is a RECORDING, not a live capture: {len(segments)} segments captured on {data['recorded']} "
        f"on Linux {data['kernel']} with course.capture ({scenario})" + (f"; no live capture here: {why}" if why else "") + "."
    )
    return Conversation(segments, False, scenario, note, data["client"], data["server"])


def conversation(scenario: str = "client closes first", timeout: float = 2.0) -> Conversation:
    """A live capture where allowed, else the recording; `.note` says which, and why."""
    try:
        return capture_live(scenario, timeout)
    except (CaptureNotAllowed, PeerError, OSError) as exc:  # OSError: TimeoutError on a loaded machine
        return load_recording(scenario, why=str(exc))


def save_recording(conv: Conversation, path: Path | None = None) -> Path:
    """Write a live conversation as JSON (how course/data was made)."""
    path = path or RECORDINGS[conv.scenario]
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "scenario": conv.scenario,
        "recorded": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": platform.release(),
        "how": "course.capture.capture_live: AF_PACKET socket on lo, incoming copies only",
        "client": conv.client,
        "server": conv.server,
        "segments": [asdict(s) for s in conv.segments],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# Reading a capture
# ----------------------------------------------------------------------------------------------
def relative(segments: list[Segment]) -> list[Segment]:
    """Wireshark's relative numbers: seq minus the sender's ISN, ack minus the receiver's ISN
    (the ISN of a side is the seq of its SYN). A segment without ACK keeps ack 0."""
    isn: dict[str, int] = {}
    for s in segments:
        if s.has("SYN") and s.sender not in isn:
            isn[s.sender] = s.seq
    out = []
    for s in segments:
        other = "server" if s.sender == "client" else "client"
        seq = (s.seq - isn[s.sender]) % 2**32 if s.sender in isn else s.seq
        ack = (s.ack - isn[other]) % 2**32 if s.has("ACK") and other in isn else s.ack
        out.append(replace(s, seq=seq, ack=ack))
    return out


LABELS = (
    "handshake 1: SYN", "handshake 2: SYN-ACK", "handshake 3: ACK", "data", "ACK",
    "teardown 1: FIN", "teardown 2: ACK", "teardown 3: FIN", "teardown 4: ACK", "RST",
)  # fmt: skip


def label_segments(segments: list[Segment]) -> list[str]:
    """The role of each segment of one connection, one of LABELS, by these rules in this order:
    RST flag: 'RST'. SYN without ACK: 'handshake 1: SYN'; SYN with ACK: 'handshake 2: SYN-ACK'.
    FIN: the first FIN of the connection is 'teardown 1: FIN', a later one 'teardown 3: FIN'.
    Payload (length > 0): 'data'. Otherwise a pure ACK: 'handshake 3: ACK' if it is the first
    segment of any kind that acknowledges the SYN-ACK (sent by the side that did not send the
    SYN-ACK, ack = SYN-ACK seq + 1; when that first segment carries data or a FIN, no segment is
    'handshake 3: ACK'); 'teardown 2: ACK' if it acknowledges the first FIN, 'teardown 4: ACK' the
    second one (sent by the other side, ack = that FIN's seq + length + 1); else 'ACK'. Which ACK
    acknowledges which FIN is read from the numbers and the sender, never from the position: in a
    simultaneous close both FINs come before both ACKs."""
    labels: list[str] = []
    synack: Segment | None = None
    handshake_acked = False
    fins: list[Segment] = []
    for s in segments:
        third = False
        if synack is not None and not handshake_acked and s.sender != synack.sender and s.has("ACK") \
                and s.ack == (synack.seq + 1) % 2**32:
            third = handshake_acked = True  # the first segment that acknowledges the SYN-ACK
        if s.has("RST"):
            labels.append("RST")
        elif s.has("SYN"):
            if s.has("ACK"):
                synack = synack or s
                labels.append("handshake 2: SYN-ACK")
            else:
                labels.append("handshake 1: SYN")
        elif s.has("FIN"):
            labels.append("teardown 1: FIN" if not fins else "teardown 3: FIN")
            fins.append(s)
        elif s.length > 0:
            labels.append("data")
        else:
            label = "handshake 3: ACK" if third else "ACK"
            for i, fin in enumerate(fins[:2]):
                if s.sender != fin.sender and s.ack == (fin.seq + fin.length + 1) % 2**32:
                    label = "teardown 2: ACK" if i == 0 else "teardown 4: ACK"
            labels.append(label)
    return labels


def segments_from_conversation(conv: list[tuple[str, str, int]], client_isn: int = 1000, server_isn: int = 8000,
                               mss: int | None = 65495) -> list[Segment]:
    """Segments built from a (sender, flags, length) list with the arithmetic of course.seqack
    (SYNs carry `mss` as their option): the checks use these to try shapes a live capture rarely
    shows, and the notebook draws seed 000's conversation with them."""
    from course.seqack import number_conversation

    numbers = number_conversation(conv, client_isn, server_isn)
    return [
        Segment(t=round(i * 0.001, 6), sender=sender, flags=flags, seq=seq, ack=ack, length=length, window=65535,
                mss=mss if "SYN" in flags else None, header_length=40 if "SYN" in flags else 32)
        for i, ((sender, flags, length), (seq, ack)) in enumerate(zip(conv, numbers))
    ]


# capture.check_labels of earlier releases: the check lives in course.checks.capture
__getattr__ = forward_moved_checks(__name__, "course.checks.capture")
