"""Seed 001's home router made real: assignment 01's NAT on the lab network (course.netlab).

    laptop 192.168.1.2 --eth0--lan0--+
                                     +-- br0 192.168.1.1 | router | 203.0.113.1 wan0 --eth0-- internet 198.51.100.10 (the server)
    phone  192.168.1.3 --eth0--lan1--+   (the LAN ports: a bridge)  (masquerade on wan0)               192.0.2.66 (a stranger)

Four network namespaces of one lab (built on `with`, ~0.2 s): the router forwards, masquerades what
leaves through wan0 (nftables) and keeps its translations in conntrack; its LAN ports are a bridge,
as in a home router. The lab's Internet is one namespace with two addresses: a server and a
stranger, who also has a route to 192.168.1.0/24 through the router (only a neighbour one hop from
the router can have one: the Internet routes no private addresses).

- `flows()`: the laptop and the phone each send a UDP datagram from private port 6789 to two server
  sockets, A then B; the server answers each with the address it saw. What the server saw is
  compared with the router's conntrack table, read independently (`conntrack -L` in the router).
- `probes()`: after the laptop sent to A, five datagrams come in toward it: A's reply, and four
  nobody asked for. Each goes to exactly one place, which the cell observes: the laptop's socket,
  or a counter of the router (its nftables rules count what comes in on wan0 and belongs to no
  connection: in the input chain, for the router itself, or in the forward chain, to be routed).
  Run on two routers: NAT only, and NAT with a home router's firewall (those counted packets dropped).
- `compare(NatTable, flows, probes)`: the same flows and probes through a learner's table (exercise
  4), beside what the kernel did, compared by behaviour (which flows share a public address and
  port, which datagrams reach the laptop), not by port numbers.

Where no lab can be built (user namespaces refused: Binder, a container, the grading sandbox),
`flows()` and `probes()` print one line, the SetupError's sentence, and return the recording of a
live run (course/data/lab-nat.json; `python -m course.natlab record` remakes it), marked
"capture": "recording" (course.netlab.lesson: the same for every lab lesson). `flows_evidence` and
`probes_evidence` give what does not depend on timing or port numbers: a live run and the
recording give the same.
"""
from __future__ import annotations

import select
import socket
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from course.deadline import wait_for
from course.errors import PeerError
from course.netlab import Lab, lesson
from course.netlab.demo import PRIVATE_PORT, ROUTER_LAN, ROUTER_WAN, SERVER

__all__ = [
    "LAPTOP",
    "PHONE",
    "STRANGER",
    "PRIVATE_PORT",
    "ROUTER_LAN",
    "ROUTER_WAN",
    "SERVER",
    "FLOWS",
    "PROBES",
    "ROUTERS",
    "TABLE_PORTS",
    "RECORDING",
    "NEW_FROM_THE_WAN",
    "home_router",
    "run_flows",
    "run_probes",
    "flows",
    "probes",
    "load_recording",
    "flows_evidence",
    "probes_evidence",
    "replay",
    "differences",
    "show_flows",
    "show_probes",
    "compare",
    "record",
    "main",
]

