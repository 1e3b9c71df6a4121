"""Connection lives on loopback, watched in the kernel: what Linux really does with the TCP states
of `course.tcpstates`' table (assignment 05).

Each scenario drives real sockets on 127.0.0.1 (port 0) through one whole connection life, and
after each step waits (with a deadline) until the kernel shows, for each endpoint, the state the
reference table predicts after the events of that step:

- "client closes first": the client's close(), then the server's;
- "server half-closes first": the server's shutdown(SHUT_WR), then the client closes behind data
  the server has not read, so LAST_ACK lasts until the server reads;
- "half-close": the client's shutdown(SHUT_WR), then a reply in the other direction;
- "simultaneous close": both sides fill their buffers, then both shut down;
- "connection refused": a connect() to a port bound and never listening.

`observe(scenario)` returns the `Observation`s (step, endpoint, events, state the kernel showed);
`watch(scenario)` also records the states with a `course.kernel.StateRecorder`, for a timeline
(`course.drawing.state_timeline`). `course.checks.tcpstates` compares a learner's machine with the
kernel along these same events.
"""
from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from typing import Callable, Iterable

from course import kernel
from course.deadline import Deadline
from course.errors import PeerError
from course.tcpstates import run

__all__ = [
    "Observation",
    "STEP_TIMEOUT",
    "SCENARIOS",
    "observe",
    "watch",
]


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
        self.conns = {"client": kernel.connection_of(self.client), "server": kernel.connection_of(self.server)}

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
    with kernel.StateRecorder(interval=0.02, max_seconds=5.0) as rec:
        rec.observations = observe(scenario, recorder=rec)
    return rec
