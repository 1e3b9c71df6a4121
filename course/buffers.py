"""The kernel's buffers behind a TCP socket: what send() and recv() really do.

send() does not put bytes on the wire: it copies them into the socket's send buffer (kernel memory)
and returns how many it copied, which may be fewer than it was given. The kernel sends them when
the peer's window allows and keeps them until the peer acknowledges them. recv() does not fetch
bytes from the peer either: it copies out what the kernel already put in the receive buffer, at
most `bufsize` bytes, and blocks only while that buffer is empty (seed 001, "send和recv原理剖析").

Two ioctls of Linux tell how many bytes wait in each buffer (see tcp(7)):
- SIOCINQ (= FIONREAD = TIOCINQ): bytes in the receive queue, not read yet by the application;
- SIOCOUTQ (= TIOCOUTQ): bytes in the send queue, not yet acknowledged by the peer (sent or not).
Python's termios module has their numbers for the machine it runs on (termios.FIONREAD,
termios.TIOCINQ, termios.TIOCOUTQ): they differ between architectures (TIOCOUTQ is 0x5411 on x86
and ARM, other numbers on PowerPC, MIPS, SPARC and Alpha), so never write the number itself. The same two figures are
`ss -tn`'s Recv-Q and Send-Q, and /proc/net/tcp's rx_queue and tx_queue (course.kernel).

Their sizes are socket options: SO_SNDBUF and SO_RCVBUF. Linux first caps the value you set at
net.core.wmem_max (SO_SNDBUF) or net.core.rmem_max (SO_RCVBUF), then doubles it, to make room for its
own bookkeeping, and getsockopt() returns the doubled value (socket(7)); the defaults
come from /proc/sys/net/ipv4/tcp_wmem and tcp_rmem, and without a setsockopt the kernel grows them
on its own (autotuning). The buffer sizes count kernel memory, overhead included, not payload bytes:
how many payload bytes really fit is measured, not computed, by `measure_fill`.
"""
from __future__ import annotations

import fcntl
import socket
import struct
import termios
import threading
import time
from dataclasses import asdict, dataclass

from course.deadline import wait_for
from course.errors import SetupError
from course.serving import tcp_pair  # noqa: F401  (notebooks import it from here)

__all__ = [
    "tcp_pair",  # re-exported from course.serving: the notebook takes it from here
    "FIONREAD",
    "SIOCOUTQ",
    "SIOCOUTQNSD",
    "recv_queue",
    "send_queue",
    "unsent",
    "queues",
    "buffer_sizes",
    "set_buffer_sizes",
    "kernel_defaults",
    "expected_size",
    "Fill",
    "fill_until_blocked",
    "settled",
    "fill_completely",
    "measure_fill",
    "DEFAULT_SETTINGS",
    "measure_fills",
    "plot_fills",
    "QueueWatch",
    "send_without_blocking",
    "main",
]

FIONREAD = termios.FIONREAD  # = SIOCINQ = TIOCINQ: bytes waiting in the receive queue
SIOCOUTQ = termios.TIOCOUTQ  # = SIOCOUTQ: bytes in the send queue, not yet acknowledged
SIOCOUTQNSD = 0x894B  # bytes in the send queue not yet sent at all (linux/sockios.h: the same on every architecture)


def _ioctl_int(sock: socket.socket, request: int) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]


