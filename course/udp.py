"""UDP reference peers, and the checks that grade a learner's UDP code against them.

All peers bind a loopback address on port 0 (see `course.serving`), serve from one thread, and
record every datagram they receive and send in `events` as plain data.

The sum protocol (seed 002's JSON request, carried over UDP): a request is one datagram holding a
JSON object {"A": 7, "B": 4}, optionally with an "id" (any JSON value); the reply is one datagram
{"Sum": 11}, with the request's "id" copied into it when there was one, so that a client can tell
the reply to *this* request from a late or stray one (DNS does the same with its 16-bit id).
A malformed request (bytes that are not UTF-8, text that is not JSON, JSON that is not an object, "A"
or "B" missing or not an integer) gets {"Error": "<what is wrong>"}, with the request's "id" when it
has a readable one; the checks accept an error reply with or without it. (Assignment 04's TCP
protocol differs: requests are lines on one connection, answered in order, so it has no "id".)

Peers:
- `UdpEchoServer` ("udp-echo"): sends every datagram back to its sender.
- `UdpSumServer` ("udp-sum"): answers the sum protocol.
- `LossyUdpServer` ("udp-lossy"): drops chosen datagrams on purpose (by index, every Nth, or a
  seeded random fraction: always the same ones for the same settings), answers the rest, and can
  send stray replies before the real one (from another address, and with another id), or a stray
  datagram to every client every few ms (`chatter`).
- `UdpChatPeer` ("udp-chat"): one end of seed 001's chat; hears lines, can answer them, `say`s
  lines, and hands what it heard to `receive(timeout)` (so a `course.chat` window can show it).

Checks (called by the graded cells of notebook 03): `check_request_sum`, `check_sum_server`,
`check_chat_peer`. They run the learner's code in a thread with a deadline, fail with one sentence
that says what to check, and record deterministic evidence (no ports, no timings).
"""
from __future__ import annotations

import ctypes
import json
import queue
import random
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterable

from course.checks import no_leaked_sockets, record_evidence
from course.deadline import Deadline, wait_for
from course.errors import YourCodeError
from course.serving import Address, UdpServer, family_of, format_address, loopback_host, register

__all__ = [
    "sum_request",
    "sum_reply",
    "parse_reply",
    "UdpEchoServer",
    "UdpSumServer",
    "drops",
    "LossyUdpServer",
    "UdpChatPeer",
    "nobody_listening",
    "recv_truncated",
    "datagram_diagram",
    "LearnerThread",
    "REQUEST_CASES",
    "VISIBLE_REQUEST_CASES",
    "HIDDEN_REQUEST_CASES",
    "check_request_sum",
    "SERVER_CASES",
    "MALFORMED_SERVER_CASES",
    "VISIBLE_SERVER_CASES",
    "HIDDEN_SERVER_CASES",
    "check_sum_server",
    "CHAT_CASES",
    "VISIBLE_CHAT_CASES",
    "HIDDEN_CHAT_CASES",
    "check_chat_peer",
]

# ----------------------------------------------------------------------------------------------
# The sum protocol, without sockets
# ----------------------------------------------------------------------------------------------


def sum_request(a: int, b: int, id: Any = None) -> bytes:
    """The request datagram for a + b: b'{"A": 7, "B": 4}', with "id" first when given."""
    body = {} if id is None else {"id": id}
    body.update({"A": a, "B": b})
    return json.dumps(body).encode("utf-8")


