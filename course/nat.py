"""NAT: the translation table of a home router (pure logic), and a real UDP NAT on loopback.

Seed 001's router has one public address (116.226.52.212) and hands private addresses
(192.168.1.x) to the machines behind it. When 192.168.1.2:6789 sends out, the router rewrites the
source to 116.226.52.212:6539, a port it picked, and writes the pair in a table; a reply to
116.226.52.212:6539 is looked up there and sent on to 192.168.1.2:6789. A datagram to a public
port with no entry (or from a remote host the private host never contacted) matches nothing and is
dropped: that is why a machine behind a NAT cannot be reached unless it speaks first.

`NatTable` is that table and nothing else (the h11 habit: no sockets, plain data in and out):

    table = NatTable("116.226.52.212", public_ports=[6539, 6540])
    table.outbound("tcp", ("192.168.1.2", 6789), ("203.0.113.5", 80))  -> ("116.226.52.212", 6539)
    table.inbound("tcp", 6539, ("203.0.113.5", 80))                     -> ("192.168.1.2", 6789)
    table.inbound("tcp", 6540, ("203.0.113.5", 80))                     -> None (dropped)

Its mapping is the one RFC 4787 requires of a NAT for UDP (REQ-1, "endpoint-independent
mapping"): it depends only on the private side (protocol, private address, private port), so one
flow keeps one public port whatever remote it talks to. Its filter is the strictest RFC 4787
describes ("address and port-dependent filtering", common in home routers): a datagram coming in is
let through only from a remote (ip, port) the private host has sent to. Public ports are
taken from `public_ports` in the order given, the first free one for that protocol; when none is
free, `outbound` raises `NatTableFull`, a RuntimeError.

`NatRelay` is a real NAT for UDP on loopback, built on `course.serving`. Its "public side" is a
pool of UDP sockets on 127.0.0.1, port 0 each (the kernel chooses the ports; they are the table's
`public_ports`). Its "LAN side" is a gateway socket on 127.0.0.254 per remote server: a private host
(a socket on 127.0.0.2 or 127.0.0.3) sends to `relay.gateway` instead of to the server, because on
one machine we cannot make the kernel route through our process. The relay asks its table, any
class with the interface above (a learner's included), and forwards from the public socket the
table chose, so the server on 127.0.0.1 sees only the relay's addresses. Replies come back through
the table; everything else is dropped and counted. `relay.events` records every translation.
The relay calls the table through the checks' runner (`call_with_deadline`), so that a table that
hangs or raises makes it drop the datagram with the reason instead of stopping it.

The checks of the notebook's graded cells live in `course.checks.nat`.
"""
from __future__ import annotations

import html
import selectors
import socket
from typing import Callable, Iterable

from course.checks import forward_moved_checks
from course.checks.runner import call_with_deadline
from course.errors import SetupError
from course.serving import POLL, Address, LoopbackServer, UdpServer, format_address, loopback_host

__all__ = [
    "Flow",
    "NatTableFull",
    "NatTable",
    "WhoAmIServer",
    "Host",
    "NatRelay",
    "table_html",
    "NatView",
]

Flow = tuple  # (ip, port)


class NatTableFull(RuntimeError):
    """Every public port of the table is mapped: no new flow can go out."""


class NatTable:
    """The translation table of a NAT: private (ip, port) <-> public port, per protocol."""

    def __init__(self, public_ip: str, public_ports: Iterable[int]):
        self.public_ip = public_ip
        self.public_ports = list(public_ports)
        self._public_of: dict[tuple, int] = {}  # (protocol, private) -> public port
        self._private_of: dict[tuple, Flow] = {}  # (protocol, public port) -> private
        self._remotes: dict[tuple, list] = {}  # (protocol, public port) -> remotes contacted, in order

    def outbound(self, protocol: str, private: Flow, remote: Flow) -> tuple[str, int]:
        """The public (ip, port) a datagram from `private` to `remote` leaves with; the same flow
        always gets the same port. Raises NatTableFull when a new flow finds no free port."""
        private, remote = tuple(private), tuple(remote)
        port = self._public_of.get((protocol, private))
        if port is None:
            free = [p for p in self.public_ports if (protocol, p) not in self._private_of]
            if not free:
                raise NatTableFull(
                    f"no free public {protocol} port for {format_address(private)}: "
                    f"all {len(self.public_ports)} ports {self.public_ports} are mapped"
                )
            port = free[0]
            self._public_of[(protocol, private)] = port
            self._private_of[(protocol, port)] = private
            self._remotes[(protocol, port)] = []
        if remote not in self._remotes[(protocol, port)]:
            self._remotes[(protocol, port)].append(remote)
        return (self.public_ip, port)

    def inbound(self, protocol: str, public_port: int, remote: Flow) -> tuple[str, int] | None:
        """The private (ip, port) a datagram from `remote` to `public_port` goes on to, or None
        (drop it) when no flow has that port or the flow never sent to `remote`."""
        private = self._private_of.get((protocol, public_port))
        if private is None or tuple(remote) not in self._remotes[(protocol, public_port)]:
            return None
        return private

    def rows(self) -> list[dict]:
        """The table as plain data, one dict per mapping, in the order they were made."""
        return [
            {
                "protocol": protocol,
                "private": format_address(private),
                "public": format_address((self.public_ip, port)),
                "remotes": [format_address(r) for r in self._remotes[(protocol, port)]],
            }
            for (protocol, port), private in self._private_of.items()
        ]


