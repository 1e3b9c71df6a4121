"""The socket object (assignment 02): what a socket is, what each of its methods does and raises.

Seed 001 lists twenty methods of Python's socket object in one table; seed 003 says that on
Unix "a connection is a file" with a file descriptor. This module is the course's side of both:

- `describe_socket(sock)`: a socket as plain data (family, type, local and peer address,
  timeout, blocking): the reference for the learner's first exercise.
- `probe(address, timeout)`: is something listening there? One `connect_ex`, no exception:
  'open', 'refused' or 'timeout' (the reference for the second exercise).
- `read_lines(sock)`: the lines a peer sends, read through `makefile` (the third exercise).
- `METHODS`: a catalogue of seed 001's twenty methods, each with what it does, returns and raises,
  what the seed says where it is imprecise, and a `demo` that provokes the documented error on
  real loopback sockets, so that the table a notebook shows (`methods_table()`) is measured, not
  copied. The errno names are Linux's (include/uapi/asm-generic/errno*.h).
- Peers for the checks: `LineSender` ("tcp-lines" in course/peers.py) sends known UTF-8 lines in
  odd chunks, one chunk per read of the client; `with closed_port() as port:` holds a port nobody
  listens on (connect is refused); `FullBacklogListener` listens but never accepts, and its accept
  queue is full, so that Linux drops new SYNs and a connect times out instead of being refused.

The graded checks of notebook 02 live in `course.checks.sockets`.
"""
from __future__ import annotations

import errno
import fcntl
import socket
import struct
import termios
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from course import kernel
from course.checks import forward_moved_checks
from course.deadline import Deadline, wait_for
from course.errors import PeerError, SetupError
from course.framing import split_into_chunks as chunked
from course.serving import tcp_pair  # noqa: F401  (notebooks import it from here)
from course.kernel import window
from course.serving import Address, TcpServer, family_of, format_address, loopback_host

__all__ = [
    "tcp_pair",  # re-exported from course.serving: the notebook takes it from here
    "DESCRIBE_KEYS",
    "TIMEOUT_ERRNOS",
    "describe_socket",
    "probe",
    "read_lines",
    "closed_port",
    "UNREACHABLE_HOST",
    "listening_socket",
    "FullBacklogListener",
    "DEFAULT_LINES",
    "LineSender",
    "Method",
    "Outcome",
    "METHODS",
    "method",
    "provoke",
    "methods_table",
    "corrections_table",
]

DESCRIBE_KEYS = ("family", "type", "local", "peer", "timeout", "blocking")
# connect_ex returns the errno; a connect that ran out of the socket's timeout returns EAGAIN
# (CPython's SOCK_TIMEOUT_ERR, which is EWOULDBLOCK == EAGAIN on Linux), not ETIMEDOUT. ETIMEDOUT
# is what the kernel itself reports when its SYN retries run out (about 2 minutes by default).
TIMEOUT_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT, errno.EINPROGRESS)


# ----------------------------------------------------------------------------------------------
# The references of the three exercises
# ----------------------------------------------------------------------------------------------
def describe_socket(sock: socket.socket) -> dict:
    """The socket as plain data, e.g. for a fresh TCP socket:

    {'family': 'AF_INET', 'type': 'SOCK_STREAM', 'local': ('0.0.0.0', 0), 'peer': None,
     'timeout': None, 'blocking': True}

    `local` is what getsockname() returns, `peer` what getpeername() returns, or None when the
    socket is not connected (getpeername raises OSError ENOTCONN); `blocking` is getblocking().
    """
    try:
        peer = sock.getpeername()
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            raise
        peer = None
    return {
        "family": sock.family.name,
        "type": sock.type.name,
        "local": sock.getsockname(),
        "peer": peer,
        "timeout": sock.gettimeout(),
        "blocking": sock.getblocking(),
    }


