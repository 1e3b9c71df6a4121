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
"""
from __future__ import annotations

import html
import selectors
import socket
from typing import Callable, Iterable

from course.checks import call_with_deadline, expect_type, record_evidence
from course.deadline import wait_for
from course.errors import PeerError, SetupError, YourCodeError
from course.serving import POLL, Address, LoopbackServer, UdpServer, format_address, loopback_host, register

__all__ = [
    "Flow",
    "NatTableFull",
    "NatTable",
    "WhoAmIServer",
    "Host",
    "NatRelay",
    "table_html",
    "NatView",
    "SEED_PUBLIC_IP",
    "SEED_PORTS",
    "LAPTOP",
    "PHONE",
    "WEB",
    "DNS",
    "STRANGER",
    "check_nat_table_basics",
    "check_nat_table_rules",
    "random_operations",
    "check_nat_table_model",
    "check_table_in_relay",
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
@register("udp-whoami")
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
    peer_name = "nat-relay"
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
        self._track(s)
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
    def _serve_forever(self) -> None:
        with selectors.DefaultSelector() as sel:
            for s in list(self._gateway_socks) + list(self._public_socks.values()):
                sel.register(s, selectors.EVENT_READ)
            while not self._stop.is_set():
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


# ----------------------------------------------------------------------------------------------
# Checks for the graded cells of 01-addresses-ports-nat
# ----------------------------------------------------------------------------------------------
SEED_PUBLIC_IP = "116.226.52.212"
SEED_PORTS = [6539, 6540, 6541]
LAPTOP = ("192.168.1.2", 6789)  # seed 001's private host
PHONE = ("192.168.1.3", 5353)
WEB = ("203.0.113.5", 80)  # RFC 5737 documentation addresses: never contacted, only written in tables
DNS = ("198.51.100.7", 53)
STRANGER = ("192.0.2.66", 4444)


class _Driver:
    """Runs the learner's table with deadlines and turns surprises into one-sentence hints."""

    def __init__(self, table_class: Callable, public_ip: str, ports: list[int]):
        self.log: list = []
        self.table = call_with_deadline(table_class, public_ip, list(ports), name="NatTable")

    def outbound(self, protocol, private, remote, full_ok: bool = False):
        return self._call("outbound", (protocol, private, remote), full_ok)

    def inbound(self, protocol, port, remote):
        return self._call("inbound", (protocol, port, remote), False)

    def _call(self, op: str, args: tuple, full_ok: bool):
        call = f"{op}({', '.join(map(repr, args))})"
        try:
            got = call_with_deadline(getattr(self.table, op), *args, name=op)
        except (NotImplementedError, YourCodeError):
            raise
        except RuntimeError as exc:
            if not full_ok:
                raise YourCodeError(f"{call} raised RuntimeError: {exc}; a free port was left, so it should return one") from exc
            if not str(exc):
                raise YourCodeError(f"{call} raised RuntimeError without a message; say which flow found no free port") from exc
            self.log.append([op, *args, "RuntimeError"])
            raise
        except Exception as exc:
            raise YourCodeError(f"{call} raised {type(exc).__name__}: {exc}") from exc
        if got is not None or op == "outbound":
            expect_type(got, tuple, call)
        self.log.append([op, *args, got])
        return got


def _expect(got, expected, call: str, hint: str) -> None:
    if got != expected:
        raise YourCodeError(f"{call} returned {got!r}; expected {expected!r}: {hint}")


def check_nat_table_basics(table_class: Callable) -> None:
    """Visible self-check: seed 001's laptop goes out, gets 6539, gets it again, the reply maps
    back, an unknown port is dropped."""
    t = _Driver(table_class, SEED_PUBLIC_IP, SEED_PORTS)
    try:
        first = t.outbound("udp", LAPTOP, WEB)
        _expect(first, (SEED_PUBLIC_IP, 6539), f"outbound('udp', {LAPTOP}, {WEB})",
                "a new flow gets the public ip and the first port of public_ports")
        _expect(t.outbound("udp", LAPTOP, WEB), first, f"outbound('udp', {LAPTOP}, {WEB}) the second time",
                "the same flow must keep its mapping")
        _expect(t.inbound("udp", 6539, WEB), LAPTOP, f"inbound('udp', 6539, {WEB})",
                "a reply to the mapped port goes back to the private address")
        _expect(t.inbound("udp", 6540, WEB), None, f"inbound('udp', 6540, {WEB})",
                "no flow has port 6540, so the datagram is dropped (return None)")
    finally:
        record_evidence("nat_table_basics", calls=t.log)