def sum_reply(data: bytes) -> bytes:
    """The server's answer to one request datagram (the protocol in this module's docstring)."""
    try:
        request = json.loads(data.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return _error(f"not JSON: {data[:40]!r}")
    if not isinstance(request, dict):
        return _error(f"not a JSON object: {data[:40]!r}")
    missing = [k for k in ("A", "B") if k not in request]
    if missing:
        return _error(f"missing {' and '.join(missing)}", request)
    bad = [k for k in ("A", "B") if type(request[k]) is not int]
    if bad:
        return _error(f"{' and '.join(bad)} must be integers", request)
    reply = {"Sum": request["A"] + request["B"]}
    if "id" in request:
        reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def _error(message: str, request: dict | None = None) -> bytes:
    reply: dict[str, Any] = {"Error": message}
    if request is not None and "id" in request:
        reply["id"] = request["id"]
    return json.dumps(reply).encode("utf-8")


def parse_reply(data: bytes) -> dict | None:
    """The JSON object in a reply datagram, or None if it is not one."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


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


@register("udp-echo")
class UdpEchoServer(_UdpPeer):
    """Sends every datagram back to the address it came from."""

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        self.sendto(data, addr)


@register("udp-sum")
class UdpSumServer(_UdpPeer):
    """Answers seed 002's JSON sum over UDP: {"A":7,"B":4} -> {"Sum":11} (and {"Error": ...})."""

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        self.sendto(sum_reply(data), addr)


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


@register("udp-lossy")
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
    one more stray datagram, {"id": "stray", "Sum": 0} from the decoy's address (no client can take
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
            self.answer = sum_reply
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
            self._track(self.decoy)
        if self.chatter:
            self._spawn(self._chatter_loop, f"{type(self).__name__}-chatter-{self.port}")

    def _chatter_loop(self) -> None:
        while not self._stop.wait(self.chatter):
            for addr in list(self._clients):
                try:
                    self.decoy.sendto(b'{"id": "stray", "Sum": 0}', addr)
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
        body = parse_reply(reply)
        if body is None:
            return
        rid = body.get("id")
        stale = dict(body, id=rid + 1 if isinstance(rid, int) and not isinstance(rid, bool) else ["stale", rid])
        forged = dict(body)
        if "Sum" in body:
            stale["Sum"], forged["Sum"] = body["Sum"] + 1000, body["Sum"] + 1
        self.sendto(json.dumps(stale).encode("utf-8"), addr)
        forged_bytes = json.dumps(forged).encode("utf-8")
        self.sendto(forged_bytes, addr, sock=self.decoy)
        self.record("stray", format_address(addr), forged_bytes)

    def senders(self) -> list[Address]:
        """Every distinct address a datagram came from, in order of first arrival."""
        seen: list[Address] = []
        for _, who, _ in self.events_of("recv"):
            if who not in seen:
                seen.append(who)
        return [_address_of(s) for s in seen]


@register("udp-chat")
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
# Running learner code in a thread that a check can give up on
# ----------------------------------------------------------------------------------------------


class _StoppedByCheck(BaseException):
    """Raised inside a learner thread the check gave up on (a BaseException: `except Exception`
    in learner code does not swallow it)."""


class LearnerThread:
    """Run fn(*args, **kwargs) in a daemon thread; `result(timeout)` returns its value or re-raises
    its error; `stop(unblock)` makes a thread that overran its deadline end (an exception is
    raised in it, and `unblock()` wakes a recvfrom it waits in) so that it does not stay behind."""

    def __init__(self, fn: Callable, *args, name: str | None = None, **kwargs):
        self.name = name or getattr(fn, "__name__", "your function")
        self.box: dict[str, Any] = {}
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.thread = threading.Thread(target=self._run, name=f"learner-{self.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.box["value"] = self.fn(*self.args, **self.kwargs)
        except _StoppedByCheck:
            pass
        except BaseException as exc:  # handed to the checking thread by result()
            self.box["error"] = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return self.done

    def result(self, timeout: float, message: str):
        """The return value; re-raise what it raised; YourCodeError(message) if still running."""
        if not self.join(timeout):
            raise YourCodeError(message)
        if "error" in self.box:
            raise self.box["error"]
        return self.box.get("value")

    def stop(self, unblock: Callable[[], None] = lambda: None) -> None:
        if self.done:
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread.ident), ctypes.py_object(_StoppedByCheck))
        for _ in range(3):
            try:
                unblock()
            except OSError:
                pass
            if self.join(0.2):
                return


