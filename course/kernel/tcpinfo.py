"""TCP_INFO: what the kernel knows of one connection this process holds (getsockopt)."""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from course.kernel.proc import TCP_STATES

__all__ = ["TCP_INFO_FORMAT", "TCP_INFO_SIZE", "TCP_TIMEWAIT_LEN", "TCP_CA_STATES", "TCP_INFINITE_SSTHRESH", "TcpInfo",
           "tcp_info", "own_state"]

# struct tcp_info (include/uapi/linux/tcp.h): 8 one-byte fields, then 24 u32 up to tcpi_total_retrans
# (104 bytes; newer kernels append more, which we ask for and ignore).
TCP_INFO_FORMAT = "8B24I"
TCP_INFO_SIZE = struct.calcsize(TCP_INFO_FORMAT)  # 104
TCP_TIMEWAIT_LEN = 60.0  # seconds: `#define TCP_TIMEWAIT_LEN (60*HZ)` in include/net/tcp.h
# enum tcp_ca_state (include/uapi/linux/tcp.h): where congestion control is
TCP_CA_STATES = {0: "Open", 1: "Disorder", 2: "CWR", 3: "Recovery", 4: "Loss"}
TCP_INFINITE_SSTHRESH = 0x7FFFFFFF  # tcpi_snd_ssthresh before any loss: slow start has no ceiling


@dataclass(frozen=True)
class TcpInfo:
    """What getsockopt(IPPROTO_TCP, TCP_INFO) says about one connection (times in microseconds)."""

    state: str  # tcpi_state, as a name of TCP_STATES ('CLOSE' for a socket that never connected)
    retransmits: int  # tcpi_retransmits: retransmissions of the segment now at the head, unanswered
    total_retrans: int  # tcpi_total_retrans: every retransmitted segment over the connection's life
    rto_us: int  # retransmission timeout now in force
    snd_mss: int  # MSS this side sends with (the peer's announced MSS minus options in every segment)
    rcv_mss: int  # estimated MSS of what the peer sends
    advmss: int  # MSS this side announced in its SYN option
    pmtu: int  # path MTU the kernel uses
    rtt_us: int  # smoothed round-trip time
    rttvar_us: int  # its variation
    snd_cwnd: int  # congestion window, in segments
    snd_ssthresh: int  # slow start threshold, in segments (TCP_INFINITE_SSTHRESH before any loss)
    ca_state: str  # tcpi_ca_state, a name of TCP_CA_STATES: Open, Disorder, CWR, Recovery (fast recovery), Loss (after an RTO)
    unacked: int  # tcpi_unacked: segments sent and not acknowledged
    backoff: int  # tcpi_backoff: how many times the retransmission (or persist) timer doubled since the last ACK
    probes: int  # tcpi_probes: zero-window (or keepalive) probes sent and not answered


def tcp_info(sock: socket.socket) -> TcpInfo:
    """Read TCP_INFO of a TCP socket this process holds (Linux)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(raw) < TCP_INFO_SIZE:
        raise OSError(f"TCP_INFO returned {len(raw)} bytes, fewer than the {TCP_INFO_SIZE} this course reads")
    v = struct.unpack(TCP_INFO_FORMAT, raw[:TCP_INFO_SIZE])
    u8, u32 = v[:8], v[8:]
    return TcpInfo(
        state=TCP_STATES.get(u8[0], "CLOSE"),
        retransmits=u8[2],
        total_retrans=u32[23],
        rto_us=u32[0],
        snd_mss=u32[2],
        rcv_mss=u32[3],
        advmss=u32[19],
        pmtu=u32[13],
        rtt_us=u32[15],
        rttvar_us=u32[16],
        snd_cwnd=u32[18],
        snd_ssthresh=u32[17],
        ca_state=TCP_CA_STATES.get(u8[1], str(u8[1])),
        unacked=u32[4],
        backoff=u8[4],
        probes=u8[3],
    )


def own_state(sock: socket.socket) -> str | None:
    """The state of this socket itself, from TCP_INFO (None if it is closed or not TCP)."""
    try:
        return TCP_STATES.get(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0], "CLOSE")
    except (OSError, ValueError):
        return None
