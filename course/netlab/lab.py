"""The lab: hosts, links and routers in network namespaces of a private user namespace.

The owner (a notebook's kernel, a test, `python -m course netlab demo`) never enters a namespace
itself: it starts the agent (course/netlab/agent.py), which does, and asks it for what it needs.
See the package's docstring for why it is built this way.
"""
from __future__ import annotations

import ctypes
import fcntl
import io
import ipaddress
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from course.deadline import Deadline
from course.errors import PeerError, SetupError, YourCodeError
from course.netlab import rules
from course.netlab.rules import Loss

__all__ = [
    "AGENT",
    "LAB_NETWORKS",
    "LAB_NETWORKS6",
    "Lab",
    "Host",
    "Link",
    "LabSocket",
    "ConntrackEntry",
    "refusal",
    "socket_netns",
    "available",
]

AGENT = Path(__file__).with_name("agent.py")
SIOCGSKNS = 0x894C  # linux/sockios.h: a file descriptor of a socket's network namespace
CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWNS = 0x10000000, 0x40000000, 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 1 << 18
PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20
# Every address a lab host may have: RFC 1918's 192.168.0.0/16 (the home side) and RFC 5737's three
# documentation networks (the "Internet" side). None of them is routed on the real Internet, and a
# lab has no interface to the machine's network anyway.
LAB_NETWORKS = tuple(ipaddress.ip_network(n) for n in ("192.168.0.0/16", "203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"))
# IPv6, on hosts made with add_host(name, ipv6=True) only: RFC 3849's documentation prefix, routed nowhere
LAB_NETWORKS6 = (ipaddress.ip_network("2001:db8::/32"),)

_libc = ctypes.CDLL(None, use_errno=True)


# ----------------------------------------------------------------------------------------------
# Why a lab cannot be built here: one line
# ----------------------------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _sysctls() -> dict[str, str | None]:
    return {
        "kernel.apparmor_restrict_unprivileged_userns": _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"),
        "kernel.unprivileged_userns_clone": _read("/proc/sys/kernel/unprivileged_userns_clone"),
        "user.max_user_namespaces": _read("/proc/sys/user/max_user_namespaces"),
    }


def refusal(stage: str, err: int, detail: str, sysctls: dict[str, str | None] | None = None) -> str:
    """The one sentence a lab call raises (as SetupError) when this machine refuses what a lab
    needs: what failed, the likely reason with the value that shows it, what to do."""
    s = _sysctls() if sysctls is None else sysctls
    see = "; see README.md, 'The lab network' (notebooks show a recording instead)"
    name = os.strerror(err) if err else "failed"
    detail = detail if name in detail else f"{detail} ({name})"
    if stage in ("unshare", "map"):
        if s.get("kernel.unprivileged_userns_clone") == "0":
            why = ("kernel.unprivileged_userns_clone is 0, which forbids user namespaces to ordinary users "
                   "(as root: sysctl -w kernel.unprivileged_userns_clone=1)")
        elif err == 28:  # ENOSPC
            why = (f"no more user namespaces may be made here (user.max_user_namespaces is {s.get('user.max_user_namespaces')} "
                   "on this machine; a sandbox such as bwrap --disable-userns allows none inside it)")
        elif err == 1:  # EPERM
            why = ("user namespaces are refused here: a seccomp filter (Docker's default profile, the course's grading "
                   "sandbox) or a container without them; run the container with --security-opt seccomp=unconfined "
                   "--security-opt apparmor=unconfined, or use a virtual machine")
        elif err == 87:  # EUSERS
            why = "user namespaces are nested too deep here (32 levels at most)"
        else:
            why = "this kernel or sandbox does not let an ordinary user make a user and network namespace"
        return f"no lab network here: {detail}: {why}{see}"
    if stage in ("lo", "veth"):
        if s.get("kernel.apparmor_restrict_unprivileged_userns") == "1":
            why = ("Ubuntu's AppArmor lets an ordinary program make a user namespace but not use it "
                   "(kernel.apparmor_restrict_unprivileged_userns is 1): give the interpreter an AppArmor profile "
                   "with 'userns,' or, as root, sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
        else:
            why = "the new namespace refuses network configuration (a security module or a container's policy)"
        return f"no lab network here: {detail}: {why}{see}"
    if stage == "sysctl":
        return (f"no lab network here: {detail}: /proc/sys is read-only here, as a container mounts it "
                f"(docker run --security-opt systempaths=unconfined, or a virtual machine){see}")
    if stage == "tools":
        return f"no lab network here: {detail} (Debian/Ubuntu: apt-get install iproute2){see}"
    return f"no lab network here: {detail}{see}"


# ----------------------------------------------------------------------------------------------
# Sockets that check where they live before they send
# ----------------------------------------------------------------------------------------------
def socket_netns(sock: socket.socket) -> int | None:
    """The inode of `sock`'s network namespace (as `ls -l /proc/PID/ns/net` shows it), or None
    when this process may not ask (SIOCGSKNS needs CAP_NET_ADMIN over that namespace: an ordinary
    user has it over a lab's namespaces, which its own user namespace owns, and not over the
    machine's)."""
    try:
        fd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    except OSError:
        return None
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


class LabSocket(socket.socket):
    """An ordinary socket.socket, made in a lab host's network namespace by the agent and passed
    back over a Unix socket. Before its first connect or send it checks that its namespace is its
    host's (the inode): a socket that is not (a bug, a half-built lab, a plain socket.socket())
    raises SetupError and sends nothing, so no lab address ever leaves through the machine's own
    network."""

    def __init__(self, host: "Host", family=-1, type=-1, proto=-1, fileno=None):
        super().__init__(family, type, proto, fileno)
        self.host = host
        self._in_lab = False

    def _check_in_lab(self, where: Any = None) -> None:
        if self._in_lab:
            return
        inode = socket_netns(self)
        if inode != self.host.inode:
            found = f"net:[{inode}]" if inode is not None else "a namespace this process may not inspect (the machine's own)"
            target = f" to {where!r}" if where is not None else ""
            raise SetupError(
                f"this socket lives in {found}, not in lab host {self.host.name!r} (net:[{self.host.inode}]): nothing was sent"
                f"{target}; make lab sockets with net.host({self.host.name!r}).socket(), and run functions that make their own "
                f"with net.host({self.host.name!r}).run(fn)"
            )
        self._in_lab = True

    def connect(self, address):
        self._check_in_lab(address)
        return super().connect(address)

    def connect_ex(self, address):
        self._check_in_lab(address)
        return super().connect_ex(address)

    def send(self, data, flags=0):
        self._check_in_lab()
        return super().send(data, flags)

    def sendall(self, data, flags=0):
        self._check_in_lab()
        return super().sendall(data, flags)

    def sendto(self, data, *args):
        self._check_in_lab(args[-1] if args else None)
        return super().sendto(data, *args)

    def sendmsg(self, *args):
        self._check_in_lab(args[3] if len(args) > 3 else None)
        return super().sendmsg(*args)

    def sendfile(self, file, offset=0, count=None):
        self._check_in_lab()
        return super().sendfile(file, offset, count)

    def accept(self):
        fd, addr = self._accept()
        sock = LabSocket(self.host, self.family, self.type, self.proto, fileno=fd)
        if socket.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)
        self.host.lab._handed.add(sock)
        return sock, addr

    def dup(self):
        sock = LabSocket(self.host, self.family, self.type, self.proto, fileno=os.dup(self.fileno()))
        sock.settimeout(self.gettimeout())
        self.host.lab._handed.add(sock)
        return sock


