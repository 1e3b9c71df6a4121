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
- Peers for the checks: `LineServer` (registered as "tcp-lines") sends known UTF-8 lines in odd
  chunks, one chunk per read of the client; `with closed_port() as port:` holds a port nobody
  listens on (connect is refused); `FullBacklogListener` listens but never accepts, and its accept
  queue is full, so that Linux drops new SYNs and a connect times out instead of being refused.
- `check_*`: the graded checks of notebook 02, built on `course.checks`.
"""
from __future__ import annotations

import errno
import fcntl
import gc
import ipaddress
import socket
import struct
import termios
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from course import kernel
from course.checks import call_with_deadline, expect_type, record_evidence
from course.deadline import Deadline, wait_for
from course.errors import PeerError, SetupError, YourCodeError
from course.framing import split_into_chunks as chunked
from course.serving import tcp_pair  # noqa: F401  (notebooks import it from here)
from course.serving import Address, TcpServer, format_address, loopback_host, register

__all__ = [
    "tcp_pair",  # re-exported from course.serving: the notebook takes it from here
    "DESCRIBE_KEYS",
    "TIMEOUT_ERRNOS",
    "describe_socket",
    "family_for",
    "probe",
    "read_lines",
    "closed_port",
    "UNREACHABLE_HOST",
    "listening_socket",
    "FullBacklogListener",
    "DEFAULT_LINES",
    "LineServer",
    "Method",
    "Outcome",
    "METHODS",
    "method",
    "provoke",
    "methods_table",
    "corrections_table",
    "without_ports",
    "DESCRIBE_DEADLINE",
    "DESCRIBE_CASES",
    "check_describe_socket",
    "PROBE_CASES",
    "PROBE_TIMEOUT",
    "PROBE_DEADLINE",
    "DISTINCT_DEFAULT_TIMEOUT",
    "check_probe",
    "closes_its_sockets",
    "READ_LINES_CASES",
    "FILE_CLOSED_CASES",
    "READ_TIMEOUT",
    "READ_DEADLINE",
    "check_read_lines",
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


def family_for(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 literal such as '::1', AF_INET for '127.0.0.1'."""
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def probe(address: Address, timeout: float = 1.0) -> str:
    """Is a TCP server listening at `address`? One connect_ex on a fresh socket, never raises:

    'open' (the handshake completed), 'refused' (ECONNREFUSED: nobody listens; the kernel answered
    the SYN with RST), 'timeout' (no answer within `timeout` seconds); any other error number: its
    name from errno.errorcode, e.g. 'ENETUNREACH'. The socket is closed before returning.
    """
    with socket.socket(family_for(address[0]), socket.SOCK_STREAM) as s:
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
    with socket.socket(family_for(loopback_host(host)), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[1]


# The loopback broadcast address: Linux refuses a TCP connect to a broadcast address at once with
# ENETUNREACH (tcp_v4_connect: the route is RTCF_BROADCAST), before any packet is sent.
UNREACHABLE_HOST = "127.255.255.255"


@contextmanager
def listening_socket(host: str = "127.0.0.1", backlog: int = 16) -> Iterator[socket.socket]:
    """A listening TCP socket on `host` port 0 that nobody accepts from; closed on exit."""
    with socket.socket(family_for(loopback_host(host)), socket.SOCK_STREAM) as s:
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
            self.listener = self._stack.enter_context(socket.socket(family_for(self.host), socket.SOCK_STREAM))
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




@register("tcp-lines")
class LineServer(TcpServer):
    """Sends known UTF-8 lines to each client in odd chunks (one chunk per read), then closes.

    Each chunk is written only after the previous one has reached the client's kernel and the
    client has read it (its receive queue is empty again), so a client sees the chunks one by one,
    however fast or loaded the machine is: a reader that assumes one recv() is one line is caught
    every time. Give the client socket as `reader` when it lives in the same process: its kernel
    is then asked through its descriptor (TCP_INFO's bytes received, FIONREAD); otherwise through
    this end's send queue (SIOCOUTQ: bytes the client's kernel has not acknowledged yet) and the
    client's line in /proc/net/tcp.
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
        `ss` would show Recv-Q); otherwise find the client's line in /proc/net/tcp."""
        if self.reader is not None:
            try:
                return struct.unpack("i", fcntl.ioctl(self.reader.fileno(), termios.FIONREAD, b"\0" * 4))[0]
            except (OSError, ValueError):
                return 0  # closed
        try:
            client, me = conn.getpeername()[:2], conn.getsockname()[:2]
        except OSError:
            return 0
        table = "tcp6" if conn.family == socket.AF_INET6 else "tcp"
        port = f":{client[1]:04X} "
        with open(f"/proc/net/{table}") as f:
            header, *lines = f.read().splitlines()
        text = "\n".join([header] + [line for line in lines if port in line])  # parse only the few candidates
        for e in kernel.parse_proc_net(text, table):
            if e.local == client and e.remote == me:
                return e.rx_queue if e.state == "ESTABLISHED" else 0
        return 0


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


# ----------------------------------------------------------------------------------------------
# Checks for the notebook (graded cells call these)
# ----------------------------------------------------------------------------------------------
def without_ports(value):
    """`value` with every non-zero port of an address tuple replaced by 'port', for evidence that
    is the same on every run: ('127.0.0.1', 40312) -> ['127.0.0.1', 'port']."""
    if isinstance(value, dict):
        return {k: without_ports(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)) and len(value) in (2, 4) and isinstance(value[0], str) and isinstance(value[1], int):
        return [value[0], "port" if value[1] else 0, *value[2:]]
    return value


@contextmanager
def _describe_case(case: str) -> Iterator[socket.socket]:
    """The socket each describe case is about; everything it needed is closed on exit."""
    if case == "fresh-tcp":
        with socket.socket() as s:
            yield s
    elif case == "bound-udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            yield s
    elif case == "listening-tcp":
        with listening_socket() as s:
            yield s
    elif case == "connected-tcp-client":
        with tcp_pair() as (client, _):
            client.settimeout(None)
            yield client
    elif case == "accepted-tcp":
        with tcp_pair() as (_, conn):
            conn.settimeout(None)
            yield conn
    elif case == "connected-udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            peer.bind(("127.0.0.1", 0))
            s.connect(peer.getsockname())
            yield s
    elif case == "ipv6-tcp":
        with tcp_pair("::1") as (client, _):
            client.settimeout(None)
            yield client
    elif case == "non-blocking":
        with tcp_pair() as (client, _):
            client.setblocking(False)
            yield client
    elif case == "with-timeout":
        with tcp_pair() as (client, _):
            client.settimeout(1.5)
            yield client
    elif case == "unix-socketpair":
        a, b = socket.socketpair()
        with a, b:
            yield a
    else:
        raise KeyError(f"no describe case {case!r}; cases are {', '.join(DESCRIBE_CASES)}")


# Seconds describe_socket may take: it blocks on nothing, so only a stuck function meets this deadline.
DESCRIBE_DEADLINE = 10.0

DESCRIBE_CASES = ("fresh-tcp", "bound-udp", "listening-tcp", "connected-tcp-client", "accepted-tcp",
                  "connected-udp", "ipv6-tcp", "non-blocking", "with-timeout", "unix-socketpair")

_DESCRIBE_HINTS = {
    "family": "sock.family is an enum: its .name is 'AF_INET'",
    "type": "sock.type is an enum: its .name is 'SOCK_STREAM' (str() of it gives only the number)",
    "local": "use sock.getsockname() as it returns it",
    "peer": "use sock.getpeername(), and None when it raises OSError because the socket is not connected",
    "timeout": "use sock.gettimeout()",
    "blocking": "use sock.getblocking(): a socket with a timeout is still blocking, only timeout 0.0 is non-blocking",
}


def check_describe_socket(fn: Callable, cases: Sequence[str] = ("fresh-tcp", "bound-udp")) -> None:
    """Call the learner's describe function on a socket of each case and compare with
    `describe_socket`, key by key; fail with the first difference and a hint."""
    seen = []
    try:
        for case in cases:
            with _describe_case(case) as sock:
                expected = describe_socket(sock)
                call = f"describe_socket(<{case} socket>)"
                try:
                    got = call_with_deadline(fn, sock, timeout=DESCRIBE_DEADLINE, name="describe_socket")
                except (NotImplementedError, YourCodeError):
                    raise
                except Exception as exc:
                    seen.append({"case": case, "raised": type(exc).__name__})
                    hint = ("getpeername() raises OSError on a socket without a peer: give 'peer' None then"
                            if isinstance(exc, OSError) else "use only the socket's own methods and attributes")
                    raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; {hint}") from exc
                seen.append({"case": case, "returned": without_ports(got) if isinstance(got, dict) else got})
                expect_type(got, dict, call)
                if sorted(got) != sorted(DESCRIBE_KEYS):
                    raise YourCodeError(
                        f"{call} returned the keys {sorted(got)}; it should return exactly {list(DESCRIBE_KEYS)}"
                    )
                for key in DESCRIBE_KEYS:
                    if got[key] != expected[key] or type(got[key]) is not type(expected[key]):
                        raise YourCodeError(
                            f"{call} gave {key}={got[key]!r}, expected {expected[key]!r}; {_DESCRIBE_HINTS[key]}"
                        )
    finally:
        record_evidence("describe_socket", cases=seen)


@contextmanager
def _probe_target(case: str) -> Iterator[tuple[Address, str]]:
    """(address to probe, the right answer) for a probe case; what it needs stays open for the block."""
    if case in ("open", "ipv6-open"):
        with listening_socket("::1" if case == "ipv6-open" else "127.0.0.1") as s:
            yield s.getsockname()[:2], "open"
    elif case in ("refused", "ipv6-refused"):
        host = "::1" if case == "ipv6-refused" else "127.0.0.1"
        with closed_port(host) as port:
            yield (host, port), "refused"
    elif case == "timeout":
        with FullBacklogListener() as full:
            yield full.address, "timeout"
    elif case == "other-error":
        with closed_port() as port:
            address = (UNREACHABLE_HOST, port)
            right = probe(address, PROBE_TIMEOUT)
            if right in ("open", "refused", "timeout"):
                raise SetupError(f"a TCP connect to {format_address(address)} gave {right!r} on this machine, not an "
                                 f"error such as ENETUNREACH: this kernel has no broadcast route for {UNREACHABLE_HOST}")
            yield address, right
    else:
        raise KeyError(f"no probe case {case!r}; cases are {', '.join(PROBE_CASES)}")


PROBE_CASES = ("open", "refused", "timeout", "ipv6-open", "ipv6-refused", "other-error")
PROBE_TIMEOUT = 0.3  # seconds the checks give probe() for the handshake
# Seconds before a probe() that ignores its timeout is called hanging: far above PROBE_TIMEOUT, so that a
# loaded machine only makes a right probe slower; far below the ~127 s of the kernel's own SYN retries.
PROBE_DEADLINE = 10.0
# The default timeout check_probe(leaks=True) sets before each call: a value no probe sets by chance, so
# any call of socket.setdefaulttimeout() in probe is seen; below PROBE_DEADLINE, so that a probe that
# forgot settimeout (it inherits this default) still returns there: that check judges leaks only.
DISTINCT_DEFAULT_TIMEOUT = 1.2345

_PROBE_HINTS = {
    "open": "connect_ex returns 0 when the handshake completes",
    "refused": "connect_ex returns errno.ECONNREFUSED when nobody listens",
    "timeout": "the listener never answers; with settimeout(timeout), connect_ex returns errno.EAGAIN when the time is up",
    "other-error": "for any other error number, return its name, errno.errorcode[code]",
}


@contextmanager
def _default_timeout(value: float | None) -> Iterator[None]:
    """socket.setdefaulttimeout(value) for the block, then back to what it was."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(value)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def check_probe(fn: Callable, cases: Sequence[str] = ("open", "refused"), leaks: bool = False) -> None:
    """Probe the address of each case with the learner's function.

    Without `leaks`: it must return the right answer, not raise, within PROBE_DEADLINE; the default
    timeout is None during each call, whatever earlier cells set. With `leaks`: each call must leave
    no socket open and socket.getdefaulttimeout() as it was: the check sets a distinctive default
    (DISTINCT_DEFAULT_TIMEOUT) before each call, so that any change is seen, and puts the old one back
    after; what probe returns (or raises) is not judged there.
    """
    seen = []
    try:
        for case in cases:
            with _probe_target(case) as (address, right):
                call = f"probe({address!r}, timeout={PROBE_TIMEOUT})"
                with _default_timeout(DISTINCT_DEFAULT_TIMEOUT if leaks else None):
                    if leaks:
                        with closes_its_sockets(call):
                            try:
                                _call_probe(fn, address)
                            except (NotImplementedError, YourCodeError):
                                raise
                            except Exception:  # not judged here: only what it leaves behind
                                pass
                        if (changed := socket.getdefaulttimeout()) != DISTINCT_DEFAULT_TIMEOUT:
                            raise YourCodeError(
                                f"{call} changed socket.getdefaulttimeout() from {DISTINCT_DEFAULT_TIMEOUT!r} to {changed!r}; "
                                f"set the timeout on your own socket with s.settimeout(timeout), not socket.setdefaulttimeout()"
                            )
                        # the evidence of this cell is what it judges (nothing left behind), never the
                        # answer, which other cells judge: a wrong answer must not cost this cell too
                        seen.append({"case": case, "left_no_socket": True, "default_timeout_unchanged": True})
                        continue
                    try:
                        got = _call_probe(fn, address)
                    except (NotImplementedError, YourCodeError):
                        raise
                    except Exception as exc:
                        seen.append({"case": case, "raised": type(exc).__name__})
                        raise YourCodeError(
                            f"{call} raised {type(exc).__name__}: {exc}; probe must return {right!r} instead of "
                            f"raising: use connect_ex, which returns the error number"
                        ) from exc
                seen.append({"case": case, "returned": got})
                if got != right:
                    hint = _PROBE_HINTS[case.removeprefix("ipv6-")]
                    if case.startswith("ipv6") and isinstance(got, str) and got not in ("open", "refused", "timeout"):
                        hint += "; an IPv6 address such as '::1' needs an AF_INET6 socket"
                    raise YourCodeError(f"{call} returned {got!r}, expected {right!r}; {hint}")
    finally:
        record_evidence("probe", cases=seen, leaks_checked=leaks)


@contextmanager
def closes_its_sockets(what: str) -> Iterator[None]:
    """Fail if the block leaves a socket unclosed: one still open as a descriptor of this process
    (even one the kernel lists nowhere, like a socket whose connect failed), or one that Python had
    to close itself when it was garbage-collected (it warns "unclosed <socket...>" then).

    Only this process's descriptors are compared, before and after. Garbage is collected before
    the block (so that sockets other code left to the collector are not blamed on it) and after it
    (so that what is still open then is held by a live reference): no grace period, and a loaded
    machine cannot change the verdict.
    """
    gc.collect()
    before = kernel.socket_inodes_of_this_process()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)]
    if unclosed:
        raise YourCodeError(
            f"{what} did not close its socket (Python closed it when it was garbage-collected: {unclosed[0]}); "
            f"close it, for example with `with socket.socket(...) as s:`"
        )
    new = kernel.socket_inodes_of_this_process() - before
    if new:
        listed = {e.inode: e for e in kernel.all_sockets() if e.inode in new}
        described = [f"{e.proto} {e.local[0]}:{e.local[1]} -> {e.remote[0]}:{e.remote[1]} {e.state}" if (e := listed.get(i))
                     else "a socket that is neither bound nor connected" for i in sorted(new)]
        raise YourCodeError(
            f"{what} left {len(new)} socket(s) open ({', '.join(described[:3])}); close every socket it creates, "
            f"also when connect_ex fails, for example with `with socket.socket(...) as s:`"
        )


def _call_probe(fn: Callable, address: Address):
    call = f"probe({address!r}, timeout={PROBE_TIMEOUT})"
    try:
        return call_with_deadline(fn, address, PROBE_TIMEOUT, timeout=PROBE_DEADLINE, name="probe")
    except YourCodeError as exc:
        if "did not return within" in str(exc):
            raise YourCodeError(
                f"{call} did not return within {PROBE_DEADLINE:g} s; call s.settimeout(timeout) before connect_ex"
            ) from None
        raise


READ_LINES_CASES = {
    # name: (payload the server sends, chunk sizes). Each rule of the exercise has its edge in the
    # cases of one graded cell only: empty lines and a last line without '\n' in the 1-byte cases;
    # split characters, spaces at the ends and '\r' in the UTF-8 cases (which end with '\n').
    "whole": (b"one\ntwo\nthree\n", (64,)),
    "one-byte-chunks": (b"alpha\nbeta\n\ngamma delta\nno newline at the end", (1,)),
    "one-byte-empty-last": (b"x\n\ny\n\n", (1,)),
    "utf8-split": ("你好，世界\n  two spaces each side  \n再见\n".encode(), (1, 2)),
    "odd-chunks": ("第一行\nsecond line\n  keep my spaces  \n最后一行\n".encode(), (3, 5, 7)),
    "carriage-returns": ("dos line\r\na lone \r inside\n中文\r\n".encode(), (2, 3)),
}
# The cases where the check also wants the file object closed: once read_lines has returned and the
# caller closes the socket, its descriptor must be released (it is not while a makefile() file is open).
FILE_CLOSED_CASES = ("whole",)
READ_TIMEOUT = 10.0  # the timeout of the socket read_lines gets (each recv); only a stuck read meets it
READ_DEADLINE = 30.0  # seconds read_lines may take in all


def check_read_lines(fn: Callable, case: str = "whole") -> None:
    """Connect to a LineServer that sends the case's payload in the case's chunks and closes;
    the learner's function must return every line, decoded, without its '\\n'."""
    payload, chunks = READ_LINES_CASES[case]
    expected = payload.decode("utf-8").split("\n")
    if payload.endswith(b"\n"):
        expected.pop()
    got = None
    try:
        with socket.socket() as sock, LineServer(payload=payload, chunks=chunks, reader=sock) as server:
            sock.settimeout(READ_TIMEOUT)
            sock.connect(server.address)
            call = f"read_lines(<socket connected to {server.where}>)"
            try:
                got = call_with_deadline(fn, sock, timeout=READ_DEADLINE, name="read_lines")
            except (NotImplementedError, YourCodeError):
                raise
            except Exception as exc:
                got = {"raised": type(exc).__name__}
                raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}; {_read_lines_hint(exc)}") from exc
            if case in FILE_CLOSED_CASES:
                gc.collect()  # a file nobody refers to any more is closed now, whenever its last reference went
                fd = sock.fileno()
                sock.close()  # as the caller does
                if sock.fileno() != -1:
                    raise YourCodeError(
                        f"after {call} returned, the caller closed the socket but its descriptor {fd} stayed open: "
                        f"a file object from sock.makefile() is still open; close it, e.g. `with sock.makefile(...) as f:`"
                    )
        expect_type(got, list, call)
        if got and not all(isinstance(x, str) for x in got):
            bad = next(x for x in got if not isinstance(x, str))
            raise YourCodeError(f"{call} returned a list holding {bad!r} ({type(bad).__name__}); each line must be a str: decode the bytes as UTF-8")
        if got != expected:
            raise YourCodeError(_read_lines_difference(call, got, expected, len(chunked(payload, chunks))))
    finally:
        record_evidence("read_lines", case=case, sent=payload, chunks=len(chunked(payload, chunks)), returned=got)


