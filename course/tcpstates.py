"""The TCP state machine of RFC 793 (now RFC 9293, section 3.3.2), as one table, and what the
Linux kernel really does with real sockets.

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

The second half drives real sockets on loopback through whole connection lives (client closes
first, server half-closes first (shutdown(SHUT_WR)) with LAST_ACK held, half-close, simultaneous close, connection refused)
and reads the kernel's state of each endpoint after each step. `check_state_machine` runs a
learner's `next_state(state, event)` along the same events and fails where it predicts a state the
kernel did not show.
"""
from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from typing import Callable, Iterable

from course.errors import PeerError, YourCodeError

__all__ = [
    "STATES",
    "EVENTS",
    "TRANSITIONS",
    "step",
    "run",
    "events_from",
    "Observation",
    "STEP_TIMEOUT",
    "SCENARIOS",
    "observe",
    "watch",
    "check_state_machine",
    "check_transitions",
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


# ----------------------------------------------------------------------------------------------
# What the kernel really does: connection lives on loopback, one step at a time
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Observation:
    """After one step of a scenario: which endpoint, the events it went through in that step, and
    the state the kernel showed for it afterwards."""

    scenario: str
    step: str  # what the programs did, e.g. 'client: close()'
    endpoint: str  # 'client', 'server' (the accepted connection) or 'listener'
    events: tuple[str, ...]
    observed: str


# seconds the kernel gets to reach a state after a step (it takes microseconds): generous, since a
# correct machine never waits it out and a wrong one fails on the comparison, not on this deadline;
# a loaded machine makes the check slower, never changes its verdict
STEP_TIMEOUT = 10.0
_BIG_RECV = 4 << 20


def _kernel():
    from course import kernel  # imported late: the table above needs no /proc

    return kernel


class _Life:
    """One scenario: a listener, a client and the accepted connection, and the observations."""

    def __init__(self, name: str, hold_buffers: bool = False, on_observation: Callable | None = None, recorder=None):
        self.name = name
        self.recorder = recorder
        self.hold_buffers = hold_buffers
        self.observations: list[Observation] = []
        self.on_observation = on_observation
        self.listener = self.client = self.server = None
        self.conns: dict[str, tuple] = {}
        self.opened: list[socket.socket] = []

    def sock(self, rcvbuf: int | None = None) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.opened.append(s)
        s.settimeout(STEP_TIMEOUT)
        if rcvbuf:
            # small fixed buffers: filling them takes a few hundred kB, not the autotuned megabytes
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * rcvbuf)
        return s

    def observe(self, step: str, endpoint: str, events: Iterable[str], target) -> None:
        """Wait until the kernel shows the reference state for this endpoint, then record it."""
        kernel = _kernel()
        events = tuple(events)
        history = [e for o in self.observations if o.endpoint == endpoint for e in o.events] + list(events)
        want = run(history)[-1]
        try:
            kernel.wait_for_state(target, want, STEP_TIMEOUT)
        except TimeoutError as exc:
            raise PeerError(f"scenario {self.name!r}, step {step!r}: the {endpoint} was expected in {want} ({exc})") from None
        if self.recorder is not None:
            self.recorder.note(endpoint, want)  # seen by wait_for_state, however briefly it lasts
        obs = Observation(self.name, step, endpoint, events, want)
        self.observations.append(obs)
        if self.on_observation:
            self.on_observation(obs)

    def open(self) -> None:
        rcvbuf = 131072 if self.hold_buffers else None
        self.listener = self.sock(rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.follow("listener", self.listener)
        self.observe("server: listen()", "listener", ["passive_open"], self.listener)
        self.client = self.sock(rcvbuf)
        self.follow("client", self.client)
        self.client.connect(self.listener.getsockname())
        self.observe("client: connect()", "client", ["active_open/send SYN", "recv SYN+ACK"], self.client)
        self.server, _ = self.listener.accept()
        self.opened.append(self.server)
        self.server.settimeout(STEP_TIMEOUT)
        self.follow("server", self.server)
        self.observe("server: accept()", "server", ["passive_open", "recv SYN", "recv ACK of SYN"], self.server)
        self.conns = {"client": _kernel().connection_of(self.client), "server": _kernel().connection_of(self.server)}

    def follow(self, name: str, sock: socket.socket) -> None:
        if self.recorder is not None:
            self.recorder.add(name, sock)

    def fill(self, sender: socket.socket) -> int:
        """Send until the peer's receive buffer and our send buffer are full (the peer does not
        read): whatever we send next, a FIN included, waits in our send queue."""
        sender.setblocking(False)
        sent, chunk = 0, b"z" * 65536
        try:
            while True:
                sent += sender.send(chunk)
        except BlockingIOError:
            pass
        finally:
            sender.settimeout(STEP_TIMEOUT)
        return sent

    def drain(self, *socks: socket.socket) -> None:
        """Read each socket until end of stream (the peer's FIN), with a deadline."""
        from course.deadline import Deadline

        deadline, open_ = Deadline(STEP_TIMEOUT * 2), list(socks)
        while open_:
            if deadline.expired():
                raise PeerError(f"scenario {self.name!r}: the peers did not finish sending within {deadline.seconds} s")
            ready, _, _ = select.select(open_, [], [], deadline.remaining())
            for s in ready:
                if not s.recv(_BIG_RECV):
                    open_.remove(s)

    def close(self) -> None:
        for s in self.opened:
            s.close()


def _client_closes_first(life: _Life) -> None:
    life.client.close()
    life.observe("client: close()", "client", ["close/send FIN", "recv ACK of FIN"], life.conns["client"])
    life.observe("client: close()", "server", ["recv FIN"], life.server)
    life.server.close()
    life.observe("server: close()", "server", ["close/send FIN", "recv ACK of FIN"], life.conns["server"])
    life.observe("server: close()", "client", ["recv FIN"], life.conns["client"])


def _server_closes_first(life: _Life) -> None:
    # The server half-closes, then the client fills the server's receive buffer and closes: the
    # client's FIN waits behind data the server has not read, so LAST_ACK lasts until it reads.
    life.server.shutdown(socket.SHUT_WR)
    life.observe("server: shutdown(SHUT_WR)", "server", ["close/send FIN", "recv ACK of FIN"], life.server)
    life.observe("server: shutdown(SHUT_WR)", "client", ["recv FIN"], life.client)
    life.fill(life.client)
    life.client.close()
    life.observe("client: close() behind unread data", "client", ["close/send FIN"], life.conns["client"])
    life.drain(life.server)
    life.observe("server: reads to the end", "client", ["recv ACK of FIN"], life.conns["client"])
    life.observe("server: reads to the end", "server", ["recv FIN"], life.conns["server"])


def _half_close(life: _Life) -> None:
    life.client.sendall(b"request")
    life.client.shutdown(socket.SHUT_WR)
    life.observe("client: shutdown(SHUT_WR)", "client", ["close/send FIN", "recv ACK of FIN"], life.client)
    life.observe("client: shutdown(SHUT_WR)", "server", ["recv FIN"], life.server)
    life.drain(life.server)  # b'request', then b'': the client has finished sending
    life.server.sendall(b"reply after the client's FIN")  # the other direction still works
    if not life.client.recv(100):
        raise PeerError("half-close: the client received nothing after its shutdown(SHUT_WR)")
    life.server.close()
    life.observe("server: close()", "server", ["close/send FIN", "recv ACK of FIN"], life.conns["server"])
    life.observe("server: close()", "client", ["recv FIN"], life.conns["client"])


def _simultaneous_close(life: _Life) -> None:
    # Both sides send until blocked, then both shut down: each FIN waits behind data, so both
    # FINs are on their way before either side has received the other's.
    life.fill(life.client)
    life.fill(life.server)
    life.client.shutdown(socket.SHUT_WR)
    life.server.shutdown(socket.SHUT_WR)
    life.observe("both: shutdown(SHUT_WR)", "client", ["close/send FIN"], life.client)
    life.observe("both: shutdown(SHUT_WR)", "server", ["close/send FIN"], life.server)
    life.drain(life.client, life.server)
    # Either side may get the other's FIN before or after the ACK of its own (CLOSING or
    # FIN_WAIT2 for an instant): both paths end in TIME_WAIT, on both sides.
    life.observe("both: read to the end", "client", ["recv FIN", "recv ACK of FIN"], life.conns["client"])
    life.observe("both: read to the end", "server", ["recv FIN", "recv ACK of FIN"], life.conns["server"])


def _refused(life: _Life) -> None:
    probe = life.sock()
    probe.bind(("127.0.0.1", 0))
    address = probe.getsockname()  # bound and never listening (kept open, so nobody else can take it): a SYN gets a RST
    client = life.sock()
    life.follow("client", client)
    try:
        client.connect(address)
    except ConnectionRefusedError:
        pass
    else:
        raise PeerError(f"connection refused: something listens on {address[0]}:{address[1]}")
    life.observe("client: connect() to a port nobody listens on", "client", ["active_open/send SYN", "recv RST"], client)


SCENARIOS: dict[str, tuple[Callable[[_Life], None], bool, bool]] = {
    # name: (the steps after the handshake, whether a connection is opened first, hold buffers)
    "client closes first": (_client_closes_first, True, False),
    # the server half-closes with shutdown(SHUT_WR): a close() with the client's data unread would
    # send a RST (notebook section 6), not a FIN
    "server half-closes first": (_server_closes_first, True, True),
    "half-close": (_half_close, True, False),
    "simultaneous close": (_simultaneous_close, True, True),
    "connection refused": (_refused, False, False),
}


def observe(scenario: str, on_observation: Callable[[Observation], None] | None = None, recorder=None) -> list[Observation]:
    """Run one scenario on real loopback sockets; return what the kernel showed after each step.
    `on_observation` is called with each observation as it is made (the check uses it to compare
    the learner's prediction at once, so that a blank exercise fails in milliseconds)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    steps, connect_first, hold = SCENARIOS[scenario]
    life = _Life(scenario, hold, on_observation, recorder)
    try:
        if connect_first:
            life.open()
        steps(life)
    finally:
        life.close()
    return life.observations


def watch(scenario: str):
    """Run a scenario with a `course.kernel.StateRecorder` following the listener, the client and
    the server's connection; returns the recorder (its `.observations` holds the steps)."""
    from course.kernel import StateRecorder

    with StateRecorder(interval=0.02, max_seconds=5.0) as rec:
        rec.observations = observe(scenario, recorder=rec)
    return rec


def check_state_machine(next_state: Callable[[str, str], str], scenarios: Iterable[str] = tuple(SCENARIOS)) -> None:
    """Run each scenario on real sockets and, after each step, compare the state the learner's
    `next_state` predicts for each endpoint with the state the kernel shows. Records evidence."""
    from course.checks import call_with_deadline, record_evidence

    rows: list[dict] = []
    predicted: dict[tuple[str, str], str] = {}

    def compare(obs: Observation) -> None:
        key = (obs.scenario, obs.endpoint)
        state = predicted.get(key, "CLOSE")
        for event in obs.events:
            before = state
            try:
                state = call_with_deadline(next_state, before, event, timeout=1.0, name="next_state")
            except (NotImplementedError, YourCodeError):
                raise
            except Exception as exc:
                raise YourCodeError(
                    f"in scenario {obs.scenario!r}, at {obs.step}, the {obs.endpoint}'s kernel socket went through "
                    f"{list(obs.events)}; your machine had it in {before} and next_state({before!r}, {event!r}) raised "
                    f"{type(exc).__name__}: {exc}; check the transition that led to {before}"
                ) from exc
        predicted[key] = state
        rows.append({"scenario": obs.scenario, "step": obs.step, "endpoint": obs.endpoint, "events": list(obs.events), "kernel": obs.observed, "yours": state})
        if state != obs.observed:
            raise YourCodeError(
                f"in scenario {obs.scenario!r}, after {obs.step} the kernel shows the {obs.endpoint} in "
                f"{obs.observed}, but your machine, fed {list(obs.events)}, says {state!r}; check the transitions out of "
                f"the {obs.endpoint}'s earlier state"
            )

    try:
        for name in scenarios:
            observe(name, compare)
    finally:
        record_evidence("tcp state machine vs kernel", steps=rows)


def check_transitions(next_state: Callable[[str, str], str]) -> None:
    """Every (state, event) pair against the reference table: the same next state where the table
    has one, ValueError where it has none (and for unknown names)."""
    from course.checks import check_calls

    cases = [(s, e) for s in STATES for e in EVENTS] + [("ESTABLISHED", "recv SYNACK"), ("OPEN", "recv FIN")]
    check_calls(
        next_state, step, cases, name="next_state",
        hint=("compare with the RFC 9293 diagram above: the side that closes first goes FIN_WAIT1 -> FIN_WAIT2 -> TIME_WAIT, "
              "the other CLOSE_WAIT -> LAST_ACK -> CLOSE; a FIN resent by the peer keeps CLOSE_WAIT, CLOSING, LAST_ACK and "
              "TIME_WAIT where they are (RFC 9293 3.10.7.4), and 'recv FIN+ACK' happens only in FIN_WAIT1"),
    )