def recv_queue(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive buffer: what recv() could return right now."""
    return _ioctl_int(sock, FIONREAD)


def send_queue(sock: socket.socket) -> int:
    """Bytes in the socket's send buffer: accepted by send(), not yet acknowledged by the peer."""
    return _ioctl_int(sock, SIOCOUTQ)


def unsent(sock: socket.socket) -> int:
    """Bytes in the send buffer that the kernel has not even transmitted once."""
    return _ioctl_int(sock, SIOCOUTQNSD)


def queues(sock: socket.socket) -> dict:
    """{'recv_queue': ..., 'send_queue': ...} of one socket, as `ss` shows Recv-Q and Send-Q.
    (Both ends of a connection at once, what this end still waits for: course.tcp.unacked_and_unread.)"""
    return {"recv_queue": recv_queue(sock), "send_queue": send_queue(sock)}


def buffer_sizes(sock: socket.socket) -> dict:
    """{'SO_SNDBUF': ..., 'SO_RCVBUF': ...} as the kernel reports them (doubled if you set them)."""
    return {
        "SO_SNDBUF": sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
        "SO_RCVBUF": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
    }


def set_buffer_sizes(sock: socket.socket, sndbuf: int | None = None, rcvbuf: int | None = None) -> dict:
    """setsockopt SO_SNDBUF/SO_RCVBUF (None: leave alone) and return what the kernel made of it.

    Set SO_RCVBUF before connect()/listen(): the window scale is chosen in the handshake."""
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    return buffer_sizes(sock)


def kernel_defaults() -> dict:
    """The kernel's TCP buffer settings (min, default, max bytes) from /proc/sys/net/ipv4, and the
    caps on what SO_SNDBUF/SO_RCVBUF may ask for (net.core.wmem_max, rmem_max)."""
    out = {}
    for name, path in (("tcp_wmem", "ipv4/tcp_wmem"), ("tcp_rmem", "ipv4/tcp_rmem"),
                       ("wmem_max", "core/wmem_max"), ("rmem_max", "core/rmem_max")):
        try:
            with open(f"/proc/sys/net/{path}") as f:
                values = tuple(int(x) for x in f.read().split())
            out[name] = values if name.startswith("tcp_") else values[0]
        except (OSError, ValueError, IndexError):
            out[name] = None
    return out


def expected_size(asked: int, option: str = "SO_SNDBUF") -> int | None:
    """What getsockopt() reports after setsockopt(option, asked) on Linux: `asked` capped at
    net.core.wmem_max (SO_SNDBUF) or rmem_max (SO_RCVBUF), then doubled. None if the cap is unknown.
    (The kernel also has a floor of a few KiB, SOCK_MIN_SNDBUF/SOCK_MIN_RCVBUF, for tiny values.)"""
    cap = kernel_defaults()["wmem_max" if option == "SO_SNDBUF" else "rmem_max"]
    return None if cap is None else 2 * min(asked, cap)


# ----------------------------------------------------------------------------------------------
# A connected pair on loopback
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# How much fits before send() blocks
# ----------------------------------------------------------------------------------------------
@dataclass
class Fill:
    """One measurement: a receiver that never reads, a non-blocking sender sending until
    BlockingIOError. Sizes are what getsockopt() reports (doubled by Linux)."""

    sndbuf_set: int | None  # what we asked for on the sender (None: the kernel's default)
    rcvbuf_set: int | None  # what we asked for on the receiver
    sndbuf: int  # SO_SNDBUF of the sender, as reported
    rcvbuf: int  # SO_RCVBUF of the receiver, as reported
    accepted: int  # payload bytes send() took before it raised BlockingIOError
    short_sends: int  # send() calls that took fewer bytes than they were given
    in_send_queue: int  # of those, still in the sender's queue (not acknowledged)
    in_recv_queue: int  # of those, waiting in the receiver's queue (never read)

    def as_dict(self) -> dict:
        return asdict(self)


def fill_until_blocked(sender: socket.socket, chunk: int = 65536, limit: int = 256 * 1024 * 1024) -> tuple[int, int]:
    """Send chunks on `sender` (made non-blocking) until send() raises BlockingIOError.
    Returns (bytes accepted, number of short sends)."""
    sender.setblocking(False)
    data = b"x" * chunk
    total = short = 0
    while total < limit:
        try:
            n = sender.send(data)
        except BlockingIOError:
            return total, short
        total += n
        short += n < len(data)
    raise SetupError(f"send() took {total} bytes without blocking; is the receiver reading?")


def settled(sender: socket.socket, receiver: socket.socket, accepted: int) -> bool:
    """True when the `accepted` bytes are each in exactly one queue: the sender's (not acknowledged)
    or the receiver's (acknowledged, not read). A byte received but not yet acknowledged counts in
    both; the receiver's kernel acknowledges it within a few tens of milliseconds."""
    return send_queue(sender) + recv_queue(receiver) == accepted


def fill_completely(sender: socket.socket, receiver: socket.socket, settle: float = 5.0) -> int:
    """Fill a connection whose `receiver` does not read until no ACK can free any more room: send
    until BlockingIOError, wait (at most `settle` s) until the queues settle, and again, until a
    send() right after settling still raises BlockingIOError. Then the sender stays unwritable for
    as long as nobody reads. Returns the bytes accepted."""
    total = 0
    while True:
        accepted, _ = fill_until_blocked(sender)
        total += accepted
        wait_for(lambda: settled(sender, receiver, total), settle,
                 lambda: f"the queues did not settle within {settle} s ({total} bytes accepted, {send_queue(sender)} in the "
                         f"sender's queue, {recv_queue(receiver)} in the receiver's); is the receiver reading?", error=SetupError)
        if accepted == 0:
            return total


def measure_fill(sndbuf: int | None = None, rcvbuf: int | None = None, chunk: int = 65536, settle: float = 5.0) -> Fill:
    """Fill a loopback connection whose receiver never reads; return where the bytes went.

    After the first BlockingIOError it waits (at most `settle` s) until the sender's queue and the
    receiver's queue add up to what send() accepted: until the receiver's kernel has acknowledged
    every byte it holds (a byte received but not yet acknowledged counts in both queues)."""
    with tcp_pair(sndbuf=sndbuf, rcvbuf=rcvbuf) as (sender, receiver):
        sizes = buffer_sizes(sender)["SO_SNDBUF"], buffer_sizes(receiver)["SO_RCVBUF"]
        accepted, short = fill_until_blocked(sender, chunk)
        wait_for(
            lambda: settled(sender, receiver, accepted),
            settle,
            lambda: (f"the queues did not settle within {settle} s: send() accepted {accepted} bytes, the sender's queue "
                     f"holds {send_queue(sender)} and the receiver's {recv_queue(receiver)}; is the machine very busy?"),
            error=SetupError,
        )
        return Fill(sndbuf, rcvbuf, sizes[0], sizes[1], accepted, short, send_queue(sender), recv_queue(receiver))


DEFAULT_SETTINGS = (None, 4096, 16384, 65536, 262144, 1048576)


def measure_fills(sndbufs=DEFAULT_SETTINGS, rcvbufs=(None,), chunk: int = 65536) -> list[dict]:
    """measure_fill for every SO_SNDBUF in `sndbufs` and SO_RCVBUF in `rcvbufs`; plain dicts."""
    return [measure_fill(s, r, chunk).as_dict() for r in rcvbufs for s in sndbufs]


def plot_fills(rows: list[dict], ax=None):
    """Bytes that fit before send() blocked against the SO_SNDBUF the kernel reported, one line per
    SO_RCVBUF setting, log-log, with the line "fit = SO_SNDBUF" for comparison. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    series: dict = {}
    for r in rows:
        series.setdefault(r["rcvbuf_set"], []).append(r)
    low, high = float("inf"), 0
    for rcvbuf_set, points in series.items():
        points = sorted(points, key=lambda r: r["sndbuf"])
        xs, ys = [r["sndbuf"] for r in points], [r["accepted"] for r in points]
        low, high = min(low, *xs, *ys), max(high, *xs, *ys)
        label = f"SO_RCVBUF {'default' if rcvbuf_set is None else f'set {rcvbuf_set}'} (reported {points[0]['rcvbuf']:,})"
        ax.plot(xs, ys, marker="o", label=label)
        for r in points:
            if r["sndbuf_set"] is None:
                ax.annotate("default", (r["sndbuf"], r["accepted"]), textcoords="offset points", xytext=(-10, 8), fontsize=8, ha="right")
    ax.plot([low, high], [low, high], linestyle="--", color="grey", label="fit = SO_SNDBUF")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("SO_SNDBUF of the sender, as getsockopt() reports it (bytes)")
    ax.set_ylabel("bytes send() accepted")
    ax.set_title("how much fits before send() blocks, receiver never reads (loopback)")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax


# ----------------------------------------------------------------------------------------------
# A live view of the queues
# ----------------------------------------------------------------------------------------------
class QueueWatch:
    """Sample the queues of a sender and a receiver every `interval` s in a thread, while the
    `with` block runs; `samples` is a list of (seconds, sender's send queue, receiver's recv queue).

    With `live=True` in Jupyter it also updates one line of output in place as it samples.
    """

    def __init__(self, sender: socket.socket, receiver: socket.socket, interval: float = 0.01, live: bool = False):
        self.sender, self.receiver, self.interval, self.live = sender, receiver, interval, live
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle = None

    def sample(self) -> tuple[float, int, int]:
        try:
            s = (round(time.monotonic() - self._t0, 4), send_queue(self.sender), recv_queue(self.receiver))
        except (OSError, ValueError):
            return None  # a socket was closed under us
        self.samples.append(s)
        return s

    def _run(self) -> None:
        shown = 0.0
        while not self._stop.wait(self.interval):
            s = self.sample()
            if s and self._handle is not None and s[0] - shown >= 0.05:
                shown = s[0]
                self._handle.update(self.line(s))

    @staticmethod
    def line(s) -> str:
        return f"t={s[0]:.2f} s   sender's send queue: {s[1]:>9,} B   receiver's recv queue: {s[2]:>9,} B"

    def __enter__(self) -> "QueueWatch":
        self._t0 = time.monotonic()
        if self.live:
            try:
                from IPython.display import display

                self._handle = display("waiting for the first sample...", display_id=True)
            except ImportError:
                self._handle = None
        self.sample()
        self._thread = threading.Thread(target=self._run, name="QueueWatch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2.0)
        s = self.sample()
        if s and self._handle is not None:
            self._handle.update(self.line(s))

    def plot(self, ax=None, title: str = "bytes waiting in the kernel's buffers"):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3))
        t = [s[0] for s in self.samples]
        ax.step(t, [s[1] / 1024 for s in self.samples], where="post", label="sender's send queue (SIOCOUTQ)", color="tab:orange")
        ax.step(t, [s[2] / 1024 for s in self.samples], where="post", label="receiver's recv queue (FIONREAD)", color="tab:blue")
        ax.set_xlabel("seconds")
        ax.set_ylabel("KiB")
        ax.set_title(title)
        ax.legend(fontsize=8)
        return ax


def send_without_blocking(sock: socket.socket, data: bytes) -> int | None:
    """One send() on a non-blocking socket: the number of bytes it took, or None if it raised
    BlockingIOError (the send buffer was full)."""
    sock.setblocking(False)
    try:
        return sock.send(data)
    except BlockingIOError:
        return None


def main(argv: list[str] | None = None) -> int:
    """`python -m course.buffers`: measure how many bytes fit before send() blocks on this machine."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m course.buffers", description=main.__doc__)
    parser.add_argument("--sndbuf", type=int, nargs="*", default=list(DEFAULT_SETTINGS), help="SO_SNDBUF values to try (0: default)")
    parser.add_argument("--rcvbuf", type=int, nargs="*", default=[0], help="SO_RCVBUF values to try (0: default)")
    args = parser.parse_args(argv)
    snd = [v or None for v in args.sndbuf]
    rcv = [v or None for v in args.rcvbuf]
    print(f"kernel defaults: {kernel_defaults()}")
    print(f"{'SO_SNDBUF set':>13} {'reported':>9} {'SO_RCVBUF set':>13} {'reported':>9} {'accepted':>10} {'sender Q':>10} {'receiver Q':>10}")
    for r in measure_fills(snd, rcv):
        print(
            f"{str(r['sndbuf_set'] or 'default'):>13} {r['sndbuf']:>9} {str(r['rcvbuf_set'] or 'default'):>13} {r['rcvbuf']:>9} "
            f"{r['accepted']:>10} {r['in_send_queue']:>10} {r['in_recv_queue']:>10}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
