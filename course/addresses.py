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
ValueError on anything that is not a well-formed value, exactly where `ipaddress` does. The check
functions at the end are what the notebook's graded cells call.
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from course.checks import check_calls
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
    "check_ip_examples",
    "check_ip_agrees_with_ipaddress",
    "check_ip_properties",
    "check_ip_rejects_malformed",
    "check_ports_examples",
    "check_ports_boundaries",
    "PRIVACY_EXAMPLES",
    "check_private_loopback_examples",
    "check_private_loopback_ranges",
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
# Checks for the graded cells of 01-addresses-ports-nat
# ----------------------------------------------------------------------------------------------
def _generated(strategy, count: int) -> list:
    """`count` values drawn by hypothesis with a fixed seed (derandomize): the same list in every
    run, so that the evidence of a correct solution does not change between runs."""
    from hypothesis import HealthCheck, Phase, given, settings

    values: list = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value):
        values.append(value)

    collect()
    return values


def _ipv4_strategies():
    from hypothesis import strategies as st

    valid = st.integers(0, IPV4_MAX).map(int_to_ip)
    odd_groups = st.sampled_from(["", "0", "00", "01", "007", "255", "256", "999", "1000", "-1", "+1",
                                  " 1", "1 ", "a", "0x1", "1e2", "\u0661", "\uff11", "1\n"])
    group = st.one_of(st.integers(0, 300).map(str), odd_groups)
    near = st.lists(group, min_size=1, max_size=6).map(".".join)
    dotted = st.text(alphabet="0123456789.", max_size=16)
    return valid, st.one_of(near, dotted, valid)


def check_ip_examples(ip_to_int_fn, int_to_ip_fn) -> None:
    """Visible self-check: a few addresses both ways, and the round trip."""
    cases = ["192.168.1.2", "127.0.0.1", "0.0.0.0", "255.255.255.255", "116.226.52.212", "10.0.0.1"]
    hint = "The first group is the most significant byte: n = a*2**24 + b*2**16 + c*2**8 + d."
    check_calls(ip_to_int_fn, ip_to_int, [(c,) for c in cases], name="ip_to_int", hint=hint)
    check_calls(int_to_ip_fn, int_to_ip, [(ip_to_int(c),) for c in cases], name="int_to_ip",
                hint="Take the bytes from the most significant down: (n >> 24) & 0xFF first.")
    check_calls(ip_to_int_fn, ip_to_int, [("256.1.1.1",), ("1.2.3",)], name="ip_to_int",
                hint="Check the number of groups and that each is 0-255.")


def check_ip_agrees_with_ipaddress(ip_to_int_fn, int_to_ip_fn, numbers: list[int]) -> None:
    """Both conversions give what `ipaddress` gives, for each address (as an int) in `numbers`:
    int_to_ip(n) == str(IPv4Address(n)) and ip_to_int(that text) == int(IPv4Address(that text))."""
    check_calls(int_to_ip_fn, lambda n: str(ipaddress.IPv4Address(n)), [(n,) for n in numbers], name="int_to_ip",
                hint="Compare with str(ipaddress.IPv4Address(n)).")
    check_calls(ip_to_int_fn, lambda t: int(ipaddress.IPv4Address(t)), [(int_to_ip(n),) for n in numbers],
                name="ip_to_int", hint="Compare with int(ipaddress.IPv4Address(text)).")


def check_ip_properties(ip_to_int_fn, int_to_ip_fn, count: int = 150) -> None:
    """Hidden: agreement with `ipaddress` on the edges and on addresses drawn by hypothesis."""
    from hypothesis import strategies as st

    numbers = [0, 1, 255, 256, 65535, 2**24, IPV4_MAX - 1, IPV4_MAX] + _generated(st.integers(0, IPV4_MAX), count)
    check_ip_agrees_with_ipaddress(ip_to_int_fn, int_to_ip_fn, numbers)