LAPTOP, PHONE, STRANGER = "192.168.1.2", "192.168.1.3", "192.0.2.66"
HOSTS = ("laptop", "phone", "router", "internet")
FLOWS = (("laptop", "A"), ("phone", "A"), ("laptop", "B"), ("phone", "B"))  # (who sends, to which server socket)
# (name, what it is): in the order they are sent, each after the last one has arrived somewhere
PROBES = (
    ("reply", "from server A (the laptop sent to it)"),
    ("other-port", "from the server's address, another port"),
    ("stranger", f"from a stranger, {STRANGER}"),
    ("unused-port", "from the stranger, to a port no flow has"),
    ("private-address", f"from the stranger, to {LAPTOP}:{PRIVATE_PORT} itself"),
)
TABLE_PROBES = PROBES[:4]  # a translation table is asked about datagrams to the public address only
ROUTERS = (("nat", "NAT only"), ("firewall", "NAT + firewall"))
TABLE_PORTS = range(1024, 65536)  # the public ports a learner's table gets in compare(): Linux's range for ports >= 1024
LAB_TIMEOUT = 30.0  # seconds for each call to the lab's agent: generous, a busy machine is slow, never wrong
IO_TIMEOUT = 20.0  # seconds for each datagram to arrive (or to be counted by the router)
SOCKET_LOOK = 0.02  # seconds of each look at the laptop's socket while a probe is on its way
OUTCOMES = {
    "laptop": "reached the laptop",
    "router": "to the router: no socket",
    "dropped": "dropped by the firewall",
}
# what the router counts in its input and forward chains, and drops with a firewall: what comes in on
# wan0 and starts a new connection (conntrack state new: no translation knows it)
NEW_FROM_THE_WAN = 'iifname "wan0" ct state new'
CHAINS = ("input", "forward")  # addressed to the router itself; to be routed on
RECORDING = lesson.DATA / "lab-nat.json"
_fallback = lesson.Fallback(say="recording shown, {why}")


# ----------------------------------------------------------------------------------------------
# The lab
# ----------------------------------------------------------------------------------------------
def home_router(*, firewall: bool = False, timeout: float = LAB_TIMEOUT) -> Lab:
    """The lab of the module docstring, built on `with home_router() as net:`; with `firewall`, the
    router drops what it counts (NEW_FROM_THE_WAN), as a home router's firewall does."""

    def build(net: Lab) -> None:
        laptop, phone, router, internet = (net.add_host(name) for name in HOSTS)
        net.link(router, laptop, None, f"{LAPTOP}/24", names=("lan0", "eth0"))
        net.link(router, phone, None, f"{PHONE}/24", names=("lan1", "eth0"))
        net.link(router, internet, f"{ROUTER_WAN}/24", f"{SERVER}/24", names=("wan0", "eth0"))
        router.bridge("br0", ["lan0", "lan1"], f"{ROUTER_LAN}/24")
        internet.add_address(f"{STRANGER}/24", "eth0")
        for host in (laptop, phone):
            host.route("default", via=ROUTER_LAN)
        router.route("default", dev="wan0")  # the Internet is the wire behind wan0
        internet.route("203.0.113.0/24", dev="eth0")  # the way back to the router's public address
        internet.route("192.168.1.0/24", via=ROUTER_WAN)  # the stranger's route into the LAN (probe private-address)
        router.forwarding(True)
        router.masquerade("wan0")
        for chain in CHAINS:
            router.filter(NEW_FROM_THE_WAN, chain, drop=firewall)

    return Lab(build, timeout=timeout)


def _text(address: tuple) -> str:
    return f"{address[0]}:{address[1]}"