def _poke(addresses: Iterable[Address], count: int = 1) -> None:
    """Send `count` one-byte datagrams to each address (wakes a recvfrom waiting without timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for addr in addresses:
            for _ in range(count):
                s.sendto(b"?", tuple(addr))


def _ordinal(n: int) -> str:
    return {1: "1st", 2: "2nd", 3: "3rd"}.get(n, f"{n}th")


# ----------------------------------------------------------------------------------------------
# Check 1: a request with timeout and retry, against a lossy server
# ----------------------------------------------------------------------------------------------

REQUEST_CASES = {
    # name: (server settings, a, b, timeout, attempts, what the call must do)
    "drop first": (dict(drop=[0]), 7, 4, 0.3, 3, "return"),
    "seeded random drops": (dict(fraction=0.5, seed=35), -20, 5, 0.15, 4, "return"),  # seed 35 drops the 1st and 2nd
    "drop first 2 of 3": (dict(drop=[0, 1]), 123456789, 987654321, 0.25, 3, "return"),
    "stray replies": (dict(stray=True, drop=[]), 40, 2, 0.3, 3, "return"),
    "drop all": (dict(drop="all"), 1, 2, 0.15, 3, "raise"),
    "drop all, 2 attempts": (dict(drop="all"), 5, 5, 0.15, 2, "raise"),
    # a stray datagram every 0.02 s, none of them a reply: each attempt must still end after timeout
    # seconds in all; a wait restarted by every datagram would need a 0.3 s silence, which never comes
    "stray datagrams, none answered": (dict(drop="all", chatter=0.02), 3, 4, 0.3, 3, "raise"),
}
VISIBLE_REQUEST_CASES = ["drop first"]
HIDDEN_REQUEST_CASES = ["drop first 2 of 3", "stray replies", "drop all", "drop all, 2 attempts", "stray datagrams, none answered"]


def check_request_sum(request_sum: Callable, cases: Iterable[str] = VISIBLE_REQUEST_CASES, *, slack: float = 2.0) -> None:
    """Call request_sum(server, a, b, timeout=..., attempts=...) against a LossyUdpServer for each
    named case of REQUEST_CASES; fail on the first call that does not do what the case needs."""
    log: list[dict] = []
    try:
        for case in cases:
            settings, a, b, timeout, attempts, must = REQUEST_CASES[case]
            log.append(_request_case(request_sum, case, settings, a, b, timeout, attempts, must, slack))
    finally:
        record_evidence("request_sum", cases=log)


def _request_case(request_sum, case, settings, a, b, timeout, attempts, must, slack) -> dict:
    name = getattr(request_sum, "__name__", "request_sum")
    with LossyUdpServer(**settings) as server:
        call = f"{name}({server.where}, {a}, {b}, timeout={timeout}, attempts={attempts})"
        limit = attempts * timeout + slack
        seen: dict[str, Any] = {"case": case, "a": a, "b": b}
        with no_leaked_sockets(call, ignore_ports=[server.port]):
            started = time.monotonic()
            try:
                got = _call_request(request_sum, server, a, b, timeout, attempts, limit, name, settings)
                raised = None
            except YourCodeError:
                raise
            except NotImplementedError:
                raise
            except Exception as exc:
                got, raised = None, exc
            elapsed = time.monotonic() - started
        server.settle()  # a request sent just before returning is counted too
        sent = len(server.received)
        requests = [parse_reply(d) for d in server.received]
        if any(r is None or r.get("A") != a or r.get("B") != b for r in requests):
            shown = server.received[0] if server.received else b""
            raise YourCodeError(
                f"{call} sent {shown!r} to the server; send the JSON object {{\"id\": ..., \"A\": {a}, \"B\": {b}}} encoded as UTF-8"
            )
        senders = server.senders()
        if len(senders) > 1:
            raise YourCodeError(
                f"{call} sent its {sent} requests from {len(senders)} different addresses "
                f"({', '.join(format_address(x) for x in senders[:3])}); use one socket for the whole call, "
                "so that a late reply to an earlier attempt still reaches it"
            )
        if must == "return":
            if raised is not None:
                if isinstance(raised, TimeoutError) and sent < attempts:
                    dropped = ", ".join(_ordinal(i + 1) for i in server.dropped)
                    raise YourCodeError(
                        f"{call} raised TimeoutError after sending {sent} request(s), but the server only dropped the {dropped} "
                        f"on purpose and would have answered the next one; send the request again after each timeout, up to {attempts} times"
                    )
                raise YourCodeError(f"{call} raised {type(raised).__name__}: {raised}; it should return {a + b}") from raised
            if got != a + b or type(got) is not int:
                hint = (
                    "; the server sent stray replies first (one from another address, one with another id): "
                    "accept only a reply that comes from the server's address and carries your request's id"
                    if settings.get("stray")
                    else ""
                )
                raise YourCodeError(f"{call} returned {got!r}; expected {a + b} (the \"Sum\" of the reply){hint}")
            if sent > attempts:
                raise YourCodeError(f"{call} sent {sent} requests; it may send at most attempts={attempts}")
            answered = [i for i in range(sent) if i not in server.dropped]
            if not answered:
                raise YourCodeError(
                    f"{call} returned {got!r} although the server answered none of its {sent} request(s); return the \"Sum\" of the server's reply"
                )
            # Evidence holds only what does not depend on timing: which request the server answered
            # first (fixed by its drop rule), or how many requests came when it answered none.
            seen["answered_request"] = answered[0] + 1
            seen["result"] = got
        else:
            if raised is None:
                raise YourCodeError(
                    f"{call} returned {got!r}, but the server dropped every request; after {attempts} attempts without a reply raise TimeoutError"
                )
            if not isinstance(raised, TimeoutError):
                raise YourCodeError(
                    f"{call} raised {type(raised).__name__}: {raised}; when no reply comes after {attempts} attempts, raise TimeoutError"
                ) from raised
            if sent != attempts:
                raise YourCodeError(
                    f"{call} sent {sent} request(s) before raising TimeoutError; it should try exactly attempts={attempts} times"
                )
            if elapsed < attempts * timeout * 0.8:
                raise YourCodeError(
                    f"{call} gave up after {elapsed:.2f} s; wait timeout={timeout} s for a reply after each of the {attempts} attempts"
                )
            seen.update(requests_seen=sent, raised="TimeoutError")
        return seen


def _call_request(request_sum, server, a, b, timeout, attempts, limit, name, settings=None):
    hint = (
        f"it must give up with TimeoutError after {attempts} attempts of {timeout} s each; "
        "does every recvfrom have a timeout (settimeout), and does the retry loop end?"
    )
    if (settings or {}).get("chatter"):
        hint = (
            f"the server answered nothing but a stray datagram reached your socket every {settings['chatter']} s; "
            f"give each attempt one deadline ({timeout} s in all, however many other datagrams come) and set the "
            "socket's timeout to the time left before each recvfrom, instead of waiting timeout s again after each stray datagram"
        )
    run = LearnerThread(request_sum, server.address, a, b, timeout=timeout, attempts=attempts, name=name)
    try:
        return run.result(
            limit, f"{name}({server.where}, {a}, {b}, timeout={timeout}, attempts={attempts}) did not return within {limit:.2f} s; {hint}"
        )
    finally:
        run.stop(lambda: _poke(server.senders()))


# ----------------------------------------------------------------------------------------------
# Check 2: a server that answers n datagrams from several clients on one socket
# ----------------------------------------------------------------------------------------------


def _req(id: Any, a: Any, b: Any) -> bytes:
    return json.dumps({"id": id, "A": a, "B": b}).encode()


# name: (client hosts, [(client index, request datagram)], n for serve_sums, serve timeout)
SERVER_CASES: dict[str, tuple[list[str], list[tuple[int, bytes]], int, float]] = {
    "two clients": (["127.0.0.2", "127.0.0.3"], [(0, _req(1, 7, 4)), (1, _req(2, 1, 2)), (0, _req(3, -5, 5)), (1, _req(4, 100, 23))], 4, 2.0),
    "three clients": (
        ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
        [(0, _req(10, 1, 1)), (1, _req(11, 2, 2)), (2, _req(12, 3, 3)), (2, _req(13, 4, 4)), (1, b'{"A": 7, "B": 4}'),
         (0, _req(15, 2**40, 1)), (1, _req(16, -1, -1)), (2, _req("x", 0, 0)), (0, _req(18, 9, 9)),
         # ids that are falsy are ids all the same: `if request.get("id")` drops them
         (2, _req(0, 5, 5)), (0, _req(None, 6, 6)), (1, _req("", 2, 1))],
        12,
        2.0,
    ),
    # One case per kind of malformed request the exercise lists, each followed by valid requests
    # from the same client and another one: a server must answer the error and keep serving.
    "not JSON": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b"hello"), (1, _req(21, 2, 3)), (0, b""), (0, b'{"id": 22, "A": 1,'), (0, _req(23, 4, 5)), (1, _req(24, 6, 7))],
        6,
        2.0,
    ),
    "not UTF-8": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b'{"id": 40, "A": 1, "B": 2, "note": "\xff"}'), (1, b"\xff\xfe{}"), (0, _req(41, 2, 3)), (1, _req(42, 20, 22))],
        4,
        2.0,
    ),
    "not an object": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b"[1, 2]"), (1, _req(51, 1, 2)), (0, b'"7"'), (0, b"42"), (1, b"null"), (0, _req(52, 3, 4)), (1, _req(53, 5, 6))],
        7,
        2.0,
    ),
    "A or B missing": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, b'{"id": 61, "A": 1}'), (1, b'{"B": 2}'), (0, b"{}"), (1, _req(62, 1, 1)), (0, _req(63, 2, 2))],
        5,
        2.0,
    ),
    "not integers": (
        ["127.0.0.2", "127.0.0.3"],
        [(0, _req(71, 1.5, 2)), (1, _req(72, "7", "4")), (0, _req(73, True, 4)), (1, _req(74, None, 1)), (0, _req(75, 1, 2.0)),
         (1, b'{"id": 76, "A": 1e3, "B": 1}'), (0, _req(77, 7, 4)), (1, _req(78, 8, 9))],
        8,
        2.0,
    ),
    "fewer datagrams than n": (["127.0.0.2"], [(0, _req(31, 3, 4))], 3, 0.3),
}
MALFORMED_SERVER_CASES = ["not JSON", "not UTF-8", "not an object", "A or B missing", "not integers"]
VISIBLE_SERVER_CASES = ["two clients"]
HIDDEN_SERVER_CASES = ["three clients", *MALFORMED_SERVER_CASES, "fewer datagrams than n"]


def check_sum_server(serve_sums: Callable, cases: Iterable[str] = VISIBLE_SERVER_CASES, *, reply_within: float = 2.0, slack: float = 2.0) -> None:
    """Bind a UDP socket on 127.0.0.1 port 0, run serve_sums(sock, n, timeout=...) in a thread, and
    send it the datagrams of each named case of SERVER_CASES from client sockets on other 127.x
    addresses at once; every client must get its own replies, from the server's address; then
    serve_sums must return (or raise TimeoutError if fewer than n came) and close the socket."""
    log: list[dict] = []
    try:
        for case in cases:
            log.append(_server_case(serve_sums, case, reply_within, slack))
    finally:
        record_evidence("serve_sums", cases=log)


def _server_case(serve_sums: Callable, case: str, reply_within: float, slack: float) -> dict:
    hosts, plan, n, timeout = SERVER_CASES[case]
    name = getattr(serve_sums, "__name__", "serve_sums")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    address = sock.getsockname()
    where = format_address(address)
    call = f"{name}(<socket bound to {where}>, {n}, timeout={timeout})"
    clients = []
    try:
        for host in hosts:
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            clients.append(c)
            c.bind((host, 0))
            c.setblocking(False)
        run = LearnerThread(serve_sums, sock, n, timeout=timeout, name=name)
        try:
            for ci, payload in plan:
                clients[ci].sendto(payload, address)
            replies = _collect_replies(run, call, clients, plan, reply_within)
            seen = _judge_replies(call, where, clients, hosts, plan, replies, address, reply_within)
            must_raise = len(plan) < n
            limit = (timeout + slack) if must_raise else slack
            try:
                run.result(
                    limit,
                    f"{call} did not return within {limit} s after the last datagram; "
                    + (f"it got only {len(plan)} of {n} datagrams, so it should raise TimeoutError after waiting timeout={timeout} s"
                       if must_raise else f"it answered all {n} datagrams, so its loop should end there"),
                )
                raised = None
            except (YourCodeError, NotImplementedError):
                raise
            except Exception as exc:
                raised = exc
            if must_raise and not isinstance(raised, TimeoutError):
                what = "returned" if raised is None else f"raised {type(raised).__name__}: {raised};"
                raise YourCodeError(
                    f"{call} {what} but only {len(plan)} of {n} datagrams came; when none comes for timeout={timeout} s, raise TimeoutError"
                )
            if not must_raise and raised is not None:
                raise YourCodeError(f"{call} raised {type(raised).__name__}: {raised}; it should answer {n} datagrams and return") from raised
            if sock.fileno() != -1:
                raise YourCodeError(f"{call} {'raised' if must_raise else 'returned'} but left its socket open; close it (e.g. `with sock:`) before leaving")
            seen.update(case=case, returned=not must_raise, raised_timeout=must_raise, closed=True)
            return seen
        finally:
            run.stop(lambda: _poke([address], count=n))
    finally:
        for c in clients:
            c.close()
        sock.close()


def _collect_replies(run: LearnerThread, call: str, clients, plan, within: float) -> list[list[tuple[bytes, Address]]]:
    """Read from every client until as many replies have come as requests were sent, or `within` s."""
    got: list[list[tuple[bytes, Address]]] = [[] for _ in clients]
    deadline = Deadline(within)
    while not deadline.expired():
        for i, c in enumerate(clients):
            try:
                while True:
                    got[i].append(c.recvfrom(65535))
            except BlockingIOError:
                pass
        if sum(map(len, got)) >= len(plan):
            break  # every reply has come (to the right clients or not): no need to wait longer
        if run.done and "error" in run.box:
            exc = run.box["error"]
            if isinstance(exc, NotImplementedError):
                raise exc
            if not isinstance(exc, TimeoutError):
                raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; it should answer every datagram with sendto(reply_bytes, address)") from exc
        time.sleep(0.01)
    return got


def _judge_replies(call, where, clients, hosts, plan, replies, address, within) -> dict:
    served = []
    extra: YourCodeError | None = None  # replies a client never asked for: reported after missing ones
    for i, (c, host) in enumerate(zip(clients, hosts)):
        mine = [p for ci, p in plan if ci == i]
        pending = list(replies[i])
        for payload in mine:
            expected = parse_reply(sum_reply(payload))
            request = parse_reply(payload)
            rid = request.get("id") if request else None
            if not pending:
                others = [f"{hosts[j]} got {len(replies[j])} for its {sum(1 for ci, _ in plan if ci == j)}" for j in range(len(clients)) if j != i]
                also = f" ({'; '.join(others)})" if others else ""
                client = format_address(c.getsockname())
                if sum(map(len, replies)) >= len(plan):
                    head = f"your server at {where} sent all its {len(plan)} replies, but none to the client at {client}"
                else:
                    head = f"no reply from your server at {where} within {within} s to the client at {client}"
                raise YourCodeError(
                    f"{head}, which sent {payload!r}{also}; did serve_sums call sendto with the address recvfrom returned for that datagram?"
                )
            match = None
            has_id = isinstance(request, dict) and "id" in request
            for k, (data, sender) in enumerate(pending):
                body = parse_reply(data)
                if body is None:
                    raise YourCodeError(
                        f"your server replied {data!r} to {payload!r}; reply with a JSON object such as "
                        f"{json.dumps(expected)} encoded as UTF-8"
                    )
                if body.get("id") == rid and ("id" in body) == has_id:
                    match = k
                    break
                if "Error" in expected and "id" not in body:
                    match = k  # an error reply may leave the id out (a malformed request may have none)
                    break
            if match is None:
                data = pending[0][0]
                raise YourCodeError(
                    f"the client at {format_address(c.getsockname())} sent {payload!r} and got {data!r}; "
                    f"the reply should be {json.dumps(expected)} (copy the request's \"id\" into the reply when it has one"
                    + ("; an error reply may also leave it out)" if "Error" in expected else ")")
                )
            data, sender = pending.pop(match)
            body = parse_reply(data)
            if tuple(sender[:2]) != tuple(address[:2]):
                raise YourCodeError(
                    f"the reply to {payload!r} came from {format_address(sender)}, not from your server's address {where}; "
                    "send replies with sendto on the socket the request arrived on"
                )
            if "Error" in expected:
                if not isinstance(body.get("Error"), str) or "Sum" in body:
                    raise YourCodeError(
                        f"your server replied {data!r} to the malformed request {payload!r} ({expected['Error'].split(':')[0]}); "
                        f"reply with {{\"Error\": \"<what is wrong>\"}} (and keep serving the other datagrams)"
                    )
                served.append([host, payload.decode("utf-8", "backslashreplace"), "Error"])
            else:
                if body != expected:
                    raise YourCodeError(f"your server replied {data!r} to {payload!r}; expected {json.dumps(expected)}")
                served.append([host, payload.decode("utf-8"), body])
        if pending and extra is None:
            extra = YourCodeError(
                f"the client at {format_address(c.getsockname())} sent {len(mine)} request(s) but got {len(replies[i])} replies, "
                f"including {pending[0][0]!r} that answers another client; sendto the address recvfrom returned with each datagram"
            )
    if extra is not None:
        raise extra
    return {"served": served}


# ----------------------------------------------------------------------------------------------
# Check 3: a chat peer, against the reference chat peer
# ----------------------------------------------------------------------------------------------

CHAT_CASES = ["hello", "bound host", "unicode", "three lines", "nothing waiting", "other sender"]
VISIBLE_CHAT_CASES = ["hello"]
HIDDEN_CHAT_CASES = ["bound host", "unicode", "three lines", "nothing waiting", "other sender"]


def check_chat_peer(ChatPeer: type, cases: Iterable[str] = VISIBLE_CHAT_CASES, *, within: float = 2.0) -> None:
    """Make a ChatPeer(host) for each named case of CHAT_CASES and talk to it from UdpChatPeer
    reference peers: what it sends must arrive as UTF-8 lines from its own address, receive(t)
    must return (text, sender address) or None after t seconds, close() must close its socket."""
    log: list[dict] = []
    try:
        for case in cases:
            log.append(_chat_case(ChatPeer, case, within))
    finally:
        record_evidence("ChatPeer", cases=log)


class _Learner:
    """Calls the methods of a learner's object with deadlines, naming them in messages."""

    def __init__(self, obj: Any, label: str, wake: Callable[[], None]):
        self.obj, self.label, self.wake = obj, label, wake

    def __call__(self, method: str, *args, within: float = 1.0):
        from course.checks import describe_call

        fn = getattr(self.obj, method, None)
        if fn is None:
            raise YourCodeError(f"{self.label} has no method {method}(); the exercise asks for send, receive and close")
        run = LearnerThread(fn, *args, name=f"{self.label}.{method}")
        try:
            return run.result(
                within,
                f"{describe_call(f'{self.label}.{method}', args)} did not return within {within} s; "
                "does its recvfrom have a timeout (settimeout(timeout)) and does it return None when it expires?",
            )
        finally:
            run.stop(self.wake)


