"""Names, HTTP, Nagle and the I/O models to the end: what assignment 08's learner touches.

- Names: `StaticResolver` stands for a resolver (getaddrinfo's signature and answers) whose answers
  the caller chooses, so that nothing depends on this machine's /etc/hosts and no DNS query leaves
  it; `listening(host)`, `refusing(host)` and `silent(host)` give a loopback address where a TCP
  connect succeeds, is refused at once (RST), or gets no answer at all (a listener whose accept
  queue is full: Linux drops the SYN, and connect waits until its timeout).
- HTTP: `HttpReplyServer` answers one HTTP request with the bytes it is told, in pieces the client
  reads one by one, and then closes or keeps the connection open; `LocalHttpServer` is the standard
  library's `http.server` on 127.0.0.1 port 0, serving a temporary folder.
- Nagle and delayed ACK: `RequestServer` answers each request of a fixed size with b"ok\\n";
  `write_write_read` times requests written in two pieces, with or without TCP_NODELAY.
- Non-blocking connect: `connect_nonblocking` (EINPROGRESS, then SO_ERROR), Go's DialTimeout.
- One-to-many UDP: `one_to_many_demo` runs broadcast and multicast in a private network namespace
  with only lo (`unshare -rn`), never on the machine's own network.

Everything binds a loopback address on port 0; every server is a context manager.
"""
from __future__ import annotations

import errno
import http.server
import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from course.errors import SetupError
from course.serving import POLL, Address, TcpServer, family_of, format_address, loopback_host
from course.tcp import wait_until_peer_read

__all__ = [
    "StaticResolver",
    "answer",
    "listening",
    "refusing",
    "silent",
    "HttpReplyServer",
    "http_reply",
    "LocalHttpServer",
    "RequestServer",
    "write_write_read",
    "connect_nonblocking",
    "one_to_many_demo",
    "RECORDED_ONE_TO_MANY",
]


# ----------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------
def answer(address: Address) -> tuple:
    """One getaddrinfo answer for a TCP address: (family, type, proto, canonname, sockaddr)."""
    family = family_of(address[0])
    sockaddr = (address[0], address[1], 0, 0) if family == socket.AF_INET6 else (address[0], address[1])
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)


class StaticResolver:
    """A resolver with getaddrinfo's signature whose answers are fixed: what /etc/hosts would give
    for a name with these addresses. `calls` keeps (host, port) of every call.

        resolve = StaticResolver({"dual.course.test": [("::1", 40001), ("127.0.0.1", 40002)]})
        resolve("dual.course.test", 80, type=socket.SOCK_STREAM)

    The port of each answer is its own (the caller's port is ignored, so that the two families can
    be two different listeners on this one machine). An unknown name raises socket.gaierror, as
    getaddrinfo does, without asking anyone."""

    def __init__(self, names: dict[str, list[Address]]):
        self.names = {name: list(addresses) for name, addresses in names.items()}
        self.calls: list[tuple] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - getaddrinfo's names
        self.calls.append((host, port))
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host!r} is not a name this resolver knows")
        out = [answer(a) for a in self.names[host]]
        if family:
            out = [a for a in out if a[0] == family]
        if not out:
            raise socket.gaierror(socket.EAI_ADDRFAMILY, f"{host!r} has no address of family {family!r}")
        return out


def _listener(host: str, backlog: int) -> socket.socket:
    family = family_of(loopback_host(host))
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, 0))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if family == socket.AF_INET6:
            raise SetupError(f"cannot listen on [::1]: {exc.strerror}; is IPv6 turned off on this machine "
                             f"(/proc/sys/net/ipv6/conf/lo/disable_ipv6)?") from exc
        raise SetupError(f"cannot listen on {host}: {exc.strerror}") from exc
    return sock


@contextmanager
def listening(host: str = "127.0.0.1") -> Iterator[tuple[socket.socket, Address]]:
    """(listener, (host, port)): a TCP listener on `host` (IPv6 only for '::1'). The kernel
    completes connections by itself; `listener.accept()` takes them."""
    sock = _listener(host, 8)
    sock.settimeout(2.0)
    try:
        yield sock, sock.getsockname()[:2]
    finally:
        sock.close()


@contextmanager
def refusing(host: str = "127.0.0.1") -> Iterator[Address]:
    """A loopback address where nothing listens: connect gets a RST, ConnectionRefusedError. The port
    stays bound (never listening) for the block, so that no other program can take it meanwhile."""
    family = family_of(loopback_host(host))
    with socket.socket(family, socket.SOCK_STREAM) as holder:
        holder.bind((host, 0))
        yield holder.getsockname()[:2]