def _pair(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def _udp(host, address: tuple[str, int], stack: ExitStack, timeout: float):
    sock = stack.enter_context(host.socket(socket.AF_INET, socket.SOCK_DGRAM))
    sock.bind(address)  # inside a lab host's own namespace: the documented private port is safe there
    sock.settimeout(timeout)
    return sock


def _receive(sock, timeout: float, what: str) -> tuple[bytes, tuple]:
    try:
        return sock.recvfrom(2048)
    except TimeoutError:
        raise PeerError(f"{what} within {timeout} s") from None


def run_flows(timeout: float = IO_TIMEOUT) -> dict:
    """The four flows of FLOWS through a live router; SetupError where no lab can be built."""
    started = time.monotonic()
    with home_router() as net, ExitStack() as stack:
        router, internet = net.host("router"), net.host("internet")
        servers = {name: _udp(internet, (SERVER, 0), stack, timeout) for name in ("A", "B")}
        clients = {who: _udp(net.host(who), (address, PRIVATE_PORT), stack, timeout)
                   for who, address in (("laptop", LAPTOP), ("phone", PHONE))}
        flows = []
        for who, name in FLOWS:
            client, server = clients[who], servers[name]
            client.sendto(f"hello from the {who}".encode(), server.getsockname())
            _, seen = _receive(server, timeout, f"server {name} {_text(server.getsockname())} got nothing from the {who}")
            server.sendto(f"you are {_text(seen)}".encode(), seen)
            data, source = _receive(client, timeout, f"the {who} got no answer from server {name} {_text(server.getsockname())}")
            flows.append({"who": who, "private": _text(client.getsockname()), "server": name,
                          "remote": _text(server.getsockname()), "server_saw": _text(seen),
                          "answer": data.decode(), "answer_from": _text(source)})
        entries = [e for e in router.conntrack() if e.proto == "udp"]
        timeouts = {key: int(router.read_sysctl(key)) for key in ("net.netfilter.nf_conntrack_udp_timeout",
                                                                    "net.netfilter.nf_conntrack_udp_timeout_stream")}
    for flow in flows:
        mine = [e for e in entries if e.original == (_pair(flow["private"]), _pair(flow["remote"]))]
        if len(mine) != 1:
            raise PeerError(f"the router's conntrack has {len(mine)} entries for {flow['private']} -> {flow['remote']}, "
                            f"not one: {[str(e) for e in entries]}")
        flow["conntrack_replies_to"] = _text(mine[0].reply[1])
        if flow["conntrack_replies_to"] != flow["server_saw"]:
            raise PeerError(f"server {flow['server']} saw {flow['server_saw']}, but the router's conntrack sends its replies "
                            f"to {flow['conntrack_replies_to']}")
    return {"capture": "live", "flows": flows, "conntrack": sorted(str(e) for e in entries),
            "udp_timeouts": timeouts, "seconds": round(time.monotonic() - started, 3)}


def _udp_noports(router) -> int:
    return router.snmp()["Udp"]["NoPorts"]


def _probe_router(firewall: bool, timeout: float) -> dict:
    with home_router(firewall=firewall) as net, ExitStack() as stack:
        router, internet = net.host("router"), net.host("internet")
        laptop = _udp(net.host("laptop"), (LAPTOP, PRIVATE_PORT), stack, timeout)
        server = _udp(internet, (SERVER, 0), stack, timeout)
        other = _udp(internet, (SERVER, 0), stack, timeout)
        stranger = _udp(internet, (STRANGER, 0), stack, timeout)
        laptop.sendto(b"hello from the laptop", server.getsockname())
        _, public = _receive(server, timeout, f"server A {_text(server.getsockname())} got nothing from the laptop")
        unused = next(p for p in range(PRIVATE_PORT + 1, 65536) if p != public[1])  # the router's only flow is the laptop's
        sends = {
            "reply": (server, public),
            "other-port": (other, public),
            "stranger": (stranger, public),
            "unused-port": (stranger, (ROUTER_WAN, unused)),
            "private-address": (stranger, (LAPTOP, PRIVATE_PORT)),
        }
        before, noports = router.counters(*CHAINS), _udp_noports(router)
        outcomes = {}
        for name, _ in PROBES:
            sender, destination = sends[name]
            payload = f"probe {name}".encode()
            baseline = router.counters(*CHAINS)

            def at_the_laptop(name=name, payload=payload):
                # a short blocking look at the socket before each reading of the router's counters, which
                # costs a process in the router: fewer of them on a busy machine
                if not select.select([laptop], [], [], SOCKET_LOOK)[0]:
                    return None
                data, _ = laptop.recvfrom(2048)
                if data != payload:
                    raise PeerError(f"the laptop received {data!r} while probe {name!r} was on its way")
                return "laptop"

            def somewhere(name=name, baseline=baseline):
                if at_the_laptop():
                    return "laptop"
                now = router.counters(*CHAINS)
                grew = [chain for chain in now if now[chain] > baseline[chain]]
                if not grew:
                    return None
                if sum(now.values()) != sum(baseline.values()) + 1:
                    raise PeerError(f"the router counted {now} after {baseline} for the one datagram of probe {name!r}")
                if firewall:
                    return "dropped"
                return "router" if grew == ["input"] else "forwarded"  # forwarded: accepted, on its way to the laptop

            sender.sendto(payload, destination)
            where = wait_for(somewhere, timeout, f"probe {name!r} to {_text(destination)} neither reached the laptop nor was "
                                                 f"counted by the router within {timeout} s", error=PeerError)
            if where == "forwarded":
                where = wait_for(at_the_laptop, timeout, f"probe {name!r} was routed toward the laptop but did not reach it "
                                                         f"within {timeout} s", error=PeerError)
            outcomes[name] = where
        after = router.counters(*CHAINS)
        expected_noports = noports + sum(1 for o in outcomes.values() if o == "router")
        wait_for(lambda: _udp_noports(router) == expected_noports, timeout,
                 lambda: f"the router's UDP NoPorts counter is {_udp_noports(router)}, not {expected_noports}", error=PeerError)
        return {"laptop_public": _text(public), "server": _text(server.getsockname()), "other": _text(other.getsockname()),
                "stranger": _text(stranger.getsockname()), "unused_port": unused, "outcomes": outcomes,
                "counted": {chain: after[chain] - before[chain] for chain in after},
                "udp_noports": expected_noports - noports}


def run_probes(timeout: float = IO_TIMEOUT) -> dict:
    """PROBES toward the laptop on each router of ROUTERS, live; SetupError where no lab can be built."""
    started = time.monotonic()
    routers = {name: _probe_router(name == "firewall", timeout) for name, _ in ROUTERS}
    return {"capture": "live", "routers": routers, "seconds": round(time.monotonic() - started, 3)}


# ----------------------------------------------------------------------------------------------
# Live, or the recording
# ----------------------------------------------------------------------------------------------
def load_recording(kind: str) -> dict:
    """A copy of the recorded run of `kind` ("flows" or "probes"), marked "capture": "recording"."""
    return lesson.recorded_result(RECORDING, kind)


def flows(timeout: float = IO_TIMEOUT) -> dict:
    """run_flows() where a lab can be built; else one printed line saying why, and the recording."""
    return _fallback.run(lambda: run_flows(timeout), lambda why: {**load_recording("flows"), "why": why})


def probes(timeout: float = IO_TIMEOUT) -> dict:
    """run_probes() where a lab can be built; else one printed line saying why, and the recording."""
    return _fallback.run(lambda: run_probes(timeout), lambda why: {**load_recording("probes"), "why": why})


# ----------------------------------------------------------------------------------------------
# Evidence: what depends neither on timing nor on port numbers
# ----------------------------------------------------------------------------------------------
def _shares(publics: list) -> list[int]:
    """For each flow, the first flow with the same public (address, port): [0, 1, 0, 1] means that
    flows 0 and 2 leave with one public address and port, flows 1 and 3 with another."""
    return [publics.index(p) for p in publics]


def flows_evidence(result: dict) -> dict:
    flows = result["flows"]
    publics = [f["server_saw"] for f in flows]
    return {
        "flows": [(f["who"], f["server"]) for f in flows],
        "public_addresses": sorted({_pair(p)[0] for p in publics}),
        "kept_the_private_port": [_pair(f["server_saw"])[1] == _pair(f["private"])[1] for f in flows],
        "same_public_as": _shares(publics),
        "answers_reached_the_sender": [f["answer"] == f"you are {f['server_saw']}" and f["answer_from"] == f["remote"]
                                       for f in flows],
        "conntrack_agrees_with_the_server": [f["conntrack_replies_to"] == f["server_saw"] for f in flows],
        "conntrack_entries": len(result["conntrack"]),
        "udp_timeouts": result["udp_timeouts"],
    }


def probes_evidence(result: dict) -> dict:
    return {name: {"outcomes": r["outcomes"], "counted": r["counted"], "udp_noports": r["udp_noports"]}
            for name, r in result["routers"].items()}


# ----------------------------------------------------------------------------------------------
# A learner's table beside the kernel's
# ----------------------------------------------------------------------------------------------
class _Raised(str):
    """What a learner's method raised, as a sentence (shown, not raised again)."""


def _ask(fn: Callable, *args) -> Any:
    """fn(*args); an exception other than a blank stub's is returned as a _Raised sentence instead."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - the learner's table: shown, not raised
        return _Raised(f"raised {type(exc).__name__}: {exc}")


def replay(table_class: Callable, flows_result: dict, probes_result: dict) -> dict:
    """The flows and the probes (those to the public address) through table_class(ROUTER_WAN,
    TABLE_PORTS): a fresh table for each, as each ran on a fresh router."""
    table = table_class(ROUTER_WAN, list(TABLE_PORTS))
    flows = [_ask(table.outbound, "udp", _pair(f["private"]), _pair(f["remote"])) for f in flows_result["flows"]]
    nat = probes_result["routers"]["nat"]
    table = table_class(ROUTER_WAN, list(TABLE_PORTS))
    public = _ask(table.outbound, "udp", (LAPTOP, PRIVATE_PORT), _pair(nat["server"]))
    inbound = {}
    if isinstance(public, tuple) and len(public) == 2:
        unused = next(p for p in TABLE_PORTS if p != public[1])
        remote = {"reply": nat["server"], "other-port": nat["other"], "stranger": nat["stranger"], "unused-port": nat["stranger"]}
        for name, _ in TABLE_PROBES:
            port = unused if name == "unused-port" else public[1]
            inbound[name] = {"port": port, "answer": _ask(table.inbound, "udp", port, _pair(remote[name]))}
    return {"flows": flows, "laptop_public": public, "inbound": inbound}


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def differences(kernel_flows: dict, kernel_probes: dict, mine: dict) -> list[str]:
    """Where a table's behaviour (replay's result) differs from the kernel's, one sentence each."""
    found = []
    publics = [_tupled(p) for p in mine["flows"]]
    bad = [f"{f['who']} -> server {f['server']}: {p!r}" for f, p in zip(kernel_flows["flows"], publics)
           if not (isinstance(p, tuple) and len(p) == 2 and p[0] == ROUTER_WAN)]
    if bad:
        found.append(f"outbound should give (public_ip, public_port) with public_ip {ROUTER_WAN!r}; it gave {'; '.join(bad)}")
    else:
        kernel = _shares([f["server_saw"] for f in kernel_flows["flows"]])
        if _shares(publics) != kernel:
            found.append(f"the kernel gave flows {FLOWS} the public endpoints numbered {kernel} (equal numbers: the same "
                         f"address and port), your table {_shares(publics)}")
    laptop = (LAPTOP, PRIVATE_PORT)
    outcomes = kernel_probes["routers"]["nat"]["outcomes"]
    if not mine["inbound"]:
        found.append(f"outbound for the laptop gave {mine['laptop_public']!r}, not (public_ip, public_port)")
    for name, _ in TABLE_PROBES if mine["inbound"] else ():
        answer = _tupled(mine["inbound"][name]["answer"])
        reaches = outcomes[name] == "laptop"
        if isinstance(answer, _Raised):
            found.append(f"probe {name!r}: your table's inbound {answer}")
        elif reaches and answer != laptop:
            found.append(f"probe {name!r}: the router let it through to the laptop, your table says {answer!r}")
        elif not reaches and answer is not None:
            found.append(f"probe {name!r}: the router did not let it through, your table sends it to {answer!r}")
    return found