def _chat_case(ChatPeer: type, case: str, within: float) -> dict:
    host = "127.0.0.3" if case == "bound host" else "127.0.0.1"
    cls = getattr(ChatPeer, "__name__", "ChatPeer")
    label = f"{cls}({host!r})"
    seen: dict[str, Any] = {"case": case}
    bot = UdpChatPeer("127.0.0.2", reply=lambda text: f"收到：{text}" if case == "unicode" else f"you said: {text}")
    other = UdpChatPeer("127.0.0.4")
    with bot, other:
        with no_leaked_sockets(f"{label} after close()", ignore_ports=[bot.port, other.port]):
            run = LearnerThread(ChatPeer, host, name=cls)
            try:
                peer = run.result(within, f"{label} did not return within {within} s; __init__ should only create and bind the socket")
            finally:
                run.stop()
            address = getattr(peer, "address", None)
            if not (isinstance(address, tuple) and len(address) >= 2 and address[0] == host and isinstance(address[1], int) and address[1] > 0):
                try:
                    peer.close()
                except Exception:
                    pass
                raise YourCodeError(
                    f"{label}.address is {address!r}; bind the socket to ({host!r}, 0) and keep sock.getsockname() in self.address"
                )
            me = format_address(address)
            call = _Learner(peer, label, wake=lambda: _poke([address]))
            try:
                if case in ("hello", "bound host", "unicode"):
                    text = {"unicode": "你好，UDP！"}.get(case, "hello")
                    call("send", text, bot.address)
                    wait_for(
                        lambda: bot.heard, within,
                        lambda: f"the reference peer at {bot.where} heard nothing within {within} s after {label}.send({text!r}, {bot.address}); "
                        "did send() call sendto((text).encode('utf-8'), to)?",
                    )
                    heard, sender = bot.heard[0]
                    if heard != text:
                        raise YourCodeError(
                            f"the reference peer heard {heard!r} after {label}.send({text!r}, ...); send text.encode('utf-8') as one datagram"
                        )
                    if sender != me:
                        raise YourCodeError(
                            f"{label}.send() sent from {sender}, not from the peer's own address {me}; send with the socket you bound in __init__"
                        )
                    expected = [(bot.reply(text), bot.address, "reference peer")]
                elif case == "three lines":
                    expected = [(t, bot.address, "reference peer") for t in ("one", "two", "three")]
                    for t, _, _ in expected:
                        bot.say(t, address)
                elif case == "other sender":
                    expected = [("from elsewhere", other.address, "other peer")]
                    other.say("from elsewhere", address)
                else:
                    expected = []
                got = []
                for text, sender, who in expected:
                    item = call("receive", within, within=within + 1.0)
                    _expect_line(label, item, text, sender)
                    got.append([item[0], who])
                if case == "nothing waiting":
                    # its deadline (2.2 s for a 0.2 s timeout) is the only timing here: the evidence
                    # records what it returned, never how long it took
                    item = call("receive", 0.2, within=2.2)
                    if item is not None:
                        raise YourCodeError(f"{label}.receive(0.2) returned {item!r} although nobody sent anything; return None when the timeout expires")
                    got.append(None)
                seen["received"] = got
                bot.settle()  # a datagram sent just before is heard too, whatever the timing
                seen["heard"] = [t for t, _ in bot.heard]
            finally:
                try:
                    call("close", within=within)
                except YourCodeError:
                    raise
                except Exception as exc:
                    raise YourCodeError(f"{label}.close() raised {type(exc).__name__}: {exc}; it should close the socket") from exc
    return seen


def _expect_line(label: str, item: Any, text: str, sender: Address) -> None:
    call = f"{label}.receive(...)"
    if item is None:
        raise YourCodeError(f"{call} returned None, but {text!r} was sent to it from {format_address(sender)}; recvfrom the socket bound in __init__")
    if not (isinstance(item, tuple) and len(item) == 2):
        raise YourCodeError(f"{call} returned {item!r}; return a pair (text, sender_address)")
    got_text, got_sender = item
    if isinstance(got_text, (bytes, bytearray)):
        raise YourCodeError(f"{call} returned {got_text!r} (bytes); decode the datagram: data.decode('utf-8')")
    if got_text != text:
        raise YourCodeError(f"{call} returned the text {got_text!r}; expected {text!r} (each datagram is one line, in the order sent)")
    if not isinstance(got_sender, tuple) or tuple(got_sender[:2]) != tuple(sender[:2]):
        raise YourCodeError(f"{call} returned the sender {got_sender!r}; expected {tuple(sender)!r}, the address recvfrom returned")