# ----------------------------------------------------------------------------------------------
# Hosts, links, the lab
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConntrackEntry:
    """One connection the router's conntrack follows: the original direction as the first packet
    had it, and the reply direction as the router expects replies (after NAT: to its own address)."""

    proto: str
    original: tuple[tuple[str, int], tuple[str, int]]  # (source, destination)
    reply: tuple[tuple[str, int], tuple[str, int]]

    @classmethod
    def parse(cls, line: str) -> "ConntrackEntry | None":
        """A line of `conntrack -L` or of /proc/net/nf_conntrack; None for a line without ports."""
        words = line.split()
        proto = next((w for w in words if w in ("tcp", "udp", "icmp", "sctp", "dccp", "udplite")), None)
        pairs = [w.split("=", 1) for w in words if "=" in w]
        keys = ("src", "dst", "sport", "dport")
        found: list[dict[str, str]] = [{}, {}]
        i = 0
        for k, v in pairs:
            if k not in keys:
                continue
            if k in found[i]:
                i += 1
                if i > 1:
                    break
            found[i][k] = v
        if proto is None or any(set(keys) - set(f) for f in found):
            return None
        tup = [((f["src"], int(f["sport"])), (f["dst"], int(f["dport"]))) for f in found]
        return cls(proto, tup[0], tup[1])

    def __str__(self) -> str:
        (s, d), (rs, rd) = self.original, self.reply
        return f"{self.proto} {s[0]}:{s[1]} -> {d[0]}:{d[1]}, replies {rs[0]}:{rs[1]} -> {rd[0]}:{rd[1]}"


