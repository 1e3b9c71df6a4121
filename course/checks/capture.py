"""The checks of assignment 05's label_segments: the learner's labels of the segments of one
connection against `course.capture.label_segments`.

Visible: the recording of seed 000's conversation (client closes first). Hidden: the other two
recordings, odd shapes built with course.seqack's arithmetic (ODD_SHAPES), shapes whose acks lag
behind because segments crossed (LAGGING_SHAPES), seed 000's conversation with numbers wrapping at
2**32, and a fresh live capture where this kernel may capture (only whether it was labelled right
is evidence: a live capture's shape can vary).
"""
from __future__ import annotations

from dataclasses import replace

from course.capture import CaptureNotAllowed, Segment, capture_live, label_segments, load_recording, segments_from_conversation
from course.checks import record_evidence
from course.checks.runner import call_with_deadline
from course.errors import PeerError, YourCodeError
from course.seqack import SEED_000

__all__ = [
    "ODD_SHAPES",
    "LAGGING_SHAPES",
    "lagging_segments",
    "check_labels",
]

ODD_SHAPES = {
    # shapes a quick live capture rarely shows, built with course.seqack's arithmetic
    "teardown in three segments (FIN+ACK merged)": [
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "PSH,ACK", 20),
        ("server", "ACK", 0), ("client", "FIN,ACK", 0), ("server", "FIN,ACK", 0), ("client", "ACK", 0)],
    "half-close: data after the first FIN": [
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "PSH,ACK", 7),
        ("client", "FIN,ACK", 0), ("server", "ACK", 0), ("server", "PSH,ACK", 300), ("client", "ACK", 0),
        ("server", "FIN,ACK", 0), ("client", "ACK", 0)],
    "server closes first, window update before any data": [
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "ACK", 0),
        ("server", "PSH,ACK", 10), ("client", "ACK", 0), ("server", "FIN,ACK", 0), ("client", "ACK", 0),
        ("client", "FIN,ACK", 0), ("server", "ACK", 0)],
    "reset in the middle": [
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "PSH,ACK", 3),
        ("server", "RST,ACK", 0)],
    "bulk data: full segments without PSH": [
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "ACK", 1448),
        ("client", "ACK", 1448), ("client", "PSH,ACK", 100), ("server", "ACK", 0), ("client", "FIN,ACK", 0),
        ("server", "FIN,ACK", 0), ("client", "ACK", 0)],
    "data on the third handshake segment (seed 002), then a window update": [
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "PSH,ACK", 5), ("client", "ACK", 0),
        ("server", "ACK", 0), ("client", "FIN,ACK", 0), ("server", "ACK", 0), ("server", "FIN,ACK", 0),
        ("client", "ACK", 0)],
}  # fmt: skip

# Shapes where a segment was sent before the previous ones arrived: its ack lags behind what the
# arithmetic above gives by `lag` numbers, {segment index: lag}.
LAGGING_SHAPES = {
    # section 8's simultaneous close: both FINs cross, then each side acknowledges the other's
    "simultaneous close: both FINs, then both ACKs": ([
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "PSH,ACK", 20),
        ("server", "PSH,ACK", 10), ("client", "FIN,ACK", 0), ("server", "FIN,ACK", 0), ("client", "ACK", 0),
        ("server", "ACK", 0)], {6: 1}),
    # the client acknowledges the server's data (sent before the FIN arrived), then the FIN
    "an ACK of earlier data after the first FIN": ([
        ("client", "SYN", 0), ("server", "SYN,ACK", 0), ("client", "ACK", 0), ("client", "PSH,ACK", 20),
        ("server", "PSH,ACK", 10), ("server", "FIN,ACK", 0), ("client", "ACK", 0), ("client", "ACK", 0),
        ("client", "FIN,ACK", 0), ("server", "ACK", 0)], {6: 1}),
}  # fmt: skip


def lagging_segments(conv: list[tuple[str, str, int]], lags: dict[int, int], client_isn: int, server_isn: int) -> list[Segment]:
    """segments_from_conversation, with the ack of segment i lowered by lags[i] (mod 2**32)."""
    segs = segments_from_conversation(conv, client_isn, server_isn)
    return [replace(s, ack=(s.ack - lags.get(i, 0)) % 2**32) for i, s in enumerate(segs)]


def _check_one(fn, what: str, segments: list[Segment], rows: list, record_labels: bool) -> None:
    expected = label_segments(segments)
    got = call_with_deadline(fn, list(segments), timeout=1.0, name="label_segments")
    rows.append({"capture": what, "labels": got if record_labels else None, "correct": got == expected})
    if not isinstance(got, list) or len(got) != len(segments):
        raise YourCodeError(f"label_segments(<{what}: {len(segments)} segments>) returned {got!r}; it should return a list of {len(segments)} labels, one per segment")
    for i, (mine, theirs) in enumerate(zip(expected, got)):
        if theirs != mine:
            raise YourCodeError(
                f"in the {what}, segment {i + 1} ({segments[i].sender} [{segments[i].flags}] seq={segments[i].seq} "
                f"ack={segments[i].ack} len={segments[i].length}) is {mine!r}, you said {theirs!r}; the labels so far were {expected[:i]}"
            )


def check_labels(fn, hidden: bool = False) -> None:
    """Visible: the recording of seed 000's conversation. Hidden: the other recordings, a fresh
    live capture (where this kernel allows; its labels are not recorded as evidence, only whether
    they were right, since a live capture's shape can vary), and odd shapes built by arithmetic."""
    rows: list = []
    try:
        if not hidden:
            _check_one(fn, "recording (client closes first)", load_recording("client closes first").segments, rows, True)
            return
        for scenario in ("server closes first", "connection refused"):
            _check_one(fn, f"recording ({scenario})", load_recording(scenario).segments, rows, True)
        for name, conv in ODD_SHAPES.items():
            _check_one(fn, f"conversation: {name}", segments_from_conversation(conv, 4294967290, 123), rows, True)
        for name, (conv, lags) in LAGGING_SHAPES.items():
            _check_one(fn, f"conversation: {name}", lagging_segments(conv, lags, 77, 4294967200), rows, True)
        # the server's ISN is 2**32 - 1: the SYN-ACK is acknowledged with 0
        _check_one(fn, "conversation: seed 000's, the server's ISN 4294967295",
                   segments_from_conversation(SEED_000, 5000, 4294967295), rows, True)
        try:
            fresh = capture_live("client closes first")
        except (CaptureNotAllowed, PeerError, OSError):
            # no capture here, or it saw nothing, or the conversation ran out of time on a loaded
            # machine (TimeoutError is an OSError): the recordings above must do; the verdict
            # never depends on the machine's speed
            fresh = None
        if fresh is not None:
            _check_one(fn, "fresh live capture", fresh.segments, rows, False)
            rows[-1]["capture"] = "fresh live capture or none"
        else:
            rows.append({"capture": "fresh live capture or none", "labels": None, "correct": True})
    finally:
        record_evidence("label_segments" + (" (hidden)" if hidden else ""), checked=rows)