def _read_lines_hint(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return ("a character's UTF-8 bytes were split between two pieces: decode whole lines, "
                "e.g. with sock.makefile('r', encoding='utf-8')")
    if isinstance(exc, TimeoutError):
        return "the server closes after its last line: stop when a read returns '' (or b''), at end of stream"
    return "read the socket through sock.makefile(...) and return a list of str"


def _read_lines_difference(call: str, got: list, expected: list, n_chunks: int) -> str:
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            if "\r" in e and "\r" not in g:
                return (f"{call} returned line {i} as {g!r}, expected {e!r}; keep every '\\r': only '\\n' ends a line. "
                        f"makefile's text mode turns '\\r\\n' and a lone '\\r' into '\\n' unless you pass newline='\\n'")
            if e == "" and g == (expected[i + 1] if i + 1 < len(expected) else None):
                return f"{call} returned line {i} as {g!r}, expected an empty line ''; keep empty lines: b'\\n' gives ''"
            if i == len(expected) - 1 and e.startswith(g) and len(e) == len(g) + 1:
                return (f"{call} returned the last line as {g!r}, expected {e!r}; a last line without '\\n' keeps all its "
                        f"characters: remove only a '\\n' that is there (line.removesuffix('\\n'))")
            if g.removesuffix("\n") == e:
                return f"{call} returned line {i} as {g!r}, expected {e!r}; remove the '\\n' that ends each line"
            if g.strip() == e.strip():
                return f"{call} returned line {i} as {g!r}, expected {e!r}; remove only the '\\n', not other whitespace"
            return (f"{call} returned line {i} as {g!r}, expected {e!r}; the server sent {n_chunks} chunks: "
                    f"keep reading until the peer closes, makefile() collects the pieces of a line for you")
    if len(got) == len(expected) + 1 and got[-1] == "":
        return (f"{call} returned {len(got)} lines ending with an empty one, expected {expected!r}; text that ends "
                f"with '\\n' has no empty line after it (iterate over the file instead of splitting)")
    return (f"{call} returned {len(got)} lines, expected {len(expected)}: {expected!r}; read until the peer closes "
            f"(readline() returns '' then), and keep a last line that has no '\\n'")