class Host:
    """One machine of the lab: a network namespace of its own, with lo up and IPv4 only, or IPv4
    and IPv6 when made with add_host(name, ipv6=True) (addresses of 2001:db8::/32, added without
    duplicate address detection; no router solicitations)."""

    def __init__(self, lab: "Lab", name: str, inode: int, cookie: int, ipv6: bool = False):
        self.lab = lab
        self.name = name
        self.ipv6 = ipv6
        self.inode = inode  # of its network namespace: /proc/PID/ns/net -> net:[inode]
        self.cookie = cookie  # SO_NETNS_COOKIE of its namespace
        self.interfaces: dict[str, list[str]] = {}  # name -> addresses with prefix
        self._nat: list[str] = []
        self._chains: set[str] = set()  # the chains made in its table inet lab: filter chains, links' loss chains

    def __repr__(self) -> str:
        addrs = ", ".join(f"{i} {' '.join(a)}" for i, a in self.interfaces.items())
        return f"<lab host {self.name!r} net:[{self.inode}] {addrs}>"

    @property
    def address(self) -> str:
        """This host's first IPv4 address (without prefix); on a host with IPv6 addresses only, its
        first IPv6 address."""
        found = [a.split("/")[0] for addrs in self.interfaces.values() for a in addrs]
        for address in found:
            if ":" not in address:
                return address
        if found:
            return found[0]
        raise SetupError(f"lab host {self.name!r} has no address yet: link it first")

    @property
    def address6(self) -> str:
        """This host's first IPv6 address (without prefix)."""
        for addrs in self.interfaces.values():
            for a in addrs:
                if ":" in a:
                    return a.split("/")[0]
        raise SetupError(f"lab host {self.name!r} has no IPv6 address"
                         + ("" if self.ipv6 else f": it was made without IPv6 (add_host({self.name!r}, ipv6=True))"))

    # -- what a notebook uses ------------------------------------------------------------------
    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> LabSocket:
        """A real socket in this host's namespace (a LabSocket: a socket.socket that checks, before it
        first sends, that it is in this host). The lab closes it when the lab closes."""
        reply, fds = self.lab._call("socket", nfds=1, host=self.name, family=int(family), type=int(type), proto=int(proto))
        sock = LabSocket(self, family, type, proto, fileno=fds[0])
        self.lab._handed.add(sock)
        return sock

    def run(self, fn: Callable, *args, timeout: float = 10.0, etc: dict[str, str] | None = None, **kwargs):
        """Call fn(*args, **kwargs) in a process inside this host (a fork of this one that entered the
        lab's namespaces): every socket it makes, socket.socket() included, is this host's. Returns
        what fn returns and raises what it raises (both must pickle); what it prints is printed
        here after. A call still running after `timeout` seconds is killed: YourCodeError.

        `etc`, {file name: text} such as {"hosts": "2001:db8::80 www.lab.test\n"}: files under /etc
        that this process alone sees with that text (its own mount namespace, each file
        bind-mounted over the machine's, which must exist): the host's own hosts file, resolv.conf
        and nsswitch.conf, read by socket.getaddrinfo as on any machine."""
        if etc is not None:
            for name in etc:
                if not name or "/" in name or name in (".", ".."):
                    raise ValueError(f"etc names a file directly under /etc ('hosts', 'resolv.conf'), not {name!r}")
        return self.lab._run_in(self, fn, args, kwargs, timeout, etc)

    def cmd(self, *argv: str, input: str | None = None, timeout: float = 10.0, check: bool = True) -> str:
        """Run a command (ip, nft, tc, conntrack, ping...) in this host as the lab's root; its output.
        With check, a failure raises PeerError (a missing tool: SetupError)."""
        return self.lab._exec(self.name, list(argv), input=input, timeout=timeout, check=check)

    def capture(self, iface: str | None = None, buffer: int = 16 << 20):
        """A live capture of every frame on one of this host's interfaces (its first by default):
        `with net.host('home').capture() as cap: ...`, then cap.frames, cap.save('x.pcap')."""
        from course.netlab.pcap import Capture

        iface = iface or next(iter(self.interfaces), None)
        if iface is None:
            raise SetupError(f"lab host {self.name!r} has no interface to capture on yet: link it first")
        return Capture(self, iface, buffer=buffer)

    def conntrack(self) -> list[ConntrackEntry]:
        """The connections this host's conntrack follows (a NAT router's translations)."""
        out = self.cmd("conntrack", "-L", check=False) if self.lab.tools.get("conntrack") else None
        if out is None:
            reply, _ = self.lab._call("read", host=self.name, path="/proc/self/net/nf_conntrack")
            out = reply["text"]
            if out is None:
                raise SetupError(f"cannot read lab host {self.name!r}'s conntrack table: neither `conntrack` (Debian/Ubuntu: "
                                 f"apt-get install conntrack) nor /proc/net/nf_conntrack is there")
        return [e for e in map(ConntrackEntry.parse, out.splitlines()) if e is not None]

    def snmp(self) -> dict[str, dict[str, int]]:
        """This host's own /proc/net/snmp, the counters of its IP, ICMP, TCP and UDP (as `nstat -az`
        shows them): {"Ip": {"FragCreates": 6, ...}, "Udp": {"NoPorts": 0, ...}, ...}."""
        lines = [line.split() for line in self._proc("/proc/self/net/snmp").splitlines()]
        table: dict[str, dict[str, int]] = {}
        for names, values in zip(lines[::2], lines[1::2]):
            table[names[0].rstrip(":")] = {n: int(v) for n, v in zip(names[1:], values[1:])}
        return table

    def read_sysctl(self, key: str) -> str:
        """The value of a net.* sysctl of this host, e.g. host.read_sysctl('net.ipv4.ipfrag_time') -> '30'."""
        if not key.startswith("net."):
            raise ValueError(f"a lab host has only its own net.* sysctls, not {key!r}")
        return self._proc("/proc/sys/" + key.replace(".", "/")).strip()

    def counters(self, *chains: str) -> dict[str, int]:
        """Packets counted so far by the rules of each of these chains of this host's table inet lab
        (its filter chains, Host.filter, or a link's loss chain): {chain: packets}, 0 for a chain
        that has no rule yet."""
        counted = dict.fromkeys(chains, 0)
        if not self._chains:  # no table inet lab yet: nothing counted
            return counted
        chain = None
        for line in self.cmd("nft", "list", "table", "inet", "lab").splitlines():
            words = line.split()  # `chain NAME {`, then its rules: `... counter packets 3 bytes 120 drop`
            if words[:1] == ["chain"]:
                chain = words[1]
            elif chain in counted and "packets" in words:
                counted[chain] += int(words[words.index("packets") + 1])
        return counted

    def _proc(self, path: str) -> str:
        reply, _ = self.lab._call("read", host=self.name, path=path)
        if reply["text"] is None:
            raise PeerError(f"lab host {self.name!r} has no {path} (this kernel lacks it)")
        return reply["text"]

    # -- configuration -------------------------------------------------------------------------
    def sysctl(self, key: str, value: int | str) -> None:
        """Set a net.* sysctl of this host, e.g. host.sysctl('net.ipv4.ip_forward', 1)."""
        if not key.startswith("net."):
            raise ValueError(f"a lab host has only its own net.* sysctls, not {key!r}")
        self.lab._call("sysctl", host=self.name, path="/proc/sys/" + key.replace(".", "/"), value=str(value))

    def route(self, destination: str, via: str | None = None, dev: str | None = None) -> None:
        """Add a route: destination 'default' or a network, through a gateway (via) or straight out
        of an interface (dev) to neighbours on that wire."""
        if via is None and dev is None:
            raise ValueError("a route goes via a gateway or out of a device (dev)")
        argv = ["ip", "route", "add", destination] + (["via", via] if via else []) + (["dev", dev] if dev else [])
        self.cmd(*argv)

    def add_address(self, address: str, iface: str) -> None:
        """Another address on one of this host's interfaces ('192.0.2.66/24', or on a host made with
        ipv6=True '2001:db8:1::66/64', added with nodad: usable at once), as `ip address add`."""
        if iface not in self.interfaces:
            raise SetupError(f"lab host {self.name!r} has no interface {iface!r} (it has {', '.join(self.interfaces) or 'none'})")
        address = _check_address(address, self)
        self.cmd("ip", "address", "add", address, "dev", iface, *(["nodad"] if ":" in address else []))
        self.interfaces[iface].append(address)

    def bridge(self, name: str, ports: list[str], address: str | None = None) -> None:
        """A switch inside this host: the bridge `name` joins its interfaces `ports` into one LAN
        (each a link to another host), with `address` ('192.168.1.1/24') for this host on that LAN,
        as the LAN ports of a home router are."""
        rules._quoted(name)
        missing = [p for p in ports if p not in self.interfaces]
        if name in self.interfaces or missing:
            raise SetupError(f"lab host {self.name!r} cannot make bridge {name!r} of {ports}: "
                             + (f"it has no interface {missing[0]!r}" if missing else f"it already has an interface {name!r}"))
        batch = [f"link add {name} type bridge"] + [f"link set {port} master {name}" for port in ports]
        if address:
            address = _check_address(address)
            batch.append(f"address add {address} dev {name}")
        batch.append(f"link set {name} up")
        try:
            self.cmd("ip", "-batch", "-", input="\n".join(batch) + "\n")
        except PeerError as exc:
            raise SetupError(f"no lab network here: lab host {self.name!r}'s bridge {name} cannot be made ({exc}); as root, "
                             f"`modprobe bridge`; see README.md, 'The lab network' (notebooks show a recording instead)") from None
        self.interfaces[name] = [address] if address else []

    def forwarding(self, on: bool = True) -> None:
        """Route between its interfaces (a router) or not (IPv6 too on a host made with ipv6=True)."""
        self.sysctl("net.ipv4.ip_forward", 1 if on else 0)
        if self.ipv6:
            self.sysctl("net.ipv6.conf.all.forwarding", 1 if on else 0)

    def masquerade(self, out_iface: str) -> None:
        """NAT: what leaves through `out_iface` leaves with that interface's address (nftables
        masquerade); replies are translated back by conntrack."""
        if out_iface not in self.interfaces:
            raise SetupError(f"lab host {self.name!r} has no interface {out_iface!r} (it has {', '.join(self.interfaces) or 'none'})")
        self.lab._nft(self.name, rules.nat_rules(out_iface))
        self._nat.append(out_iface)

    def filter(self, match: str, chain: str = "forward", drop: bool = False) -> None:
        """A firewall rule: packets that match the nftables expression `match` (e.g. 'udp dport 53',
        'iifname "wan0" ct state new') in this host's `chain` (input: addressed to this host;
        forward: routed through it; output: sent by it) are counted (Host.counters) and, with
        `drop`, dropped silently."""
        self.lab._nft(self.name, rules.filter_rules(chain, match, drop=drop, first=chain not in self._chains))
        self._chains.add(chain)

    def drop(self, match: str, chain: str = "forward") -> None:
        """A firewall rule that drops, silently, what matches `match` in `chain` (see filter)."""
        self.filter(match, chain, drop=True)