# ----------------------------------------------------------------------------------------------
# What a cell shows
# ----------------------------------------------------------------------------------------------
def show_flows(result: dict) -> None:
    print(f"the seed's home, {lesson.source(result, HOSTS)}")
    print(f"{'flow (UDP)':<50} {'the server saw':<19} conntrack: replies to")
    for f in result["flows"]:
        flow = f"{f['who']:<6} {f['private']} -> {f['server']} {f['remote']}"
        answered = "" if f["answer"] == f"you are {f['server_saw']}" and f["answer_from"] == f["remote"] else "  (no answer!)"
        print(f"{flow:<50} {f['server_saw']:<19} {f['conntrack_replies_to']}{answered}")
    print("the router's conntrack table, read from its kernel (conntrack -L):")
    for line in result["conntrack"]:
        print("  " + line)
    t = result["udp_timeouts"]
    print(f"the router forgets an entry {t['net.netfilter.nf_conntrack_udp_timeout']} s after its last datagram "
          f"(net.netfilter.nf_conntrack_udp_timeout),\n{t['net.netfilter.nf_conntrack_udp_timeout_stream']} s for a flow "
          f"that has gone on both ways for a while (net.netfilter.nf_conntrack_udp_timeout_stream)")


def show_probes(result: dict) -> None:
    nat = result["routers"]["nat"]
    print(f"datagrams toward the laptop, {lesson.source(result, HOSTS)}")
    print(f"the laptop sent to server A {nat['server']} first and left as {nat['laptop_public']};\n"
          f"each probe goes to that address and port unless it says otherwise")
    print(f"{'probe':<46} " + " ".join(f"{title:<26}" for _, title in ROUTERS).rstrip())
    for name, what in PROBES:
        print(f"{what:<46} " + " ".join(f"{OUTCOMES[result['routers'][r]['outcomes'][name]]:<26}" for r, _ in ROUTERS).rstrip())
    routers = [result["routers"][name] for name, _ in ROUTERS]
    counted = [f"{r['counted']['input']} input, {r['counted']['forward']} forward" for r in routers]
    print(f"{'the router counted (new, from wan0)':<46} " + " ".join(f"{c:<26}" for c in counted).rstrip())
    noports = [str(r["udp_noports"]) for r in routers]
    print(f"{'the router counted as UDP NoPorts':<46} " + " ".join(f"{n:<26}" for n in noports).rstrip())