@contextmanager
def silent(host: str = "127.0.0.1") -> Iterator[Address]:
    """A loopback address where connect gets no answer: a listener (backlog 0) whose accept queue one
    connection already fills, so that the kernel drops every further SYN (Linux does, with
    net.ipv4.tcp_abort_on_overflow = 0, the default). A connect there waits until its timeout."""
    with ExitStack() as stack:
        sock = stack.enter_context(_listener(host, 0))
        address = sock.getsockname()[:2]
        filler = stack.enter_context(socket.socket(sock.family, socket.SOCK_STREAM))
        filler.settimeout(2.0)
        filler.connect(address)
        yield address


# ----------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------
def http_reply(status: int = 200, body: bytes = b"", *, reason: str = "", length: bool = True,
               headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """The bytes of an HTTP/1.1 response: status line, headers (Content-Length unless `length` is
    False: then the body ends when the server closes), a blank line, the body. Lines end in CRLF."""
    reason = reason or http.server.BaseHTTPRequestHandler.responses.get(status, ("Unknown",))[0]
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/octet-stream", *[f"{k}: {v}" for k, v in headers]]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def _ends_headers(request: bytes) -> bool:
    """The empty line that ends a request's headers has arrived (a client that ends its lines in
    b"\\n" alone is answered too, so that a check can tell it what it sent)."""
    return b"\r\n\r\n" in request or b"\n\n" in request


class HttpReplyServer(TcpServer):
    """Reads one HTTP request (up to the blank line that ends its headers), records it as
    ("request", bytes), then sends `parts` one by one, each once the client has read the previous one
    (so that each reaches the client's recv alone), and closes; with `keep_open`, it keeps the
    connection open after the last part until the client closes it (or the server stops)."""

    def __init__(self, parts: list[bytes], keep_open: bool = False, host: str = "127.0.0.1"):
        super().__init__(host)
        self.parts, self.keep_open = list(parts), keep_open

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        request = b""
        while not _ends_headers(request) and len(request) < 65536:
            data = self.recv_or_stop(conn)
            if not data:
                break
            request += data
        self.record("request", request)
        if not _ends_headers(request):
            return
        for i, part in enumerate(self.parts):
            conn.sendall(part)
            if i < len(self.parts) - 1 and not wait_until_peer_read(conn, self.io_timeout, self.stop_event):
                return
        if self.keep_open:
            while self.recv_or_stop(conn):
                pass

    def requests(self) -> list[bytes]:
        return [e[1] for e in self.events_of("request")]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the standard library's name
        self.server.log.append(format % args)


class LocalHttpServer:
    """The standard library's http.server (ThreadingHTTPServer) on 127.0.0.1 port 0, serving a
    temporary folder that holds `files` ({name: bytes}); `url` is its address. A context manager."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.httpd: http.server.ThreadingHTTPServer | None = None

    def __enter__(self) -> "LocalHttpServer":
        self.folder = tempfile.TemporaryDirectory(prefix="course-http-")
        for name, data in self.files.items():
            Path(self.folder.name, name).write_bytes(data)
        handler = lambda *a: _QuietHandler(*a, directory=self.folder.name)  # noqa: E731
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.log = []
        self.address = self.httpd.server_address[:2]
        self.url = f"http://{format_address(self.address)}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": POLL},
                                       name="LocalHttpServer", daemon=True)
        self.thread.start()
        return self

    @property
    def log(self) -> list[str]:
        return list(self.httpd.log) if self.httpd else []

    def __exit__(self, *exc_info) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(2.0)
        self.folder.cleanup()


# ----------------------------------------------------------------------------------------------
# Nagle's algorithm and delayed ACKs
# ----------------------------------------------------------------------------------------------
class RequestServer(TcpServer):
    """Reads requests of exactly `size` bytes and answers each with b"ok\\n" once it has all of it:
    a server that waits for the whole request before it answers (most do)."""

    def __init__(self, size: int = 200, host: str = "127.0.0.1"):
        super().__init__(host)
        self.size = size

    def handle_connection(self, conn: socket.socket, addr: Address) -> None:
        buffer = b""
        while True:
            data = self.recv_or_stop(conn)
            if not data:
                return
            buffer += data
            while len(buffer) >= self.size:
                buffer = buffer[self.size:]
                conn.sendall(b"ok\n")


def write_write_read(address: Address, nodelay: bool, rounds: int = 10, header: int = 100, body: int = 100) -> list[float]:
    """Seconds each of `rounds` requests took on one connection, each written as two sends (a
    header, then a body) and then one read of the answer: the write-write-read pattern."""
    times = []
    with socket.create_connection(address[:2], timeout=2.0) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if nodelay else 0)
        for _ in range(rounds):
            start = time.perf_counter()
            sock.sendall(b"h" * header)
            sock.sendall(b"b" * body)
            if sock.recv(16) != b"ok\n":
                raise SetupError(f"the request server at {format_address(address)} did not answer b'ok\\n'")
            times.append(time.perf_counter() - start)
    return times


# ----------------------------------------------------------------------------------------------
# Non-blocking connect
# ----------------------------------------------------------------------------------------------
def connect_nonblocking(address: Address, timeout: float) -> tuple[socket.socket, list[str]]:
    """Connect the way an event loop (or Go's DialTimeout) does: a non-blocking connect returns
    EINPROGRESS at once; wait until the socket is writable (the handshake ended one way or the other)
    or `timeout`; SO_ERROR then says how it ended. Returns (connected socket, what happened, step by
    step); raises the OSError SO_ERROR names, or TimeoutError."""
    steps = []
    sock = socket.socket(family_of(address[0]), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        code = sock.connect_ex(address[:2])
        steps.append(f"connect_ex -> {errno.errorcode.get(code, code)}")
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_WRITE)
            ready = sel.select(timeout)
        if not ready:
            steps.append(f"not writable within {timeout} s: no answer to the SYN")
            raise TimeoutError(f"connecting to {format_address(address)} took longer than {timeout} s")
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        steps.append(f"writable; SO_ERROR -> {errno.errorcode.get(error, error) if error else 0}")
        if error:
            raise OSError(error, os.strerror(error))
        return sock, steps
    except BaseException:
        sock.close()
        raise


# ----------------------------------------------------------------------------------------------
# One-to-many UDP, in a private network namespace
# ----------------------------------------------------------------------------------------------
_DEMO = r'''
import fcntl, json, socket, struct
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:       # bring lo up (ip link set lo up)
    flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", b"lo", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
out = {"interfaces": [name for _, name in socket.if_nameindex()]}

def members(n, group=None):
    socks = []
    for _ in range(n):
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        r.settimeout(1.0)
        socks.append(r)
    socks[0].bind(("0.0.0.0" if group is None else group, 0))
    port = socks[0].getsockname()[1]
    for r in socks[1:]:
        r.bind(("0.0.0.0" if group is None else group, port))
    if group is not None:
        for r in socks:
            r.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + socket.inet_aton("127.0.0.1"))
    return socks, port

receivers, port = members(3)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
    b.bind(("127.0.0.1", 0))
    try:
        b.sendto(b"to everyone", ("127.255.255.255", port))
        out["broadcast_without_SO_BROADCAST"] = "sent"
    except OSError as exc:
        out["broadcast_without_SO_BROADCAST"] = f"{type(exc).__name__}: [Errno {exc.errno}] {exc.strerror}"
    b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    b.sendto(b"to everyone", ("127.255.255.255", port))
    out["broadcast_received"] = [r.recvfrom(100)[0].decode() for r in receivers[:1]]
for r in receivers:
    r.close()

GROUP = "239.255.8.8"
receivers, port = members(3, GROUP)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as m:
    m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 0)
    m.sendto(b"to the group", (GROUP, port))
    out["multicast_received"] = [r.recvfrom(100)[0].decode() for r in receivers]
for r in receivers:
    r.close()
print(json.dumps(out))
'''

RECORDED_ONE_TO_MANY = {
    "interfaces": ["lo"],
    "broadcast_without_SO_BROADCAST": "PermissionError: [Errno 13] Permission denied",
    "broadcast_received": ["to everyone"],
    "multicast_received": ["to the group", "to the group", "to the group"],
}


def one_to_many_demo(timeout: float = 10.0) -> tuple[dict, str]:
    """Run the broadcast and multicast demonstration in a new user and network namespace
    (`unshare -rn`), whose only interface is lo: whatever the code does, no packet can leave this
    machine. Returns (what happened, where): 'a private network namespace', or the recording of a
    run on Linux 6.x where this machine refuses to make namespaces."""
    try:
        proc = subprocess.run(["unshare", "-rn", sys.executable, "-c", _DEMO], capture_output=True, text=True, timeout=timeout)
        if proc.returncode == 0:
            out = json.loads(proc.stdout)
            if out.get("interfaces") == ["lo"]:
                return out, "a private network namespace (unshare -rn), only lo"
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pass
    return dict(RECORDED_ONE_TO_MANY), "a recording (this machine refused to make a network namespace)"