class Link:
    """A wire between two hosts (a veth pair): an MTU, an optional rate, a loss in each direction."""

    def __init__(self, lab: "Lab", a: Host, b: Host, a_iface: str, b_iface: str, mtu: int):
        self.lab, self.a, self.b = lab, a, b
        self.a_iface, self.b_iface = a_iface, b_iface
        self.mtu = mtu
        self.rate: int | None = None
        self.loss: dict[str, Loss | None] = {a.name: None, b.name: None}  # toward that host
        self._loss_set: set[str] = set()

    def __repr__(self) -> str:
        return f"<lab link {self.a.name}:{self.a_iface} <-> {self.b.name}:{self.b_iface} mtu {self.mtu}>"

    def _end(self, toward: "Host | str") -> tuple[Host, str]:
        name = toward.name if isinstance(toward, Host) else toward
        if name == self.a.name:
            return self.a, self.a_iface
        if name == self.b.name:
            return self.b, self.b_iface
        raise ValueError(f"{name!r} is not an end of {self!r}")

    def set_mtu(self, mtu: int) -> None:
        _check_mtu(mtu, self.a.ipv6 or self.b.ipv6)
        for host, iface in ((self.a, self.a_iface), (self.b, self.b_iface)):
            host.cmd("ip", "link", "set", "dev", iface, "mtu", str(mtu))
        self.mtu = mtu

    def set_rate(self, rate: int | str | None) -> None:
        """At most `rate` (bits/s, or '10mbit') in each direction (tc tbf); None: no limit."""
        bps = None if rate is None else rules.parse_rate(rate)
        if bps is None and self.rate is None:
            return
        for host, iface in ((self.a, self.a_iface), (self.b, self.b_iface)):
            host.cmd(*rules.tbf_command(iface, bps, self.mtu))
        self.rate = bps

    def set_loss(self, loss: Loss | None, toward: "Host | str") -> None:
        """Lose packets travelling toward `toward` (an end of this link): see course.netlab.rules.
        A new loss starts counting again; None removes it."""
        host, iface = self._end(toward)
        first = iface not in self._loss_set
        self.lab._nft(host.name, rules.loss_rules(iface, loss, first=first))
        self._loss_set.add(iface)
        host._chains.add(rules.loss_chain_name(iface))
        self.loss[host.name] = loss

    def dropped(self, toward: "Host | str") -> int:
        """How many packets the loss toward `toward` has dropped so far (its nftables counter)."""
        host, iface = self._end(toward)
        if iface not in self._loss_set:
            return 0
        chain = rules.loss_chain_name(iface)
        return host.counters(chain)[chain]


