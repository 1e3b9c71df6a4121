"""IP addresses and ports as the numbers they are (assignment 01).

An IPv4 address is one 32-bit unsigned integer; '192.168.1.2' is that integer written as four
8-bit groups in decimal, most significant first (network byte order, RFC 791). An IPv6 address is
one 128-bit integer, written as eight 16-bit groups in hexadecimal (RFC 4291, RFC 5952).

A port is a 16-bit number (0-65535). IANA splits the numbers into three ranges (RFC 6335 section 6):
well-known 0-1023, registered 1024-49151, dynamic (or private, or ephemeral) 49152-65535. Those are
rules for *assigning* numbers to services. Which port the kernel hands out when a program asks for
port 0 (or sends without binding) is a separate, local setting: on Linux it is
/proc/sys/net/ipv4/ip_local_port_range, 32768-60999 by default, which `ephemeral_port_range()` reads.

Private ranges (RFC 1918 for IPv4, RFC 4193 for IPv6) are the addresses a home router hands out
behind its NAT; loopback (127.0.0.0/8, ::1) never leaves the machine. Note that `ipaddress`'s
`is_private` is wider than RFC 1918: it is also True for loopback, link-local and documentation
ranges (the IANA special-purpose registry), which is why the course has its own `is_private`.

The functions here are the references the graded checks compare a learner's code with; each raises
ValueError on anything that is not a well-formed value, exactly where `ipaddress` does. The checks
the notebook's graded cells call live in `course.checks.addresses`. This module imports nothing of
the course but `course.errors`.
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from course.errors import SetupError

__all__ = [
    "IPV4_MAX",
    "IPV6_MAX",
    "PORT_MAX",
    "ip_to_int",
    "int_to_ip",
    "ipv6_to_int",
    "int_to_ipv6",
    "PRIVATE_RANGES",
    "LOOPBACK_RANGES",
    "is_private",
    "is_loopback",
    "PORT_RANGES",
    "LOCAL_PORT_RANGE_FILE",
    "UNPRIVILEGED_PORT_START_FILE",
    "classify_port",
    "ephemeral_port_range",
    "unprivileged_port_start",
    "mac_addresses",
    "plot_ports",
]

IPV4_MAX = 2**32 - 1
IPV6_MAX = 2**128 - 1
PORT_MAX = 2**16 - 1

_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")  # ASCII digits only, no leading zero ('\d' would take '٣')


# ----------------------------------------------------------------------------------------------
# IPv4 and IPv6 <-> integers
# ----------------------------------------------------------------------------------------------
def ip_to_int(text: str) -> int:
    """'192.168.1.2' -> 3232235778. Exactly four decimal groups 0-255 without leading zeros;
    anything else (a wrong type too) raises ValueError."""
    if not isinstance(text, str):
        raise ValueError(f"an IPv4 address is a str such as '127.0.0.1', not {type(text).__name__} {text!r}")
    groups = text.split(".")
    if len(groups) != 4:
        raise ValueError(f"{text!r} has {len(groups)} dot-separated groups; an IPv4 address has 4")
    number = 0
    for group in groups:
        if not _OCTET.fullmatch(group):
            raise ValueError(f"{group!r} in {text!r} is not a decimal number 0-255 without leading zeros")
        value = int(group)
        if value > 255:
            raise ValueError(f"{value} in {text!r} does not fit in 8 bits (0-255)")
        number = number * 256 + value
    return number


def int_to_ip(number: int) -> str:
    """3232235778 -> '192.168.1.2'. ValueError unless an int in 0 .. 2**32-1."""
    if not isinstance(number, int) or isinstance(number, bool):
        raise ValueError(f"an IPv4 address as a number is an int, not {type(number).__name__} {number!r}")
    if not 0 <= number <= IPV4_MAX:
        raise ValueError(f"{number} is outside 0 .. 2**32-1, so it is not an IPv4 address")
    return ".".join(str((number >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def ipv6_to_int(text: str) -> int:
    """'::1' -> 1. The 128-bit integer of an IPv6 address; ValueError on anything malformed."""
    if not isinstance(text, str):
        raise ValueError(f"an IPv6 address is a str such as '::1', not {type(text).__name__} {text!r}")
    try:
        return int(ipaddress.IPv6Address(text))
    except ipaddress.AddressValueError as exc:
        raise ValueError(str(exc)) from None


def int_to_ipv6(number: int) -> str:
    """1 -> '::1': the short form of RFC 5952 (lower case, longest run of zero groups as '::')."""
    if not isinstance(number, int) or isinstance(number, bool):
        raise ValueError(f"an IPv6 address as a number is an int, not {type(number).__name__} {number!r}")
    if not 0 <= number <= IPV6_MAX:
        raise ValueError(f"{number} is outside 0 .. 2**128-1, so it is not an IPv6 address")
    return str(ipaddress.IPv6Address(number))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(text, str):
        raise ValueError(f"an IP address is a str such as '127.0.0.1' or '::1', not {type(text).__name__} {text!r}")
    return ipaddress.ip_address(text)  # ValueError on anything malformed, names included


# ----------------------------------------------------------------------------------------------
# Private and loopback ranges
# ----------------------------------------------------------------------------------------------
PRIVATE_RANGES = [
    # (network, what it is, where it is defined)
    ("10.0.0.0/8", "private (large networks)", "RFC 1918"),
    ("172.16.0.0/12", "private (172.16.0.0 - 172.31.255.255)", "RFC 1918"),
    ("192.168.0.0/16", "private (home routers: 192.168.1.x)", "RFC 1918"),
    ("fc00::/7", "IPv6 unique local (the IPv6 private range)", "RFC 4193"),
]
LOOPBACK_RANGES = [
    ("127.0.0.0/8", "loopback: every 127.x.y.z is this host", "RFC 1122"),
    ("::1/128", "IPv6 loopback: one address", "RFC 4291"),
]
_PRIVATE = [ipaddress.ip_network(n) for n, _, _ in PRIVATE_RANGES]
_LOOPBACK = [ipaddress.ip_network(n) for n, _, _ in LOOPBACK_RANGES]


def is_private(text: str) -> bool:
    """True for RFC 1918 (10/8, 172.16/12, 192.168/16) and IPv6 unique local (fc00::/7) addresses;
    False for every other address, loopback included. ValueError if `text` is not an IP address."""
    ip = _address(text)
    return any(ip in net for net in _PRIVATE if net.version == ip.version)


def is_loopback(text: str) -> bool:
    """True for 127.0.0.0/8 and ::1. ValueError if `text` is not an IP address."""
    ip = _address(text)
    return any(ip in net for net in _LOOPBACK if net.version == ip.version)


# ----------------------------------------------------------------------------------------------
# Ports
# ----------------------------------------------------------------------------------------------
PORT_RANGES = [
    # (first, last, IANA name) from RFC 6335 section 6
    (0, 1023, "well-known"),
    (1024, 49151, "registered"),
    (49152, 65535, "dynamic"),
]
LOCAL_PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
UNPRIVILEGED_PORT_START_FILE = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start")


def classify_port(port: int) -> str:
    """IANA's name for the range of `port`: 'well-known' (0-1023), 'registered' (1024-49151) or
    'dynamic' (49152-65535). ValueError for a port outside 0-65535 or a port that is not an int."""
    if not isinstance(port, int) or isinstance(port, bool):
        raise ValueError(f"a port is an int, not {type(port).__name__} {port!r}")
    for first, last, name in PORT_RANGES:
        if first <= port <= last:
            return name
    raise ValueError(f"port {port} is outside 0-65535 (a port is 16 bits)")


def _read_numbers(path: Path) -> list[int]:
    try:
        return [int(x) for x in path.read_text().split()]
    except OSError as exc:
        raise SetupError(f"cannot read {path} ({exc.strerror}); the course needs Linux's /proc") from None


def ephemeral_port_range() -> tuple[int, int]:
    """(first, last): the ports this kernel gives to port-0 binds and unbound senders."""
    first, last = _read_numbers(LOCAL_PORT_RANGE_FILE)
    return first, last


def unprivileged_port_start() -> int:
    """The lowest port a process without CAP_NET_BIND_SERVICE may bind (1024 by default)."""
    return _read_numbers(UNPRIVILEGED_PORT_START_FILE)[0]


# ----------------------------------------------------------------------------------------------
# MAC addresses (link layer): read from sysfs, no sockets needed
# ----------------------------------------------------------------------------------------------
def mac_addresses(sys_class_net: str = "/sys/class/net") -> dict[str, str]:
    """{interface: MAC address} of this machine's network interfaces ('lo' has 00:00:00:00:00:00)."""
    found = {}
    if not os.path.isdir(sys_class_net):
        return found  # no /sys here (a grading sandbox, say): nothing to show, nothing to fail
    for name in sorted(os.listdir(sys_class_net)):
        try:
            found[name] = Path(sys_class_net, name, "address").read_text().strip()
        except OSError:
            continue
    return found


