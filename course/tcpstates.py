"""The TCP state machine of RFC 793 (now RFC 9293, section 3.3.2), as one table.

`TRANSITIONS` maps (state, event) to the next state. It is the only place the machine is written
down: `step` and `run` read it, `course.drawing.state_diagram` draws it, and the graders compare a
learner's machine with it. States are spelled as Linux spells them (include/net/tcp_states.h, as in
`course.kernel.TCP_STATES`): RFC 9293's CLOSED is 'CLOSE', SYN-RECEIVED is 'SYN_RECV',
FIN-WAIT-1 is 'FIN_WAIT1', and so on. Events are what happens to one endpoint: a call of its
application ('passive_open' is listen(), 'active_open/send SYN' is connect(), 'close/send FIN' is
close() or shutdown(SHUT_WR)), a segment arriving ('recv SYN', 'recv ACK of FIN', ...), or a timer
('timeout 2MSL'). An event that the table does not list for a state raises ValueError.

The table follows RFC 9293's diagram and its FIN processing (section 3.10.7.4, "eighth, check the
FIN bit"): a FIN in SYN_RECV leads to CLOSE_WAIT, and a FIN that arrives again (the peer resent it:
our ACK was lost) keeps CLOSE_WAIT, CLOSING, LAST_ACK and TIME_WAIT where they are; in TIME_WAIT it
also restarts the 2MSL timer, and answering it is what TIME_WAIT is for. 'recv FIN+ACK' is a FIN
arriving in FIN_WAIT1 in the same segment as the ACK of our FIN; in any other state a FIN is
'recv FIN' (after the handshake every segment carries the ACK flag).

What the table leaves out, and why: events that change no state and that the course does not
study (data, plain ACKs, a SYN in a synchronized state, answered with an ACK); RFC 9293's
LISTEN --SEND--> SYN_SENT (the sockets API has no such call: connect() on a listening socket
fails); timers other than 2MSL (retransmission giving up, Linux's tcp_fin_timeout for orphaned
FIN_WAIT2 sockets) and the user's ABORT (a close() that sends RST). The RFC draws one connection
block (TCB) that goes LISTEN -> SYN_RECV -> ESTABLISHED; Linux keeps the listening socket in
LISTEN and makes a child socket for each SYN, which goes SYN_RECV -> ESTABLISHED and is what
accept() returns (a RST in SYN_RECV drops the child; the listener never left LISTEN). The table
follows the RFC, so the server's connection starts as a listener: 'passive_open', 'recv SYN',
'recv ACK of SYN'.

What the Linux kernel really does with real sockets is in `course.connection_life`: it drives
real sockets on loopback through whole connection lives (client closes first, server half-closes
first (shutdown(SHUT_WR)) with LAST_ACK held, half-close, simultaneous close, connection refused)
and reads the kernel's state of each endpoint after each step. `course.checks.tcpstates` runs a
learner's `next_state(state, event)` along the same events and fails where it predicts a state the
kernel did not show. This module is the table alone: it imports nothing of the course.
"""
from __future__ import annotations

from typing import Callable, Iterable

__all__ = [
    "STATES",
    "EVENTS",
    "TRANSITIONS",
    "step",
    "run",
    "events_from",
]

STATES = (
    "CLOSE", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
    "FIN_WAIT1", "FIN_WAIT2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT",
)  # fmt: skip

EVENTS = (
    "passive_open",  # listen()
    "active_open/send SYN",  # connect()
    "recv SYN",
    "recv SYN+ACK",
    "recv ACK of SYN",
    "close/send FIN",  # close() or shutdown(SHUT_WR); in LISTEN or SYN_SENT nothing is sent
    "recv FIN",
    "recv ACK of FIN",
    "recv FIN+ACK",  # in FIN_WAIT1 only: a FIN in the same segment as the ACK of our FIN
    "timeout 2MSL",
    "recv RST",
)