def check_nat_table_rules(table_class: Callable) -> None:
    """Hidden: several hosts, reuse across remotes, filtering by remote, protocols, exhaustion."""
    t = _Driver(table_class, SEED_PUBLIC_IP, SEED_PORTS)
    ip = SEED_PUBLIC_IP
    try:
        _expect(t.outbound("udp", LAPTOP, WEB), (ip, 6539), "the laptop's first outbound()", "first free port first")
        _expect(t.outbound("udp", PHONE, DNS), (ip, 6540), f"outbound('udp', {PHONE}, {DNS})",
                "a second private host gets the next free port")
        _expect(t.outbound("udp", LAPTOP, DNS), (ip, 6539), f"outbound('udp', {LAPTOP}, {DNS})",
                "the mapping depends on the private side only: the laptop keeps 6539 for every remote")
        _expect(t.inbound("udp", 6539, DNS), LAPTOP, f"inbound('udp', 6539, {DNS})",
                "the laptop has sent to DNS, so DNS's reply goes through")
        _expect(t.inbound("udp", 6539, WEB), LAPTOP, f"inbound('udp', 6539, {WEB}) after the laptop sent to WEB and then DNS",
                "remember every remote a flow has sent to, not only the last one")
        _expect(t.inbound("udp", 6540, DNS), PHONE, f"inbound('udp', 6540, {DNS})", "the phone's reply")
        _expect(t.inbound("udp", 6540, WEB), None, f"inbound('udp', 6540, {WEB})",
                "the phone never sent to WEB: an unsolicited datagram is dropped")
        _expect(t.inbound("udp", 6539, STRANGER), None, f"inbound('udp', 6539, {STRANGER})",
                "nobody behind the NAT contacted the stranger: drop it")
        web_other_port = (WEB[0], 8080)
        _expect(t.inbound("udp", 6539, web_other_port), None, f"inbound('udp', 6539, {web_other_port})",
                "the laptop sent to port 80 of that host, not 8080: the filter matches the remote's ip and port")
        _expect(t.inbound("udp", 6541, WEB), None, f"inbound('udp', 6541, {WEB})", "port 6541 has no mapping yet")
        _expect(t.inbound("udp", 9999, WEB), None, f"inbound('udp', 9999, {WEB})", "9999 is not even a public port")
        _expect(t.inbound("tcp", 6539, WEB), None, f"inbound('tcp', 6539, {WEB})",
                "the mapping is for UDP; a TCP segment to 6539 matches nothing")
        laptop_other_port = (LAPTOP[0], LAPTOP[1] + 1)
        third = t.outbound("udp", laptop_other_port, WEB)
        _expect(third, (ip, 6541), f"outbound('udp', {laptop_other_port}, {WEB})",
                "another port on the same private ip is another flow with its own public port")
        try:
            extra = t.outbound("udp", ("192.168.1.4", 1000), WEB, full_ok=True)
        except RuntimeError:
            pass
        else:
            raise YourCodeError(f"a 4th flow on a table of 3 public ports got {extra!r}; with every port mapped, "
                                f"outbound() must raise RuntimeError")
        _expect(t.outbound("udp", LAPTOP, WEB), (ip, 6539), "the laptop's outbound() once the table is full",
                "existing flows keep working when the table is full")
        _expect(t.outbound("tcp", LAPTOP, WEB), (ip, 6539), f"outbound('tcp', {LAPTOP}, {WEB})",
                "ports are per protocol: TCP port 6539 is free even though UDP port 6539 is taken")
        _expect(t.inbound("tcp", 6539, WEB), LAPTOP, f"inbound('tcp', 6539, {WEB})",
                "the TCP mapping maps back like the UDP ones")
    finally:
        record_evidence("nat_table_rules", calls=t.log)


def random_operations(seed: int, count: int) -> list[tuple]:
    """A fixed, seeded sequence of table operations over 4 hosts, 2 ports each, 3 remotes."""
    import random

    rng = random.Random(seed)
    hosts = [(f"192.168.1.{h}", p) for h in (2, 3, 4, 5) for p in (5000, 5001)]
    remotes = [WEB, DNS, STRANGER]
    ops = []
    for _ in range(count):
        if rng.random() < 0.5:
            ops.append(("outbound", "udp", rng.choice(hosts), rng.choice(remotes)))
        else:
            ops.append(("inbound", "udp", rng.choice(SEED_PORTS + [7000]), rng.choice(remotes)))
    return ops


def check_nat_table_model(table_class: Callable, seed: int = 1, count: int = 120, ports: int = 5) -> None:
    """Hidden: a seeded random sequence of operations gives what the reference NatTable gives."""
    public_ports = list(range(6539, 6539 + ports))
    reference = NatTable(SEED_PUBLIC_IP, public_ports)
    t = _Driver(table_class, SEED_PUBLIC_IP, public_ports)
    results = []
    try:
        for n, (op, protocol, a, remote) in enumerate(random_operations(seed, count), 1):
            call = f"{op}({protocol!r}, {a!r}, {remote!r}) (operation {n} of a seeded sequence)"
            try:
                expected = getattr(reference, op)(protocol, a, remote)
            except NatTableFull:
                try:
                    got = t.outbound(protocol, a, remote, full_ok=True)
                except RuntimeError:
                    results.append("full")
                    continue
                raise YourCodeError(f"{call} returned {got!r}; every public port is mapped, so raise RuntimeError")
            got = getattr(t, op)(protocol, a, remote)
            _expect(got, expected, call, "replay the sequence with NatTable from course.nat to see the difference")
            results.append(got)
    finally:
        record_evidence("nat_table_model", seed=seed, operations=count, results=results)


