"""The checks of assignment 01's NAT exercise (the graded cells call these).

The learner's table class is driven through `_Driver`: every call has a deadline (the runner's
`call_with_deadline`), an exception it raises becomes one sentence (`learner_errors`), and the
calls and answers are the evidence. The scenario is seed 001's: a router with one public address
and three public ports, a laptop and a phone behind it, remotes at RFC 5737 documentation
addresses (only written in tables, never contacted). `check_table_in_relay` sends real datagrams
through a `course.nat.NatRelay` that uses the learner's table.

    from course.checks import nat as nat_check
    nat_check.check_nat_table_basics(NatTable)
"""
from __future__ import annotations

from typing import Callable

from course.checks import expect_type, record_evidence
from course.checks.runner import call_with_deadline, learner_errors
from course.deadline import wait_for
from course.errors import PeerError, YourCodeError
from course.nat import Host, NatRelay, NatTable, NatTableFull, WhoAmIServer
from course.serving import format_address

__all__ = [
    "SEED_PUBLIC_IP",
    "SEED_PORTS",
    "LAPTOP",
    "PHONE",
    "WEB",
    "DNS",
    "STRANGER",
    "FULL",
    "check_nat_table_basics",
    "check_nat_table_rules",
    "random_operations",
    "check_nat_table_model",
    "check_table_in_relay",
]

SEED_PUBLIC_IP = "116.226.52.212"
SEED_PORTS = [6539, 6540, 6541]
LAPTOP = ("192.168.1.2", 6789)  # seed 001's private host
PHONE = ("192.168.1.3", 5353)
WEB = ("203.0.113.5", 80)  # RFC 5737 documentation addresses: never contacted, only written in tables
DNS = ("198.51.100.7", 53)
STRANGER = ("192.0.2.66", 4444)


# What _Driver.outbound(..., full_ok=True) returns when the learner's table raised RuntimeError.
FULL = "RuntimeError"


class _Driver:
    """Runs the learner's table with deadlines and turns surprises into one-sentence hints."""

    def __init__(self, table_class: Callable, public_ip: str, ports: list[int]):
        self.log: list = []
        self.table = call_with_deadline(table_class, public_ip, list(ports), name="NatTable")

    def outbound(self, protocol, private, remote, full_ok: bool = False):
        """The table's answer; FULL when it raised RuntimeError and `full_ok` (every port mapped)."""
        return self._call("outbound", (protocol, private, remote), full_ok)

    def inbound(self, protocol, port, remote):
        return self._call("inbound", (protocol, port, remote), False)

    def _call(self, op: str, args: tuple, full_ok: bool):
        call = f"{op}({', '.join(map(repr, args))})"
        with learner_errors(call):
            try:
                got = call_with_deadline(getattr(self.table, op), *args, name=op)
            except NotImplementedError:
                raise
            except RuntimeError as exc:
                if not full_ok:
                    raise YourCodeError(
                        f"{call} raised RuntimeError: {exc}; a free port was left, so it should return one") from exc
                if not str(exc):
                    raise YourCodeError(
                        f"{call} raised RuntimeError without a message; say which flow found no free port") from exc
                self.log.append([op, *args, FULL])
                return FULL
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
        extra = t.outbound("udp", ("192.168.1.4", 1000), WEB, full_ok=True)
        if extra is not FULL:
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
                got = t.outbound(protocol, a, remote, full_ok=True)
                if got is FULL:
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