def check_ip_rejects_malformed(ip_to_int_fn, int_to_ip_fn, count: int = 200) -> None:
    """Hidden: malformed input raises ValueError exactly where the reference (and ipaddress) does."""
    _, mixed = _ipv4_strategies()
    texts = ["256.1.1.1", "1.2.3", "1.2.3.4.5", "", "127.1", "01.2.3.4", "1.2.3.04", "1..2.3", "1.2.3.4 ",
             " 1.2.3.4", "a.b.c.d", "-1.2.3.4", "1.2.3.4/32", "0x7f.0.0.1", "\u0661.2.3.4", "localhost",
             "1.2.3.256", "999.0.0.0", "+1.2.3.4", "1.2.3.4.", ".1.2.3", "1_0.2.3.4", "1.2.3.\uff14",
             "0.0.0.00"] + _generated(mixed, count)
    others = [None, 3232235778, b"127.0.0.1", ["127.0.0.1"], 1.5]
    check_calls(ip_to_int_fn, ip_to_int, [(t,) for t in texts + others], name="ip_to_int",
                hint="Each group must be 1-3 ASCII digits, 0-255, without a leading zero; a non-str raises ValueError.")
    check_calls(int_to_ip_fn, int_to_ip, [(n,) for n in (-1, 2**32, 2**40, -(2**32), "1", 1.0, None, True, False)],
                name="int_to_ip", hint="Only an int in 0 .. 2**32-1 is an IPv4 address (True and False are not ints "
                                       "here); raise ValueError otherwise.")


def check_ports_examples(classify_fn) -> None:
    """Visible self-check: one port of each range and one outside."""
    cases = [(80,), (8080,), (50000,), (0,), (65535,), (70000,)]
    check_calls(classify_fn, classify_port, cases, name="classify_port",
                hint="Well-known 0-1023, registered 1024-49151, dynamic 49152-65535, ValueError otherwise.")


def check_ports_boundaries(classify_fn, count: int = 150) -> None:
    """Hidden: every boundary, numbers drawn by hypothesis, and values that are not ports."""
    from hypothesis import strategies as st

    edges = [-1, 0, 1, 1023, 1024, 1025, 49151, 49152, 49153, 65534, 65535, 65536, -65536, 2**31]
    drawn = _generated(st.integers(-2000, 70000), count)
    wrong = ["80", 80.0, None, (80,), True, False]
    check_calls(classify_fn, classify_port, [(p,) for p in edges + drawn + wrong], name="classify_port",
                hint="Both ends of each range belong to it; a port that is not an int (True and False included) "
                     "raises ValueError.")


PRIVACY_EXAMPLES = ["192.168.1.2", "10.1.2.3", "172.16.0.1", "116.226.52.212", "127.0.0.2", "::1", "8.8.8.8"]


def check_private_loopback_examples(is_private_fn, is_loopback_fn) -> None:
    """Visible self-check: a handful of well-known addresses, and one that is not an address."""
    cases = [(a,) for a in PRIVACY_EXAMPLES] + [("localhost",)]
    check_calls(is_private_fn, is_private, cases, name="is_private",
                hint="Private means RFC 1918 (10/8, 172.16/12, 192.168/16) or fc00::/7; loopback is not private.")
    check_calls(is_loopback_fn, is_loopback, cases, name="is_loopback",
                hint="Loopback is all of 127.0.0.0/8 and ::1.")


def check_private_loopback_ranges(is_private_fn, is_loopback_fn, count: int = 120) -> None:
    """Hidden: the edges of every range, addresses drawn by hypothesis, IPv6, and non-addresses."""
    from hypothesis import strategies as st

    edges = ["9.255.255.255", "10.0.0.0", "10.255.255.255", "11.0.0.0", "172.15.255.255", "172.16.0.0",
             "172.31.255.255", "172.32.0.0", "192.167.255.255", "192.168.0.0", "192.168.255.255", "192.169.0.0",
             "126.255.255.255", "127.0.0.0", "127.255.255.255", "128.0.0.0", "169.254.1.1", "100.64.0.1",
             "0.0.0.0", "255.255.255.255", "::", "::1", "::2", "fc00::1", "fd12:3456::1", "fbff::1", "fe00::1",
             "fe80::1", "2001:db8::1"]
    drawn = [int_to_ip(n) for n in _generated(st.integers(0, IPV4_MAX), count)]
    # Addresses near the ranges, where the masks matter.
    near = [int_to_ip((base & 0xFF000000) | (n & 0x00FFFFFF)) for base, n in zip(
        [ip_to_int(x) for x in ("10.0.0.0", "172.0.0.0", "192.0.0.0", "127.0.0.0")] * 10,
        _generated(st.integers(0, IPV4_MAX), 40))]
    wrong = ["localhost", "256.0.0.1", "10.0.0", "", "::g", None, 167772161, b"10.0.0.1", b"\n\x00\x00\x01"]
    cases = [(a,) for a in edges + drawn + near + wrong]
    check_calls(is_private_fn, is_private, cases, name="is_private",
                hint="172.16.0.0/12 ends at 172.31.255.255; 127.x and 169.254.x are not private in RFC 1918.")
    check_calls(is_loopback_fn, is_loopback, cases, name="is_loopback",
                hint="Every address 127.0.0.0 - 127.255.255.255 is loopback, and ::1 in IPv6.")


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
