"""The checks of assignment 05's number_segments: the learner's (seq, ack) numbering of a
conversation against course.seqack's arithmetic (RFC 9293 section 3.4).

Visible: seed 000's conversation. Hidden: SYN and FIN corner cases, an ACK sent before the other
side sent anything, wrap-around past 2**32 - 1, 25 random conversations (seeded) and ValueError for
a sender other than 'client' or 'server'. A wrong number is reported with the first wrong segment
and, where the mistake has a classic shape (seed 003's '+1', a SYN or FIN that takes no number),
what to fix.
"""
from __future__ import annotations

import random

from course.checks import record_evidence
from course.checks.runner import call_with_deadline, describe_call
from course.errors import YourCodeError
from course.seqack import MOD, SEED_000, SEED_000_ISN, flags_of, number_conversation, random_conversation

__all__ = [
    "CORNER_CASES",
    "check_number_segments",
]

# (conversation, client ISN, server ISN): the hidden check's corner cases
CORNER_CASES = [
    ([("client", "SYN", 0)], 0, 0),
    ([("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0)], 4294967295, 7),
    ([("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "FIN,ACK", 0), ("server", "FIN,ACK", 0), ("client", "ACK", 0)], 1, 2),
    ([("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "FIN,PSH,ACK", 5), ("server", "ACK", 0)], 100, 200),
    ([("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "PSH,ACK", 100), ("server", "ACK", 0)], 1199, 2000),
    # an ACK sent before the other side sent anything: the number expected from it is its ISN
    ([("client", "ACK", 0)], 10, 20),
    ([("server", "ACK", 0), ("client", "SYN", 0), ("server", "SYN,ACK", 0)], 4294967295, 300),
]


def _describe(i: int, segment: tuple[str, str, int]) -> str:
    sender, flags, length = segment
    return f"segment {i + 1} ({sender} {flags} len={length})"


def _compare(fn, conv, client_isn: int, server_isn: int, calls: list) -> None:
    call = describe_call("number_segments", (f"<{len(conv)} segments>", client_isn, server_isn))
    expected = number_conversation(conv, client_isn, server_isn)
    got = call_with_deadline(fn, [tuple(s) for s in conv], client_isn, server_isn, timeout=1.0, name="number_segments")
    calls.append({"conversation": conv, "isn": [client_isn, server_isn], "returned": got if isinstance(got, list) else repr(got)})
    if not isinstance(got, list) or len(got) != len(conv):
        raise YourCodeError(f"{call} returned {got!r}; it should return a list of {len(conv)} (seq, ack) tuples, one per segment")
    for i, (mine, theirs) in enumerate(zip(expected, got)):
        if not (isinstance(theirs, tuple) and len(theirs) == 2):
            raise YourCodeError(f"{call}: item {i} is {theirs!r}; each item should be a (seq, ack) tuple")
        if tuple(theirs) != mine:
            sender, flags, length = conv[i]
            hint = "ack = the other side's seq + its payload bytes, plus 1 only for a SYN or a FIN it sent"
            if theirs[1] == (mine[1] + 1) % MOD and "ACK" in flags:
                hint = "your ack is one too high: data bytes add exactly their count (seed 003's '+1' is wrong); only SYN and FIN add 1"
            elif theirs[1] == (mine[1] - 1) % MOD or theirs[0] == (mine[0] - 1) % MOD:
                hint = "one too low: a SYN or a FIN takes one sequence number of its own, even with no data"
            elif "ACK" not in flags_of(flags) and theirs[1] != 0:
                hint = "a segment without the ACK flag carries ack 0"
            elif theirs[0] >= MOD or theirs[1] >= MOD:
                hint = "sequence numbers are 32 bits: wrap around with % 2**32"
            raise YourCodeError(
                f"{call}: {_describe(i, conv[i])} should be (seq, ack) = {mine}, you gave {tuple(theirs)}; {hint}"
            )


def check_number_segments(fn, hidden: bool = False) -> None:
    """The visible check: seed 000's conversation. hidden=True: random conversations (seeded),
    SYN and FIN corner cases, wrap-around past 2**32 - 1, and ValueError for a bad sender."""
    calls: list = []
    try:
        if not hidden:
            _compare(fn, SEED_000, *SEED_000_ISN, calls)
            return
        for conv, c_isn, s_isn in CORNER_CASES:
            _compare(fn, conv, c_isn, s_isn, calls)
        rng = random.Random(5)
        for _ in range(25):
            _compare(fn, random_conversation(rng), rng.randrange(MOD), rng.randrange(MOD), calls)
        bad = [("client", "SYN", 0), ("mallory", "ACK", 0)]
        try:
            got = call_with_deadline(fn, bad, 1, 2, timeout=1.0, name="number_segments")
        except ValueError:
            calls.append({"conversation": bad, "raised": "ValueError"})
        else:
            raise YourCodeError(f"number_segments(<a segment sent by 'mallory'>, 1, 2) returned {got!r}; it should raise ValueError for a sender other than 'client' or 'server'")
    finally:
        record_evidence("number_segments" + (" (hidden)" if hidden else ""), calls=calls)
