"""Sequence and acknowledgement numbers: the arithmetic of RFC 9293 section 3.4, with no sockets.

Every byte a side sends has a sequence number; a segment's `seq` is the number of its first byte.
SYN and FIN carry no data but each takes one number of their own (RFC 9293: "the SYN is considered
to occur before the first actual data octet", "the FIN ... after the last"), so that they can be
acknowledged like data. A segment therefore takes

    length + (1 if SYN) + (1 if FIN)

numbers, and the receiver's acknowledgement number is the next number it expects:

    ack = seq + length (+ 1 for a SYN, + 1 for a FIN)

Seed 003 writes "Ack = Seq + bytes + 1" for data: that is wrong; 100 bytes sent from seq 1200 are
acknowledged with 1300, not 1301. Only SYN and FIN add the 1.

A conversation is a list of (sender, flags, length) with sender 'client' or 'server' and flags a
comma-separated string as Wireshark shows them ('SYN', 'SYN,ACK', 'PSH,ACK', 'FIN,ACK', 'ACK').
`number_conversation` fills in every segment's (seq, ack) from the two initial sequence numbers;
`SEED_000` is the conversation of seed 000, with its numbers (client ISN 1000, server ISN 8000).
Wireshark shows "relative" numbers: each side's numbers minus its own initial one (`relative`).
"""
from __future__ import annotations

import random
from typing import Iterable, Sequence

__all__ = [
    "MOD",
    "FLAG_NAMES",
    "SEED_000",
    "SEED_000_ISN",
    "flags_of",
    "sequence_space",
    "ack_for",
    "number_conversation",
    "relative",
    "random_conversation",
    "table",
]

MOD = 2**32  # sequence numbers are 32 bits and wrap around

FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")  # bit 0 upwards, Wireshark's order

# Seed 000: handshake, 20 bytes from the client, 10 from the server, the client closes first.
SEED_000: list[tuple[str, str, int]] = [
    ("client", "SYN", 0),  # 1
    ("server", "SYN,ACK", 0),  # 2
    ("client", "ACK", 0),  # 3
    ("client", "PSH,ACK", 20),  # 4
    ("server", "PSH,ACK", 10),  # 5
    ("client", "ACK", 0),  # 6
    ("client", "FIN,ACK", 0),  # 7
    ("server", "ACK", 0),  # 8
    ("server", "FIN,ACK", 0),  # 9
    ("client", "ACK", 0),  # 10
]
SEED_000_ISN = (1000, 8000)  # (client, server)


def flags_of(flags: str) -> set[str]:
    """'SYN,ACK' -> {'SYN', 'ACK'}; ValueError for a name that is not a TCP flag."""
    names = {f.strip().upper() for f in flags.split(",") if f.strip()}
    unknown = names - set(FLAG_NAMES)
    if unknown:
        raise ValueError(f"{', '.join(sorted(unknown))} is not a TCP flag; the flags are {', '.join(FLAG_NAMES)}")
    return names


def sequence_space(flags: str, length: int) -> int:
    """How many sequence numbers a segment takes: its payload bytes, plus one for SYN, one for FIN."""
    if length < 0:
        raise ValueError(f"a payload length cannot be negative, got {length}")
    names = flags_of(flags)
    return length + ("SYN" in names) + ("FIN" in names)


def ack_for(seq: int, flags: str, length: int) -> int:
    """The acknowledgement number that acknowledges this segment (and everything before it)."""
    return (seq + sequence_space(flags, length)) % MOD