# (state, event) -> next state. RFC 9293 figure 5, plus the FIN processing of its section 3.10.7.4
# (a FIN in SYN_RECV; a resent FIN keeps the four states that already received one) and the RST
# arrows of section 3.10.7.
TRANSITIONS: dict[tuple[str, str], str] = {
    # opening
    ("CLOSE", "passive_open"): "LISTEN",
    ("CLOSE", "active_open/send SYN"): "SYN_SENT",
    ("LISTEN", "recv SYN"): "SYN_RECV",  # and send SYN+ACK
    ("LISTEN", "close/send FIN"): "CLOSE",  # closing a listener sends nothing
    ("SYN_SENT", "recv SYN+ACK"): "ESTABLISHED",  # and send ACK: connect() returns here
    ("SYN_SENT", "recv SYN"): "SYN_RECV",  # simultaneous open: and send SYN+ACK
    ("SYN_SENT", "close/send FIN"): "CLOSE",  # nothing to close yet: nothing is sent
    ("SYN_SENT", "recv RST"): "CLOSE",  # connection refused
    ("SYN_RECV", "recv ACK of SYN"): "ESTABLISHED",  # accept() can return this connection
    ("SYN_RECV", "close/send FIN"): "FIN_WAIT1",
    ("SYN_RECV", "recv RST"): "LISTEN",  # back to listening (a passive open)
    ("SYN_RECV", "recv FIN"): "CLOSE_WAIT",  # RFC 9293 3.10.7.4: the ACK completed the handshake, then the FIN
    # closing: the side that closes first (active close)
    ("ESTABLISHED", "close/send FIN"): "FIN_WAIT1",
    ("FIN_WAIT1", "recv ACK of FIN"): "FIN_WAIT2",
    ("FIN_WAIT1", "recv FIN"): "CLOSING",  # simultaneous close: and send ACK
    ("FIN_WAIT1", "recv FIN+ACK"): "TIME_WAIT",  # and send ACK
    ("FIN_WAIT2", "recv FIN"): "TIME_WAIT",  # and send ACK
    ("CLOSING", "recv ACK of FIN"): "TIME_WAIT",
    ("TIME_WAIT", "timeout 2MSL"): "CLOSE",
    # closing: the side that receives the first FIN (passive close)
    ("ESTABLISHED", "recv FIN"): "CLOSE_WAIT",  # and send ACK; recv() returns b''
    ("CLOSE_WAIT", "close/send FIN"): "LAST_ACK",
    ("LAST_ACK", "recv ACK of FIN"): "CLOSE",
    # a FIN resent by the peer (our ACK of it was lost): RFC 9293 3.10.7.4 keeps the state and
    # answers with an ACK; TIME_WAIT also restarts its 2MSL timer (the segment TIME_WAIT waits for)
    ("CLOSE_WAIT", "recv FIN"): "CLOSE_WAIT",
    ("CLOSING", "recv FIN"): "CLOSING",
    ("LAST_ACK", "recv FIN"): "LAST_ACK",
    ("TIME_WAIT", "recv FIN"): "TIME_WAIT",
    # a reset ends a synchronized connection at once
    ("ESTABLISHED", "recv RST"): "CLOSE",
    ("FIN_WAIT1", "recv RST"): "CLOSE",
    ("FIN_WAIT2", "recv RST"): "CLOSE",
    ("CLOSE_WAIT", "recv RST"): "CLOSE",
    ("CLOSING", "recv RST"): "CLOSE",
    ("LAST_ACK", "recv RST"): "CLOSE",
    ("TIME_WAIT", "recv RST"): "CLOSE",  # Linux does, unless net.ipv4.tcp_rfc1337 = 1
}


def step(state: str, event: str) -> str:
    """The state after `event` in `state`; ValueError if the table has no such transition."""
    if state not in STATES:
        raise ValueError(f"{state!r} is not a TCP state; the states are {', '.join(STATES)}")
    if event not in EVENTS:
        raise ValueError(f"{event!r} is not an event of this machine; the events are {', '.join(EVENTS)}")
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise ValueError(f"event {event!r} in state {state} is an event this table does not list") from None


def run(events: Iterable[str], start: str = "CLOSE", next_state: Callable[[str, str], str] = step) -> list[str]:
    """The states after each event, starting from `start`: run(['passive_open', 'recv SYN'])
    == ['LISTEN', 'SYN_RECV']. `next_state` defaults to the reference `step`."""
    states, state = [], start
    for event in events:
        state = next_state(state, event)
        states.append(state)
    return states


def events_from(state: str) -> list[str]:
    """The events allowed in `state`, in the order of EVENTS."""
    return [e for e in EVENTS if (state, e) in TRANSITIONS]


# Names of earlier releases, found on first use (so that this module imports nothing of the course):
# the kernel's view of connection lives moved to course.connection_life (a notebook of an earlier
# release calls tcpstates.watch), the checks to course.checks.tcpstates.
_MOVED_TO_CONNECTION_LIFE = ("Observation", "STEP_TIMEOUT", "SCENARIOS", "observe", "watch")


def __getattr__(name: str):
    if name in _MOVED_TO_CONNECTION_LIFE:
        import importlib

        return getattr(importlib.import_module("course.connection_life"), name)
    if not name.startswith("check_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from course.checks import forward_moved_checks

    return forward_moved_checks(__name__, "course.checks.tcpstates")(name)