# ----------------------------------------------------------------------------------------------
# Real traffic: a server that tells you the address it sees, hosts, and the relay
# ----------------------------------------------------------------------------------------------
class WhoAmIServer(UdpServer):
    """Replies to each datagram with it and the source address it saw: b'hi | you are 127.0.0.1:40213'
    (what a STUN server tells a host behind a NAT: its public address)."""

    def handle_datagram(self, data: bytes, addr: Address) -> None:
        self.sendto(data + b" | you are " + format_address(addr).encode(), addr)

    def sources(self) -> list[str]:
        """Every source address this server has received from, in order ('127.0.0.1:40213', ...)."""
        return [e[1] for e in self.events_of("recv")]


class Host:
    """One UDP socket on a loopback address (127.0.0.2 plays a private host), port 0."""

    def __init__(self, ip: str = "127.0.0.2"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((loopback_host(ip), 0))
        except OSError as exc:
            self.sock.close()
            raise SetupError(f"cannot bind {ip} port 0: {exc.strerror}") from exc
        self.address: Address = self.sock.getsockname()

    def send(self, data: bytes, to: Address) -> None:
        self.sock.sendto(data, to)

    def recv(self, timeout: float = 2.0) -> tuple[bytes, Address] | None:
        """The next datagram and its source, or None if nothing came within `timeout` seconds."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recvfrom(65535)
        except TimeoutError:
            return None

    def pending(self) -> list[tuple[bytes, Address]]:
        """Every datagram already waiting, without blocking."""
        got = []
        self.sock.setblocking(False)
        try:
            while True:
                got.append(self.sock.recvfrom(65535))
        except BlockingIOError:
            return got
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Host":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Host {format_address(self.address)}>"


class NatRelay(LoopbackServer):
    """A UDP NAT on loopback: private hosts send to `gateway`, the relay rewrites the source with
    its table (`table_class(public_ip, public_ports)`) and forwards from one of its public ports."""

    sock_type = socket.SOCK_DGRAM
    call_timeout = 2.0  # seconds a table method may take before the relay calls it stuck

    def __init__(
        self,
        remotes: Address | list[Address],
        table_class: Callable = NatTable,
        pool: int = 4,
        lan_host: str = "127.0.0.254",
        public_host: str = "127.0.0.1",
    ):
        super().__init__(host=lan_host, port=0)
        self.remotes = [tuple(remotes)] if isinstance(remotes[0], str) else [tuple(r) for r in remotes]
        self.table_class = table_class
        self.pool = pool
        self.public_host = loopback_host(public_host)
        self.public_ports: list[int] = []
        self.gateways: dict[Address, Address] = {}  # remote -> LAN-side address that stands for it
        self.table = None
        self._gateway_socks: dict[socket.socket, Address] = {}  # socket -> remote it stands for
        self._public_socks: dict[int, socket.socket] = {}

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> "NatRelay":
        try:
            return super().start()
        except BaseException:
            self.close()
            raise

    def setup(self, sock: socket.socket) -> None:
        sock.settimeout(0)
        self._gateway_socks[sock] = self.remotes[0]
        for remote in self.remotes[1:]:
            self._gateway_socks[self._bind(self.host)] = remote
        for s, remote in self._gateway_socks.items():
            self.gateways[remote] = s.getsockname()
        for _ in range(self.pool):
            s = self._bind(self.public_host)
            self._public_socks[s.getsockname()[1]] = s
        self.public_ports = list(self._public_socks)
        # The table is built here, in the caller's thread: a table whose __init__ fails says so at once.
        self.table = call_with_deadline(self.table_class, self.public_host, list(self.public_ports),
                                        timeout=self.call_timeout, name=getattr(self.table_class, "__name__", "table"))

    def _bind(self, host: str) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.track(s)
        s.bind((host, 0))
        s.settimeout(0)
        return s

    # -- what a notebook reads -------------------------------------------------------------------
    @property
    def gateway(self) -> Address:
        """Where a private host sends datagrams meant for the first remote."""
        return self.gateways[self.remotes[0]]

    def public_address(self, index: int) -> str:
        return format_address((self.public_host, self.public_ports[index]))

    def role_of(self, address: str) -> str:
        """'public port #1' for the relay's first public address, else the address itself."""
        for i in range(len(self.public_ports)):
            if address == self.public_address(i):
                return f"public port #{i + 1}"
        return address

    @property
    def dropped(self) -> list[tuple]:
        """('drop', source, public address, reason, data) for each datagram the relay dropped."""
        return self.events_of("drop")

    def mappings(self) -> list[dict]:
        """What the relay saw its table do, one dict per private flow: plain data for a view."""
        rows: dict[tuple, dict] = {}
        for kind, a, b, c, data in self.events_of("out") + self.events_of("in"):
            private, public, remote = (a, b, c) if kind == "out" else (c, b, a)
            row = rows.setdefault((private, public), {"protocol": "udp", "private": private, "public": public,
                                                      "remotes": [], "out": 0, "in": 0})
            row[kind] += 1
            if remote not in row["remotes"]:
                row["remotes"].append(remote)
        return list(rows.values())

    # -- the loop ---------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        with selectors.DefaultSelector() as sel:
            for s in list(self._gateway_socks) + list(self._public_socks.values()):
                sel.register(s, selectors.EVENT_READ)
            while not self.stopping:
                for key, _ in sel.select(POLL):
                    try:
                        data, source = key.fileobj.recvfrom(65535)
                    except (BlockingIOError, OSError):
                        continue  # closed under us (stopping) or an ICMP error: nothing to forward
                    if key.fileobj in self._gateway_socks:
                        self._outbound(data, source, self._gateway_socks[key.fileobj])
                    else:
                        self._inbound(data, source, key.fileobj.getsockname()[1])

    def _ask(self, method: str, *args):
        """Call the table; a table that raises or hangs makes the relay drop, with the reason."""
        try:
            return call_with_deadline(getattr(self.table, method), *args, timeout=self.call_timeout, name=method), ""
        except Exception as exc:  # noqa: BLE001 - any failure of the table is a reason to drop
            return None, f"{method}() raised {type(exc).__name__}: {exc}"

    def _outbound(self, data: bytes, private: Address, remote: Address) -> None:
        public, error = self._ask("outbound", "udp", private, remote)
        src = format_address(private)
        if error:
            self.record("drop", src, format_address(self.gateways[remote]), error, data)
            return
        ok = isinstance(public, tuple) and len(public) == 2 and public[0] == self.public_host
        if not ok or public[1] not in self._public_socks:
            reason = f"outbound() returned {public!r}, not one of the relay's public addresses"
            self.record("drop", src, format_address(self.gateways[remote]), reason, data)
            return
        self._public_socks[public[1]].sendto(data, remote)
        self.record("out", src, format_address(public), format_address(remote), data)

    def _inbound(self, data: bytes, remote: Address, public_port: int) -> None:
        public = format_address((self.public_host, public_port))
        private, error = self._ask("inbound", "udp", public_port, remote)
        if error or private is None:
            self.record("drop", format_address(remote), public, error or "no mapping", data)
            return
        gateway = next((s for s, r in self._gateway_socks.items() if r == tuple(remote)), self.sock)
        try:
            gateway.sendto(data, tuple(private))
        except (OSError, TypeError, ValueError) as exc:
            self.record("drop", format_address(remote), public, f"inbound() returned {private!r}: {exc}", data)
            return
        self.record("in", format_address(remote), public, format_address(tuple(private)), data)


# ----------------------------------------------------------------------------------------------
# Pictures: the table as HTML, and a widget that redraws it as packets pass
# ----------------------------------------------------------------------------------------------
def table_html(rows: list[dict], title: str = "NAT translation table", dropped: int | None = None) -> str:
    """An HTML table of `rows` (NatTable.rows() or NatRelay.mappings())."""
    columns = [c for c in ("protocol", "private", "public", "remotes", "out", "in") if any(c in r for r in rows)]
    columns = columns or ["protocol", "private", "public", "remotes"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(', '.join(r[c]) if isinstance(r.get(c), list) else str(r.get(c, '')))}</td>"
                         for c in columns) + "</tr>"
        for r in rows
    ) or f"<tr><td colspan={len(columns)}><i>empty</i></td></tr>"
    foot = "" if dropped is None else f"<p>dropped: {dropped} datagram(s)</p>"
    return f"<b>{html.escape(title)}</b><table><tr>{head}</tr>{body}</table>{foot}"


class NatView:
    """An ipywidgets.HTML showing a relay's table; call `update(relay)` after each packet."""

    def __init__(self, title: str = "NAT translation table"):
        import ipywidgets

        self.title = title
        self.widget = ipywidgets.HTML(table_html([], title))

    def update(self, relay: NatRelay) -> None:
        self.widget.value = table_html(relay.mappings(), self.title, dropped=len(relay.dropped))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


__getattr__ = forward_moved_checks(__name__, "course.checks.nat")  # nat.check_* of earlier releases
