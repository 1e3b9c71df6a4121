"""UDP reference peers (notebook 03).

All peers bind a loopback address on port 0 (see `course.serving`), serve from one thread, and
record every datagram they receive and send in `events` as plain data.

The sum protocol they speak is `course.sumproto` (dialect "course"), carried over UDP: a request is
one datagram holding a JSON object {"A":7,"B":4}, optionally with an "id" (any JSON value); the reply
is one datagram {"Sum":11}, with the request's "id" copied into it when there was one, so that a
client can tell the reply to *this* request from a late or stray one (DNS does the same with its
16-bit id). A malformed request (bytes that are not UTF-8, text that is not JSON, JSON that is not an
object, "A" or "B" missing or not an integer) gets {"Error":"<what is wrong>"}, with the request's
"id" when it has a readable one; the checks accept an error reply with or without it. Every JSON a
peer here writes is compact, as Go's json.Marshal writes it. (Assignment 04's TCP protocol differs:
requests are lines on one connection, answered in order, so it has no "id". Seed 002's own server,
which has no id and no error reply, is `course.seed_peers.SeedUdpSumServer`.)

Peers:
- `UdpEchoServer` ("udp-echo"): sends every datagram back to its sender.
- `UdpSumServer` ("udp-sum"): answers the sum protocol.
- `LossyUdpServer` ("udp-lossy"): drops chosen datagrams on purpose (by index, every Nth, or a
  seeded random fraction: always the same ones for the same settings), answers the rest, and can
  send stray replies before the real one (from another address, and with another id), or a stray
  datagram to every client every few ms (`chatter`).
- `UdpChatPeer` ("udp-chat"): one end of seed 001's chat; hears lines, can answer them, `say`s
  lines, and hands what it heard to `receive(timeout)` (so a `course.chat` window can show it).

The checks that grade a learner's UDP code against these peers (`check_request_sum`,
`check_sum_server`, `check_chat_peer`, and their case tables) live in `course.checks.udp`; the
names `course.udp.check_*` still reach them, for notebooks of earlier releases.
"""
from __future__ import annotations

import queue
import random
import socket
from contextlib import contextmanager
from typing import Callable, Iterable

from course import sumproto
from course.checks import forward_moved_checks
from course.serving import Address, UdpServer, family_of, format_address, loopback_host

__all__ = [
    "UdpEchoServer",
    "UdpSumServer",
    "drops",
    "LossyUdpServer",
    "UdpChatPeer",
    "nobody_listening",
    "recv_truncated",
    "datagram_diagram",
]

# ----------------------------------------------------------------------------------------------
# Reference peers
# ----------------------------------------------------------------------------------------------


class _UdpPeer(UdpServer):
    """A UdpServer whose sends made while it is being closed are dropped quietly: closing a peer
    in the middle of an answer is not an error (the check that closed it has its verdict)."""

    def sendto(self, data: bytes, addr: Address, sock: socket.socket | None = None) -> None:
        try:
            if sock is None:
                super().sendto(data, addr)
            else:
                sock.sendto(data, addr)
        except OSError:
            if not self.stopping:
                raise


class UdpEchoServer(_UdpPeer):
    """Sends every datagram back to the address it came from."""

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        self.sendto(data, addr)


class UdpSumServer(_UdpPeer):
    """Answers seed 002's JSON sum over UDP: {"A":7,"B":4} -> {"Sum":11} (and {"Error":...}), the
    request's "id" copied (`course.sumproto.answer`)."""

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        self.sendto(sumproto.answer(data), addr)


_CHATTER = sumproto.reply(0, id="stray")  # what a chattering LossyUdpServer sends: no client's reply


def drops(index: int, drop: Iterable[int] | str = (), every: int | None = None, fraction: float = 0.0, seed: int = 0) -> bool:
    """Whether the datagram number `index` (0 = the first received) is dropped: it is in `drop`
    (or drop == "all"), or it is every `every`-th (every=3 drops 2, 5, 8...), or a random draw
    seeded by (seed, index) falls under `fraction`. The same settings always drop the same ones."""
    if drop == "all":
        return True
    if index in set(drop):
        return True
    if every and (index + 1) % every == 0:
        return True
    return fraction > 0 and random.Random(seed * 1_000_003 + index).random() < fraction