def check_table_in_relay(table_class: Callable, timeout: float = 5.0) -> None:
    """Hidden: real datagrams from 127.0.0.2 and 127.0.0.3 cross a NatRelay that uses the learner's
    table; the server sees only the relay; replies reach the right host; strangers are dropped."""
    seen: dict = {}
    # Evidence names the public ports by order of first use (port A, port B), not by their place in
    # the pool: which free port a new flow takes is the rule the table checks test; here it is only
    # whether each host keeps one port of its own.
    labels: dict[str, str] = {}

    def label(role: str) -> str:
        if not role.startswith("public port #"):
            return role
        return labels.setdefault(role, f"port {'ABCDEFGH'[len(labels)]}")

    try:
        with WhoAmIServer() as server, NatRelay(server.address, table_class=table_class, pool=3) as relay, \
                Host("127.0.0.2") as a, Host("127.0.0.3") as b, Host("127.0.0.4") as stranger:
            for host, msg in ((a, b"hello from a"), (b, b"hello from b"), (a, b"again from a")):
                host.send(msg, relay.gateway)
                got = host.recv(timeout)
                if got is None:
                    reasons = [d[3] for d in relay.dropped]
                    raise YourCodeError(
                        f"{format_address(host.address)} sent {msg!r} through the relay and got no reply within "
                        f"{timeout} s (relay drops: {reasons or 'none'}); does inbound() return the private (ip, port) "
                        f"for the server's reply?"
                    )
                data, _ = got
                want = msg + b" | you are "
                if not data.startswith(want):
                    raise YourCodeError(f"{format_address(host.address)} got {data!r} back; expected the reply to its own "
                                        f"{msg!r}: inbound() sent another host's reply to it")
                seen.setdefault(host.address[0], []).append(label(relay.role_of(data[len(want):].decode())))
            sources = [relay.role_of(s) for s in server.sources()]
            not_relay = [s for s in sources if not s.startswith("public port #")]
            if not_relay:
                raise YourCodeError(f"the server saw datagrams from {not_relay}, not from the relay's public ports")
            if len(set(sources)) != 2 or sources[0] != sources[2] or sources[0] == sources[1]:
                raise YourCodeError(f"the server saw sources {sources} for a, b, a; each host needs its own public "
                                    f"port and keeps it for its next datagram")
            # Both hosts at once: interleaved datagrams, each host must get back exactly its own.
            burst = {h: [f"{h.address[0]} #{i}".encode() for i in range(5)] for h in (a, b)}
            for i in range(5):
                for h in (a, b):
                    h.send(burst[h][i], relay.gateway)
            for h in (a, b):
                got = []
                for _ in range(5):
                    reply = h.recv(timeout)
                    if reply is None:
                        break
                    got.append(reply[0].split(b" | ")[0])
                if sorted(got) != sorted(burst[h]):
                    raise YourCodeError(f"{format_address(h.address)} sent {len(burst[h])} datagrams interleaved with "
                                        f"another host and got back {got}; each reply must reach the host that sent it")
            seen["interleaved_replies_ok"] = True
            before = len(relay.dropped)
            sent = len(relay.public_ports)
            for port in relay.public_ports:
                stranger.send(b"unsolicited", (relay.public_host, port))
            # Wait until the relay handled every one of them, dropped or (the bug looked for) delivered
            # to a private host, so that the count below is final; other late traffic does not count.
            arrived: list[tuple[str, bytes]] = []

            def handled() -> bool:
                arrived.extend((format_address(h.address), d) for h in (a, b) for d, _ in h.pending())
                leaked_count = sum(1 for _, d in arrived if d == b"unsolicited")
                return len(relay.dropped) - before + leaked_count >= sent

            wait_for(handled, timeout, f"the relay handled neither way {sent} unsolicited datagrams within {timeout} s",
                     error=PeerError)
            handled()
            leaked = sorted({where for where, d in arrived if d == b"unsolicited"})
            if leaked:
                raise YourCodeError(f"unsolicited datagrams from 127.0.0.4 reached {leaked}; inbound() must return None "
                                    f"for a remote the private host never sent to")
            seen["server_sources"] = [label(r) for r in sources]
            seen["unsolicited_dropped"] = len(relay.dropped) - before
    finally:
        record_evidence("nat_table_in_relay", **seen)