def number_conversation(conversation: Sequence[tuple[str, str, int]], client_isn: int, server_isn: int) -> list[tuple[int, int]]:
    """(seq, ack) of every segment of a conversation; ack is 0 in a segment without the ACK flag.

    Each side keeps the next number it will send and the next number it expects from the other
    (the other side's ISN until that side has sent something); a segment is sent with the first as
    seq and the second as ack, and the receiver then expects
    seq + sequence_space(...). Raises ValueError for a sender other than 'client' or 'server', an
    unknown flag, or a negative length.
    """
    next_seq = {"client": client_isn % MOD, "server": server_isn % MOD}
    other = {"client": "server", "server": "client"}
    out = []
    for sender, flags, length in conversation:
        if sender not in next_seq:
            raise ValueError(f"a sender is 'client' or 'server', got {sender!r}")
        names = flags_of(flags)
        seq = next_seq[sender]
        ack = next_seq[other[sender]] if "ACK" in names else 0
        next_seq[sender] = (seq + sequence_space(flags, length)) % MOD
        out.append((seq, ack))
    return out


def relative(numbered: Sequence[tuple[str, int, int, str]]) -> list[tuple[int, int]]:
    """Wireshark's relative numbers: for (sender, seq, ack, flags) rows, seq minus the sender's
    initial sequence number and ack minus the other side's (the ISNs are the seqs of the two SYNs).
    A segment without ACK keeps ack 0."""
    isn: dict[str, int] = {}
    for sender, seq, _, flags in numbered:
        if "SYN" in flags_of(flags) and sender not in isn:
            isn[sender] = seq
    other = {"client": "server", "server": "client"}
    out = []
    for sender, seq, ack, flags in numbered:
        r_seq = (seq - isn.get(sender, seq)) % MOD if sender in isn else seq
        peer = other.get(sender)
        r_ack = (ack - isn[peer]) % MOD if "ACK" in flags_of(flags) and peer in isn else ack
        out.append((r_seq, r_ack))
    return out


def random_conversation(rng: random.Random, max_data: int = 6, server_closes_first: bool | None = None) -> list[tuple[str, str, int]]:
    """A well-formed connection life: handshake, some data each way with pure ACKs in between,
    then a teardown in one of the usual shapes (either side first, FIN and ACK merged or not)."""
    conv = [("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0)]
    for _ in range(rng.randint(0, max_data)):
        sender = rng.choice(["client", "server"])
        conv.append((sender, "PSH,ACK", rng.choice([1, 2, 7, 20, 100, 1448, 65483])))
        if rng.random() < 0.6:
            conv.append(("server" if sender == "client" else "client", "ACK", 0))
    first = ("server" if rng.random() < 0.5 else "client") if server_closes_first is None else ("server" if server_closes_first else "client")
    second = "client" if first == "server" else "server"
    conv.append((first, "FIN,ACK", 0))
    shape = rng.choice(["four", "three", "half-close"])
    if shape == "four":
        conv += [(second, "ACK", 0), (second, "FIN,ACK", 0), (first, "ACK", 0)]
    elif shape == "three":  # the second FIN carries the ACK of the first
        conv += [(second, "FIN,ACK", 0), (first, "ACK", 0)]
    else:  # the second side still sends data after the first FIN
        conv += [(second, "ACK", 0), (second, "PSH,ACK", rng.choice([5, 300])), (first, "ACK", 0), (second, "FIN,ACK", 0), (first, "ACK", 0)]
    return conv


def table(conversation: Iterable[tuple[str, str, int]], numbers: Iterable[tuple[int, int]]) -> list[str]:
    """Printable lines: '3  client -> server  ACK       seq=1001 ack=8001 len=0'."""
    lines = []
    for i, ((sender, flags, length), (seq, ack)) in enumerate(zip(conversation, numbers), 1):
        arrow = "client -> server" if sender == "client" else "client <- server"
        lines.append(f"{i:>2}  {arrow}  {flags:<9} seq={seq:<10} ack={ack:<10} len={length}")
    return lines


def __getattr__(name: str):
    """`seqack.check_number_segments` of earlier releases: the check lives in course.checks.seqack.
    Imported here, on first use of an old name, so that this module imports nothing of the course."""
    if not name.startswith("check_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from course.checks import forward_moved_checks

    return forward_moved_checks(__name__, "course.checks.seqack")(name)