class LossyUdpServer(_UdpPeer):
    """Drops chosen datagrams on purpose and answers the others (sum protocol, or echo).

    drop: indices of datagrams to drop (0 = the first one received), or "all";
    every: drop every Nth datagram; fraction, seed: drop a seeded random fraction;
    with none of these given (as `python -m course serve udp-lossy` starts it) it drops every 3rd;
    drop=[] drops nothing;
    answer: "sum" (default), "echo", or a function bytes -> bytes;
    stray: before each real reply, send two wrong ones: the same reply from another address
    (the `decoy`, on `stray_host`) and one with another "id" from this server's own address;
    chatter: every `chatter` seconds, from the first request on until it stops, send every client
    one more stray datagram, {"Sum":0,"id":"stray"} from the decoy's address (no client can take
    it for its reply): a client that restarts its wait for each datagram never times out.
    `received`, `dropped` and `chattered` (how many chatter datagrams went out) say what happened,
    as plain data.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        drop: Iterable[int] | str | None = None,
        every: int | None = None,
        fraction: float = 0.0,
        seed: int = 0,
        answer: str | Callable[[bytes], bytes] = "sum",
        stray: bool = False,
        stray_host: str = "127.0.0.3",
        chatter: float | None = None,
    ):
        super().__init__(host, port)
        if drop is None and every is None and not fraction:
            every = 3
        self.drop = drop if drop == "all" else sorted(set(drop or ()))
        self.every, self.fraction, self.seed = every, fraction, seed
        if answer == "sum":
            self.answer = sumproto.answer
        elif answer == "echo":
            self.answer = bytes
        elif callable(answer):
            self.answer = answer
        else:
            raise ValueError(f"answer must be 'sum', 'echo' or a function, not {answer!r}")
        self.stray = stray
        self.chatter = chatter
        self.chattered = 0
        self._clients: list[Address] = []
        self.stray_host = loopback_host(stray_host)
        self.decoy: socket.socket | None = None
        self.received: list[bytes] = []
        self.dropped: list[int] = []

    def setup(self, sock: socket.socket) -> None:
        super().setup(sock)
        if self.stray or self.chatter:
            self.decoy = socket.socket(family_of(self.stray_host), socket.SOCK_DGRAM)
            self.decoy.bind((self.stray_host, 0))
            self.track(self.decoy)
        if self.chatter:
            self.spawn(self._chatter_loop, f"{type(self).__name__}-chatter-{self.port}")

    def _chatter_loop(self) -> None:
        while not self.stop_event.wait(self.chatter):
            for addr in list(self._clients):
                try:
                    self.decoy.sendto(_CHATTER, addr)
                except OSError:
                    if self.stopping:
                        return
                    continue
                self.chattered += 1

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        index = len(self.received)
        self.received.append(data)
        if addr not in self._clients:
            self._clients.append(addr)
        if drops(index, self.drop, self.every, self.fraction, self.seed):
            self.dropped.append(index)
            self.record("drop", format_address(addr), data)
            return
        reply = self.answer(data)
        if self.stray:
            self._send_strays(reply, addr)
        self.sendto(reply, addr)

    def _send_strays(self, reply: bytes, addr: Address) -> None:
        """A late reply to another request (another id, from our address), then a forged reply
        (the right id, a wrong sum, from the decoy's address); both carry a wrong "Sum"."""
        body = sumproto.decode_object(reply)
        if body is None:
            return
        rid = body.get("id")
        stale = dict(body, id=rid + 1 if isinstance(rid, int) and not isinstance(rid, bool) else ["stale", rid])
        forged = dict(body)
        if "Sum" in body:
            stale["Sum"], forged["Sum"] = body["Sum"] + 1000, body["Sum"] + 1
        self.sendto(sumproto.encode(stale), addr)
        forged_bytes = sumproto.encode(forged)
        self.sendto(forged_bytes, addr, sock=self.decoy)
        self.record("stray", format_address(addr), forged_bytes)

    def senders(self) -> list[Address]:
        """Every distinct address a datagram came from, in order of first arrival."""
        seen: list[Address] = []
        for _, who, _ in self.events_of("recv"):
            if who not in seen:
                seen.append(who)
        return [_address_of(s) for s in seen]


class UdpChatPeer(_UdpPeer):
    """One end of seed 001's UDP chat: hears lines, answers each with `reply(text)` when given
    (no answer by default), and `say(text, to)`s lines of its own.

    `heard` lists (text, "host:port") for every line received; `receive(timeout)` returns the next
    one as (text, address), or None if none arrives in time, so that a chat window can show it.
    Lines are UTF-8; a datagram that is not UTF-8 is heard as its repr().
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, reply: Callable[[str], str | None] | None = None):
        super().__init__(host, port)
        self.reply = reply
        self.heard: list[tuple[str, str]] = []
        self._inbox: queue.Queue = queue.Queue()

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = repr(data)
        self.heard.append((text, format_address(addr)))
        self._inbox.put((text, addr))
        if self.reply is not None:
            answer = self.reply(text)
            if answer is not None:
                self.sendto(answer.encode("utf-8"), addr)

    def say(self, text: str, to: Address) -> None:
        """Send one line to `to` (a loopback address)."""
        loopback_host(to[0])
        self.sendto(text.encode("utf-8"), tuple(to))

    send = say  # the chat window calls send(text, to)

    def receive(self, timeout: float) -> tuple[str, Address] | None:
        """The next line heard, as (text, sender address), or None after `timeout` seconds."""
        try:
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None


def _address_of(text: str) -> Address:
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


@contextmanager
def nobody_listening(host: str = "127.0.0.1"):
    """Yield an address (host, port) where no socket takes a datagram from you: for showing what
    happens when a datagram goes to a port nobody listens on.

    The port is held, for as long as the block runs, by a socket connected to its own address:
    Linux delivers to a connected UDP socket only datagrams from its peer, so a datagram from any
    other socket finds no receiver, and the kernel answers it with ICMP port unreachable exactly as
    for a port nobody has bound. Holding the port keeps another program from binding it meanwhile
    (a port merely found free and released could be taken before the datagram arrives)."""
    family = family_of(loopback_host(host))
    with socket.socket(family, socket.SOCK_DGRAM) as holder:
        holder.bind((host, 0))
        holder.connect(holder.getsockname())
        yield holder.getsockname()[:2]


def recv_truncated(sock: socket.socket, bufsize: int) -> tuple[bytes, bool, Address]:
    """recvmsg with a receive size of `bufsize`: (data, truncated, sender). `truncated` is the
    kernel's MSG_TRUNC flag: the datagram was longer than `bufsize`, and the rest is gone."""
    data, _, flags, addr = sock.recvmsg(bufsize)
    return data, bool(flags & socket.MSG_TRUNC), addr


def datagram_diagram(server: UdpServer, title: str = ""):
    """A picture of what `server` saw, drawn from its `events`: one row per datagram in the order
    the server saw them, with the time it saw each (measured by the server, in ms after the
    first); an arrow client -> server for a datagram received (red, ending in a cross, if it was
    dropped on purpose), server -> client for one sent. Returns a matplotlib Figure, which a
    notebook shows as a cell's value."""
    from matplotlib.figure import Figure

    _show_figures_in_ipython(Figure)
    events = [e for e in list(server.events) if e[1] in ("recv", "drop", "send")]
    rows = []  # (time, direction, who, data, dropped)
    for i, (t, kind, who, data) in enumerate(events):
        if kind == "drop":
            continue
        lost = kind == "recv" and i + 1 < len(events) and events[i + 1][1] == "drop" and events[i + 1][3] == data
        rows.append((t, kind, who, data, lost))
    fig = Figure(figsize=(8, 1.4 + 0.45 * max(len(rows), 1)), dpi=100)
    ax = fig.add_subplot()
    t0 = rows[0][0] if rows else 0.0
    clients = sorted({who for _, _, who, _, _ in rows})
    for y, (t, kind, who, data, lost) in enumerate(rows):
        text = data[:40].decode("utf-8", "replace") + ("..." if len(data) > 40 else "")
        if len(clients) > 1:
            text = f"{who}: {text}" if kind == "recv" else f"{text} -> {who}"
        start, end = (0, 1) if kind == "recv" else (1, 0)
        colour = "#d62728" if lost else ("#1f77b4" if kind == "recv" else "#2ca02c")
        ax.annotate("", xy=(end, y), xytext=(start, y), arrowprops=dict(arrowstyle="->", color=colour, linestyle="--" if lost else "-"))
        ax.text(0.5, y - 0.12, text + ("  (dropped)" if lost else ""), ha="center", va="bottom", fontsize=8, color=colour)
        if lost:
            ax.plot([end], [y], marker="x", color=colour, markersize=10)
    ax.set_yticks(range(len(rows)), [f"{(t - t0) * 1000:.1f} ms" for t, *_ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.7)  # first datagram at the top
    ax.set_xlim(-0.1, 1.1)
    ax.set_xticks([0, 1], ["client" if len(clients) == 1 else "clients", f"server {server.where}"])
    ax.axvline(0, color="grey", lw=1)
    ax.axvline(1, color="grey", lw=1)
    ax.set_title(title or f"what {type(server).__name__} saw, in order (time measured by the server)")
    fig.tight_layout()
    return fig


def _show_figures_in_ipython(figure_class) -> None:
    """Let IPython show a bare matplotlib Figure as PNG (pyplot does it only for its own figures)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from IPython.core.pylabtools import print_figure

    shell.display_formatter.formatters["image/png"].for_type(figure_class, lambda fig: print_figure(fig, "png"))


# ----------------------------------------------------------------------------------------------
# Names that moved: course.udp.check_* of earlier releases' notebooks reach course.checks.udp
# ----------------------------------------------------------------------------------------------
__getattr__ = forward_moved_checks(__name__, "course.checks.udp")