def probe(address: Address, timeout: float = 1.0) -> str:
    """Is a TCP server listening at `address`? One connect_ex on a fresh socket, never raises:

    'open' (the handshake completed), 'refused' (ECONNREFUSED: nobody listens; the kernel answered
    the SYN with RST), 'timeout' (no answer within `timeout` seconds); any other error number: its
    name from errno.errorcode, e.g. 'ENETUNREACH'. The socket is closed before returning.
    """
    with socket.socket(family_of(address[0]), socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        code = s.connect_ex(address)
    if code == 0:
        return "open"
    if code == errno.ECONNREFUSED:
        return "refused"
    if code in TIMEOUT_ERRNOS:
        return "timeout"
    return errno.errorcode.get(code, str(code))


def read_lines(sock: socket.socket, encoding: str = "utf-8") -> list[str]:
    """Every line the peer sends until it closes, decoded, without the '\\n' that ends it.

    A last line without '\\n' is a line too; empty lines are kept ('' for b'\\n'); nothing else is
    stripped. makefile's buffer collects bytes across recv calls, and its text layer decodes
    incrementally, so a character whose UTF-8 bytes arrive in two chunks is decoded whole.
    """
    with sock.makefile("r", encoding=encoding, newline="\n") as f:
        return [line[:-1] if line.endswith("\n") else line for line in f]


# ----------------------------------------------------------------------------------------------
# Peers and addresses for the checks
# ----------------------------------------------------------------------------------------------
@contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A TCP port on `host` where nobody listens, for the length of the block: a socket is bound to
    it (port 0, the kernel chooses) but never listens, so a connect to it is refused (the kernel
    answers the SYN with RST), and no other socket can take the port meanwhile. (Binding port 0,
    reading the port and closing would leave a race: any program could bind it before the connect.)"""
    with socket.socket(family_of(loopback_host(host)), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[1]


# The loopback broadcast address: Linux refuses a TCP connect to a broadcast address at once with
# ENETUNREACH (tcp_v4_connect: the route is RTCF_BROADCAST), before any packet is sent.
UNREACHABLE_HOST = "127.255.255.255"


@contextmanager
def listening_socket(host: str = "127.0.0.1", backlog: int = 16) -> Iterator[socket.socket]:
    """A listening TCP socket on `host` port 0 that nobody accepts from; closed on exit."""
    with socket.socket(family_of(loopback_host(host)), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        s.listen(backlog)
        yield s


class FullBacklogListener:
    """A listening socket with backlog 0 whose accept queue is full and never accepted from.

    Linux keeps at most backlog + 1 connections that finished the handshake waiting for accept();
    when that queue is full it drops new SYNs without answering (net/ipv4/tcp_input.c,
    tcp_conn_request), so a connect to `address` neither succeeds nor is refused: it times out.
    That is how the course shows a timeout on loopback, where every packet otherwise arrives.
    The queue is filled with connections from this process until /proc/net/tcp says it is full
    (for a listening socket the kernel shows the queue's length as rx_queue, its limit as tx_queue).
    """

    MAX_FILLERS = 8
    FILL_TIMEOUT = 10.0  # deadline for one filler's handshake (a loaded machine only makes it slower)

    def __init__(self, host: str = "127.0.0.1"):
        self.host = loopback_host(host)
        self.address: Address | None = None
        self.listener: socket.socket | None = None
        self._stack = ExitStack()

    def queued(self) -> tuple[int, int]:
        """(connections waiting in the accept queue, the queue's limit), as the kernel reports them."""
        e = kernel.entry_of(self.listener)
        if e is None or e.state != "LISTEN":
            raise SetupError(f"{self!r} has no LISTEN line in /proc/net/tcp; is /proc mounted?")
        return e.rx_queue, e.tx_queue

    def full(self) -> bool:
        waiting, limit = self.queued()
        return waiting > limit

    def start(self) -> "FullBacklogListener":
        try:
            self.listener = self._stack.enter_context(socket.socket(family_of(self.host), socket.SOCK_STREAM))
            self.listener.bind((self.host, 0))
            self.listener.listen(0)
            self.address = self.listener.getsockname()
            for n in range(1, self.MAX_FILLERS + 1):
                if self.full():
                    return self
                filler = self._stack.enter_context(socket.socket(self.listener.family, socket.SOCK_STREAM))
                filler.settimeout(self.FILL_TIMEOUT)
                if filler.connect_ex(self.address) != 0:
                    if self.full():
                        return self  # this SYN was dropped: the queue was full already
                    raise SetupError(f"{self!r}: filler {n} could not connect within {self.FILL_TIMEOUT} s, "
                                     f"yet the accept queue is not full ({self.queued()})")
                wait_for(lambda: self.queued()[0] >= n, self.FILL_TIMEOUT,
                         f"{self!r}: connection {n} did not reach the accept queue", error=SetupError)
            raise SetupError(
                f"the accept queue of {self!r} took {self.MAX_FILLERS} connections without filling; "
                f"this kernel does not drop SYNs on a full backlog"
            )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "FullBacklogListener":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        where = format_address(self.address) if self.address else self.host
        return f"<FullBacklogListener {where}>"


DEFAULT_LINES = b"hello\n\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\n\n  two spaces each side  \nlast line, no newline"


class LineSender(TcpServer):
    """Sends known UTF-8 lines to each client in odd chunks (one chunk per read), then closes.

    Each chunk is written only after the previous one has reached the client's kernel and the
    client has read it (its receive queue is empty again), so a client sees the chunks one by one,
    however fast or loaded the machine is: a reader that assumes one recv() is one line is caught
    every time. Give the client socket as `reader` when it lives in the same process: its kernel
    is then asked through its descriptor (TCP_INFO's bytes received, FIONREAD); otherwise through
    this end's send queue (SIOCOUTQ: bytes the client's kernel has not acknowledged yet) and the
    client's socket as the kernel lists it (course.kernel.window: sock_diag, or /proc/net/tcp).

    (Named `LineServer` before, a name course.tcp.LineServer, which *answers* lines, also has.)
    """

    CHUNK_WAIT = 10.0  # deadline for the client to read a chunk; only a client that stops reading meets it
    READ_POLL = 0.001

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        payload: bytes = DEFAULT_LINES,
        chunks: Sequence[int] = (1, 2, 3, 5, 8),
        reader: socket.socket | None = None,
    ):
        super().__init__(host, port)
        self.reader = reader
        self.payload = payload
        self.pieces = chunked(payload, chunks) if payload else []

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0
        for piece in self.pieces:
            conn.sendall(piece)
            sent += len(piece)
            self.record("send", format_address(addr), piece)
            self.wait_until_read(conn, sent)
        conn.shutdown(socket.SHUT_WR)  # FIN: the client reads b'' (EOF) after the last byte
        self.record("eof", format_address(addr))

    def wait_until_read(self, conn: socket.socket, sent: int) -> None:
        """Wait (at most CHUNK_WAIT s) until the `sent` bytes have reached the client's kernel and
        the client has read them all, or the client is gone. (An empty receive queue alone is not
        enough: on a loaded machine the last chunk may not have arrived yet.)"""
        deadline = Deadline(self.CHUNK_WAIT)
        while not (self.stopping or deadline.expired()):
            if self.arrived(conn, sent) and not self.unread_bytes(conn):
                return
            time.sleep(self.READ_POLL)

    def arrived(self, conn: socket.socket, sent: int) -> bool:
        """Have the first `sent` bytes of this connection reached the client's kernel?"""
        if self.reader is not None:
            try:
                raw = self.reader.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            except (OSError, ValueError):
                return True  # closed: nothing more to wait for
            if len(raw) >= 136:
                return struct.unpack_from("Q", raw, 128)[0] >= sent  # tcpi_bytes_received (Linux 4.1+)
        try:
            return struct.unpack("i", fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0] == 0
        except OSError:
            return True

    def unread_bytes(self, conn: socket.socket) -> int:
        """Bytes the client has received but not read yet; 0 once it is gone. With `reader` (the
        client socket, when it lives in this process) ask its descriptor (ioctl FIONREAD, as
        `ss` would show Recv-Q); otherwise ask the kernel about the client's socket
        (course.kernel.window: one sock_diag lookup, or /proc/net/tcp where netlink is refused)."""
        if self.reader is not None:
            try:
                return struct.unpack("i", fcntl.ioctl(self.reader.fileno(), termios.FIONREAD, b"\0" * 4))[0]
            except (OSError, ValueError):
                return 0  # closed
        try:
            client, me = conn.getpeername()[:2], conn.getsockname()[:2]
        except OSError:
            return 0
        e = window.current().lookup((client, me))
        return e.rx_queue if e is not None and e.state == "ESTABLISHED" else 0


# ----------------------------------------------------------------------------------------------
# Seed 001's table of socket methods, measured
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """One row of seed 001's table: what the method does, returns and raises, exactly."""

    name: str
    call: str
    does: str
    returns: str
    raises: str
    seed_says: str  # seed 001's words where they are imprecise or wrong; '' where they are right
    exactly: str  # the correction, '' where the seed is right
    situation: str  # what `demo` does to provoke the method's typical error (or show its result)
    demo: Callable[[], object]


@dataclass(frozen=True)
class Outcome:
    """What happened when a method's demo ran on real loopback sockets."""

    method: str
    situation: str
    raised: str = ""  # exception type name, '' if it returned
    errno_name: str = ""  # e.g. 'ECONNREFUSED', '' if none
    message: str = ""
    returned: object = None

    def summary(self) -> str:
        if not self.raised:
            return f"returned {self.returned!r}"
        code = f" ({self.errno_name})" if self.errno_name else ""
        return f"{self.raised}{code}: {self.message}"


def _demo_bind():
    with listening_socket() as taken, socket.socket() as s:
        s.bind(taken.getsockname())  # the port of a listening socket: in use


def _demo_listen():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.listen()


def _demo_accept():
    with listening_socket() as listener:
        listener.settimeout(0.05)
        listener.accept()  # nobody connects


def _demo_connect():
    with closed_port() as port, socket.socket() as s:
        s.settimeout(2.0)
        s.connect(("127.0.0.1", port))


def _demo_connect_ex():
    with closed_port() as port, socket.socket() as s:
        s.settimeout(2.0)
        code = s.connect_ex(("127.0.0.1", port))
    return f"{code} ({errno.errorcode.get(code, '?')})"


def _demo_recv():
    with tcp_pair() as (client, _):
        client.setblocking(False)
        client.recv(1024)  # nothing has arrived


def _demo_send():
    with tcp_pair() as (client, conn):
        conn.close()  # FIN: the peer has closed
        first = client.send(b"x")  # still succeeds: the bytes reach a closed socket, which answers RST

        def attempt():
            try:
                client.send(b"x")  # after the RST has come back: EPIPE
            except OSError as exc:
                return exc
            return None

        exc = wait_for(attempt, 10.0, "send() kept succeeding 10 s after the peer closed", error=PeerError)
        exc.add_note(f"the first send after the peer's close returned {first}")
        raise exc


def _demo_sendall():
    with tcp_pair() as (client, _):
        client.settimeout(0.1)
        client.sendall(b"x" * 64_000_000)  # the peer never reads: both buffers fill up


def _demo_recvfrom():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        u.settimeout(0.05)
        u.recvfrom(1024)  # nobody sends


def _demo_sendto():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as r:
        r.bind(("127.0.0.1", 0))
        u.sendto(b"x" * 70_000, r.getsockname())  # a UDP/IPv4 datagram holds at most 65,507 bytes


def _demo_close():
    s = socket.socket()
    s.close()
    s.close()  # closing twice is harmless
    s.getsockname()  # any use afterwards is not


def _demo_getpeername():
    with socket.socket() as s:
        s.getpeername()  # not connected


def _demo_getsockname():
    with socket.socket() as s:
        return s.getsockname()  # not bound yet: the wildcard address, port 0


def _demo_setsockopt():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, 9999, 1)  # no such option


def _demo_getsockopt():
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)  # Linux doubles it (socket(7))