def compare(table_class: Callable, flows_result: dict, probes_result: dict) -> list[str]:
    """Print the kernel's NAT (flows, and probes on the NAT-only router) beside table_class's, and
    whether they behave alike; return the differences (none: an empty list)."""
    mine = replay(table_class, flows_result, probes_result)
    print(f"{'':<24} {'the router (its kernel)':<24} your {table_class.__name__}({ROUTER_WAN!r}, "
          f"ports {TABLE_PORTS.start}-{TABLE_PORTS.stop - 1})")
    for f, p in zip(flows_result["flows"], mine["flows"]):
        p = _tupled(p)
        shown = _text(p) if isinstance(p, tuple) and len(p) == 2 else p if isinstance(p, _Raised) else repr(p)
        print(f"{f['who'] + ' -> ' + f['server']:<24} {f['server_saw']:<24} outbound: {shown}")
    nat = probes_result["routers"]["nat"]
    for name, _ in TABLE_PROBES:
        kernel = "to the laptop" if nat["outcomes"][name] == "laptop" else "not to the laptop"
        asked = mine["inbound"].get(name)
        answer = asked and (asked["answer"] if isinstance(asked["answer"], _Raised) else repr(_tupled(asked["answer"])))
        shown = f"inbound(port {asked['port']}): {answer}" if asked else "-"
        print(f"{'probe ' + name:<24} {kernel:<24} {shown}")
    found = differences(flows_result, probes_result, mine)
    if found:
        print(f"your table behaves differently from the router's kernel ({len(found)}):")
        for sentence in found:
            print("  - " + sentence)
    else:
        print("the same behaviour (the port numbers may differ): one public address and port per private address and\n"
              "port, whatever the remote, and another one for another host; in, only the remote the laptop sent to")
    return found


# ----------------------------------------------------------------------------------------------
# The recording (maintainers: python -m course.natlab record, as an ordinary user where a lab works)
# ----------------------------------------------------------------------------------------------
def record(path: Path | None = None) -> Path:
    """Run flows and probes live and rewrite the recording (course/data/lab-nat.json)."""
    demos = {name: {k: v for k, v in run().items() if k not in ("capture", "seconds")}
             for name, run in (("flows", run_flows), ("probes", run_probes))}
    return lesson.write_recording(path or RECORDING, "python -m course.natlab record: run_flows() and run_probes(), live, "
                                  "as an ordinary user", demos)


def main(argv: list[str] | None = None) -> int:
    return lesson.main("course.natlab", record, argv)


if __name__ == "__main__":
    raise SystemExit(main())