# ----------------------------------------------------------------------------------------------
# Picture: where the kernel's port-0 choices fall among IANA's ranges
# ----------------------------------------------------------------------------------------------
def plot_ports(ports: list[int], title: str = "ports the kernel chose for port 0"):
    """A strip 0-65535 with IANA's three ranges, this kernel's ephemeral range, and `ports`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 2.8))
    for (first, last, name), color in zip(PORT_RANGES, ("tab:red", "tab:blue", "tab:green")):
        ax.axvspan(first, last + 1, alpha=0.2, color=color, label=f"IANA {name} {first}-{last}")
    low, high = ephemeral_port_range()
    ax.plot([low, high], [0.85, 0.85], lw=6, color="black", label=f"this kernel's ephemeral range {low}-{high}")
    ax.scatter(ports, [0.4] * len(ports), marker="|", s=300, color="crimson", label=f"{len(ports)} {title}")
    ax.set_xlim(0, PORT_MAX + 1)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([])
    ax.set_xlabel("port number")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.55), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def __getattr__(name: str):
    """`addresses.check_*` in notebooks of earlier releases: the checks live in course.checks.addresses
    now. (Imported here, when such a name is asked for, so that the module itself stays a core that
    imports nothing of the course but course.errors.)"""
    from course.checks import forward_moved_checks

    return forward_moved_checks(__name__, "course.checks.addresses")(name)