def _check_mtu(mtu: int, ipv6: bool = False) -> None:
    if not isinstance(mtu, int) or not 576 <= mtu <= 65535:
        raise ValueError(f"an IPv4 link MTU here is between 576 and 65535 bytes, got {mtu!r}")
    if ipv6 and mtu < 1280:
        raise ValueError(f"a link of a host with IPv6 needs an MTU of at least 1280 bytes (RFC 8200), got {mtu}")


def _check_address(address: str, host: "Host | None" = None) -> str:
    iface = ipaddress.ip_interface(address)
    if iface.version == 6 and any(iface.ip in net for net in LAB_NETWORKS6):
        if host is not None and not host.ipv6:
            raise SetupError(f"lab host {host.name!r} has IPv6 off, so it cannot take {address}: make it with "
                             f"add_host({host.name!r}, ipv6=True)")
        return str(iface)
    if iface.version != 4 or not any(iface.ip in net for net in LAB_NETWORKS):
        raise SetupError(f"{address} is not a lab address: use 192.168.x.y (home) or 203.0.113.x, 198.51.100.x, "
                         f"192.0.2.x (RFC 5737, the Internet side), with a prefix such as /24, or on a host made with "
                         f"ipv6=True 2001:db8::/32 (RFC 3849) such as 2001:db8:1::2/64")
    return str(iface)