def _demo_settimeout():
    with socket.socket() as s:
        s.settimeout(-1)


def _demo_gettimeout():
    with socket.socket() as s:
        s.setblocking(False)
        return s.gettimeout()


def _demo_fileno():
    s = socket.socket()
    s.close()
    return s.fileno()


def _demo_setblocking():
    with listening_socket() as listener:
        listener.setblocking(False)
        listener.accept()  # nobody is waiting in the queue


def _demo_makefile():
    with tcp_pair() as (client, _):
        client.settimeout(0.05)
        with client.makefile("rb") as f:
            f.readline()  # the peer sends nothing


METHODS: tuple[Method, ...] = (
    Method(
        "bind", "s.bind(address)",
        "gives the socket its local address: (host, port) for AF_INET, (host, port, flowinfo, scope_id) for AF_INET6, a path for AF_UNIX; port 0 lets the kernel choose",
        "None", "OSError EADDRINUSE if another socket holds that address; EADDRNOTAVAIL if the host is not one of this machine's addresses",
        "", "", "bind the port of a listening socket", _demo_bind),
    Method(
        "listen", "s.listen([backlog])",
        "makes a TCP socket passive: the kernel completes handshakes and queues the connections for accept()",
        "None", "OSError EOPNOTSUPP on a UDP socket",
        "backlog: 拒绝连接之前，操作系统可以挂起的最大连接数量。该值至少为1，大部分应用程序设为5",
        "backlog is optional since Python 3.5 (default min(SOMAXCONN, 128)) and 0 is allowed; on Linux it bounds the queue of finished handshakes waiting for accept(), capped by net.core.somaxconn; when that queue is full Linux drops new SYNs, so clients time out rather than being refused",
        "listen() on a UDP socket", _demo_listen),
    Method(
        "accept", "s.accept()",
        "waits for the next queued connection and returns a NEW socket for it; the listening socket keeps listening",
        "(conn, address)", "TimeoutError after the socket's timeout; BlockingIOError when non-blocking; OSError EINVAL if not listening",
        "", "", "accept() with a 0.05 s timeout, nobody connects", _demo_accept),
    Method(
        "connect", "s.connect(address)",
        "starts the TCP handshake and returns once it is complete (on a UDP socket: sets the default destination and accepts datagrams only from it)",
        "None", "ConnectionRefusedError (ECONNREFUSED) if nobody listens; TimeoutError after the socket's timeout",
        "如果连接出错，返回socket.error错误",
        "connect() raises, it returns nothing: an OSError subclass such as ConnectionRefusedError or TimeoutError (socket.error is only an old alias of OSError)",
        "connect to a closed port", _demo_connect),
    Method(
        "connect_ex", "s.connect_ex(address)",
        "connect() that returns the error number instead of raising",
        "0, or an errno (Linux's numbers): ECONNREFUSED (111); EAGAIN (11) when the socket's timeout ran out", "only errors outside connect itself (a bad address raises)",
        "", "", "connect_ex to a closed port", _demo_connect_ex),
    Method(
        "recv", "s.recv(bufsize)",
        "returns the bytes already received, at most bufsize, waiting until at least one byte is there; on UDP one datagram",
        "bytes; b'' means the peer closed its side (EOF)", "TimeoutError; BlockingIOError (EAGAIN) when non-blocking and nothing arrived; ConnectionResetError after a RST",
        "接收TCP数据，数据以字符串形式返回",
        "recv returns bytes (decode them yourself), and b'' at end of stream; it also reads connected UDP sockets",
        "recv on a non-blocking socket with nothing received", _demo_recv),
    Method(
        "send", "s.send(data)",
        "copies as much of data as fits into the kernel's send buffer",
        "the number of bytes taken, possibly fewer than len(data) (a socket with a timeout or non-blocking; a blocking socket waits until all is taken)",
        "the first send after the peer's close succeeds (its bytes reach a closed socket, which answers RST); after that RST: BrokenPipeError (EPIPE) if the peer had closed (FIN first), ConnectionResetError (ECONNRESET) if it reset the connection (e.g. it closed with unread data). An exception, not a signal: Python ignores SIGPIPE",
        "将string中的数据发送到连接的套接字",
        "send takes bytes, not str: encode() text first",
        "send twice after the peer closed", _demo_send),
    Method(
        "sendall", "s.sendall(data)",
        "calls send until every byte is taken",
        "None", "TimeoutError if the buffers stay full past the socket's timeout; then nobody can tell how much was sent",
        "", "", "sendall 64 MB with a 0.1 s timeout to a peer that never reads", _demo_sendall),
    Method(
        "recvfrom", "s.recvfrom(bufsize)",
        "receives one datagram and who sent it",
        "(bytes, address)", "TimeoutError; BlockingIOError when non-blocking",
        "返回值是（data,address）。其中data是包含接收数据的字符串",
        "data is bytes, not a string",
        "recvfrom with a 0.05 s timeout, nobody sends", _demo_recvfrom),
    Method(
        "sendto", "s.sendto(data, address)",
        "sends one datagram to address",
        "the number of bytes sent", "OSError EMSGSIZE for a datagram larger than 65,507 bytes (UDP over IPv4)",
        "发送UDP数据，将数据发送到套接字",
        "sendto sends bytes as ONE datagram: all of it or nothing",
        "sendto 70,000 bytes", _demo_sendto),
    Method(
        "close", "s.close()",
        "releases the descriptor; the connection ends (FIN) when no descriptor and no makefile() file refer to it any more",
        "None", "never (twice is fine); afterwards methods that need the descriptor raise OSError EBADF (gettimeout(), getblocking() and fileno(), which returns -1, do not)",
        "关闭套接字",
        "close() releases this socket object's descriptor; to end a direction of the connection at once, also while makefile() files are open, call shutdown()",
        "close twice, then getsockname()", _demo_close),
    Method(
        "getpeername", "s.getpeername()",
        "the address of the other end of the connection",
        "address tuple", "OSError ENOTCONN if not connected",
        "", "", "getpeername on a fresh socket", _demo_getpeername),
    Method(
        "getsockname", "s.getsockname()",
        "this socket's own address: what bind chose, or what the kernel picked at connect",
        "address tuple; ('0.0.0.0', 0) before bind/connect", "OSError EBADF once closed",
        "", "", "getsockname on a fresh socket", _demo_getsockname),
    Method(
        "setsockopt", "s.setsockopt(level, option, value)",
        "sets a socket option, e.g. (SOL_SOCKET, SO_REUSEADDR, 1)",
        "None", "OSError ENOPROTOOPT for an unknown option",
        "", "", "setsockopt(SOL_SOCKET, 9999, 1)", _demo_setsockopt),
    Method(
        "getsockopt", "s.getsockopt(level, option[, buflen])",
        "reads a socket option; the kernel may have adjusted what you set",
        "int (or bytes with buflen)", "OSError ENOPROTOOPT for an unknown option",
        "s.getsockopt(level,optname[.buflen])",
        "the signature is getsockopt(level, optname[, buflen]) (a comma, not a dot)",
        "set SO_RCVBUF to 4096, read it back", _demo_getsockopt),
    Method(
        "settimeout", "s.settimeout(seconds)",
        "bounds every later blocking call: None blocks forever, 0.0 is non-blocking",
        "None", "ValueError for a negative timeout; later calls raise TimeoutError (socket.timeout is its alias since 3.10)",
        "", "", "settimeout(-1)", _demo_settimeout),
    Method(
        "gettimeout", "s.gettimeout()",
        "the timeout in seconds",
        "float, None (blocking, the default), 0.0 (non-blocking)", "never",
        "如果没有设置超时期，则返回None",
        "None unless a timeout was set, and 0.0 after setblocking(False)",
        "gettimeout after setblocking(False)", _demo_gettimeout),
    Method(
        "fileno", "s.fileno()",
        "the file descriptor number (a small int: a socket is a file to the kernel)",
        "int, -1 once closed", "never",
        "", "", "fileno() after close()", _demo_fileno),
    Method(
        "setblocking", "s.setblocking(flag)",
        "setblocking(False) is settimeout(0.0), setblocking(True) is settimeout(None)",
        "None", "never itself; when non-blocking, calls that would wait raise BlockingIOError (EAGAIN)",
        "非阻塞模式下...将引起socket.error异常",
        "the exception is BlockingIOError (an OSError with errno EAGAIN/EWOULDBLOCK)",
        "accept() on a non-blocking listener, nobody connecting", _demo_setblocking),
    Method(
        "makefile", "s.makefile(mode='r', encoding=None, newline=None)",
        "a buffered file object over the socket: readline(), iteration, write(); text mode decodes",
        "a file object", "TimeoutError from reads when the socket has a timeout (the file's buffer is then unreliable)",
        "创建一个与该套接字相关连的文件",
        "the file must be closed too: the descriptor stays open until the socket AND every file from makefile() are closed; the socket must not be non-blocking",
        "readline() with a 0.05 s timeout, the peer sends nothing", _demo_makefile),
)