def _private_etc(files: dict[str, str]) -> None:
    """In a run() child, after it entered the lab's user namespace: a mount namespace of its own in
    which each /etc/NAME shows `text` (a bind mount of a file written in a temporary folder, which
    is removed at once: the mount keeps it). The machine's files and other processes are untouched."""
    import tempfile

    def fail(what: str) -> SetupError:
        return SetupError(f"cannot give this lab process its own /etc files: {what}: {os.strerror(ctypes.get_errno())}")

    if _libc.unshare(CLONE_NEWNS) != 0:
        raise fail("unshare(CLONE_NEWNS)")
    if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise fail("making its mounts private")
    folder = tempfile.mkdtemp(prefix="netlab-etc-")
    try:
        for name, text in files.items():
            target = os.path.realpath(os.path.join("/etc", name))
            if not os.path.isfile(target):
                raise SetupError(f"cannot give this lab process its own /etc/{name}: the machine has no such file to cover")
            source = os.path.join(folder, name)
            with open(source, "w") as f:
                f.write(text)
            os.chmod(source, 0o644)
            if _libc.mount(source.encode(), target.encode(), None, MS_BIND, None) != 0:
                raise fail(f"bind-mounting it over {target}")
    finally:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


class Lab:
    """A lab network: `with Lab() as net:` starts the agent (SetupError, in one line, where this
    machine refuses user namespaces), then add hosts and links; leaving the block closes every
    socket the lab handed out and ends the agent, which takes every namespace, interface and
    rule with it. `setup(net)`, if given, builds the topology on entry (see home_network).

    The agent ends when the thread that started the lab ends (PR_SET_PDEATHSIG): start a lab in
    the thread that uses it (a notebook's cells all run in one)."""

    def __init__(self, setup: Callable[["Lab"], None] | None = None, *, timeout: float = 10.0):
        self.timeout = timeout
        self.hosts: dict[str, Host] = {}
        self.links: list[Link] = []
        self.tools: dict[str, str | None] = {}
        self.agent_pid: int | None = None
        self.user_inode: int | None = None
        self.closed = False
        self._setup = setup
        self._proc: subprocess.Popen | None = None
        self._ctl: socket.socket | None = None
        self._lock = threading.RLock()
        self._run_lock = threading.RLock()
        self._handed: weakref.WeakSet = weakref.WeakSet()  # sockets and captures to close with the lab
        self._nsfds: dict[str, tuple[int, int]] = {}  # host -> (user ns fd, net ns fd), for run()
        self._children: set[int] = set()
        self._finalizer = None
        self._inside: str | None = None  # set in a run() child: the host it runs in

    # -- life ----------------------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.start()
        if self._setup is not None:
            try:
                self._setup(self)
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        if self._proc is not None:
            raise SetupError("this lab is already started; make a new Lab() for another one")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # the agent's stderr, read only if it fails before its first message (no temporary file:
        # a read-only sandbox has nowhere to write one)
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(AGENT), str(os.getpid()), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err_w,
            )
        except OSError as exc:
            mine.close()
            os.close(err_r)
            raise SetupError(f"no lab network here: cannot start {sys.executable} for the lab's agent: {exc}") from None
        finally:
            theirs.close()
            os.close(err_w)
        self._proc, self._ctl, self.agent_pid = proc, mine, proc.pid
        self._finalizer = weakref.finalize(self, _end_agent, proc, mine, self._nsfds, self._children)
        try:
            mine.settimeout(self.timeout)
            try:
                data = mine.recv(MAX_MESSAGE)
            except TimeoutError:
                data = None
            if not data:
                status = proc.poll()
                os.set_blocking(err_r, False)
                try:
                    said = os.read(err_r, 1 << 16).decode(errors="replace")
                except BlockingIOError:
                    said = ""
                last = (said.strip().splitlines() or ["no message"])[-1]
                how = f"ended (exit status {status})" if status is not None else f"did not answer within {self.timeout} s"
                raise SetupError(f"no lab network here: the lab's agent (pid {proc.pid}) {how} before it said whether it can "
                                 f"build a lab: {last}")
            hello = json.loads(data)
            if not hello["ok"]:
                raise SetupError(refusal(hello["stage"], hello["errno"], hello["error"]))
        except BaseException:
            self.close()
            raise
        finally:
            os.close(err_r)
        self.user_inode = hello["user"]
        self.tools = hello["tools"]

    def close(self) -> None:
        """Close every socket and capture the lab handed out, end the agent and wait for it: once
        this returns, nothing holds the lab's namespaces (they and their interfaces are freed)."""
        if self.closed:
            return
        self.closed = True
        for thing in list(self._handed):
            try:
                thing.close()
            except OSError:
                pass
        if self._finalizer is not None:
            self._finalizer()  # the agent, the namespaces' descriptors, run() children
        elif self._ctl is not None:
            self._ctl.close()

    # -- the agent -----------------------------------------------------------------------------
    def _call(self, op: str, nfds: int = 0, wait: float | None = None, **req) -> tuple[dict, list[int]]:
        if self._inside is not None:  # a run() child: the agent's socket is the owner's, not ours
            raise SetupError(f"inside net.host({self._inside!r}).run(fn), fn is already in {self._inside!r}: make its sockets "
                             f"with socket.socket(), and leave the lab's own calls to the code outside fn")
        if self.closed or self._ctl is None:
            raise SetupError("this lab is closed (or was never started): build a new one with `with Lab() as net:`")
        wait = wait if wait is not None else self.timeout
        with self._lock:
            try:
                self._ctl.settimeout(wait)
                self._ctl.send(json.dumps({"op": op, **req}).encode())
                if nfds:
                    data, fds, _, _ = socket.recv_fds(self._ctl, MAX_MESSAGE, nfds)
                else:
                    data, fds = self._ctl.recv(MAX_MESSAGE), []
            except TimeoutError:
                self.close()
                raise PeerError(f"the lab's agent (pid {self.agent_pid}) did not answer {op!r} within {wait} s; the lab is closed") from None
            except OSError as exc:
                self.close()
                raise PeerError(f"the lab's agent (pid {self.agent_pid}) is gone ({exc.strerror}) while asked {op!r}; the lab is closed") from None
        if not data:
            self.close()
            raise PeerError(f"the lab's agent (pid {self.agent_pid}) ended while asked {op!r}; the lab is closed")
        reply = json.loads(data)
        if not reply["ok"]:
            for fd in fds:
                os.close(fd)
            raise PeerError(f"the lab's agent could not {op} {req.get('host') or req.get('name') or ''}: {reply['error']}")
        return reply, fds

    def _exec(self, host: str, argv: list[str], input: str | None = None, timeout: float = 10.0, check: bool = True) -> str:
        reply, _ = self._call("exec", wait=timeout + 5, host=host, argv=argv, input=input, timeout=timeout)
        if check and reply["rc"] == 127:
            package = {"nft": "nftables", "conntrack": "conntrack", "ip": "iproute2", "tc": "iproute2"}.get(argv[0], argv[0])
            raise SetupError(f"the lab needs `{argv[0]}`, which is not installed (Debian/Ubuntu: apt-get install {package})")
        if check and reply["rc"] != 0:
            shown = " ".join(argv) if len(argv) < 20 else " ".join(argv[:20]) + " ..."
            raise PeerError(f"`{shown}` failed in lab host {host!r} (exit status {reply['rc']}): {reply['err'].strip()[:500]}")
        return reply["out"]

    def _nft(self, host: str, script: str) -> None:
        self._exec(host, ["nft", "-f", "-"], input=script)

    # -- building ------------------------------------------------------------------------------
    def add_host(self, name: str, ipv6: bool = False) -> Host:
        """A new machine: its own network namespace, lo up, no other interface yet. IPv4 only (no
        IPv6 frame in a capture), or with `ipv6` IPv4 and IPv6: its links then take addresses of
        2001:db8::/32 as well (Host.add_address), added without duplicate address detection."""
        if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 32:
            raise ValueError(f"a host name is letters, digits, - and _, at most 32, not {name!r}")
        if name in self.hosts:
            raise SetupError(f"the lab already has a host named {name!r}")
        reply, _ = self._call("host", name=name, **({"ipv6": True} if ipv6 else {}))
        host = Host(self, name, reply["inode"], reply["cookie"], ipv6=ipv6)
        self.hosts[name] = host
        return host

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise SetupError(f"the lab has no host named {name!r}; it has {', '.join(self.hosts) or 'none'}") from None

    def link(self, a: Host | str, b: Host | str, a_address: str | None = None, b_address: str | None = None, *,
             mtu: int = 1500, rate: int | str | None = None, loss: Loss | None = None,
             names: tuple[str | None, str | None] = (None, None)) -> Link:
        """A wire from a to b: a veth pair, one end in each, named eth0, eth1... (or `names`), with
        the given addresses ('192.168.1.2/24'), the MTU, a rate (tc tbf) and a loss toward b.
        GSO is limited to one segment and checksums are computed in software, so that the frames a
        capture sees are the packets on the wire, each with a correct checksum."""
        a, b = (self.host(x) if isinstance(x, str) else x for x in (a, b))
        if a is b:
            raise SetupError(f"a link joins two different hosts, not {a.name!r} to itself")
        _check_mtu(mtu, a.ipv6 or b.ipv6)
        ends = []
        for host, name in ((a, names[0]), (b, names[1])):
            name = name or f"eth{len(host.interfaces)}"
            rules._quoted(name)
            if name in host.interfaces:
                raise SetupError(f"lab host {host.name!r} already has an interface {name!r}")
            ends.append(name)
        # the veth pair is made in a with its peer straight in b (no name clash, nothing in between)
        self._exec(a.name, ["ip", "link", "add", ends[0], "type", "veth", "peer", "name", ends[1], "netns", f"@netns:{b.name}"])
        link = Link(self, a, b, ends[0], ends[1], mtu)
        for host, iface, address in ((a, ends[0], a_address), (b, ends[1], b_address)):
            host.interfaces[iface] = []
            batch = [f"link set dev {iface} mtu {mtu}"]
            if address:
                address = _check_address(address, host)
                batch.append(f"address add {address} dev {iface}" + (" nodad" if ":" in address else ""))
                host.interfaces[iface].append(address)
            batch.append(f"link set dev {iface} up")
            self._call("offload", host=host.name, iface=iface)
            self._exec(host.name, ["ip", "-batch", "-"], input="\n".join(batch) + "\n")
            # one segment per packet from TCP itself; where this kernel cannot change it, the checksum
            # offload turned off above already makes the kernel cut segments before they leave
            self._exec(host.name, ["ip", "link", "set", "dev", iface, "gso_max_segs", "1"], check=False)
        self.links.append(link)
        if rate is not None:
            link.set_rate(rate)
        if loss is not None:
            link.set_loss(loss, toward=b)
        return link

    # -- running a function inside a host ------------------------------------------------------
    def _namespace_fds(self, host: Host) -> tuple[int, int]:
        if host.name not in self._nsfds:
            _, fds = self._call("namespaces", nfds=2, host=host.name)
            self._nsfds[host.name] = (fds[0], fds[1])
        return self._nsfds[host.name]

    def _run_in(self, host: Host, fn: Callable, args: tuple, kwargs: dict, timeout: float, etc: dict[str, str] | None = None):
        # one at a time: a second fork while the first runs would inherit the first one's pipe
        with self._run_lock:
            return self._fork_and_run(host, fn, args, kwargs, timeout, etc)

    def _fork_and_run(self, host: Host, fn: Callable, args: tuple, kwargs: dict, timeout: float,
                      etc: dict[str, str] | None = None):
        user_fd, net_fd = self._namespace_fds(host)
        name = getattr(fn, "__qualname__", repr(fn))
        deadline = Deadline(timeout)
        parent = os.getpid()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: enter the lab, call fn, send back what happened, leave without cleanup
            os.close(r)
            printed = io.StringIO()
            try:
                _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                if os.getppid() != parent:
                    os._exit(1)
                for fd, kind, what in ((user_fd, CLONE_NEWUSER, "user"), (net_fd, CLONE_NEWNET, "network")):
                    if _libc.setns(fd, kind) != 0:
                        raise SetupError(f"cannot enter lab host {host.name!r}'s {what} namespace: {os.strerror(ctypes.get_errno())}")
                here = os.stat("/proc/thread-self/ns/net").st_ino
                if here != host.inode:
                    raise SetupError(f"the process for {name}() is in net:[{here}], not in lab host {host.name!r} "
                                     f"(net:[{host.inode}]): it did not run, and sent nothing")
                if etc:
                    _private_etc(etc)
                self._inside = host.name
                sys.stdout = sys.stderr = printed
                outcome = ("value", fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the owner
                outcome = ("error", exc)
            try:
                payload = pickle.dumps((outcome, printed.getvalue()))
            except Exception as exc:  # noqa: BLE001
                payload = pickle.dumps((("error", PeerError(f"{name}() ran in lab host {host.name!r}, but what it "
                                                            f"{'returned' if outcome[0] == 'value' else 'raised'} cannot "
                                                            f"be sent back: {exc}")), printed.getvalue()))
            try:
                view = memoryview(payload)
                while view:
                    view = view[os.write(w, view):]
            finally:
                os._exit(0)
        os.close(w)
        self._children.add(pid)
        chunks, answered = [], False
        try:
            while True:
                # short waits: a Ctrl-C (SIGINT) that Linux delivered to another thread of this
                # process does not wake select(); the main thread raises it at the next wait
                ready, _, _ = select.select([r], [], [], min(0.1, deadline.remaining()))
                if not ready and not deadline.expired():
                    continue
                if not ready:
                    raise YourCodeError(f"{name}() did not return within {timeout} s in lab host {host.name!r}: it was "
                                        f"stopped; does it wait for something that never comes (a recv without a timeout)?")
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
            answered = True
        finally:
            os.close(r)
            if not answered:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.waitpid(pid, 0)
            self._children.discard(pid)
        if not chunks:
            raise PeerError(f"the process that ran {name}() in lab host {host.name!r} ended without an answer")
        (kind, value), printed = pickle.loads(b"".join(chunks))
        if printed:
            print(printed, end="")
        if kind == "error":
            raise value
        return value


def _end_agent(proc: subprocess.Popen, ctl: socket.socket, nsfds: dict, children: set) -> None:
    """End a lab: close the control socket (the agent exits on EOF), wait for it (kill it if it
    does not go within 5 s), close the namespaces' descriptors, kill run() children left."""
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    children.clear()
    for fds in nsfds.values():
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
    nsfds.clear()
    ctl.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def available() -> str | None:
    """None if a lab can be built here, else the one sentence saying why not (the SetupError's)."""
    try:
        with Lab(timeout=10.0):
            return None
    except SetupError as exc:
        return str(exc)