def method(name: str) -> Method:
    for m in METHODS:
        if m.name == name:
            return m
    raise KeyError(f"no method {name!r} in seed 001's table; the table has {', '.join(m.name for m in METHODS)}")


def provoke(name: str) -> Outcome:
    """Run the method's demo on real loopback sockets and report what it raised or returned."""
    m = method(name)
    try:
        value = m.demo()
    except PeerError:
        raise
    except Exception as exc:
        code = getattr(exc, "errno", None)
        return Outcome(m.name, m.situation, raised=type(exc).__name__,
                       errno_name=errno.errorcode.get(code, "") if code else "",
                       message="; ".join([str(exc), *getattr(exc, "__notes__", [])]))
    return Outcome(m.name, m.situation, returned=value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def methods_table(measure: bool = True) -> str:
    """Seed 001's table as Markdown, one row per method; with `measure`, each row also shows what
    the method raised (or returned) when its demo ran just now on loopback."""
    header = ["method", "does", "returns", "raises"] + (["measured just now"] if measure else [])
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in METHODS:
        cells = [f"`{m.call}`", m.does, m.returns, m.raises]
        if measure:
            o = provoke(m.name)
            cells.append(f"{o.situation}: **{o.summary()}**")
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def corrections_table() -> str:
    """Where seed 001's table is imprecise: what it says, and what is exact."""
    rows = ["| method | seed 001 says | exactly |", "|---|---|---|"]
    rows += [f"| `{m.name}` | {_cell(m.seed_says)} | {_cell(m.exactly)} |" for m in METHODS if m.exactly]
    return "\n".join(rows)


_moved_checks = forward_moved_checks(__name__, "course.checks.sockets")  # sockets.check_* of earlier releases
# Old names, kept working for a notebook of an earlier release or a learner's own cell (not in __all__).
_DEPRECATED = {"LineServer": ("LineSender", LineSender), "family_for": ("course.serving.family_of", family_of)}


def __getattr__(name: str):
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(f"course.sockets.{name} is now {new}", DeprecationWarning, stacklevel=2)
        return value
    return _moved_checks(name)
